/*
 * report.c — the service report: one streaming pass over the audit rows of
 * a range tallies categories, months, departments and operators and writes
 * the detail table; the head (summary, tallies) is written last and put in
 * front. Memory is the tallies plus the output itself.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ldapdesk/wire.h"
#include "report.h"

#define MAX_CATS   64    /* categories in one report */
#define MAX_MONTHS 1200  /* months in one report's range: 100 years */
#define MAX_NAMES  10000 /* distinct departments (or operators) listed; the rest is pooled */
#define OTHER_NAME "(其他)"
#define NO_DEPT    "(未填写)"
#define NO_OP      "(未知)"
#define N_COLS     10

enum fmt { F_TEXT, F_MD, F_CSV, F_JSON, F_HTML };

static const struct {
	const char *name, *ctype;
} formats[] = {
    [F_TEXT] = {"text", "text/plain; charset=utf-8"},
    [F_MD] = {"md", "text/markdown; charset=utf-8"},
    [F_CSV] = {"csv", "text/csv; charset=utf-8"},
    [F_JSON] = {"json", "application/json"},
    [F_HTML] = {"html", "text/html; charset=utf-8"},
};

static const char *const col_titles[N_COLS] = {
    "序号",     "事件提交单位", "提交人",   "提交时间", "事件描述",
    "解决办法", "问题处理",     "解决时间", "解决情况", "备注",
};

/* Growable output; after the first failure every append is a no-op and
 * `bad` says why the report is refused. */
struct buf {
	char *p;
	size_t len, cap;
	const char *bad;
};

struct cat {
	const char *key, *label, *unit;
	int64_t count;
};

struct rep {
	const struct config *conf;
	enum fmt fmt;
	struct cat cats[MAX_CATS];
	size_t ncats;
	char *extra[MAX_CATS]; /* keys of categories not configured (owned) */
	size_t nextra;
	int month0, nmonths; /* first month as year * 12 + month - 1 */
	int64_t (*months)[MAX_CATS];
	json_t *depts, *ops; /* name -> count */
	int64_t total;
	/* "+08:00" of the range's start and of its end, for the heading: a
	 * half-year spans a DST change where there is one (-05:00 to -04:00). */
	char zone_from[8], zone_to[8];
	struct buf detail;
	const char *bad; /* set when a row cannot be tallied */
	char bad_buf[160];
};

/* ---- output buffer ---- */

static void buf_add(struct buf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->bad)
		return;
	if (n >= REPORT_MAX_BYTES - b->len) {
		b->bad = "the report is larger than 1 GiB: narrow the range";
		return;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->bad = "out of memory";
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is just above
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		b->bad = b->bad ? b->bad : "report line too long";
	else
		buf_add(b, tmp, (size_t)n);
}

/* ---- escaping per format ---- */

static void put_html(struct buf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		const char *e = NULL;
		switch (*p) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			break;
		}
		if (e)
			buf_str(b, e);
		else
			buf_add(b, p, 1);
	}
}

/* Markdown table cell: | and newlines would end the cell or row; < and &
 * would let a renderer see HTML; [ ] ( ) ! ` * _ a link, an image fetched
 * from elsewhere, or emphasis the log never had. */
static void put_md(struct buf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (strchr("|[]()!`*_", *p) != NULL) {
			buf_add(b, "\\", 1);
			buf_add(b, p, 1);
		} else if (*p == '\\')
			buf_str(b, "\\\\");
		else if (*p == '<')
			buf_str(b, "&lt;");
		else if (*p == '&')
			buf_str(b, "&amp;");
		else if (*p == '\n' || *p == '\r' || *p == '\t')
			buf_add(b, " ", 1);
		else
			buf_add(b, p, 1);
	}
}

/* Text: tab-separated, so tabs and newlines inside a value become spaces. */
static void put_text(struct buf *b, const char *s)
{
	for (const char *p = s; *p; p++)
		buf_add(b, (*p == '\t' || *p == '\n' || *p == '\r') ? " " : p, 1);
}

/* RFC 4180; a cell a spreadsheet would run as a formula gets a leading '. */
static void put_csv(struct buf *b, const char *s)
{
	bool formula = s[0] != '\0' && strchr(LDAPDESK_CSV_FORMULA, s[0]) != NULL;
	bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;

	if (!quote) {
		buf_str(b, s);
		return;
	}
	buf_str(b, formula ? "\"'" : "\"");
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			buf_str(b, "\"\"");
		else
			buf_add(b, p, 1);
	}
	buf_str(b, "\"");
}

