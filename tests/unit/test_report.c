/*
 * test_report.c — unit tests of the service report (daemon/report.c) on a
 * real audit database in a temporary directory, in the Asia/Shanghai zone
 * so that local months and times are checked against UTC storage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "report.h"

static struct config_grant grants[] = {
    {.name = "procurement",
     .group = "cn=procurement,ou=groups,dc=example,dc=org",
     .label = "采管系统"},
};
static struct config conf = {.grants = grants, .n_grants = 1}; /* categories: main() */

#define FROM "2025-12-31T16:00:00.000Z" /* 2026-01-01 00:00 +08:00 */
#define TO   "2026-03-31T15:59:59.999Z" /* 2026-03-31 23:59:59.999 +08:00 */

struct fixture {
	char dir[64], path[128], err[256];
	struct audit *a;
	char *out;
	size_t len;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_report.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof fx->path, "%s/audit.db", fx->dir);
	if (audit_open(fx->path, &fx->a, fx->err, sizeof fx->err) == -1)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[160];

	audit_close(fx->a);
	free(fx->out);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

/* One event: attempt and outcome. */
struct ev {
	const char *action, *category, *result, *at, *dept, *op, *perm, *desc, *detail, *requester;
};

static void add(struct fixture *fx, const struct ev *e)
{
	struct audit_event ev = {
	    .requested_at = e->at,
	    .operator= e->op ? e->op : "hd1",
	    .action = e->action,
	    .target = strcmp(e->action, "record") == 0 ? NULL : "alice",
	    .permission = e->perm,
	    .category = e->category,
	    .requester = e->requester,
	    .department = e->dept,
	    .description = e->desc,
	};

	assert_int_equal(
	    audit_record(fx->a, &ev, e->result, e->detail, NULL, fx->err, sizeof fx->err), 0);
}

static void build(struct fixture *fx, const char *format)
{
	const char *ctype = NULL;

	free(fx->out);
	fx->out = NULL;
	if (report_build(fx->a, &conf, FROM, TO, format, &fx->out, &fx->len, &ctype, fx->err,
	                 sizeof fx->err) != 0)
		fail_msg("report_build: %s", fx->err);
	assert_non_null(ctype);
	assert_int_equal(strlen(fx->out), fx->len);
}

static json_t *build_json(struct fixture *fx)
{
	json_error_t je;
	json_t *j;

	build(fx, "json");
	j = json_loadb(fx->out, fx->len, 0, &je);
	if (j == NULL)
		fail_msg("report json does not parse: %s", je.text);
	return j;
}

/* 7 counted events, 3 not counted (denied, failed, no category). */
static void tiny_fixture(struct fixture *fx)
{
	const struct ev evs[] = {
	    {.action = "record",
	     .category = "app-request",
	     .result = "ok",
	     .at = "2026-01-05T01:00:00.000Z",
	     .dept = "信息中心",
	     .desc = "新建报表需求",
	     .requester = "张三"},
	    {.action = "unlock",
	     .category = "unlock-reset",
	     .result = "ok",
	     .at = "2026-01-06T01:00:00.000Z",
	     .dept = "市场营销中心"},
	    {.action = "unlock",
	     .category = "unlock-reset",
	     .result = "unchanged",
	     .at = "2026-01-07T01:00:00.000Z",
	     .dept = "市场营销中心"},
	    {.action = "reset",
	     .category = "unlock-reset",
	     .result = "ok",
	     .at = "2026-02-01T01:00:00.000Z",
	     .dept = "财务管理部",
	     .op = "hd2",
	     .detail = "password reset; must change at next login; unlocked"},
	    {.action = "grant",
	     .category = "grant",
	     .result = "ok",
	     .at = "2026-02-02T01:00:00.000Z",
	     .dept = "规范管理部",
	     .op = "adm1",
	     .perm = "procurement"},
	    {.action = "revoke",
	     .category = "grant",
	     .result = "ok",
	     .at = "2026-02-03T01:00:00.000Z",
	     .dept = "规范管理部",
	     .op = "adm1",
	     .perm = "procurement"},
	    {.action = "record",
	     .category = "vuln-fix",
	     .result = "ok",
	     .at = "2026-03-03T01:00:00.000Z",
	     .dept = "信息中心",
	     .desc = "修复门户漏洞"},
	    {.action = "unlock",
	     .category = "unlock-reset",
	     .result = "denied",
	     .at = "2026-03-04T01:00:00.000Z",
	     .dept = "信息中心"},
	    {.action = "grant",
	     .category = "grant",
	     .result = "failed",
	     .at = "2026-03-05T01:00:00.000Z",
	     .dept = "信息中心",
	     .op = "adm1",
	     .perm = "procurement"},
	    {.action = "login", .result = "ok", .at = "2026-03-06T01:00:00.000Z"},
	};

	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		add(fx, &evs[i]);
}

