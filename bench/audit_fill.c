/*
 * audit_fill.c — bench driver for the audit store: fills a database with
 * realistic events through the audit API (batched), and times a one-user
 * query, a report and a CSV import. Prints one "name value unit" line per
 * figure; bench/audit_bench.sh runs it.
 *
 *   audit_fill fill DB N            N events over the 12 months to 2026-06-30
 *   audit_fill query DB USER FROM TO
 *   audit_fill report DB FROM TO FORMAT
 *   audit_fill csv FILE N           a detail-table CSV of N rows
 *   audit_fill import DB FILE
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "import.h"
#include "report.h"

#define BATCH    10000
#define N_USERS  5000
#define N_OPS    40
#define START    1751328000 /* 2025-07-01T00:00:00Z */
#define YEAR_SEC (365 * 86400L)

static struct config_grant grants[] = {
    {.name = "brand", .label = "品牌洞察"},          {.name = "rnd", .label = "产研系统"},
    {.name = "procurement", .label = "采管系统"},    {.name = "general", .label = "综合系统"},
    {.name = "finance-kb", .label = "财务知识文档"},
};
static struct config conf = {.grants = grants, .n_grants = 5}; /* categories: main() */

static const char *const depts[] = {
    "市场营销中心", "后勤服务中心", "规范管理部",
    "物资采购中心", "企业管理部",   "投资装备部",
    "技术研发中心", "财务管理部",   "办公室(外事办公室董事会办公室)",
    "生产制造部",   "信息中心",     "审计部(审计派驻办)",
};
#define N_DEPTS (sizeof depts / sizeof depts[0])

static uint64_t rng_state = 88172645463325252ULL;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void stored(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* One event of the mix: 55% unlock/reset, 25% to-dos and mails, 5%
 * grants, the rest other records; about 10% refused or failed. */
static void make_event(struct audit_event *ev, const char **resultp, char bufs[4][64], long i,
                       long n)
{
	uint32_t r = rnd(100);
	static const char *const others[] = {"app-request", "mobile-app",    "notice",
	                                     "login-issue", "knowledge-doc", "vuln-fix"};

	memset(ev, 0, sizeof *ev);
	stored(START + (time_t)(YEAR_SEC * i / n) + rnd(600), bufs[0], 64);
	snprintf(bufs[1], 64, "op%02u", rnd(N_OPS) + 1);
	snprintf(bufs[2], 64, "u%05u", rnd(N_USERS) + 1);
	ev->requested_at = bufs[0];
	ev->operator= bufs[1];
	ev->client_addr = "10.0.0.7";
	ev->department = depts[rnd(N_DEPTS)];
	ev->requester = bufs[2];
	ev->channel = "hotline";
	if (r < 55) {
		ev->action = r < 35 ? "unlock" : "reset";
		ev->category = "unlock-reset";
		ev->target = bufs[2];
	} else if (r < 60) {
		ev->action = r < 58 ? "grant" : "revoke";
		ev->category = "grant";
		ev->target = bufs[2];
		ev->permission = grants[rnd(5)].name;
	} else {
		ev->action = "record";
		ev->category = r < 85 ? "todo-mail" : others[rnd(6)];
		ev->description = r < 85 ? "删除过期待办与邮件" : "处理用户提交的问题";
	}
	*resultp = rnd(10) == 0 ? (rnd(2) ? "denied" : "failed") : "ok";
}

static int fill(struct audit *a, long n)
{
	char err[256], bufs[4][64];
	struct audit_event ev;
	const char *result;
	double t0 = now_ms();

	for (long i = 0; i < n; i += BATCH) {
		if (audit_batch_begin(a, err, sizeof err) == -1)
			goto fail;
		for (long k = i; k < n && k < i + BATCH; k++) {
			make_event(&ev, &result, bufs, k, n);
			if (audit_batch_add(a, &ev, result, NULL, NULL, NULL, err, sizeof err) ==
			    -1) {
				audit_batch_rollback(a);
				goto fail;
			}
		}
		if (audit_batch_commit(a, err, sizeof err) == -1)
			goto fail;
	}
	printf("fill_events %ld events\nfill_time %.1f s\nfill_rate %.0f events/s\n", n,
	       (now_ms() - t0) / 1e3, n / ((now_ms() - t0) / 1e3));
	return 0;
fail:
	fprintf(stderr, "fill: %s\n", err);
	return -1;
}

static int count_cb(void *arg, json_t *row)
{
	(void)row;
	(*(long *)arg)++;
	return 0;
}

static int query(struct audit *a, const char *user, const char *from, const char *to)
{
	struct audit_filter f = {.user = user, .from = from, .to = to, .limit = 5000};
	char err[256];
	long rows = 0;
	int64_t next = 0;
	double t0 = now_ms();

	do {
		f.after = next;
		if (audit_query(a, &f, count_cb, &rows, &next, err, sizeof err) == -1) {
			fprintf(stderr, "query: %s\n", err);
			return -1;
		}
	} while (next != 0);
	printf("query_rows %ld rows\nquery_time %.1f ms\n", rows, now_ms() - t0);
	return 0;
}

static int report(struct audit *a, const char *from, const char *to, const char *format)
{
	char err[256], *out = NULL;
	size_t len = 0;
	const char *ct;
	double t0 = now_ms();

	if (report_build(a, &conf, from, to, format, &out, &len, &ct, err, sizeof err) == -1) {
		fprintf(stderr, "report: %s\n", err);
		return -1;
	}
	printf("report_%s_time %.1f ms\nreport_%s_bytes %zu bytes\n", format, now_ms() - t0, format,
	       len);
	free(out);
	return 0;
}

static int write_csv(const char *path, long n)
{
	FILE *fp = fopen(path, "w");
	char when[64], done[64];

	if (fp == NULL)
		return -1;
	fputs("序号,事件提交单位,提交人,提交时间,事件描述,解决办法,问题处理,解决时间,解决情况,"
	      "备注\n",
	      fp);
	for (long i = 0; i < n; i++) {
		time_t t = START + (time_t)(YEAR_SEC * i / n);
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		t += 600;
		localtime_r(&t, &tm);
		strftime(done, sizeof done, "%Y/%m/%d %H:%M:%S", &tm);
		fprintf(fp, "%ld,%s,用户%05u,%s,%s,%s,张工%02u,%s,已解决,\"备注, 第%ld行\"\n",
		        i + 1, depts[rnd(N_DEPTS)], rnd(N_USERS), when,
		        rnd(2) ? "门户解锁与重置密码" : "删除待办与邮件",
		        rnd(2) ? "管理员重置密码" : "后台删除", rnd(N_OPS), done, i + 1);
	}
	return fclose(fp);
}

static char *slurp(const char *path, size_t *lenp)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (fp && fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) != NULL &&
	    fread(buf, 1, (size_t)len, fp) == (size_t)len)
		*lenp = (size_t)len;
	else if (buf) {
		free(buf);
		buf = NULL;
	}
	if (fp)
		fclose(fp);
	return buf;
}

