/*
 * common.c — clock, options, latency record and result line shared by the
 * bench drivers (loadgen, floor). Latencies are kept raw and sorted once at
 * the end: a run is at most BENCH_MAX_COUNT requests, so exact percentiles
 * cost less than getting a histogram's buckets right.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common.h"

uint64_t bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *op_names[] = {
    [BENCH_RESET] = "reset", [BENCH_UNLOCK] = "unlock", [BENCH_GRANT_REVOKE] = "grant-revoke"};

int bench_op_parse(const char *s, enum bench_op *op)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
		if (strcmp(s, op_names[i]) == 0) {
			*op = (enum bench_op)i;
			return 0;
		}
	}
	return -1;
}

const char *bench_op_name(enum bench_op op)
{
	return op_names[op];
}

int bench_num(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int bench_read_secret(const char *file, char *buf, size_t len)
{
	FILE *fp = fopen(file, "r");
	size_t n;

	if (fp == NULL) {
		perror(file);
		return -1;
	}
	n = fread(buf, 1, len - 1, fp);
	fclose(fp);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

void bench_uid(const struct bench_opts *o, unsigned idx, char *buf, size_t len)
{
	snprintf(buf, len, "%s%04u", o->prefix, idx % o->users);
}

static int opt_value(int argc, char **argv, int *i, const char **v)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s needs a value\n", argv[*i]);
		return -1;
	}
	*v = argv[++*i];
	return 0;
}

static int opt_long(const char *name, const char *v, long min, long max, long *out)
{
	if (bench_num(v, min, max, out) == 0)
		return 0;
	fprintf(stderr, "%s: expected an integer from %ld to %ld, got '%s'\n", name, min, max, v);
	return -1;
}

int bench_opt(struct bench_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v;
	long n;

	if (strcmp(a, "--op") != 0 && strcmp(a, "--concurrency") != 0 &&
	    strcmp(a, "--seconds") != 0 && strcmp(a, "--count") != 0 &&
	    strcmp(a, "--prefix") != 0 && strcmp(a, "--users") != 0 && strcmp(a, "--driver") != 0)
		return 0;
	if (opt_value(argc, argv, i, &v) == -1)
		return -1;
	if (strcmp(a, "--op") == 0) {
		if (bench_op_parse(v, &o->op) == -1) {
			fprintf(stderr, "--op: reset, unlock or grant-revoke, got '%s'\n", v);
			return -1;
		}
	} else if (strcmp(a, "--prefix") == 0) {
		o->prefix = v;
	} else if (strcmp(a, "--driver") == 0) {
		o->driver = v;
	} else {
		long max = strcmp(a, "--concurrency") == 0 ? BENCH_MAX_CONC
		           : strcmp(a, "--users") == 0     ? BENCH_MAX_USERS
		           : strcmp(a, "--seconds") == 0   ? 3600
		                                           : BENCH_MAX_COUNT;
		if (opt_long(a, v, strcmp(a, "--concurrency") == 0 ? 1 : 0, max, &n) == -1)
			return -1;
		if (strcmp(a, "--concurrency") == 0)
			o->concurrency = (int)n;
		else if (strcmp(a, "--users") == 0)
			o->users = (unsigned)n;
		else if (strcmp(a, "--seconds") == 0)
			o->seconds = (double)n;
		else
			o->count = (uint64_t)n;
	}
	return 1;
}

int bench_opts_check(struct bench_opts *o)
{
	if (o->seconds <= 0 && o->count == 0) {
		fprintf(stderr, "give --seconds or --count: a run must be bounded\n");
		return -1;
	}
	if (o->users == 0 || o->prefix == NULL || strlen(o->prefix) > BENCH_UID_MAX - 12) {
		fprintf(stderr, "give --users N (> 0) and a short --prefix\n");
		return -1;
	}
	/* Two slots on one user would race grant against revoke. */
	if (o->op == BENCH_GRANT_REVOKE && (unsigned)o->concurrency > o->users) {
		fprintf(stderr, "grant-revoke needs --users >= --concurrency\n");
		return -1;
	}
	return 0;
}