#define TINY_SUMMARY                                                                                                               \
	"应用需求单 1 项、解锁重置密码 3 次、删除待办与邮件 0 次、授权系统权限 2 次、"             \
	"安装手机APP 0 次、修改通知公告 0 次、邮件附件及门户登录异常 0 次、更新知识文档 0 次、" \
	"漏洞修复 1 次，运维事件共 7 次"

static void summary_line_is_exact_for_a_tiny_log(void **state)
{
	struct fixture *fx = *state;
	json_t *j;

	tiny_fixture(fx);
	j = build_json(fx);
	assert_string_equal(json_string_value(json_object_get(j, "summary")), TINY_SUMMARY);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 7);
	assert_int_equal(json_array_size(json_object_get(j, "events")), 7);
	json_decref(j);
	build(fx, "text");
	assert_non_null(strstr(fx->out, TINY_SUMMARY "\n"));
	build(fx, "md");
	assert_non_null(strstr(fx->out, TINY_SUMMARY));
	build(fx, "html");
	assert_non_null(strstr(fx->out, TINY_SUMMARY));
}

static void refused_and_failed_attempts_are_not_counted(void **state)
{
	struct fixture *fx = *state;
	const struct ev evs[] = {
	    {.action = "unlock",
	     .category = "unlock-reset",
	     .result = "denied",
	     .at = "2026-01-06T01:00:00.000Z"},
	    {.action = "grant",
	     .category = "grant",
	     .result = "failed",
	     .at = "2026-01-06T02:00:00.000Z",
	     .perm = "procurement"},
	    {.action = "record",
	     .category = "notice",
	     .result = "failed",
	     .at = "2026-01-06T03:00:00.000Z",
	     .desc = "x"},
	};
	struct audit_event pending = {.requested_at = "2026-01-06T04:00:00.000Z",
	                              .operator= "hd1",
	                              .action = "unlock",
	                              .category = "unlock-reset"};
	int64_t pending_id = 0;
	json_t *j;

	for (size_t i = 0; i < 3; i++)
		add(fx, &evs[i]);
	assert_int_equal(audit_begin(fx->a, &pending, &pending_id, fx->err, sizeof fx->err), 0);
	j = build_json(fx);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "events")), 0);
	assert_non_null(
	    strstr(json_string_value(json_object_get(j, "summary")), "解锁重置密码 0 次、"));
	json_decref(j);
}

static const char *event_field(json_t *j, size_t i, const char *key);

/* An approval is the grant it carries out (counted, described as a grant);
 * the daemon's expiry of a timed grant is not an event handled, even as
 * older databases stored it (category grant). */