static void put_cell(struct buf *b, enum fmt f, const char *s)
{
	if (f == F_HTML)
		put_html(b, s);
	else if (f == F_MD)
		put_md(b, s);
	else if (f == F_CSV)
		put_csv(b, s);
	else
		put_text(b, s);
}

/* One table row in format f: text tab-separated, md pipes, csv commas,
 * html <tr>. */
static void put_row(struct buf *b, enum fmt f, const char *const *cells, size_t n, bool head)
{
	static const char *const open[] = {
	    [F_TEXT] = "", [F_MD] = "| ", [F_CSV] = "", [F_HTML] = "<tr>"};
	static const char *const sep[] = {[F_TEXT] = "\t", [F_MD] = " | ", [F_CSV] = ","};
	static const char *const close[] = {
	    [F_TEXT] = "\n", [F_MD] = " |\n", [F_CSV] = "\r\n", [F_HTML] = "</tr>\n"};

	buf_str(b, open[f]);
	for (size_t i = 0; i < n; i++) {
		if (f == F_HTML)
			buf_str(b, head ? "<th>" : "<td>");
		else if (i > 0)
			buf_str(b, sep[f]);
		put_cell(b, f, cells[i] ? cells[i] : "");
		if (f == F_HTML)
			buf_str(b, head ? "</th>" : "</td>");
	}
	buf_str(b, close[f]);
	if (f == F_MD && head) {
		buf_str(b, "|");
		for (size_t i = 0; i < n; i++)
			buf_str(b, "---|");
		buf_str(b, "\n");
	}
}

/* ---- categories and tallies ---- */

static int cat_add(struct rep *r, const char *key, const char *label, const char *unit)
{
	if (r->ncats == MAX_CATS)
		return -1;
	r->cats[r->ncats++] =
	    (struct cat){.key = key, .label = label ? label : key, .unit = unit ? unit : "次"};
	return 0;
}

/* The configured categories, in config order (DESIGN.md's table first). */
static void cats_init(struct rep *r)
{
	for (size_t i = 0; i < r->conf->n_categories && r->ncats < MAX_CATS; i++) {
		const struct config_category *k = &r->conf->categories[i];
		cat_add(r, k->key, k->label, k->unit);
	}
}

/* Index of key; a category no longer configured is added under its key.
 * Return: index, or -1 if there are too many categories. */
static int cat_index(struct rep *r, const char *key)
{
	char *copy;

	for (size_t i = 0; i < r->ncats; i++)
		if (strcmp(r->cats[i].key, key) == 0)
			return (int)i;
	if (r->ncats == MAX_CATS || (copy = strdup(key)) == NULL)
		return -1;
	r->extra[r->nextra++] = copy;
	cat_add(r, copy, copy, "次");
	return (int)r->ncats - 1;
}

static void tally(json_t *map, const char *name)
{
	json_t *n = json_object_get(map, name);

	if (n == NULL && json_object_size(map) >= MAX_NAMES)
		n = json_object_get(map, name = OTHER_NAME);
	if (n != NULL)
		json_integer_set(n, json_integer_value(n) + 1);
	else
		json_object_set_new(map, name, json_integer(1));
}

/* Month index of a stored UTC time in the local zone, -1 if malformed. */
static int month_of(const char *utc)
{
	char local[CLOCK_ISO_LEN];
	int y, m;

	if (utc == NULL || clock_local(utc, local, sizeof local) == -1 ||
	    sscanf(local, "%4d-%2d", &y, &m) != 2)
		return -1;
	return y * 12 + m - 1;
}

/* "YYYY-MM-DD HH:MM:SS" in the local zone ("" when absent). */
static void local_time(const char *utc, char *buf, size_t len)
{
	char local[CLOCK_ISO_LEN];

	buf[0] = '\0';
	if (utc == NULL || clock_local(utc, local, sizeof local) == -1)
		return;
	snprintf(buf, len, "%.10s %.8s", local, local + 11);
}