bool bench_may_issue(const struct bench_opts *o, uint64_t issued, uint64_t now_us,
                     uint64_t start_us)
{
	if (o->count != 0 && issued >= o->count)
		return false;
	if (issued >= BENCH_MAX_COUNT)
		return false;
	return o->seconds <= 0 || (double)(now_us - start_us) < o->seconds * 1e6;
}

int bench_stats_init(struct bench_stats *s, const struct bench_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->cap = o->count != 0 ? (size_t)o->count : BENCH_MAX_COUNT;
	/* Start small; a seconds-bound run grows the array as it needs. */
	if (s->cap > 65536)
		s->cap = 65536;
	s->lat_us = malloc(s->cap * sizeof(*s->lat_us));
	return s->lat_us != NULL ? 0 : -1;
}

void bench_stats_add(struct bench_stats *s, uint64_t us)
{
	if (s->n == s->cap && s->cap < BENCH_MAX_COUNT) {
		size_t cap = s->cap * 2 > BENCH_MAX_COUNT ? BENCH_MAX_COUNT : s->cap * 2;
		uint32_t *p = realloc(s->lat_us, cap * sizeof(*p));

		if (p != NULL) {
			s->lat_us = p;
			s->cap = cap;
		}
	}
	if (s->n < s->cap)
		s->lat_us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

void bench_stats_sort(struct bench_stats *s)
{
	qsort(s->lat_us, s->n, sizeof(*s->lat_us), cmp_u32);
}

uint32_t bench_stats_pct(const struct bench_stats *s, double p)
{
	size_t k;

	if (s->n == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (k == 0)
		k = 1;
	return s->lat_us[(k > s->n ? s->n : k) - 1];
}

void bench_stats_print(struct bench_stats *s, const struct bench_opts *o)
{
	double secs = (double)(s->t_end_us - s->t_start_us) / 1e6;
	struct rusage ru;
	double cpu_us = 0;

	/* The driver's own CPU time (set-up included) shows what it takes from the two CPUs
	 * it shares with slapd (and ldapdeskd): a heavier driver leaves them less. */
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
		         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	bench_stats_sort(s);
	if (secs <= 0)
		secs = 1e-6;
	printf(
	    "{\"driver\":\"%s\",\"op\":\"%s\",\"concurrency\":%d,\"ok\":%zu,\"errors\":%llu,"
	    "\"unchanged\":%llu,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"p50_us\":%u,"
	    "\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,\"driver_cpu_us\":%.0f,\"flagged\":%s}\n",
	    o->driver, bench_op_name(o->op), o->concurrency, s->n, (unsigned long long)s->errors,
	    (unsigned long long)s->unchanged, secs, (double)s->n / secs, bench_stats_pct(s, 50),
	    bench_stats_pct(s, 99), bench_stats_pct(s, 99.9), s->n ? s->lat_us[s->n - 1] : 0,
	    s->n ? cpu_us / (double)s->n : 0, s->errors ? "true" : "false");
	fflush(stdout);
}

void bench_stats_free(struct bench_stats *s)
{
	free(s->lat_us);
	s->lat_us = NULL;
}

bool bench_next(struct bench_run *r, struct bench_slot *sl)
{
	uint64_t now = bench_now_us();

	if (r->o->op == BENCH_GRANT_REVOKE && sl->revoke) {
		if (now - r->st.t_start_us > (uint64_t)(r->o->seconds + BENCH_GRACE_S) * 1000000u)
			return false;
	} else {
		if (!bench_may_issue(r->o, r->issued, now, r->st.t_start_us))
			return false;
		sl->user = r->next_user++ % r->o->users;
	}
	r->issued++;
	sl->t0_us = now;
	return true;
}

void bench_done(struct bench_run *r, struct bench_slot *sl, bool ok, bool unchanged)
{
	uint64_t now = bench_now_us();

	if (ok)
		bench_stats_add(&r->st, now - sl->t0_us);
	else
		r->st.errors++;
	if (unchanged)
		r->st.unchanged++;
	r->st.t_end_us = now;
	if (r->o->op == BENCH_GRANT_REVOKE)
		sl->revoke = !sl->revoke;
}
