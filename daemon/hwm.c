/*
 * hwm.c — the audit's high-water mark file (see hwm.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "hwm.h"
#include "log.h"

struct hwm {
	char *path;
	int fd; /* -1 until the first write */
	int64_t written;
	bool warned;
};

static char *ids_path(const char *dbpath)
{
	char *p = NULL;

	return asprintf(&p, "%s-ids", dbpath) < 0 ? NULL : p;
}

struct hwm *hwm_open(const char *dbpath)
{
	struct hwm *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->path = ids_path(dbpath)) == NULL) {
		free(h);
		return NULL;
	}
	h->fd = -1;
	return h;
}

/* The mark in the file, under the caller's lock: 0 if none. */
static int64_t mark_in(int fd)
{
	char line[24] = "";
	long long v = 0;

	if (pread(fd, line, 21, 0) != 21 || sscanf(line, "%lld", &v) != 1 || v < 0)
		return 0;
	return v;
}

/* Raised, never lowered: the daemon's connections (the loop's, the group
 * commit's, an import's) each write theirs, in any order, so under flock
 * (which separate open()s of one file contend for) a lower id is skipped.
 * Fixed width, so a shorter number never leaves a longer one's tail. */
static int mark_raise(int fd, int64_t id)
{
	char line[24];
	int rc = 0;

	if (flock(fd, LOCK_EX) == -1)
		return -1;
	snprintf(line, sizeof(line), "%020" PRId64 "\n", id);
	if (id > mark_in(fd) && pwrite(fd, line, 21, 0) != 21)
		rc = -1;
	flock(fd, LOCK_UN);
	return rc;
}

void hwm_note(struct hwm *h, int64_t id)
{
	if (h == NULL || id <= h->written)
		return;
	if (h->fd == -1)
		h->fd = open(h->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (h->fd == -1 || mark_raise(h->fd, id) == -1) {
		if (!h->warned)
			log_warn("%s: cannot keep the highest audit id (a restored database "
			         "could give lost ids again)",
			         h->path);
		h->warned = true;
		return;
	}
	h->written = id;
}

int64_t hwm_read(const char *dbpath)
{
	char *path = ids_path(dbpath);
	int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	int64_t v = fd != -1 ? mark_in(fd) : 0; /* one parser for the file */

	if (fd != -1)
		close(fd);
	free(path);
	return v;
}

void hwm_free(struct hwm *h)
{
	if (h == NULL)
		return;
	if (h->fd != -1)
		close(h->fd);
	free(h->path);
	free(h);
}
