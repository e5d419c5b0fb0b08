/*
 * test_import.c — unit tests of the CSV import (daemon/import.c) on a real
 * audit database in a temporary directory, zone Asia/Shanghai.
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
#include <pthread.h>
#include <sqlite3.h>

#include "audit.h"
#include "config.h"
#include "import.h"
#include "ldapdesk/wire.h"
#include "report.h"

static struct config conf; /* the built-in categories, added by main() */

#define HEADER                                                                                     \
	"序号,事件提交单位,提交人,提交时间,事件描述,解决办法,问题处理,解决时间,解决情况,备注\n"

struct fixture {
	char dir[64], path[128], err[256];
	struct audit *a;
	json_t *rows, *errors;
	int64_t n;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_import.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof fx->path, "%s/audit.db", fx->dir);
	if (audit_open(fx->path, &fx->a, fx->err, sizeof fx->err) == -1)
		return -1;
	fx->rows = json_array();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[160];

	audit_close(fx->a);
	json_decref(fx->rows);
	json_decref(fx->errors);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static int import(struct fixture *fx, const char *csv)
{
	json_decref(fx->errors);
	fx->errors = NULL;
	int rc =
	    import_csv(fx->a, &conf, "adm1", "uid=adm1,ou=people,dc=example,dc=org", "127.0.0.1",
	               csv, strlen(csv), &fx->n, &fx->errors, fx->err, sizeof fx->err);
	char *why = fx->errors != NULL ? json_dumps(fx->errors, JSON_ENSURE_ASCII) : NULL;

	/* What a refused file had against it, for a test that did not expect it. */
	if (rc != 0)
		print_message("import: %s %s\n", fx->err, why != NULL ? why : "");
	free(why);
	return rc;
}

static int collect(void *arg, json_t *row)
{
	json_array_append(arg, row);
	return 0;
}

/* Every attempt row: the imported rows oldest first, then the rest (the
 * import events: an import's attempt is stored before its rows, so that a
 * daemon killed meanwhile leaves it pending; one page is plenty here). */
static json_t *rows(struct fixture *fx)
{
	struct audit_filter f = {.limit = LDAPDESK_AUDIT_PAGE_MAX};
	json_t *all = json_array();
	size_t i;
	json_t *row;

	json_array_clear(fx->rows);
	assert_int_equal(audit_query(fx->a, &f, collect, all, NULL, fx->err, sizeof fx->err), 0);
	json_array_foreach(all, i, row) if (json_is_true(json_object_get(row, "imported")))
	    json_array_append(fx->rows, row);
	json_array_foreach(all, i, row) if (!json_is_true(json_object_get(row, "imported")))
	    json_array_append(fx->rows, row);
	json_decref(all);
	return fx->rows;
}

static const char *field(json_t *r, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(r, i), key));
}

static int error_line(const struct fixture *fx, size_t i)
{
	return (int)json_integer_value(json_object_get(json_array_get(fx->errors, i), "line"));
}

static const char *error_message(const struct fixture *fx, size_t i)
{
	return json_string_value(json_object_get(json_array_get(fx->errors, i), "message"));
}

