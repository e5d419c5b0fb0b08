/*
 * import.c — CSV import of historical events. Two passes over the body: the
 * first checks every row and collects errors, the second (only if none)
 * stores the rows in one audit batch. Rows are re-parsed rather than kept,
 * so memory stays one record whatever the file size.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ldapdesk/ascii.h"
#include "clock.h"
#include "import.h"
#include "log.h"
#include "ldapdesk/wire.h"

#define MAX_COLS           32
#define TIME_LEN           24
#define IMPORT_PREVIEW_MAX 5000 /* rows import_check lists (it counts all) */

/* Columns the importer knows; the rest of a header is ignored. */
enum col {
	C_SEQ,
	C_DEPT,
	C_REQUESTER,
	C_SUBMITTED,
	C_DESC,
	C_METHOD,
	C_HANDLER,
	C_RESOLVED,
	C_STATUS,
	C_NOTE,
	C_CATEGORY,
	NKNOWN
};

static const char *const col_names[NKNOWN] = {
    "序号",     "事件提交单位", "提交人",   "提交时间", "事件描述", "解决办法",
    "问题处理", "解决时间",     "解决情况", "备注",     "类别",
};

/*
 * Keywords that decide a category when there is no 类别 column; the first
 * entry with a word in 事件描述 wins (解决办法 is read only when 事件描述
 * holds none: it mostly says how the user was told). The order puts what
 * was done before what it was about: a deletion of mail, a vulnerability, a
 * lock, a permission, a requirement before the mail, the login page or the
 * password it concerned ("删除密码到期提醒邮件" is a deletion, "修复门户登录
 * 页面漏洞" a fix, "账号被锁定，无法登录" an unlock, "开通邮件系统权限" a
 * grant). Everyday words count only after a verb that acts on them (after:
 * any of them earlier in the text): 通知 is also "notify" and 文档 any
 * document, while "修改通知" and "更新…文档" are the work itself. 登录 and
 * 附件 come before 邮件, as their category's label (邮件附件及门户登录异常)
 * says: a mail attachment that will not open is a login/attachment problem.
 */
#define KEYWORD_WORDS 7
static const struct {
	const char *key;
	const char *words[KEYWORD_WORDS];
	const char *after[KEYWORD_WORDS]; /* one must come earlier; none: any */
} keywords[] = {
    {"todo-mail", {"待办", "邮件"}, {"删除", "清理", "清除"}},
    {"vuln-fix", {"漏洞"}, {NULL}},
    {"unlock-reset", {"解锁", "重置", "锁定", "被锁"}, {NULL}},
    {"grant", {"授权", "权限"}, {NULL}},
    {"app-request", {"需求"}, {NULL}},
    {"knowledge-doc",
     {"文档", "手册", "指南", "知识"},
     {"更新", "上传", "修改", "编写", "发布", "新增", "补充"}},
    {"notice", {"公告"}, {NULL}},
    {"notice", {"通知"}, {"修改", "发布", "更新", "下发", "撤回", "置顶", "删除"}},
    {"mobile-app", {"APP", "App", "app", "客户端", "手机端", "移动端"}, {NULL}},
    {"unlock-reset", {"密码"}, {NULL}},
    {"login-issue", {"登录", "附件"}, {NULL}},
    {"todo-mail", {"待办", "邮件"}, {NULL}},
};

/* One CSV record: cells point into buf. */
struct record {
	int line; /* file line where the record starts */
	size_t n;
	const char *cell[MAX_COLS];
	char buf[MAX_COLS * (LDAPDESK_MAX_FIELD + 1)];
	const char *problem; /* a cell too long, too many cells... */
};

struct csv {
	const char *p, *end;
	int line;
};

/* A checked row, ready to store; strings point into the record. */
struct row {
	char submitted[TIME_LEN + 1], resolved[TIME_LEN + 1];
	const char *cell[NKNOWN];
	const char *category;
};

struct import {
	struct audit *a;
	const struct config *conf;
	int map[NKNOWN]; /* column index of each known column, -1 if absent */
	size_t ncols;
	json_t *errors;
	int64_t nbad, nrows;
	int64_t nrepeated; /* of nbad: rows repeating an earlier row of this file */
	int first_bad;
	json_t *preview; /* import_check: good rows as they would be stored (the first
	                  * IMPORT_PREVIEW_MAX), or NULL */
	json_t *counts;  /* ... and all good rows by category */
};