int report_range_check(const char *from, const char *to, char *err, size_t errlen)
{
	int first = month_of(from), last = month_of(to);

	if (first < 0 || last < 0 || strcmp(from, to) > 0) {
		snprintf(err, errlen, "report: from and to must be stored UTC times, from <= to");
		return -1;
	}
	if (last - first + 1 > MAX_MONTHS) {
		snprintf(
		    err, errlen,
		    "report: the range spans %d months, more than %d: split it into reports of "
		    "%d months or fewer",
		    last - first + 1, MAX_MONTHS, MAX_MONTHS);
		return -1;
	}
	return 0;
}

static int months_init(struct rep *r, const char *from, const char *to, char *err, size_t errlen)
{
	char local[CLOCK_ISO_LEN];
	int last;

	if (report_range_check(from, to, err, errlen) == -1)
		return -1;
	r->month0 = month_of(from);
	last = month_of(to);
	r->nmonths = last - r->month0 + 1;
	r->months = calloc((size_t)r->nmonths, sizeof *r->months);
	if (r->months == NULL) {
		snprintf(err, errlen, "report: out of memory");
		return -1;
	}
	clock_local(from, local, sizeof local);
	snprintf(r->zone_from, sizeof r->zone_from, "%.6s", local + 23);
	clock_local(to, local, sizeof local);
	snprintf(r->zone_to, sizeof r->zone_to, "%.6s", local + 23);
	return 0;
}

/* ---- one detail row ---- */

struct cells {
	char seq[24], submitted[32], resolved[32], desc[LDAPDESK_MAX_FIELD + 64];
	const char *v[N_COLS];
};

static const char *cat_label(const struct rep *r, int ci)
{
	return r->cats[ci].label;
}

static const char *grant_label(const struct rep *r, const char *perm)
{
	const struct config_grant *g = perm ? config_grant(r->conf, perm) : NULL;

	if (g && g->label)
		return g->label;
	return perm ? perm : "系统";
}

static bool has(const char *s)
{
	return s && s[0];
}

/* 事件描述: the operator's words win; otherwise what the action means. */
static const char *describe(const struct rep *r, const struct audit_row *row, int ci, char *buf,
                            size_t len)
{
	const char *act = row->action ? row->action : "";

	if (has(row->description))
		return row->description;
	if (strcmp(act, "unlock") == 0)
		return "门户解锁";
	if (strcmp(act, "reset") == 0)
		return row->detail && strstr(row->detail, "unlocked") ? "门户解锁与重置密码"
		                                                      : "重置密码";
	if (strcmp(act, "grant") == 0 || strcmp(act, "approve") == 0 ||
	    strcmp(act, "revoke") == 0) {
		snprintf(buf, len, "%s%s权限", act[0] == 'r' ? "撤销" : "授权",
		         grant_label(r, row->permission));
		return buf;
	}
	return cat_label(r, ci);
}

/* 解决办法: fixed words for directory actions (their stored detail is
 * English for logs); a record's or an import's own detail otherwise. */
static const char *resolution(const struct audit_row *row)
{
	const char *act = row->action ? row->action : "";
	bool same = row->result && strcmp(row->result, "unchanged") == 0;

	if (strcmp(act, "unlock") == 0)
		return same ? "账号未锁定，无需解锁" : "管理员账号解锁";
	if (strcmp(act, "reset") == 0)
		return "管理员重置密码";
	if (strcmp(act, "grant") == 0)
		return same ? "已有该权限，无需授权" : "管理员授权";
	if (strcmp(act, "approve") == 0)
		return same ? "已有该权限，无需授权" : "经另一管理员批准后授权";
	if (strcmp(act, "revoke") == 0)
		return same ? "无该权限，无需撤销" : "管理员撤销权限";
	return row->detail ? row->detail : "";
}

static void fill_cells(const struct rep *r, const struct audit_row *row, int ci, int64_t seq,
                       struct cells *c)
{
	snprintf(c->seq, sizeof c->seq, "%lld", (long long)seq);
	local_time(row->requested_at, c->submitted, sizeof c->submitted);
	local_time(row->finished_at, c->resolved, sizeof c->resolved);
	c->v[0] = c->seq;
	c->v[1] = row->department;
	c->v[2] = has(row->requester) ? row->requester : row->target;
	c->v[3] = c->submitted;
	c->v[4] = describe(r, row, ci, c->desc, sizeof c->desc);
	c->v[5] = resolution(row);
	c->v[6] = row->operator;
	c->v[7] = c->resolved;
	c->v[8] = "已解决";
	c->v[9] = row->note;
}