static void good_file_imports_every_row_marked_imported(void **state)
{
	struct fixture *fx = *state;
	json_t *r;

	assert_int_equal(
	    import(fx,
	           HEADER "1,市场营销中心,张三,2026-01-05 09:30,门户解锁与重置密码,"
	                  "管理员重置密码,李工,2026-01-05 09:40,已解决,电话\n"
	                  "2,办公室(外事办公室董事会办公室),王五,2026/1/6 8:05,删除待办,"
	                  "后台删除,李工,2026/1/6 8:15,已解决,\n"
	                  "3,信息中心,赵六,2026-01-07T10:00:00+08:00,修复门户漏洞,打补丁,,,,\n"),
	    0);
	assert_int_equal(fx->n, 3);
	assert_null(fx->errors);
	r = rows(fx);
	assert_int_equal(json_array_size(r), 4); /* 3 rows + the import event */
	for (size_t i = 0; i < 3; i++) {
		assert_true(json_is_true(json_object_get(json_array_get(r, i), "imported")));
		assert_string_equal(field(r, i, "action"), "record");
		assert_string_equal(field(r, i, "result"), "ok");
	}
	assert_string_equal(field(r, 0, "category"), "unlock-reset");
	assert_string_equal(field(r, 0, "requested_at"), "2026-01-05T01:30:00.000Z");
	assert_string_equal(field(r, 0, "finished_at"), "2026-01-05T01:40:00.000Z");
	assert_string_equal(field(r, 0, "requester"), "张三");
	assert_string_equal(field(r, 0, "department"), "市场营销中心");
	assert_string_equal(field(r, 0, "detail"), "管理员重置密码");
	assert_string_equal(field(r, 0, "note"), "电话");
	assert_string_equal(field(r, 0, "operator"), "李工");
	assert_string_equal(field(r, 1, "department"), "办公室(外事办公室董事会办公室)");
	assert_string_equal(field(r, 1, "requested_at"), "2026-01-06T00:05:00.000Z");
	assert_string_equal(field(r, 1, "category"), "todo-mail");
	assert_string_equal(field(r, 2, "operator"), "adm1"); /* no 问题处理: the importer */
	assert_string_equal(field(r, 2, "finished_at"), "2026-01-07T02:00:00.000Z");
	assert_string_equal(field(r, 2, "category"), "vuln-fix");
	assert_string_equal(field(r, 3, "action"), "import");
	assert_string_equal(field(r, 3, "operator"), "adm1");
	assert_non_null(strstr(field(r, 3, "detail"), "imported 3 events"));
	/* Its attempt was stored before the rows (a kill meanwhile leaves it pending). */
	assert_true(json_integer_value(json_object_get(json_array_get(r, 3), "id")) <
	            json_integer_value(json_object_get(json_array_get(r, 0), "id")));
}

static void two_bad_rows_are_both_reported_and_nothing_is_imported(void **state)
{
	struct fixture *fx = *state;
	json_t *r;

	assert_int_equal(import(fx, HEADER
	                        "1,信息中心,张三,2026-01-05 09:30,门户解锁,解锁,李工,,,\n"
	                        "2,信息中心,张三,昨天上午,门户解锁,解锁,李工,,,\n"
	                        "3,信息中心,张三,2026-01-05 09:30,修复门户漏洞,打补丁,李工,,,\n"
	                        "4,信息中心,张三,2026-01-05 09:30,喝茶,聊天,李工,,,\n"),
	                 -1);
	assert_non_null(fx->errors);
	assert_int_equal(json_array_size(fx->errors), 2);
	assert_int_equal(error_line(fx, 0), 3);
	assert_int_equal(error_line(fx, 1), 5);
	assert_non_null(strstr(fx->err, "nothing imported"));
	r = rows(fx);
	/* only the refused import itself is logged */
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(field(r, 0, "action"), "import");
	assert_string_equal(field(r, 0, "result"), "failed");
}

static void bom_and_quoted_newlines_keep_line_numbers(void **state)
{
	struct fixture *fx = *state;
	json_t *r;

	assert_int_equal(import(fx,
	                        "\xEF\xBB\xBF" HEADER
	                        "1,信息中心,张三,2026-01-05 09:30,\"通知公告\r\n第二行, 含逗号\","
	                        "\"改\"\"公告\"\"\",李工,,,\r\n"
	                        "2,信息中心,张三,2026-01-05 09:30,修复门户漏洞,打补丁,李工,,,\r\n"),
	                 0);
	assert_int_equal(fx->n, 2);
	r = rows(fx);
	/* The cell's \r\n is stored as \n: the same text as from a Unix file. */
	assert_string_equal(field(r, 0, "description"), "通知公告\n第二行, 含逗号");
	assert_string_equal(field(r, 0, "detail"), "改\"公告\"");
	assert_string_equal(field(r, 0, "category"), "notice");
	/* a bad row after a two-line cell is named by its own file line (4) */
	assert_int_equal(import(fx,
	                        HEADER "1,信息中心,张三,2026-01-05 09:30,\"通知\n公告\",改,,,,\n"
	                               "2,信息中心,张三,2026-13-05 09:30,修复漏洞,补丁,,,,\n"),
	                 -1);
	assert_int_equal(error_line(fx, 0), 4);
	/* A BOM before the first column's name: the header is still found. */
	assert_int_equal(import(fx, "\xEF\xBB\xBF提交时间,事件描述\n2026-01-05 09:30,修复漏洞\n"),
	                 0);
	assert_int_equal(fx->n, 1);
}

/* Rows the report would count wrongly are refused: not resolved, or text
 * cut short by a NUL inside quotes. */