static void approvals_count_and_expiries_do_not(void **state)
{
	struct fixture *fx = *state;
	const struct ev evs[] = {
	    {.action = "approve",
	     .category = "grant",
	     .result = "ok",
	     .at = "2026-01-07T01:00:00.000Z",
	     .perm = "procurement",
	     .op = "adm2",
	     .dept = "财务管理部",
	     .detail = "expires 2026-02-07T01:00:00Z"},
	    {.action = "expire",
	     .category = "grant",
	     .result = "ok",
	     .at = "2026-02-07T01:00:10.000Z",
	     .perm = "procurement",
	     .op = "ldapdeskd",
	     .detail = "expired: the grant's term ended"},
	};
	json_t *j;

	for (size_t i = 0; i < 2; i++)
		add(fx, &evs[i]);
	j = build_json(fx);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
	assert_string_equal(event_field(j, 0, "description"), "授权采管系统权限");
	assert_string_equal(event_field(j, 0, "resolution"), "经另一管理员批准后授权");
	assert_string_equal(event_field(j, 0, "department"), "财务管理部");
	assert_non_null(
	    strstr(json_string_value(json_object_get(j, "summary")), "授权系统权限 1 次"));
	json_decref(j);
}

static void html_escapes_values_and_is_self_contained(void **state)
{
	struct fixture *fx = *state;
	const struct ev e = {.action = "record",
	                     .category = "notice",
	                     .result = "ok",
	                     .at = "2026-01-08T01:00:00.000Z",
	                     .dept = "审计部(审计派驻办)<b>",
	                     .op = "hd1",
	                     .desc = "<script>alert(\"x\")</script>&'",
	                     .requester = "<img src=x onerror=alert(1)>"};

	add(fx, &e);
	build(fx, "html");
	assert_null(strstr(fx->out, "<script"));
	assert_null(strstr(fx->out, "<img"));
	assert_null(strstr(fx->out, "<b>"));
	assert_non_null(
	    strstr(fx->out, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
	assert_non_null(strstr(fx->out, "审计部(审计派驻办)&lt;b&gt;"));
	assert_non_null(strstr(fx->out, "@page{size:A4"));
	assert_non_null(strstr(fx->out, "<svg"));
	assert_non_null(strstr(fx->out, "<rect"));
	assert_null(strstr(fx->out, "<link"));
	assert_non_null(strstr(fx->out, "&lt;img src=x onerror=alert(1)&gt;"));
	assert_null(strstr(fx->out, "url("));
	/* Numbers and months never break inside (A4 print). */
	assert_non_null(strstr(fx->out, "table.num td:not(:first-child),table.num "
	                                "th:not(:first-child){word-break:keep-all"));
}

/* Markdown: no link or image a wiki would follow or fetch, no emphasis. */
static void md_escapes_links_and_images(void **state)
{
	struct fixture *fx = *state;
	const struct ev e = {.action = "record",
	                     .category = "notice",
	                     .result = "ok",
	                     .at = "2026-01-08T01:00:00.000Z",
	                     .dept = "信息中心",
	                     .op = "hd1",
	                     .desc =
	                         "![x](http://evil.example/p.png) [点此](http://evil.example) *b*",
	                     .requester = "a|b"};

	add(fx, &e);
	build(fx, "md");
	assert_null(strstr(fx->out, "](http"));
	assert_null(strstr(fx->out, "![x]"));
	assert_non_null(strstr(fx->out, "\\!\\[x\\]\\(http://evil.example/p.png\\) \\[点此\\]"));
	assert_non_null(strstr(fx->out, "\\*b\\*"));
	assert_non_null(strstr(fx->out, "a\\|b"));
}

static void csv_quotes_formulas_and_follows_rfc4180(void **state)
{
	struct fixture *fx = *state;
	const struct ev evs[] = {
	    {.action = "record",
	     .category = "notice",
	     .result = "ok",
	     .at = "2026-01-08T01:00:00.000Z",
	     .dept = "=HYPERLINK(\"http://x\")",
	     .op = "hd1",
	     .desc = "-2+3",
	     .requester = "@SUM(A1)"},
	    {.action = "record",
	     .category = "notice",
	     .result = "ok",
	     .at = "2026-01-09T01:00:00.000Z",
	     .dept = "信息中心",
	     .op = "hd1",
	     .desc = "两行\n说明, 带逗号",
	     .requester = "+1"},
	};

	add(fx, &evs[0]);
	add(fx, &evs[1]);
	build(fx, "csv");
	static const char header[] = "序号,事件提交单位,提交人,提交时间,事件描述,解决办法,问题处理,"
	                             "解决时间,解决情况,备注,类别\r\n";
	assert_true(strncmp(fx->out, header, strlen(header)) == 0);
	assert_non_null(strstr(fx->out, "\r\n1,\"'=HYPERLINK(\"\"http://x\"\")\",\"'@SUM(A1)\","
	                                "2026-01-08 09:00:00,\"'-2+3\","));
	assert_non_null(strstr(fx->out, ",\"'+1\",2026-01-09 09:00:00,\"两行\n说明, 带逗号\","));
	assert_non_null(strstr(fx->out, ",已解决,,修改通知公告\r\n"));
	/* no cell starts with a bare formula character */
	assert_null(strstr(fx->out, ",="));
	assert_null(strstr(fx->out, ",@"));
	assert_null(strstr(fx->out, ",+"));
}

static json_t *month(json_t *j, size_t i)
{
	return json_array_get(json_object_get(j, "by_month"), i);
}

static json_int_t month_count(json_t *j, size_t i, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(month(j, i), "counts"), key));
}