/* ---- CSV reading ---- */

static bool at_eol(const struct csv *c)
{
	return c->p < c->end && (*c->p == '\n' || *c->p == '\r');
}

static void skip_eol(struct csv *c)
{
	if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
		c->p++;
	c->p++;
	c->line++;
}

/* Appends byte ch to the current cell, which may hold LDAPDESK_MAX_FIELD. */
static void cell_put(struct record *r, char **w, size_t *used, char ch)
{
	if (*used >= LDAPDESK_MAX_FIELD) {
		r->problem = "a cell is longer than 1024 bytes";
		return;
	}
	*(*w)++ = ch;
	(*used)++;
}

/* Reads a quoted cell's body (after the opening quote). Return 0, or -1 at
 * the end of input inside the quotes. */
static int read_quoted(struct csv *c, struct record *r, char **w, size_t *used)
{
	while (c->p < c->end) {
		if (*c->p == '"') {
			if (c->p + 1 < c->end && c->p[1] == '"') {
				cell_put(r, w, used, '"');
				c->p += 2;
				continue;
			}
			c->p++;
			return 0;
		}
		/* A line break inside a cell is stored as \n whatever the file used
		 * (Windows writes \r\n): one event, one text. */
		if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
			c->p++;
		if (*c->p == '\n')
			c->line++;
		if (*c->p == '\0')
			r->problem = "the row holds a NUL byte";
		cell_put(r, w, used, *c->p++);
	}
	return -1;
}

/* Trims ASCII blanks; strips the ' our CSV export puts before = + - @. */
static const char *cell_clean(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	if (s[0] == '\'' && s[1] != '\0' && strchr(LDAPDESK_CSV_FORMULA, s[1]) != NULL)
		s++;
	return s;
}

/* Reads one cell up to , or end of line. Return 0, or -1 on an unterminated
 * quote. */
static int read_cell(struct csv *c, struct record *r, char **w)
{
	char *start = *w;
	size_t used = 0;

	while (c->p < c->end && *c->p != ',' && !at_eol(c)) {
		if (*c->p == '"' && *w == start && used == 0) {
			c->p++;
			if (read_quoted(c, r, w, &used) == -1)
				return -1;
			continue;
		}
		if (*c->p == '\0')
			r->problem = "the row holds a NUL byte";
		cell_put(r, w, &used, *c->p++);
	}
	if (r->n == MAX_COLS) {
		r->problem = "more than 32 cells";
	} else {
		r->cell[r->n++] = cell_clean(start, *w);
		(*w)++;
	}
	return 0;
}

/* Return: 1 with a record, 0 at the end, -1 on an unterminated quote (the
 * rest of the input is one broken record starting at r->line). */
static int csv_next(struct csv *c, struct record *r)
{
	char *w = r->buf;

	r->n = 0;
	r->problem = NULL;
	r->line = c->line;
	if (c->p >= c->end)
		return 0;
	for (;;) {
		if (read_cell(c, r, &w) == -1)
			return -1;
		if (r->n == MAX_COLS)
			w = r->buf + (MAX_COLS - 1) * (LDAPDESK_MAX_FIELD + 1);
		if (c->p >= c->end)
			return 1;
		if (at_eol(c)) {
			skip_eol(c);
			return 1;
		}
		c->p++; /* the comma */
	}
}

static bool blank(const struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->cell[i][0] != '\0')
			return false;
	return true;
}

/* ---- checks ---- */

/* Continuation bytes after a lead byte; -1 for a byte that cannot lead. */
static int utf8_extra(unsigned char c)
{
	if (c < 0x80)
		return 0;
	if ((c >> 5) == 6)
		return 1;
	if ((c >> 4) == 14)
		return 2;
	if ((c >> 3) == 30)
		return 3;
	return -1;
}

/* Strict UTF-8: no overlongs, surrogates or code points above U+10FFFF
 * (the audit hash is over JSON, which takes nothing else). */