static void unresolved_rows_and_nul_bytes_are_refused(void **state)
{
	struct fixture *fx = *state;
	static const char nul[] = "提交时间,事件描述\n2026-01-05 09:30,\"漏洞\0后面\"\n";

	assert_int_equal(import(fx, HEADER "1,a,b,2026-01-05 09:30,门户漏洞,,,,未解决,\n"
	                                   "2,a,b,2026-01-05 09:30,门户漏洞,,,,已解决,\n"),
	                 -1);
	assert_int_equal(json_array_size(fx->errors), 1);
	assert_int_equal(error_line(fx, 0), 2);
	json_decref(fx->errors);
	fx->errors = NULL;
	assert_int_equal(import_csv(fx->a, &conf, "adm1", NULL, NULL, nul, sizeof nul - 1, &fx->n,
	                            &fx->errors, fx->err, sizeof fx->err),
	                 -1);
	assert_non_null(fx->errors);
	assert_int_equal(error_line(fx, 0), 2);
	/* Only the two refused imports' own records: no row went in. */
	assert_int_equal(json_array_size(rows(fx)), 2);
	assert_string_equal(field(rows(fx), 0, "action"), "import");
	assert_string_equal(field(rows(fx), 1, "action"), "import");
}

/* The same file twice would count its events twice: the second is refused,
 * naming the first import; a different file still goes in. */
static void the_same_file_is_not_imported_twice(void **state)
{
	struct fixture *fx = *state;
	const char *csv = HEADER "1,a,b,2026-01-05 09:30,门户漏洞,,,,已解决,\n";

	assert_int_equal(import(fx, csv), 0);
	assert_int_equal(json_array_size(rows(fx)), 2); /* the row and the import event */
	assert_int_equal(import(fx, csv), -2);
	assert_non_null(strstr(fx->err, "imported already (import event 1)"));
	assert_null(fx->errors);
	assert_int_equal(json_array_size(rows(fx)), 3); /* + the refused import's own record */
	assert_string_equal(field(rows(fx), 2, "result"), "failed");
	assert_int_equal(import(fx, HEADER "1,a,b,2026-01-05 09:31,门户漏洞,,,,已解决,\n"), 0);
}

static void category_is_inferred_from_words(void **state)
{
	struct fixture *fx = *state;
	static const char *const want[] = {
	    "unlock-reset", "login-issue",   "todo-mail", "grant",       "mobile-app",
	    "notice",       "knowledge-doc", "vuln-fix",  "app-request", "login-issue"};
	json_t *r;

	assert_int_equal(import(fx, HEADER "1,a,b,2026-01-05 09:30,重置密码,,,,,\n"
	                                   "2,a,b,2026-01-05 09:30,门户登录异常,,,,,\n"
	                                   "3,a,b,2026-01-05 09:30,删除待办,,,,,\n"
	                                   "4,a,b,2026-01-05 09:30,授权采管系统权限,,,,,\n"
	                                   "5,a,b,2026-01-05 09:30,安装APP,,,,,\n"
	                                   "6,a,b,2026-01-05 09:30,修改公告,,,,,\n"
	                                   "7,a,b,2026-01-05 09:30,更新文档,,,,,\n"
	                                   "8,a,b,2026-01-05 09:30,门户漏洞,,,,,\n"
	                                   "9,a,b,2026-01-05 09:30,新增报表需求,,,,,\n"
	                                   "10,a,b,2026-01-05 09:30,邮件附件及门户登录异常,,,,,\n"),
	                 0);
	r = rows(fx);
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(field(r, i, "category"), want[i]);
}

/* What a person would file each under, as the hand-kept reports did: what
 * was done before what it was about, everyday words (通知, 文档) only after a
 * verb acting on them, 解决办法 only when 事件描述 names nothing. Wordings
 * from two reviews: the first order misfiled 19, the second 20 others. */