static void put_event_json(struct rep *r, const struct audit_row *row, int ci,
                           const struct cells *c)
{
	char sub[CLOCK_ISO_LEN] = "", res[CLOCK_ISO_LEN] = "";
	json_t *o;
	char *s;

	if (row->requested_at)
		clock_local(row->requested_at, sub, sizeof sub);
	if (row->finished_at)
		clock_local(row->finished_at, res, sizeof res);
	o = json_pack("{s:I, s:I, s:s?, s:s?, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:s, s:s?,"
	              " s:s?, s:b}",
	              "seq", (json_int_t)r->total, "id", (json_int_t)row->id, "department",
	              row->department, "requester", c->v[2], "submitted_at", sub, "description",
	              c->v[4], "resolution", c->v[5], "handler", row->operator, "resolved_at",
	              res[0] ? res : NULL, "status", "已解决", "note", row->note, "category",
	              r->cats[ci].key, "action", row->action, "target", row->target, "imported",
	              row->imported);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s == NULL) {
		r->detail.bad = r->detail.bad ? r->detail.bad : "a stored text is not valid UTF-8";
	} else {
		if (r->total > 1)
			buf_str(&r->detail, ",\n");
		buf_str(&r->detail, s);
	}
	free(s);
	json_decref(o);
}

static void put_detail(struct rep *r, const struct audit_row *row, int ci)
{
	struct cells c = {.v = {NULL}}; /* every field is set by fill_cells */
	const char *csv[N_COLS + 1];

	fill_cells(r, row, ci, r->total, &c);
	if (r->fmt == F_JSON) {
		put_event_json(r, row, ci, &c);
	} else if (r->fmt == F_CSV) {
		memcpy(csv, c.v, sizeof c.v);
		csv[N_COLS] = r->cats[ci].label;
		put_row(&r->detail, F_CSV, csv, N_COLS + 1, false);
	} else {
		put_row(&r->detail, r->fmt, c.v, N_COLS, false);
	}
}

/* DESIGN: grants are counted from grant and revoke (an approval is the
 * grant it carries out); the daemon's own expiry of a timed grant is not
 * an event handled — older databases stored it under 'grant'. */
static bool counted(const struct audit_row *row)
{
	return row->result && has(row->category) &&
	       !(row->action != NULL && strcmp(row->action, "expire") == 0) &&
	       (strcmp(row->result, "ok") == 0 || strcmp(row->result, "unchanged") == 0);
}

/* Every text of a row is UTF-8 (by jansson), as the store keeps it: a
 * record changed outside ldapdesk may hold other bytes, which no format of
 * the report may pass on. */
static bool row_utf8(const struct audit_row *row)
{
	const char *t[] = {row->operator,
	                   row->action,
	                   row->target,
	                   row->permission,
	                   row->category,
	                   row->ticket,
	                   row->requester,
	                   row->department,
	                   row->channel,
	                   row->description,
	                   row->note,
	                   row->detail,
	                   row->result};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		json_t *j = t[i] != NULL ? json_string(t[i]) : NULL;

		if (t[i] != NULL && j == NULL)
			return false;
		json_decref(j);
	}
	return true;
}

static int scan_cb(void *arg, const struct audit_row *row)
{
	struct rep *r = arg;
	int ci, m;

	if (!counted(row))
		return 0;
	if (!row_utf8(row)) {
		snprintf(r->bad_buf, sizeof r->bad_buf,
		         "event %lld holds text that is not valid UTF-8 (a record changed outside "
		         "ldapdesk?): run 'ldapdesk verify'",
		         (long long)row->id);
		r->bad = r->bad_buf;
		return 1;
	}
	if ((ci = cat_index(r, row->category)) < 0) {
		r->bad = "more than 64 categories in the range: narrow the range (or report each "
		         "part of it)";
		return 1;
	}
	m = month_of(row->requested_at) - r->month0;
	if (m >= 0 && m < r->nmonths)
		r->months[m][ci]++;
	r->cats[ci].count++;
	r->total++;
	tally(r->depts, has(row->department) ? row->department : NO_DEPT);
	tally(r->ops, has(row->operator) ? row->operator : NO_OP);
	put_detail(r, row, ci);
	return r->detail.bad ? 1 : 0;
}