static void counts_by_month_and_category_use_the_local_zone(void **state)
{
	struct fixture *fx = *state;
	const struct ev evs[] = {
	    {.action = "unlock",
	     .category = "unlock-reset",
	     .result = "ok",
	     .at = "2026-01-05T01:00:00.000Z"},
	    /* 2026-02-01 01:00 in Shanghai: February, though still January in UTC */
	    {.action = "unlock",
	     .category = "unlock-reset",
	     .result = "ok",
	     .at = "2026-01-31T17:00:00.000Z"},
	    {.action = "record",
	     .category = "notice",
	     .result = "ok",
	     .at = "2026-02-10T01:00:00.000Z",
	     .desc = "通知"},
	    {.action = "record",
	     .category = "notice",
	     .result = "ok",
	     .at = "2026-02-11T01:00:00.000Z",
	     .desc = "公告"},
	    {.action = "record",
	     .category = "todo-mail",
	     .result = "ok",
	     .at = "2026-01-12T01:00:00.000Z",
	     .desc = "删除"},
	};
	json_t *j;

	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		add(fx, &evs[i]);
	j = build_json(fx);
	assert_int_equal(json_array_size(json_object_get(j, "by_month")), 3);
	assert_string_equal(json_string_value(json_object_get(month(j, 0), "month")), "2026-01");
	assert_int_equal(month_count(j, 0, "unlock-reset"), 1);
	assert_int_equal(month_count(j, 0, "todo-mail"), 1);
	assert_int_equal(month_count(j, 1, "unlock-reset"), 1);
	assert_int_equal(month_count(j, 1, "notice"), 2);
	assert_int_equal(json_integer_value(json_object_get(month(j, 1), "total")), 3);
	assert_int_equal(json_integer_value(json_object_get(month(j, 2), "total")), 0);
	json_decref(j);
	build(fx, "text");
	assert_non_null(strstr(fx->out, "\n2026-02\t0\t1\t0\t0\t0\t2\t0\t0\t0\t3\n"));
}

static const char *event_field(json_t *j, size_t i, const char *key)
{
	return json_string_value(
	    json_object_get(json_array_get(json_object_get(j, "events"), i), key));
}