static void category_goes_by_what_was_done(void **state)
{
	struct fixture *fx = *state;
	static const char *const want[] = {
	    "unlock-reset",  "unlock-reset",  "unlock-reset",  "todo-mail",    "todo-mail",
	    "todo-mail",     "grant",         "grant",         "notice",       "notice",
	    "knowledge-doc", "knowledge-doc", "knowledge-doc", "vuln-fix",     "vuln-fix",
	    "mobile-app",    "mobile-app",    "app-request",   "app-request",  "todo-mail",
	    "login-issue",   "login-issue",   "login-issue",   "login-issue",  "unlock-reset",
	    "unlock-reset",  "mobile-app",    "login-issue",   "login-issue",  "grant",
	    "grant",         "grant",         "grant",         "unlock-reset", "unlock-reset",
	    "login-issue",   "login-issue",   "login-issue",   "login-issue",  "login-issue",
	    "login-issue",   "todo-mail",     "unlock-reset",  "grant",        "knowledge-doc",
	    "unlock-reset"};
	json_t *r;

	assert_int_equal(
	    import(fx,
	           HEADER "1,a,b,2026-01-05 09:00,账号被锁定，无法登录门户,管理员解锁,,,,\n"
	                  "2,a,b,2026-01-05 09:01,门户登录提示账号已锁定,后台解锁,,,,\n"
	                  "3,a,b,2026-01-05 09:02,登录时提示账户被锁,已解锁,,,,\n"
	                  "4,a,b,2026-01-05 09:03,删除含附件的过期邮件,后台删除,,,,\n"
	                  "5,a,b,2026-01-05 09:04,删除登录提醒邮件,后台删除,,,,\n"
	                  "6,a,b,2026-01-05 09:05,删除密码到期提醒邮件,后台删除,,,,\n"
	                  "7,a,b,2026-01-05 09:06,为新员工开通邮件与综合系统权限,已授权,,,,\n"
	                  "8,a,b,2026-01-05 09:07,开通采管系统待办审批权限,已授权,,,,\n"
	                  "9,a,b,2026-01-05 09:08,更新公告附件,已替换附件,,,,\n"
	                  "10,a,b,2026-01-05 09:09,修改首页通知中的登录说明,已修改,,,,\n"
	                  "11,a,b,2026-01-05 09:10,更新密码修改操作指南文档,已更新,,,,\n"
	                  "12,a,b,2026-01-05 09:11,上传门户登录操作手册到知识库,已上传,,,,\n"
	                  "13,a,b,2026-01-05 09:12,更新知识库中的待办处理说明,已更新,,,,\n"
	                  "14,a,b,2026-01-05 09:13,修复门户登录页面漏洞,升级组件,,,,\n"
	                  "15,a,b,2026-01-05 09:14,修复弱密码漏洞,强制修改,,,,\n"
	                  "16,a,b,2026-01-05 09:15,手机APP无法登录,重新安装,,,,\n"
	                  "17,a,b,2026-01-05 09:16,安装手机邮件客户端,已安装,,,,\n"
	                  "18,a,b,2026-01-05 09:17,门户新增待办统计需求,已排期,,,,\n"
	                  "19,a,b,2026-01-05 09:18,提交需求：通知公告支持置顶,已排期,,,,\n"
	                  "20,a,b,2026-01-05 09:19,删除过期通知邮件,后台删除,,,,\n"
	                  "21,a,b,2026-01-05 09:20,邮件附件无法打开,清除浏览器缓存,,,,\n"
	                  "22,a,b,2026-01-05 09:21,邮件附件无法下载,清除缓存,,,,\n"
	                  "23,a,b,2026-01-05 09:22,发送邮件时附件上传失败,重新上传,,,,\n"
	                  "24,a,b,2026-01-05 09:23,邮件系统登录失败,清除缓存,,,,\n"
	                  "25,a,b,2026-01-05 09:24,收到账号锁定通知，申请解锁,已解锁,,,,\n"
	                  "26,a,b,2026-01-05 09:25,收到密码过期通知，无法修改密码,重置密码,,,,\n"
	                  "27,a,b,2026-01-05 09:26,手机APP推送通知收不到,重新安装,,,,\n"
	                  "28,a,b,2026-01-05 09:27,附件文档无法打开,清除缓存,,,,\n"
	                  "29,a,b,2026-01-05 09:28,Word文档附件无法上传,清除缓存,,,,\n"
	                  "30,a,b,2026-01-05 09:29,开通文档管理系统权限,已授权,,,,\n"
	                  "31,a,b,2026-01-05 09:30,为新员工开通知识库访问权限,已授权,,,,\n"
	                  "32,a,b,2026-01-05 09:31,因业务需求开通系统权限,已授权,,,,\n"
	                  "33,a,b,2026-01-05 09:32,开通手机APP使用权限,已授权,,,,\n"
	                  "34,a,b,2026-01-05 09:33,忘记密码,已重置并通知用户,,,,\n"
	                  "35,a,b,2026-01-05 09:34,忘记密码,参照知识库文档重置密码,,,,\n"
	                  "36,a,b,2026-01-05 09:35,账号无法登录,已解锁，已通知本人,,,,\n"
	                  "37,a,b,2026-01-05 09:36,门户登录异常,已邮件回复用户处理办法,,,,\n"
	                  "38,a,b,2026-01-05 09:37,门户登录不上,指导用户用手机验证码登录,,,,\n"
	                  "39,a,b,2026-01-05 09:38,不会登录门户,发送操作指南,,,,\n"
	                  "40,a,b,2026-01-05 09:39,附件无法下载,检查权限正常，清除缓存,,,,\n"
	                  "41,a,b,2026-01-05 09:40,手机号变更无法接收验证码登录,更新号码,,,,\n"
	                  "42,a,b,2026-01-05 09:41,删除过期待办共 3 条,后台删除,,,,\n"
	                  "43,a,b,2026-01-05 09:42,账号解锁,管理员账号解锁,,,,\n"
	                  "44,a,b,2026-01-05 09:43,开通产研系统权限,授权,,,,\n"
	                  "45,a,b,2026-01-05 09:44,更新报销知识文档,上传新版,,,,\n"
	                  "46,a,b,2026-01-05 09:45,门户打不开,后台解锁,,,,\n"),
	    0);
	r = rows(fx);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		if (strcmp(field(r, i, "category"), want[i]) != 0)
			print_error("row %zu (%s): %s, not %s\n", i + 1, field(r, i, "description"),
			            field(r, i, "category"), want[i]);
		assert_string_equal(field(r, i, "category"), want[i]);
	}
}