static int import(struct audit *a, const char *path)
{
	char err[256];
	size_t len = 0;
	char *body = slurp(path, &len);
	json_t *errors = NULL;
	int64_t n = 0;
	double t0 = now_ms(), ms;
	int rc;

	if (body == NULL)
		return -1;
	rc = import_csv(a, &conf, "adm1", NULL, NULL, body, len, &n, &errors, err, sizeof err);
	ms = now_ms() - t0;
	free(body);
	json_decref(errors);
	if (rc == -1) {
		fprintf(stderr, "import: %s\n", err);
		return -1;
	}
	printf("import_rows %lld rows\nimport_time %.1f ms\nimport_rate %.0f rows/s\n",
	       (long long)n, ms, n / (ms / 1e3));
	return 0;
}

static int run(struct audit *a, int argc, char **argv)
{
	if (strcmp(argv[1], "fill") == 0 && argc == 4)
		return fill(a, atol(argv[3]));
	if (strcmp(argv[1], "query") == 0 && argc == 6)
		return query(a, argv[3], argv[4], argv[5]);
	if (strcmp(argv[1], "report") == 0 && argc == 6)
		return report(a, argv[3], argv[4], argv[5]);
	if (strcmp(argv[1], "import") == 0 && argc == 4)
		return import(a, argv[3]);
	fprintf(stderr, "audit_fill: bad arguments (see the file's head comment)\n");
	return -1;
}

int main(int argc, char **argv)
{
	struct audit *a = NULL;
	char err[256];
	int rc;

	if (config_default_categories(&conf) == -1)
		return 1;
	if (argc >= 4 && strcmp(argv[1], "csv") == 0)
		return write_csv(argv[2], atol(argv[3])) == 0 ? 0 : 1;
	if (argc < 4) {
		fprintf(stderr, "usage: audit_fill fill|query|report|import|csv DB ...\n");
		return 2;
	}
	if (audit_open(argv[2], &a, err, sizeof err) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rc = run(a, argc, argv);
	audit_close(a);
	return rc == 0 ? 0 : 1;
}