static void detail_rows_describe_directory_actions_in_words(void **state)
{
	struct fixture *fx = *state;
	json_t *j;

	tiny_fixture(fx);
	j = build_json(fx);
	assert_string_equal(event_field(j, 0, "description"), "新建报表需求");
	assert_string_equal(event_field(j, 0, "requester"), "张三");
	assert_string_equal(event_field(j, 1, "description"), "门户解锁");
	assert_string_equal(event_field(j, 1, "resolution"), "管理员账号解锁");
	assert_string_equal(event_field(j, 1, "submitted_at"), "2026-01-06T09:00:00.000+08:00");
	assert_string_equal(event_field(j, 1, "status"), "已解决");
	assert_string_equal(event_field(j, 3, "description"), "门户解锁与重置密码");
	assert_string_equal(event_field(j, 3, "resolution"), "管理员重置密码");
	assert_string_equal(event_field(j, 3, "handler"), "hd2");
	assert_string_equal(event_field(j, 4, "description"), "授权采管系统权限");
	assert_string_equal(event_field(j, 4, "resolution"), "管理员授权");
	assert_string_equal(event_field(j, 5, "description"), "撤销采管系统权限");
	/* by department: count first, then name (信息中心 2 = 市场营销中心 2) */
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(j, "by_department"), 0), "department")),
	    "信息中心");
	assert_int_equal(json_integer_value(json_object_get(
	                     json_array_get(json_object_get(j, "by_operator"), 0), "count")),
	                 4); /* hd1: 需求, two unlocks, 漏洞 */
	json_decref(j);
}

/* More rows than one scan page, all at the same instant: paging must
 * neither repeat nor skip rows. */
static void rows_at_one_instant_span_pages_exactly_once(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.requested_at = "2026-01-05T01:00:00.000Z",
	                         .operator= "hd1",
	                         .action = "record",
	                         .category = "todo-mail",
	                         .description = "删除待办"};
	json_t *j;

	assert_int_equal(audit_batch_begin(fx->a, fx->err, sizeof fx->err), 0);
	for (int i = 0; i < 4500; i++)
		assert_int_equal(
		    audit_batch_add(fx->a, &ev, "ok", NULL, NULL, NULL, fx->err, sizeof fx->err),
		    0);
	assert_int_equal(audit_batch_commit(fx->a, fx->err, sizeof fx->err), 0);
	j = build_json(fx);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 4500);
	assert_int_equal(json_array_size(json_object_get(j, "events")), 4500);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_array_get(json_object_get(j, "events"), 4499), "seq")),
	                 4500);
	json_decref(j);
}

/* A scan that sees records committed after it began: on its first row it
 * commits 3,000 more through a second connection (as an import does). */
struct landing {
	struct fixture *fx;
	struct audit *other;
	int seen;
};

static int land_cb(void *arg, const struct audit_row *row)
{
	struct landing *l = arg;
	struct audit_event ev = {.requested_at = "2026-01-06T01:00:00.000Z",
	                         .operator= "adm1",
	                         .action = "record",
	                         .category = "notice",
	                         .description = "imported"};

	(void)row;
	if (l->seen++ == 0) {
		assert_int_equal(audit_batch_begin(l->other, l->fx->err, sizeof l->fx->err), 0);
		for (int i = 0; i < 3000; i++)
			assert_int_equal(audit_batch_add(l->other, &ev, "ok", NULL, NULL, NULL,
			                                 l->fx->err, sizeof l->fx->err),
			                 0);
		assert_int_equal(audit_batch_commit(l->other, l->fx->err, sizeof l->fx->err), 0);
	}
	return 0;
}

/* A report reads in pages; records that land between two pages (an import
 * committing) are not half counted: the scan sees the store as it began. */