/* A word inside another (打开通讯录 holds 开通) or a bare 手机 decides
 * nothing: such a row is refused, asking for 类别, not filed wrongly. */
static void words_inside_others_decide_nothing(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(
	    import(fx, HEADER "1,a,b,2026-01-05 09:30,门户打开通讯录报错,已处理,,,,\n"), -1);
	assert_int_equal(import(fx, HEADER "1,a,b,2026-01-05 09:30,手机号变更,已处理,,,,\n"), -1);
}

static void category_column_takes_key_or_label(void **state)
{
	struct fixture *fx = *state;
	json_t *r;

	assert_int_equal(import(fx, "提交时间,事件描述,类别\n"
	                            "2026-01-05 09:30,喝茶,vuln-fix\n"
	                            "2026-01-05 09:31,聊天,更新知识文档\n"),
	                 0);
	r = rows(fx);
	assert_string_equal(field(r, 0, "category"), "vuln-fix");
	assert_string_equal(field(r, 1, "category"), "knowledge-doc");
	assert_int_equal(import(fx, "提交时间,事件描述,类别\n2026-01-05 09:30,喝茶,no-such\n"), -1);
	assert_int_equal(error_line(fx, 0), 2);
}

static void header_and_cell_limits_are_checked(void **state)
{
	struct fixture *fx = *state;
	char *big = malloc(LDAPDESK_MAX_FIELD + 200);

	assert_int_equal(import(fx, ""), -1);
	assert_null(fx->errors);
	assert_int_equal(import(fx, "a,b\n1,2\n"), -1);
	assert_non_null(strstr(fx->err, "提交时间"));
	assert_non_null(big);
	snprintf(big, LDAPDESK_MAX_FIELD + 200, "提交时间,事件描述\n2026-01-05 09:30,漏洞%0*d\n",
	         LDAPDESK_MAX_FIELD, 0);
	assert_int_equal(import(fx, big), -1);
	assert_int_equal(error_line(fx, 0), 2);
	assert_int_equal(import(fx, "提交时间,事件描述\n2026-01-05 09:30,\"漏洞\n"), -1);
	assert_int_equal(error_line(fx, 0), 2);
	assert_int_equal(import(fx, "提交时间,事件描述\n2026-01-05 09:30,\xff\xfe漏洞\n"), -1);
	assert_non_null(fx->errors); /* refused as a bad row, not by the store */
	assert_int_equal(error_line(fx, 0), 2);
	free(big);
}