/* ---- the head: summary and tallies ---- */

/* "应用需求单 6 项、解锁重置密码 275 次、…，运维事件共 542 次" */
static void put_summary(struct buf *b, const struct rep *r)
{
	for (size_t i = 0; i < r->ncats; i++)
		buf_printf(b, "%s%s %lld %s", i ? "、" : "", r->cats[i].label,
		           (long long)r->cats[i].count, r->cats[i].unit);
	buf_printf(b, "%s运维事件共 %lld 次", r->ncats ? "，" : "", (long long)r->total);
}

struct named {
	const char *name;
	int64_t count;
};

static int named_cmp(const void *x, const void *y)
{
	const struct named *a = x, *b = y;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* The tally as an array sorted by count (desc), then name; caller frees. */
static struct named *sorted(json_t *map, size_t *np)
{
	struct named *v = calloc(json_object_size(map) + 1, sizeof *v);
	const char *k;
	json_t *n;
	size_t i = 0;

	if (v == NULL)
		return NULL;
	json_object_foreach(map, k, n) v[i++] = (struct named){k, json_integer_value(n)};
	qsort(v, i, sizeof *v, named_cmp);
	*np = i;
	return v;
}

static void month_name(const struct rep *r, int m, char *buf, size_t len)
{
	int mi = r->month0 + m;

	snprintf(buf, len, "%04d-%02d", mi / 12, mi % 12 + 1);
}

static int64_t month_total(const struct rep *r, int m)
{
	int64_t t = 0;

	for (size_t i = 0; i < r->ncats; i++)
		t += r->months[m][i];
	return t;
}

/* Month × category as a table: header, one row per month, a total row. */
static void put_month_table(struct buf *b, const struct rep *r)
{
	const char *cells[MAX_CATS + 2];
	char nums[MAX_CATS + 2][24], name[16];

	cells[0] = "月份";
	for (size_t i = 0; i < r->ncats; i++)
		cells[i + 1] = r->cats[i].label;
	cells[r->ncats + 1] = "合计";
	put_row(b, r->fmt, cells, r->ncats + 2, true);
	for (int m = 0; m <= r->nmonths; m++) {
		bool sum = m == r->nmonths;
		if (!sum)
			month_name(r, m, name, sizeof name);
		cells[0] = sum ? "合计" : name;
		for (size_t i = 0; i < r->ncats; i++) {
			snprintf(nums[i], sizeof nums[i], "%lld",
			         (long long)(sum ? r->cats[i].count : r->months[m][i]));
			cells[i + 1] = nums[i];
		}
		snprintf(nums[r->ncats], sizeof nums[0], "%lld",
		         (long long)(sum ? r->total : month_total(r, m)));
		cells[r->ncats + 1] = nums[r->ncats];
		put_row(b, r->fmt, cells, r->ncats + 2, false);
	}
}

static void put_named_table(struct buf *b, const struct rep *r, json_t *map, const char *title)
{
	const char *cells[2] = {title, "次数"};
	char num[24];
	size_t n = 0;
	struct named *v = sorted(map, &n);

	if (v == NULL) {
		b->bad = "out of memory";
		return;
	}
	put_row(b, r->fmt, cells, 2, true);
	for (size_t i = 0; i < n; i++) {
		snprintf(num, sizeof num, "%lld", (long long)v[i].count);
		cells[0] = v[i].name;
		cells[1] = num;
		put_row(b, r->fmt, cells, 2, false);
	}
	free(v);
}

/* ---- text and markdown ---- */

static void put_section(struct buf *b, const struct rep *r, const char *title)
{
	if (r->fmt == F_MD)
		buf_printf(b, "\n## %s\n\n", title);
	else if (r->fmt == F_HTML)
		buf_printf(b, "<h2>%s</h2>\n", title); /* titles are fixed strings */
	else
		buf_printf(b, "\n%s\n", title);
}

static void put_range(struct buf *b, const struct rep *r, const char *from, const char *to)
{
	char f[32], t[32], line[160];

	local_time(from, f, sizeof f);
	local_time(to, t, sizeof t);
	/* One offset when both ends share it; else each end's own, or a period
	 * across a DST change would show its end an hour off. */
	if (strcmp(r->zone_from, r->zone_to) == 0)
		snprintf(line, sizeof line, "统计区间：%s 至 %s（UTC%s）", f, t, r->zone_from);
	else
		snprintf(line, sizeof line, "统计区间：%s（UTC%s）至 %s（UTC%s）", f, r->zone_from,
		         t, r->zone_to);
	put_cell(b, r->fmt, line);
}

static void put_tables(struct buf *b, const struct rep *r, bool html)
{
	put_section(b, r, "按月份与类别统计");
	buf_str(b, html ? "<table class=\"num\">\n" : "");
	put_month_table(b, r);
	buf_str(b, html ? "</table>\n" : "");
	put_section(b, r, "按部门统计");
	buf_str(b, html ? "<table class=\"num\">\n" : "");
	put_named_table(b, r, r->depts, "事件提交单位");
	buf_str(b, html ? "</table>\n" : "");
	put_section(b, r, "按处理人统计");
	buf_str(b, html ? "<table class=\"num\">\n" : "");
	put_named_table(b, r, r->ops, "问题处理");
	buf_str(b, html ? "</table>\n" : "");
}

static void put_plain_head(struct buf *b, const struct rep *r, const char *from, const char *to)
{
	struct buf sum = {0};

	buf_str(b, r->fmt == F_MD ? "# 运维服务报告\n\n" : "运维服务报告\n");
	put_range(b, r, from, to);
	buf_str(b, r->fmt == F_MD ? "\n\n" : "\n");
	put_summary(&sum, r);
	put_cell(b, r->fmt, sum.p ? sum.p : "");
	b->bad = b->bad ? b->bad : sum.bad;
	free(sum.p);
	buf_str(b, "\n");
	put_tables(b, r, false);
	put_section(b, r, "事件明细");
	put_row(b, r->fmt, col_titles, N_COLS, true);
}

/* ---- html ---- */

static const char *const palette[] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b",
};
#define NPALETTE (sizeof palette / sizeof palette[0])

