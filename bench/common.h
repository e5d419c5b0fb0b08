/*
 * common.h — what the bench drivers share: the clock, the per-request latency
 * record, the operation names, the user list and the one-line JSON result
 * that bench/run.sh reads. Nothing here talks to the network.
 */
#ifndef LDAPDESK_BENCH_COMMON_H
#define LDAPDESK_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_CONC  1024    /* connections / outstanding operations */
#define BENCH_MAX_USERS 1000000 /* bench users addressed by index */
#define BENCH_MAX_COUNT 5000000 /* latencies kept: 20 MB at most */
#define BENCH_GRACE_S   10      /* after the deadline, outstanding work is abandoned */
#define BENCH_UID_MAX   64

enum bench_op { BENCH_RESET, BENCH_UNLOCK, BENCH_GRANT_REVOKE };

/* What every driver is told: the operation, how hard and for how long. */
struct bench_opts {
	enum bench_op op;
	int concurrency;
	double seconds;     /* 0: no time bound */
	uint64_t count;     /* 0: no count bound */
	const char *prefix; /* uid = prefix + 4-digit index */
	unsigned users;
	const char *driver; /* name printed in the result */
};

/* Latencies of successful requests and the counts the result line shows. */
struct bench_stats {
	uint32_t *lat_us;
	size_t n, cap;
	uint64_t errors, unchanged;
	uint64_t t_start_us, t_end_us;
};

uint64_t bench_now_us(void);
int bench_op_parse(const char *s, enum bench_op *op);
const char *bench_op_name(enum bench_op op);
int bench_num(const char *s, long min, long max, long *out);
/* The first line of file into buf (len bytes at most, line break dropped).
 * Return: 0, or -1 (file unreadable, said on stderr; or empty). */
int bench_read_secret(const char *file, char *buf, size_t len);
void bench_uid(const struct bench_opts *o, unsigned idx, char *buf, size_t len);

/* Common options: --op --concurrency --seconds --count --prefix --users --driver.
 * Returns 1 if it consumed argv[i] (and its value), 0 if not ours, -1 on error. */
int bench_opt(struct bench_opts *o, int argc, char **argv, int *i);
int bench_opts_check(struct bench_opts *o);

/* The run may go on: neither the deadline nor the count has been reached. */
bool bench_may_issue(const struct bench_opts *o, uint64_t issued, uint64_t now_us,
                     uint64_t start_us);

/* One connection's (or outstanding operation's) place in the sequence. */
struct bench_slot {
	unsigned user;
	bool revoke; /* grant-revoke: the next request revokes `user` */
	uint64_t t0_us;
};

/* The shared sequence: users round robin, bounded by time and count. */
struct bench_run {
	struct bench_opts *o;
	struct bench_stats st;
	uint64_t issued;
	unsigned next_user;
	int active; /* slots with a request in flight */
};

/* Picks the slot's next request; false when the slot is done. A grant is
 * always followed by its revoke, even past the bounds, so a run leaves the
 * groups as it found them (at most one extra request per slot). */
bool bench_next(struct bench_run *r, struct bench_slot *sl);
/* Records a finished request: ok (2xx / LDAP success), unchanged or error. */
void bench_done(struct bench_run *r, struct bench_slot *sl, bool ok, bool unchanged);

int bench_stats_init(struct bench_stats *s, const struct bench_opts *o);
void bench_stats_add(struct bench_stats *s, uint64_t us);
/* Sorts the latencies; bench_stats_print does it too. */
void bench_stats_sort(struct bench_stats *s);
/* Nearest-rank percentile p (0..100] of the latencies, once sorted; 0 if none. */
uint32_t bench_stats_pct(const struct bench_stats *s, double p);
void bench_stats_print(struct bench_stats *s, const struct bench_opts *o);
void bench_stats_free(struct bench_stats *s);

#endif