/* What the report's CSV holds, import takes back: same summary. */
static void report_csv_imports_back_to_the_same_counts(void **state)
{
	struct fixture *fx = *state;
	const char *from = "2025-12-31T16:00:00.000Z", *to = "2026-12-31T15:59:59.999Z", *ct;
	char *csv = NULL, *j1 = NULL, *j2 = NULL;
	size_t len;
	struct audit *b;
	char path[160];
	int64_t n;

	assert_int_equal(import(fx, HEADER "1,a,b,2026-01-05 09:30,=重置密码,,,,,-1\n"
	                                   "2,a,b,2026-02-05 09:30,门户漏洞,,,,,\n"),
	                 0);
	assert_int_equal(
	    report_build(fx->a, &conf, from, to, "csv", &csv, &len, &ct, fx->err, sizeof fx->err),
	    0);
	snprintf(path, sizeof path, "%s/b.db", fx->dir);
	assert_int_equal(audit_open(path, &b, fx->err, sizeof fx->err), 0);
	assert_int_equal(import_csv(b, &conf, "adm1", NULL, NULL, csv, len, &n, &fx->errors,
	                            fx->err, sizeof fx->err),
	                 0);
	assert_int_equal(n, 2);
	assert_int_equal(
	    report_build(fx->a, &conf, from, to, "text", &j1, &len, &ct, fx->err, sizeof fx->err),
	    0);
	assert_int_equal(
	    report_build(b, &conf, from, to, "text", &j2, &len, &ct, fx->err, sizeof fx->err), 0);
	assert_string_equal(j1, j2);
	assert_non_null(strstr(j1, "=重置密码"));
	audit_close(b);
	free(csv);
	free(j1);
	free(j2);
}

/* Hand-kept Chinese dates are read; a future row and a GBK file are refused
 * with the reason; the same event twice (here in one file) is refused. */
static void chinese_dates_future_rows_gbk_and_duplicates(void **state)
{
	struct fixture *fx = *state;
	json_t *r;

	assert_int_equal(import(fx, HEADER "1,信息中心,张三,2025年3月5日 14:20,门户解锁,解锁,李工,"
	                                   "2025.3.5 14:30:05,,\n"),
	                 0);
	r = rows(fx);
	assert_string_equal(field(r, 0, "requested_at"), "2025-03-05T06:20:00.000Z");
	assert_string_equal(field(r, 0, "finished_at"), "2025-03-05T06:30:05.000Z");
	/* No blank after 日 (common in hand-kept sheets). */
	assert_int_equal(import(fx, HEADER "1,信息中心,李四,2025年3月6日14:20,门户解锁,,,,,\n"), 0);
	r = rows(fx); /* the two imported rows first, then the two import events */
	assert_string_equal(field(r, 1, "requested_at"), "2025-03-06T06:20:00.000Z");
	assert_int_equal(import(fx, HEADER "1,信息中心,张三,2205-03-05 09:00,修复门户漏洞,,,,,\n"),
	                 -1);
	assert_non_null(strstr(error_message(fx, 0), "in the future"));
	assert_int_equal(import(fx, HEADER "1,信息中心,张三,2025-03-05 09:00,修复门户漏洞,,,"
	                                   "2205-03-05 10:00,,\n"),
	                 -1); /* resolved in the future */
	/* "序号" in GBK */
	assert_int_equal(import(fx, "\xd0\xf2\xba\xc5,x\n1,2\n"), -1);
	assert_non_null(strstr(fx->err, "not UTF-8"));
	assert_int_equal(import(fx, HEADER "1,信息中心,张三,2025-04-01 09:00,删除待办,,,,,\n"
	                                   "2,信息中心,张三,2025-04-01 09:00,删除待办,,,,,\n"),
	                 -2);
	assert_int_equal(error_line(fx, 0), 3);
	assert_non_null(strstr(error_message(fx, 0), "an earlier row of this file"));
	/* The summary names them as repeats: nothing of them is in the log. */
	assert_non_null(strstr(fx->err, "1 rows repeat an earlier row of this file (the first at "
	                                "line 3)"));
	assert_null(strstr(fx->err, "in the log already"));
	/* The first import's row in another form (序号, 解决情况 and 备注 aside). */
	assert_int_equal(import(fx, HEADER "7,信息中心,张三,2025-03-05 14:20,门户解锁,解锁,李工,"
	                                   "2025-03-05 14:30:05,已解决,再导入\n"),
	                 -2);
	assert_int_equal(error_line(fx, 0), 2);
	assert_non_null(strstr(error_message(fx, 0), "in the log already: event 2"));
	assert_non_null(strstr(fx->err, "1 rows are events in the log already (the first at "
	                                "line 2)"));
	/* Both kinds in one file: each counted as what it is. */
	assert_int_equal(import(fx, HEADER "7,信息中心,张三,2025-03-05 14:20,门户解锁,解锁,李工,"
	                                   "2025-03-05 14:30:05,,\n"
	                                   "8,信息中心,王五,2025-04-02 09:00,删除待办,,,,,\n"
	                                   "9,信息中心,王五,2025-04-02 09:00,删除待办,,,,,\n"),
	                 -2);
	assert_non_null(strstr(fx->err, "1 rows are events in the log already and 1 repeat an "
	                                "earlier row of this file (the first at line 2)"));
	/* Alike but for its handler: another event. */
	assert_int_equal(import(fx, HEADER "1,信息中心,张三,2025-03-05 14:20,门户解锁,解锁,王工,"
	                                   "2025-03-05 14:30:05,,\n"),
	                 0);
}