static const char html_style[] =
    "<style>\n"
    "body{font-family:\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"Microsoft YaHei\","
    "sans-serif;margin:24px;color:#222;font-size:13px}\n"
    "h1{font-size:20px}h2{font-size:16px;margin-top:24px}\n"
    "table{border-collapse:collapse;margin:8px 0;width:100%}\n"
    "th,td{border:1px solid #999;padding:3px 5px;vertical-align:top;word-break:break-all}\n"
    "th{background:#eee}table.num td{text-align:right}table.num td:first-child{text-align:left}\n"
    /* Long text may break anywhere; numbers and months never ("108" / "4"). */
    "table.num td:not(:first-child),table.num th:not(:first-child)"
    "{word-break:keep-all;white-space:nowrap}\n"
    ".summary{font-size:15px;font-weight:bold}\n"
    "svg{max-width:100%;height:auto}\n"
    "@page{size:A4;margin:15mm}\n"
    "@media print{body{margin:0;font-size:10px}h2{break-after:avoid}"
    "tr{break-inside:avoid}thead{display:table-header-group}}\n"
    "</style>\n";

#define CH_W    720
#define CH_H    320
#define CH_LEFT 50
#define CH_TOP  20
#define CH_BARH 200

static void put_chart_legend(struct buf *b, const struct rep *r)
{
	for (size_t i = 0; i < r->ncats; i++) {
		int x = CH_LEFT + (int)(i % 4) * 170, y = CH_TOP + CH_BARH + 40 + (int)(i / 4) * 18;
		buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>", x,
		           y - 9, palette[i % NPALETTE]);
		buf_printf(b, "<text x=\"%d\" y=\"%d\">", x + 14, y);
		put_html(b, r->cats[i].label);
		buf_str(b, "</text>\n");
	}
}

static void put_chart_bars(struct buf *b, const struct rep *r, int64_t max)
{
	int slot = (CH_W - CH_LEFT - 10) / (r->nmonths > 0 ? r->nmonths : 1);
	int bw = slot * 2 / 3 > 1 ? slot * 2 / 3 : 1;
	char name[16];

	for (int m = 0; m < r->nmonths; m++) {
		int x = CH_LEFT + m * slot + (slot - bw) / 2, base = CH_TOP + CH_BARH;
		for (size_t i = 0; i < r->ncats; i++) {
			int h = (int)(r->months[m][i] * CH_BARH / max);
			if (h == 0)
				continue;
			base -= h;
			buf_printf(b,
			           "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
			           "fill=\"%s\"/>\n",
			           x, base, bw, h, palette[i % NPALETTE]);
		}
		month_name(r, m, name, sizeof name);
		buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
		           x + bw / 2, CH_TOP + CH_BARH + 16, name + 2);
	}
}