static void a_scan_sees_the_store_as_it_began(void **state)
{
	struct fixture *fx = *state;
	struct landing l = {.fx = fx};
	struct audit_event ev = {.requested_at = "2026-01-05T01:00:00.000Z",
	                         .operator= "hd1",
	                         .action = "record",
	                         .category = "todo-mail",
	                         .description = "删除待办"};

	assert_int_equal(audit_batch_begin(fx->a, fx->err, sizeof fx->err), 0);
	for (int i = 0; i < 2500; i++)
		assert_int_equal(
		    audit_batch_add(fx->a, &ev, "ok", NULL, NULL, NULL, fx->err, sizeof fx->err),
		    0);
	assert_int_equal(audit_batch_commit(fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_open(fx->path, &l.other, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_scan(fx->a, FROM, TO, land_cb, &l, fx->err, sizeof fx->err), 0);
	assert_int_equal(l.seen, 2500);
	/* The next scan sees them all. */
	l.seen = 1;
	assert_int_equal(audit_scan(fx->a, FROM, TO, land_cb, &l, fx->err, sizeof fx->err), 0);
	assert_int_equal(l.seen, 1 + 5500);
	audit_close(l.other);
}

/* A half-year in New York starts at -05:00 and ends in DST at -04:00: the
 * heading of every format that prints it gives each end its own offset. */
static void the_range_heading_gives_each_end_its_own_offset(void **state)
{
	struct fixture *fx = *state;
	const char *formats[] = {"text", "md", "html"}, *ct;
	/* 2026-01-01 00:00 and 2026-06-30 23:59:59.999 in New York */
	const char *from = "2026-01-01T05:00:00.000Z", *to = "2026-07-01T03:59:59.999Z";

	setenv("TZ", "America/New_York", 1);
	tzset();
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		free(fx->out);
		fx->out = NULL;
		assert_int_equal(report_build(fx->a, &conf, from, to, formats[i], &fx->out,
		                              &fx->len, &ct, fx->err, sizeof fx->err),
		                 0);
		if (strstr(fx->out, "统计区间：2026-01-01 00:00:00（UTC-05:00）至 2026-06-30 "
		                    "23:59:59（UTC-04:00）") == NULL)
			fail_msg("%s: no heading with both offsets in:\n%.400s", formats[i],
			         fx->out);
	}
	/* Both ends in one offset: it is given once, after the range. */
	free(fx->out);
	fx->out = NULL;
	assert_int_equal(report_build(fx->a, &conf, from, "2026-02-01T04:59:59.999Z", "text",
	                              &fx->out, &fx->len, &ct, fx->err, sizeof fx->err),
	                 0);
	assert_non_null(
	    strstr(fx->out, "统计区间：2026-01-01 00:00:00 至 2026-01-31 23:59:59（UTC-05:00）"));
	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
}

static void bad_format_and_range_are_errors(void **state)
{
	struct fixture *fx = *state;
	const char *ct;

	assert_int_equal(report_build(fx->a, &conf, FROM, TO, "pdf", &fx->out, &fx->len, &ct,
	                              fx->err, sizeof fx->err),
	                 -1);
	assert_non_null(strstr(fx->err, "format"));
	assert_int_equal(report_build(fx->a, &conf, TO, FROM, "json", &fx->out, &fx->len, &ct,
	                              fx->err, sizeof fx->err),
	                 -1);
	assert_int_equal(report_build(fx->a, &conf, "2026-01-01", TO, "json", &fx->out, &fx->len,
	                              &ct, fx->err, sizeof fx->err),
	                 -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(summary_line_is_exact_for_a_tiny_log),
	    T(refused_and_failed_attempts_are_not_counted),
	    T(approvals_count_and_expiries_do_not),
	    T(html_escapes_values_and_is_self_contained),
	    T(md_escapes_links_and_images),
	    T(csv_quotes_formulas_and_follows_rfc4180),
	    T(counts_by_month_and_category_use_the_local_zone),
	    T(detail_rows_describe_directory_actions_in_words),
	    T(rows_at_one_instant_span_pages_exactly_once),
	    T(a_scan_sees_the_store_as_it_began),
	    T(bad_format_and_range_are_errors),
	    T(the_range_heading_gives_each_end_its_own_offset),
	};

	if (config_default_categories(&conf) == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