struct stopper {
	const char *path;
	struct audit *a;
};

/* As job_stop does once the import's attempt is stored: interrupts the
 * import's connection while its rows are being written. */
static void *stop_when_started(void *arg)
{
	struct stopper *s = arg;
	sqlite3 *db = NULL;
	int seen = 0;

	if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
		for (int i = 0; i < 20000 && seen == 0; i++) {
			sqlite3_stmt *st = NULL;

			if (sqlite3_prepare_v2(
			        db, "SELECT count(*) FROM records WHERE action = 'import'", -1, &st,
			        NULL) == SQLITE_OK &&
			    sqlite3_step(st) == SQLITE_ROW)
				seen = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
			if (seen == 0)
				usleep(1000);
		}
	sqlite3_close(db);
	audit_interrupt(s->a);
	return NULL;
}

/* A stop during the rows: nothing imported, and the import's outcome is
 * written all the same, saying so (it was interrupted too, and the attempt
 * stayed pending until the next start). */
static void a_stop_during_the_rows_records_the_import_failed(void **state)
{
	struct fixture *fx = *state;
	struct stopper s = {fx->path, fx->a};
	size_t cap = 64 * 1024 * 1024, len;
	char *csv = malloc(cap);
	pthread_t t;
	json_t *r;

	assert_non_null(csv);
	len = (size_t)snprintf(csv, cap, "%s", HEADER);
	for (int i = 1; i <= 40000; i++)
		len += (size_t)snprintf(
		    csv + len, cap - len,
		    "%d,信息中心,用户%d,2025-03-05 09:10,删除待办与邮件 第%d条,后台删除,"
		    "张工,,已解决,\n",
		    i, i, i);
	audit_stoppable(fx->a);
	assert_int_equal(pthread_create(&t, NULL, stop_when_started, &s), 0);
	assert_int_equal(import_csv(fx->a, &conf, "adm1", NULL, NULL, csv, len, &fx->n, &fx->errors,
	                            fx->err, sizeof fx->err),
	                 -1);
	pthread_join(t, NULL);
	assert_non_null(strstr(fx->err, "interrupt"));
	r = rows(fx);
	/* Only the import's own event: its attempt, now with an outcome. */
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(field(r, 0, "action"), "import");
	assert_string_equal(field(r, 0, "result"), "failed");
	assert_non_null(
	    strstr(field(r, 0, "detail"),
	           "ldapdeskd was stopping: the import was stopped before it finished"));
	free(csv);
}

/* A stop asked before the rows are checked: the check (no SQLite to be
 * interrupted in) ends at once, and an import is recorded as stopped. */
static void a_stop_ends_the_checks_too(void **state)
{
	struct fixture *fx = *state;
	size_t cap = 1024 * 1024, len;
	char *csv = malloc(cap);
	json_t *preview = NULL, *errors = NULL, *r;

	assert_non_null(csv);
	len = (size_t)snprintf(csv, cap, "%s", HEADER);
	for (int i = 1; i <= 3000; i++)
		len += (size_t)snprintf(
		    csv + len, cap - len,
		    "%d,信息中心,用户%d,2025-03-05 09:10,删除待办与邮件 第%d条,,,,,\n", i, i, i);
	audit_stoppable(fx->a);
	audit_interrupt(fx->a);
	assert_int_equal(
	    import_check(fx->a, &conf, csv, len, &preview, &errors, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "interrupted"));
	assert_null(preview);
	assert_int_equal(import_csv(fx->a, &conf, "adm1", NULL, NULL, csv, len, &fx->n, &fx->errors,
	                            fx->err, sizeof fx->err),
	                 -1);
	assert_non_null(strstr(fx->err, "interrupted"));
	r = rows(fx);
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(field(r, 0, "result"), "failed");
	assert_non_null(strstr(field(r, 0, "detail"), "ldapdeskd was stopping"));
	json_decref(errors);
	free(csv);
}