/* Stacked bars: events per month, one colour per category. */
static void put_chart(struct buf *b, const struct rep *r)
{
	int64_t max = 1;
	int rows = (int)(r->ncats + 3) / 4;

	for (int m = 0; m < r->nmonths; m++)
		if (month_total(r, m) > max)
			max = month_total(r, m);
	buf_printf(b,
	           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	           "viewBox=\"0 0 %d %d\" font-size=\"11\" role=\"img\" "
	           "aria-label=\"每月运维事件\">\n",
	           CH_W, CH_H + rows * 18, CH_W, CH_H + rows * 18);
	buf_printf(b,
	           "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n"
	           "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%lld</text>\n"
	           "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n",
	           CH_LEFT, CH_TOP + CH_BARH, CH_W - 10, CH_TOP + CH_BARH, CH_LEFT - 4, CH_TOP + 4,
	           (long long)max, CH_LEFT - 4, CH_TOP + CH_BARH);
	put_chart_bars(b, r, max);
	put_chart_legend(b, r);
	buf_str(b, "</svg>\n");
}

static void put_html_head(struct buf *b, const struct rep *r, const char *from, const char *to)
{
	struct buf sum = {0};

	buf_str(b, "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
	           "<title>运维服务报告</title>\n");
	buf_str(b, html_style);
	buf_str(b, "</head>\n<body>\n<h1>运维服务报告</h1>\n<p>");
	put_range(b, r, from, to);
	buf_str(b, "</p>\n<p class=\"summary\">");
	put_summary(&sum, r);
	put_html(b, sum.p ? sum.p : "");
	b->bad = b->bad ? b->bad : sum.bad;
	free(sum.p);
	buf_str(b, "</p>\n<h2>每月事件数</h2>\n");
	put_chart(b, r);
	put_tables(b, r, true);
	put_section(b, r, "事件明细");
	buf_str(b, "<table>\n<thead>");
	put_row(b, F_HTML, col_titles, N_COLS, true);
	buf_str(b, "</thead>\n<tbody>\n");
}

/* ---- json ---- */

static json_t *json_named(json_t *map, const char *key)
{
	json_t *arr = json_array();
	size_t n = 0;
	struct named *v = sorted(map, &n);

	for (size_t i = 0; v && arr && i < n; i++)
		json_array_append_new(
		    arr, json_pack("{s:s, s:I}", key, v[i].name, "count", (json_int_t)v[i].count));
	free(v);
	return arr;
}

static json_t *json_months(const struct rep *r)
{
	json_t *arr = json_array();
	char name[16];

	for (int m = 0; arr && m < r->nmonths; m++) {
		json_t *counts = json_object();
		for (size_t i = 0; counts && i < r->ncats; i++)
			json_object_set_new(counts, r->cats[i].key, json_integer(r->months[m][i]));
		month_name(r, m, name, sizeof name);
		json_array_append_new(arr,
		                      json_pack("{sssIso}", "month", name, "total",
		                                (json_int_t)month_total(r, m), "counts", counts));
	}
	return arr;
}

static json_t *json_cats(const struct rep *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < r->ncats; i++)
		json_array_append_new(arr, json_pack("{sssssssI}", "key", r->cats[i].key, "label",
		                                     r->cats[i].label, "unit", r->cats[i].unit,
		                                     "count", (json_int_t)r->cats[i].count));
	return arr;
}

/* The head object without its closing brace, so the streamed events can
 * follow as its last member. */
