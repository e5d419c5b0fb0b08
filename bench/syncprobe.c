/*
 * syncprobe.c — how long this machine's disk takes to make a small write
 * durable, the figure that decides where slapd's limit lies (LMDB syncs
 * twice per modify) and what the audit's group commits cost. bench/run.sh
 * prints it in the table's header, so runs on different days (this VM's
 * disk has measured 0.1 ms and 0.7 ms per sync) can be told apart.
 *
 *   syncprobe DIR [ROUNDS]
 *
 * Each round overwrites 14 pages of 4 KiB of a 4 MiB file in DIR, written
 * and synced whole first (about what one group commit adds to the audit's
 * WAL, which SQLite rewrites from its start after a checkpoint; slapd's LMDB
 * too rewrites pages of a file it has), and calls fdatasync. Syncs that
 * extend a file cost more: a file grown as it went made the figure depend on
 * ROUNDS. Prints one line: "fdatasync p50 N us, p99 N us (ROUNDS syncs of 56
 * KiB in DIR)". The file is removed. Exit status 1 with a message if DIR
 * cannot be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define PROBE_PAGES      14
#define PROBE_PAGE       4096
#define PROBE_ROUNDS     200
#define PROBE_ROUNDS_MAX 100000
#define PROBE_WRAP       (4 << 20) /* the file's size: rounds start again at its start */

/* Writes and syncs rounds times into fd, after filling PROBE_WRAP bytes of
 * it; adds each sync's microseconds to st. Return: 0, or -1 with errno set. */
static int probe(int fd, struct bench_stats *st, long rounds)
{
	static char page[PROBE_PAGE];
	off_t off;

	memset(page, 'x', sizeof(page));
	for (off = 0; off < PROBE_WRAP; off += PROBE_PAGE)
		if (pwrite(fd, page, sizeof(page), off) != (ssize_t)sizeof(page))
			return -1;
	if (fdatasync(fd) == -1)
		return -1;
	off = 0;
	for (long r = 0; r < rounds; r++) {
		uint64_t t0;

		for (int p = 0; p < PROBE_PAGES; p++, off += PROBE_PAGE)
			if (pwrite(fd, page, sizeof(page), off) != (ssize_t)sizeof(page))
				return -1;
		if (off + PROBE_PAGES * PROBE_PAGE > PROBE_WRAP)
			off = 0;
		t0 = bench_now_us();
		if (fdatasync(fd) == -1)
			return -1;
		bench_stats_add(st, bench_now_us() - t0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.count = 0};
	struct bench_stats st;
	long rounds = PROBE_ROUNDS;
	char path[4096];
	int fd, rc;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && bench_num(argv[2], 1, PROBE_ROUNDS_MAX, &rounds) == -1)) {
		fprintf(stderr, "usage: syncprobe DIR [ROUNDS (1..%d)]\n", PROBE_ROUNDS_MAX);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/syncprobe.XXXXXX", argv[1]);
	if ((fd = mkstemp(path)) == -1) {
		fprintf(stderr, "syncprobe: cannot create a file in %s: %s\n", argv[1],
		        strerror(errno));
		return 1;
	}
	o.count = (uint64_t)rounds;
	errno = 0;
	rc = bench_stats_init(&st, &o) == 0 ? probe(fd, &st, rounds) : -1;
	if (rc == -1)
		fprintf(stderr, "syncprobe: %s: %s\n", path, strerror(errno != 0 ? errno : ENOMEM));
	close(fd);
	unlink(path);
	if (rc == 0) {
		bench_stats_sort(&st);
		printf("fdatasync p50 %u us, p99 %u us (%ld syncs of %d KiB in %s)\n",
		       bench_stats_pct(&st, 50), bench_stats_pct(&st, 99), rounds,
		       PROBE_PAGES * PROBE_PAGE / 1024, argv[1]);
	}
	bench_stats_free(&st);
	return rc == 0 ? 0 : 1;
}