/* n rows without 事件描述 (required): every one is bad. Caller frees. */
static char *rows_without_description(int n, size_t *lenp)
{
	size_t cap = (size_t)n * 80 + 200, len;
	char *csv = malloc(cap);

	assert_non_null(csv);
	len = (size_t)snprintf(csv, cap, "%s", HEADER);
	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(csv + len, cap - len,
		                        "%d,信息中心,用户%d,2025-03-05 09:10,,,,,,\n", i, i);
	*lenp = len;
	return csv;
}

/* Issue 4.3: every bad row is reported with its line number. 1500 are all
 * listed (the list stopped at 100 and never said so); past the bound, the
 * summary says how many more were left out and how to see them. */
static void every_bad_row_is_listed_and_the_unlisted_are_counted(void **state)
{
	struct fixture *fx = *state;
	json_t *preview = NULL, *errors = NULL;
	size_t len;
	char *csv = rows_without_description(1500, &len);

	assert_int_equal(import_csv(fx->a, &conf, "adm1", NULL, NULL, csv, len, &fx->n, &fx->errors,
	                            fx->err, sizeof fx->err),
	                 -1);
	assert_int_equal(json_array_size(fx->errors), 1500);
	assert_int_equal(error_line(fx, 0), 2);
	assert_int_equal(error_line(fx, 1499), 1501);
	assert_non_null(strstr(fx->err, "1500 bad rows (the first at line 2); nothing imported"));
	assert_null(strstr(fx->err, "listed"));
	free(csv);
	json_decref(fx->errors); /* the fixture frees only the last answer */
	fx->errors = NULL;

	csv = rows_without_description(IMPORT_MAX_ERRORS + 50, &len);
	assert_int_equal(import_csv(fx->a, &conf, "adm1", NULL, NULL, csv, len, &fx->n, &fx->errors,
	                            fx->err, sizeof fx->err),
	                 -1);
	assert_int_equal(json_array_size(fx->errors), IMPORT_MAX_ERRORS);
	assert_non_null(strstr(fx->err, "only the first 10000 are listed and 50 more are not"));
	assert_non_null(strstr(fx->err, "ldapdesk import --check FILE"));
	assert_int_equal(
	    import_check(fx->a, &conf, csv, len, &preview, &errors, fx->err, sizeof fx->err), -1);
	assert_int_equal(json_array_size(errors), IMPORT_MAX_ERRORS);
	assert_non_null(strstr(fx->err, "50 more are not"));
	json_decref(errors);
	json_decref(preview);
	free(csv);
}

/* import --check F && import F: a file imported before passed the check
 * ("2 rows would be imported") and then the import refused it (409). */
static void the_check_says_a_file_was_imported_already(void **state)
{
	struct fixture *fx = *state;
	const char *csv = HEADER "1,a,b,2026-01-05 09:30,门户漏洞,,,,已解决,\n"
	                         "2,a,b,2026-01-05 09:40,删除待办,,,,已解决,\n";
	json_t *preview = NULL, *errors = NULL;

	assert_int_equal(import_check(fx->a, &conf, csv, strlen(csv), &preview, &errors, fx->err,
	                              sizeof fx->err),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(preview, "rows")), 2);
	json_decref(preview);
	preview = NULL;
	assert_int_equal(import(fx, csv), 0);
	assert_int_equal(import_check(fx->a, &conf, csv, strlen(csv), &preview, &errors, fx->err,
	                              sizeof fx->err),
	                 -2);
	assert_null(preview);
	assert_null(errors);
	assert_non_null(strstr(fx->err, "imported already (import event 1)"));
	/* Nothing was recorded by the checks: the row pair and the import event. */
	assert_int_equal(json_array_size(rows(fx)), 3);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(good_file_imports_every_row_marked_imported),
	    T(two_bad_rows_are_both_reported_and_nothing_is_imported),
	    T(bom_and_quoted_newlines_keep_line_numbers),
	    T(unresolved_rows_and_nul_bytes_are_refused),
	    T(the_same_file_is_not_imported_twice),
	    T(category_is_inferred_from_words),
	    T(category_goes_by_what_was_done),
	    T(words_inside_others_decide_nothing),
	    T(category_column_takes_key_or_label),
	    T(header_and_cell_limits_are_checked),
	    T(report_csv_imports_back_to_the_same_counts),
	    T(chinese_dates_future_rows_gbk_and_duplicates),
	    T(a_stop_during_the_rows_records_the_import_failed),
	    T(a_stop_ends_the_checks_too),
	    T(every_bad_row_is_listed_and_the_unlisted_are_counted),
	    T(the_check_says_a_file_was_imported_already),
	};

	if (config_default_categories(&conf) == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