static void put_json_head(struct buf *b, const struct rep *r, const char *from, const char *to)
{
	struct buf sum = {0};
	json_t *o;
	char *s, lfrom[CLOCK_ISO_LEN], lto[CLOCK_ISO_LEN];

	/* Shown in the server's zone, as every time is (DESIGN); stored bounds are UTC. */
	if (clock_local(from, lfrom, sizeof lfrom) == -1)
		snprintf(lfrom, sizeof lfrom, "%s", from);
	if (clock_local(to, lto, sizeof lto) == -1)
		snprintf(lto, sizeof lto, "%s", to);
	put_summary(&sum, r);
	o = json_pack("{sssssssIsosososo}", "from", lfrom, "to", lto, "summary", sum.p ? sum.p : "",
	              "total", (json_int_t)r->total, "categories", json_cats(r), "by_month",
	              json_months(r), "by_department", json_named(r->depts, "department"),
	              "by_operator", json_named(r->ops, "operator"));
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (s == NULL || sum.bad) {
		b->bad = "out of memory or a name is not valid UTF-8";
	} else {
		buf_add(b, s, strlen(s) - 1);
		buf_str(b, ",\"events\":[\n");
	}
	free(s);
	free(sum.p);
	json_decref(o);
}

/* ---- assembly ---- */

static int parse_format(const char *name, enum fmt *fp)
{
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		if (strcmp(name ? name : "text", formats[i].name) == 0) {
			*fp = (enum fmt)i;
			return 0;
		}
	}
	return -1;
}

bool report_format_known(const char *name)
{
	enum fmt f;

	return parse_format(name, &f) == 0;
}

static void put_head(struct buf *b, const struct rep *r, const char *from, const char *to)
{
	if (r->fmt == F_JSON)
		put_json_head(b, r, from, to);
	else if (r->fmt == F_HTML)
		put_html_head(b, r, from, to);
	else if (r->fmt == F_CSV)
		put_row(b, F_CSV,
		        (const char *const[]){col_titles[0], col_titles[1], col_titles[2],
		                              col_titles[3], col_titles[4], col_titles[5],
		                              col_titles[6], col_titles[7], col_titles[8],
		                              col_titles[9], "类别"},
		        N_COLS + 1, true);
	else
		put_plain_head(b, r, from, to);
}

static void put_tail(struct buf *b, const struct rep *r)
{
	if (r->fmt == F_JSON)
		buf_str(b, "\n]}\n");
	else if (r->fmt == F_HTML)
		buf_str(b, "</tbody>\n</table>\n</body>\n</html>\n");
}

static void rep_free(struct rep *r)
{
	for (size_t i = 0; i < r->nextra; i++)
		free(r->extra[i]);
	free(r->months);
	free(r->detail.p);
	json_decref(r->depts);
	json_decref(r->ops);
}

/* Head, then the streamed detail, then the closing part. */
static int assemble(struct rep *r, const char *from, const char *to, struct buf *out)
{
	put_head(out, r, from, to);
	buf_add(out, r->detail.p ? r->detail.p : "", r->detail.len);
	put_tail(out, r);
	return out->bad ? -1 : 0;
}

int report_build(struct audit *a, const struct config *conf, const char *from, const char *to,
                 const char *format, char **outp, size_t *lenp, const char **ctypep, char *err,
                 size_t errlen)
{
	struct rep r = {.conf = conf};
	struct buf out = {0};
	int rc = -1;

	if (parse_format(format, &r.fmt) == -1) {
		snprintf(err, errlen, "report: format must be text, md, csv, json or html");
		return -1;
	}
	if (from == NULL || to == NULL || months_init(&r, from, to, err, errlen) == -1) {
		if (from == NULL || to == NULL)
			snprintf(err, errlen, "report: from and to are required");
		rep_free(&r);
		return -1;
	}
	r.depts = json_object();
	r.ops = json_object();
	cats_init(&r);
	if (r.depts == NULL || r.ops == NULL) {
		snprintf(err, errlen, "report: out of memory");
	} else if (audit_scan(a, from, to, scan_cb, &r, err, errlen) == 0) {
		if (r.bad || r.detail.bad)
			snprintf(err, errlen, "report: %s", r.bad ? r.bad : r.detail.bad);
		else if (assemble(&r, from, to, &out) == -1)
			snprintf(err, errlen, "report: %s", out.bad);
		else
			rc = 0;
	}
	rep_free(&r);
	if (rc == -1) {
		free(out.p);
		return -1;
	}
	*outp = out.p ? out.p : strdup("");
	*lenp = out.len;
	*ctypep = formats[r.fmt].ctype;
	return *outp ? 0 : -1;
}