static bool utf8_ok(const unsigned char *s)
{
	static const unsigned long min[] = {0, 0x80, 0x800, 0x10000};

	while (*s) {
		int n = utf8_extra(*s);
		unsigned long cp;

		if (n < 0)
			return false;
		cp = n == 0 ? *s : (unsigned long)(*s & (0x3f >> n));
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

static const char *category_named(const struct config *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_categories; i++)
		if (strcmp(conf->categories[i].key, name) == 0 ||
		    (conf->categories[i].label && strcmp(conf->categories[i].label, name) == 0))
			return conf->categories[i].key;
	return NULL;
}

/* Does one of words[] occur in text before at? (none given: yes) */
static bool comes_after(const char *text, const char *at, const char *const *words)
{
	if (words[0] == NULL)
		return true;
	for (size_t i = 0; i < KEYWORD_WORDS && words[i] != NULL; i++) {
		const char *w = strstr(text, words[i]);

		if (w != NULL && w < at)
			return true;
	}
	return false;
}

/* The category text names (a category's own label first), or NULL. */
static const char *infer_in(const struct config *conf, const char *text)
{
	for (size_t i = 0; text && i < conf->n_categories; i++)
		if (conf->categories[i].label && strstr(text, conf->categories[i].label))
			return conf->categories[i].key;
	for (size_t i = 0; text && i < sizeof keywords / sizeof keywords[0]; i++)
		for (size_t j = 0; j < KEYWORD_WORDS && keywords[i].words[j]; j++) {
			const char *at = strstr(text, keywords[i].words[j]);

			if (at != NULL && comes_after(text, at, keywords[i].after) &&
			    config_category(conf, keywords[i].key))
				return keywords[i].key;
		}
	return NULL;
}

/* 类别 when given (key or label), else the description's words, else the
 * resolution's. */
static const char *row_category(const struct import *im, const struct row *w, const char **whyp)
{
	const char *given = w->cell[C_CATEGORY], *k;

	if (given && given[0]) {
		if ((k = category_named(im->conf, given)) == NULL)
			*whyp = "类别 is not a category key or label";
		return k;
	}
	if ((k = infer_in(im->conf, w->cell[C_DESC])) == NULL)
		k = infer_in(im->conf, w->cell[C_METHOD]);
	if (k == NULL)
		*whyp = "cannot tell the category from 事件描述 or 解决办法: add a 类别 column";
	return k;
}

static const char *check_cells(const struct import *im, const struct record *r, struct row *w)
{
	if (r->problem)
		return r->problem;
	if (r->n != im->ncols)
		return "the row's cell count differs from the header's";
	for (size_t i = 0; i < r->n; i++)
		if (!utf8_ok((const unsigned char *)r->cell[i]))
			return "a cell is not valid UTF-8";
	for (int k = 0; k < NKNOWN; k++)
		w->cell[k] = im->map[k] >= 0 && r->cell[im->map[k]][0] ? r->cell[im->map[k]] : NULL;
	return NULL;
}

/* Hand-kept Chinese dates into the forms clock_parse_loose reads:
 * "2025年3月5日 14:20" and "2025.3.5 14:20" become "2025-3-5 14:20". */
static const char *date_plain(const char *cell, char *buf, size_t len)
{
	static const char *const marks[][2] = {{"年", "-"}, {"月", "-"}, {"日", " "}};
	const char *date_end = strpbrk(cell, " T");
	size_t n = 0;

	for (const char *p = cell; *p != '\0' && n + 1 < len;) {
		bool done = false;

		for (size_t m = 0; m < 3 && !done; m++)
			if (strncmp(p, marks[m][0], strlen(marks[m][0])) == 0) {
				n += (size_t)snprintf(buf + n, len - n, "%s", marks[m][1]);
				p += strlen(marks[m][0]);
				done = true;
			}
		if (done)
			continue;
		if (*p == ' ' && n > 0 && buf[n - 1] == ' ') { /* "5日 14:20": one blank */
			p++;
			continue;
		}
		/* Dots of the date only: "14:20:05.5" keeps its fraction. */
		buf[n++] = *p == '.' && (date_end == NULL || p < date_end) ? '-' : *p;
		p++;
	}
	/* "5日" at the end left a blank: the date alone. */
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

/* Fills w from r. Return: NULL, or why the row is bad. */
static const char *check_row(const struct import *im, const struct record *r, struct row *w)
{
	const char *why = check_cells(im, r, w);
	char plain[LDAPDESK_MAX_FIELD + 1], soon[CLOCK_ISO_LEN];

	if (why)
		return why;
	if (w->cell[C_SUBMITTED] == NULL)
		return "提交时间 is empty";
	if (clock_parse_loose(date_plain(w->cell[C_SUBMITTED], plain, sizeof(plain)), w->submitted,
	                      sizeof(w->submitted)) == -1)
		return "提交时间 is not a time (YYYY-MM-DD HH:MM[:SS], YYYY/M/D H:MM, YYYY.M.D "
		       "H:MM, "
		       "YYYY年M月D日 H:MM or ISO 8601)";
	if (w->cell[C_RESOLVED] == NULL)
		memcpy(w->resolved, w->submitted, sizeof w->resolved);
	else if (clock_parse_loose(date_plain(w->cell[C_RESOLVED], plain, sizeof(plain)),
	                           w->resolved, sizeof(w->resolved)) == -1)
		return "解决时间 is not a time (YYYY-MM-DD HH:MM[:SS], YYYY/M/D H:MM, YYYY.M.D "
		       "H:MM, "
		       "YYYY年M月D日 H:MM or ISO 8601)";
	if (strcmp(w->resolved, w->submitted) < 0)
		return "解决时间 is before 提交时间";
	/* History only: a row dated ahead (a typo in the year) would sit in a
	 * future report for good. A day's slack for clocks and zones. */
	clock_utc(time(NULL) + 86400, soon, sizeof(soon));
	if (strcmp(w->submitted, soon) > 0 || strcmp(w->resolved, soon) > 0)
		return "提交时间 or 解决时间 is in the future: only events that happened are "
		       "imported";
	if (w->cell[C_DESC] == NULL)
		return "事件描述 is empty";
	/* Every imported row is counted as an event handled: one that was not
	 * resolved must not be (fix the cell, or leave the row out). */
	if (w->cell[C_STATUS] != NULL && strcmp(w->cell[C_STATUS], "已解决") != 0)
		return "解决情况 must be 已解决 or empty: only events handled are imported";
	w->category = row_category(im, w, &why);
	return w->category ? NULL : why;
}

/* ---- header ---- */

static int read_header(struct import *im, struct csv *c, struct record *r, char *err, size_t errlen)
{
	int rc = csv_next(c, r);

	for (int k = 0; k < NKNOWN; k++)
		im->map[k] = -1;
	if (rc != 1 || blank(r) || r->problem) {
		snprintf(err, errlen,
		         "import: line 1: a header row naming the columns is required");
		return -1;
	}
	for (size_t i = 0; i < r->n; i++)
		for (int k = 0; k < NKNOWN; k++)
			if (strcmp(r->cell[i], col_names[k]) == 0 && im->map[k] < 0)
				im->map[k] = (int)i;
	im->ncols = r->n;
	for (size_t i = 0; i < r->n; i++)
		if (!utf8_ok((const unsigned char *)r->cell[i])) {
			snprintf(
			    err, errlen,
			    "import: line 1: the file is not UTF-8 (Excel: save as \"CSV UTF-8\"; "
			    "or iconv -f GBK -t UTF-8)");
			return -1;
		}
	if (im->map[C_SUBMITTED] < 0 || im->map[C_DESC] < 0) {
		snprintf(err, errlen, "import: line 1: the header must name 提交时间 and 事件描述");
		return -1;
	}
	return 0;
}

static void csv_init(struct csv *c, const char *body, size_t len)
{
	c->p = body;
	c->end = body + len;
	c->line = 1;
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		c->p += 3; /* Excel's UTF-8 BOM */
}

/* ---- pass 1: check ---- */

static void add_error(struct import *im, int line, const char *msg)
{
	if (im->nbad++ == 0)
		im->first_bad = line;
	if (json_array_size(im->errors) < IMPORT_MAX_ERRORS)
		json_array_append_new(im->errors,
		                      json_pack("{s:i, s:s}", "line", line, "message", msg));
}

/* Appended to the summary in err: the bad rows the list leaves out (it stops
 * at IMPORT_MAX_ERRORS so that the answer stays bounded) and how to see them. */
static void note_unlisted(const struct import *im, char *err, size_t errlen)
{
	size_t listed = json_array_size(im->errors), n = strlen(err);
	int64_t unlisted = im->nbad - (int64_t)listed;

	if (unlisted > 0 && n < errlen)
		snprintf(err + n, errlen - n,
		         "; only the first %zu are listed and %lld more are not: fix those, then "
		         "check the file again (ldapdesk import --check FILE) to see the rest",
		         listed, (long long)unlisted);
}

/* import_check's view of a good row: counted by category, and listed (in the
 * server's time zone, as log shows times) while the listing is short enough
 * to send (a whole 32 MiB file would be some 100 MB of JSON). */
static void preview_row(struct import *im, int line, const struct row *w)
{
	char at[CLOCK_ISO_LEN];
	json_t *n = json_object_get(im->counts, w->category);

	json_object_set_new(im->counts, w->category, json_integer(json_integer_value(n) + 1));
	if (json_array_size(im->preview) >= IMPORT_PREVIEW_MAX)
		return;
	if (clock_local(w->submitted, at, sizeof at) == -1)
		snprintf(at, sizeof at, "%s", w->submitted);
	json_array_append_new(im->preview,
	                      json_pack("{s:i, s:s, s:s?, s:s?, s:s}", "line", line, "submitted",
	                                at, "department", w->cell[C_DEPT], "description",
	                                w->cell[C_DESC], "category", w->category));
}

static int check_all(struct import *im, const char *body, size_t len, struct record *r, char *err,
                     size_t errlen)
{
	struct csv c;
	struct row w;
	const char *why;
	int rc;

	csv_init(&c, body, len);
	if (read_header(im, &c, r, err, errlen) == -1)
		return -1;
	while ((rc = csv_next(&c, r)) == 1) {
		if (blank(r) && !r->problem)
			continue;
		if (++im->nrows > IMPORT_MAX_ROWS) {
			add_error(im, r->line, "more than 1000000 rows: split the file");
			break;
		}
		/* A stop ends the checks too, which touch no SQLite to be
		 * interrupted in (import_check). */
		if ((im->nrows & 1023) == 0 && im->a != NULL && audit_stop_asked(im->a)) {
			snprintf(err, errlen, "import: interrupted: ldapdeskd is stopping");
			return -1;
		}
		if ((why = check_row(im, r, &w)) != NULL)
			add_error(im, r->line, why);
		else if (im->preview != NULL)
			preview_row(im, r->line, &w);
	}
	if (rc == -1)
		add_error(im, r->line, "a quoted cell is not closed before the end of the file");
	return 0;
}

/* ---- pass 2: store ---- */

static void row_event(const struct row *w, const char *importer, struct audit_event *ev)
{
	const char *handler = w->cell[C_HANDLER];

	*ev = (struct audit_event){
	    .requested_at = w->submitted,
	    .operator= handler ? handler : importer,
	    .action = "record",
	    .category = w->category,
	    .requester = w->cell[C_REQUESTER],
	    .department = w->cell[C_DEPT],
	    .description = w->cell[C_DESC],
	    .note = w->cell[C_NOTE],
	    .imported = true,
	};
}

/* Whether a hand-kept time gives seconds ("H:MM:SS", before any zone):
 * Excel saves a report's times as "YYYY/M/D H:MM". */
static bool has_seconds(const char *cell)
{
	const char *t = cell != NULL ? strpbrk(cell, "T ") : NULL;
	int colons = 0;

	for (; t != NULL && *t != '\0' && *t != '+' && *t != 'Z' && *t != 'z'; t++)
		if (*t == ':')
			colons++;
		else if (*t == '-' && colons > 0)
			break; /* a zone west of UTC */
	return colons >= 2;
}

/* Stores w, unless the same event (time, department, requester,
 * description) was imported already — by an earlier file, the same rows in
 * another encoding, a report fed back, or a row repeated in this file: it
 * would be counted twice, for good. Return: 0 stored, 1 a duplicate (listed
 * in im's errors), -1 error with err. */
static int store_row(struct import *im, const struct row *w, int line, const char *importer,
                     int64_t first, int64_t *idp, char *err, size_t errlen)
{
	struct audit_event ev;
	int64_t earlier = 0;
	char msg[200];
	int rc;

	row_event(w, importer, &ev);
	/* A report's row of an event the daemon handled, fed back. */
	if ((rc = audit_find_live(im->a, &ev, !has_seconds(w->cell[C_SUBMITTED]), &earlier, err,
	                          errlen)) == 1) {
		snprintf(msg, sizeof(msg),
		         "the event this row shows is in the log already: event %lld (a report row "
		         "fed back; its time, 类别, 问题处理, 事件提交单位 and 提交人 alike)",
		         (long long)earlier);
		add_error(im, line, msg);
	}
	if (rc != 0)
		return rc;
	if ((rc = audit_find_imported(im->a, &ev, w->resolved, w->cell[C_METHOD], &earlier, err,
	                              errlen)) != 0) {
		/* An id of this import's own is rolled back with it: not named. */
		if (rc == 1 && first != 0 && earlier >= first) {
			add_error(
			    im, line,
			    "the same event as an earlier row of this file (every cell but 序号, "
			    "备注 and 解决情况 alike)");
			im->nrepeated++;
		} else if (rc == 1) {
			snprintf(
			    msg, sizeof(msg),
			    "the same event (every cell but 序号, 备注 and 解决情况 alike) is in "
			    "the log already: event %lld",
			    (long long)earlier);
			add_error(im, line, msg);
		}
		return rc;
	}
	return audit_batch_add(im->a, &ev, "ok", w->cell[C_METHOD], w->resolved, idp, err, errlen);
}

struct who {
	const char *uid, *dn, *addr;
};

/* The summary of a refusal for duplicates says which kind they are: a row
 * repeated inside the file is not "in the log" (nothing of it was stored). */
static void duplicates_message(const struct import *im, char *err, size_t errlen)
{
	int64_t logged = im->nbad - im->nrepeated;

	if (im->nrepeated == 0)
		snprintf(err, errlen,
		         "import: %lld rows are events in the log already (the first at line %d): "
		         "nothing imported",
		         (long long)logged, im->first_bad);
	else if (logged == 0)
		snprintf(err, errlen,
		         "import: %lld rows repeat an earlier row of this file (the first at line "
		         "%d): nothing imported; remove the repeats and import again",
		         (long long)im->nrepeated, im->first_bad);
	else
		snprintf(err, errlen,
		         "import: %lld rows are events in the log already and %lld repeat an "
		         "earlier row of this file (the first at line %d): nothing imported",
		         (long long)logged, (long long)im->nrepeated, im->first_bad);
	note_unlisted(im, err, errlen);
}

static int store_all(struct import *im, const char *body, size_t len, struct record *r,
                     const struct who *who, int64_t range[2], char *err, size_t errlen)
{
	struct csv c;
	struct row w;
	int64_t id = 0;
	int rc, stored;

	csv_init(&c, body, len);
	if (read_header(im, &c, r, err, errlen) == -1)
		return -1;
	while ((rc = csv_next(&c, r)) == 1) {
		if (blank(r) && !r->problem)
			continue;
		if (check_row(im, r, &w) != NULL) { /* pass 1 passed: cannot happen */
			snprintf(err, errlen, "import: line %d changed between passes", r->line);
			return -1;
		}
		if ((stored = store_row(im, &w, r->line, who->uid, range[0], &id, err, errlen)) ==
		    -1)
			return -1;
		if (stored == 1)
			continue;
		range[0] = range[0] ? range[0] : id;
		range[1] = id;
	}
	return rc == 0 ? 0 : -1;
}

/* The import itself is an event: who loaded what. A refusal before the
 * rows are stored is one record pair (attempt NULL); once storing starts,
 * its attempt is there already (store_attempt) and this is its outcome. */
/* The import's own event: who, and "CSV import of N rows" into desc. */
static struct audit_event import_event(const struct import *im, const struct who *who,
                                       char desc[96])
{
	snprintf(desc, 96, "CSV import of %lld rows", (long long)im->nrows);
	return (struct audit_event){.operator= who->uid,
	                            .operator_dn = who->dn,
	                            .client_addr = who->addr,
	                            .action = "import",
	                            .description = desc};
}

static int store_import_event(struct import *im, const struct who *who, const char *result,
                              const char *detail, int64_t attempt, char *err, size_t errlen)
{
	char desc[96];
	struct audit_event ev = import_event(im, who, desc);

	if (attempt != 0)
		return audit_finish(im->a, attempt, result, detail, err, errlen);
	return audit_record(im->a, &ev, result, detail, NULL, err, errlen);
}

static void refused(struct import *im, const struct who *who, const char *why, int64_t attempt)
{
	char e[128];

	/* A stop interrupts every statement on this connection, this outcome's
	 * too (it was left pending until the next start): one row is written
	 * past it, saying what happened rather than SQLite's "interrupted". */
	if (audit_resume(im->a))
		why = "ldapdeskd was stopping: the import was stopped before it finished, and "
		      "nothing was imported";
	/* Best effort: the refusal stands even if it cannot be logged. */
	store_import_event(im, who, "failed", why, attempt, e, sizeof e);
}

/*
 * Stored and committed before the rows' transaction starts: a daemon killed
 * during a long import leaves it pending, and the next start records it
 * failed (its rows and its outcome commit together, so none of them is
 * there). Before, such an import left no record at all.
 */
static int store_attempt(struct import *im, const struct who *who, int64_t *idp, char *err,
                         size_t errlen)
{
	char desc[96];
	struct audit_event ev = import_event(im, who, desc);

	return audit_begin(im->a, &ev, idp, err, errlen);
}

/* The file's SHA-256 in lower-case hex: kept on the import event, so the
 * same file is not imported twice (its events would be counted twice). */
/* An earlier import of the file with this SHA-256 (hex): its events are in
 * the log already. Return: 0 none, -2 one (err names it, then what), -1 the
 * look-up failed (err). */
static int earlier_import(struct audit *a, const char *sha, const char *what, char *err,
                          size_t errlen)
{
	int64_t earlier = 0;

	if (audit_find_import(a, sha, &earlier, err, errlen) == -1)
		return -1;
	if (earlier == 0)
		return 0;
	snprintf(err, errlen, "import: this file was imported already (import event %lld): %s",
	         (long long)earlier, what);
	return -2;
}

static int body_sha256(const char *body, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_Digest(body, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	ascii_hex(md, 32, hex);
	return 0;
}

static int store(struct import *im, const char *body, size_t len, struct record *r,
                 const struct who *who, char *err, size_t errlen)
{
	int64_t range[2] = {0, 0}, attempt = 0;
	char detail[192], sha[65];
	int rc;

	if (body_sha256(body, len, sha) == -1) {
		snprintf(err, errlen, "import: cannot hash the file");
		return -1;
	}
	if (store_attempt(im, who, &attempt, err, errlen) == -1)
		return -1;
	if (audit_batch_begin(im->a, err, errlen) == -1) {
		refused(im, who, err, attempt);
		return -1;
	}
	/* Looked up under the write lock: two uploads of one file cannot both pass. */
	if ((rc = earlier_import(im->a, sha, "nothing imported", err, errlen)) != 0) {
		audit_batch_rollback(im->a);
		refused(im, who, err, attempt);
		return rc;
	}
	if (store_all(im, body, len, r, who, range, err, errlen) == -1) {
		audit_batch_rollback(im->a);
		refused(im, who, err, attempt); /* a stop, the store: nothing imported */
		return -1;
	}
	if (im->nbad > 0) { /* duplicates: all or nothing */
		audit_batch_rollback(im->a);
		duplicates_message(im, err, errlen);
		refused(im, who, err, attempt);
		return -2;
	}
	if (range[0])
		snprintf(detail, sizeof detail,
		         "imported %lld events: attempts %lld to %lld; sha256 %s",
		         (long long)im->nrows, (long long)range[0], (long long)range[1], sha);
	else
		snprintf(detail, sizeof detail, "imported 0 events; sha256 %s", sha);
	if (audit_batch_outcome(im->a, attempt, "ok", detail, err, errlen) == -1 ||
	    audit_batch_commit(im->a, err, errlen) == -1) {
		audit_batch_rollback(im->a);
		refused(im, who, err, attempt);
		return -1;
	}
	return 0;
}

/* import_check: the same file imported before would be refused by the
 * import (store), so the check says so rather than "would be imported".
 * Return: 0 not imported, -2 imported (err names the import), -1 error. */
static int imported_before(struct audit *a, const char *body, size_t len, char *err, size_t errlen)
{
	char sha[65];

	if (body_sha256(body, len, sha) == -1) {
		snprintf(err, errlen, "import: cannot hash the file");
		return -1;
	}
	return earlier_import(a, sha,
	                      "importing it again would be refused, as it would count its "
	                      "events twice",
	                      err, errlen);
}

int import_csv(struct audit *a, const struct config *conf, const char *operator_uid,
               const char *operator_dn, const char *client_addr, const char *body, size_t len,
               int64_t *importedp, json_t **errorsp, char *err, size_t errlen)
{
	struct import im = {.a = a, .conf = conf, .errors = json_array()};
	const struct who who = {operator_uid, operator_dn, client_addr};
	struct record *r = malloc(sizeof *r);
	int rc = -1;

	*errorsp = NULL;
	*importedp = 0;
	if (r == NULL || im.errors == NULL) {
		snprintf(err, errlen, "import: out of memory");
	} else if (check_all(&im, body, len, r, err, errlen) == -1) {
		refused(&im, &who, err, 0);
	} else if (im.nbad > 0) {
		snprintf(err, errlen,
		         "import: %lld bad rows (the first at line %d); nothing imported",
		         (long long)im.nbad, im.first_bad);
		note_unlisted(&im, err, errlen);
		refused(&im, &who, err, 0);
		*errorsp = im.errors;
		im.errors = NULL;
	} else if ((rc = store(&im, body, len, r, &who, err, errlen)) == 0) {
		*importedp = im.nrows;
	} else if (rc == -2 && im.nbad > 0) { /* rows in the log already, not a store error */
		*errorsp = im.errors;
		im.errors = NULL;
	}
	json_decref(im.errors);
	free(r);
	return rc;
}

int import_check(struct audit *a, const struct config *conf, const char *body, size_t len,
                 json_t **previewp, json_t **errorsp, char *err, size_t errlen)
{
	struct import im = {.a = a,
	                    .conf = conf,
	                    .errors = json_array(),
	                    .preview = json_array(),
	                    .counts = json_object()};
	struct record *r = malloc(sizeof *r);
	int rc = -1;

	*previewp = *errorsp = NULL;
	if (r == NULL || im.errors == NULL || im.preview == NULL || im.counts == NULL) {
		snprintf(err, errlen, "import: out of memory");
	} else if (check_all(&im, body, len, r, err, errlen) == -1) {
		; /* the header: err says what */
	} else if (im.nbad > 0) {
		snprintf(err, errlen, "import: %lld bad rows (the first at line %d)",
		         (long long)im.nbad, im.first_bad);
		note_unlisted(&im, err, errlen);
		*errorsp = json_incref(im.errors);
	} else if (a == NULL || (rc = imported_before(a, body, len, err, errlen)) == 0) {
		/* (else -2: err names the import; -1: why it could not be looked up) */
		*previewp = json_pack("{s:I, s:O, s:O, s:b}", "rows", (json_int_t)im.nrows,
		                      "categories", im.counts, "events", im.preview, "complete",
		                      json_array_size(im.preview) == (size_t)im.nrows);
		rc = *previewp != NULL ? 0 : -1;
		if (rc == -1)
			snprintf(err, errlen, "import: out of memory");
	}
	json_decref(im.counts);
	json_decref(im.preview);
	json_decref(im.errors);
	free(r);
	return rc;
}

int import_recover(struct audit *a, int64_t attempt)
{
	char err[256];

	if (audit_finish(a, attempt, "failed",
	                 "the daemon stopped during the import: nothing of it was imported (its "
	                 "rows are stored with its outcome)",
	                 err, sizeof err) == -1) {
		log_warnx("recovery: import %lld: %s", (long long)attempt, err);
		return audit_busy(a) ? -1 : 0; /* only a busy store is worth another try */
	}
	return 0;
}
