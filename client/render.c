/*
 * render.c — display width, aligned tables, CSV cells and JSON output.
 * Knows nothing of the network or of what the rows mean.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "ldapdesk/wire.h"
#include "render.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, one column */

struct render_table {
	size_t ncols;
	size_t maxw;
	char **head;   /* ncols cleaned headers */
	size_t *width; /* per column, only grows */
	bool *keep;    /* per column: never cut to width (render_table_keep) */
	char **cells;  /* nrows * ncols pending cells */
	size_t nrows;
	size_t cap; /* rows cells has room for */
	bool head_done;
};

/* One decoded character: its length in bytes (>= 1) and its columns. An
 * invalid byte is one byte wide and replaced by '?'. */
struct uchar {
	size_t len;
	int cols;
	char repl; /* 0 = keep the bytes, else write this instead */
};

static struct uchar next_char(const char *p, size_t rest)
{
	mbstate_t st;
	wchar_t wc;
	struct uchar u = {1, 1, '?'};

	memset(&st, 0, sizeof st);
	size_t n = mbrtowc(&wc, p, rest, &st);
	if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
		return u;
	u.len = n;
	if (wc == L'\t' || wc == L'\n' || wc == L'\r') {
		u.repl = ' ';
		return u;
	}
	int w = wcwidth(wc);
	if (w < 0 || !iswprint((wint_t)wc))
		return u;
	u.cols = w;
	u.repl = 0;
	return u;
}

char *render_clean(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1), *q = out;

	if (out == NULL)
		return NULL;
	for (const char *p = s; *p != '\0';) {
		struct uchar u = next_char(p, n - (size_t)(p - s));
		if (u.repl != 0) {
			*q++ = u.repl;
		} else {
			memcpy(q, p, u.len);
			q += u.len;
		}
		p += u.len;
	}
	*q = '\0';
	return out;
}

void render_text_tty(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		struct uchar u = s[i] == '\n' || s[i] == '\t' ? (struct uchar){1, 1, s[i]}
		                                              : next_char(s + i, n - i);

		if (u.repl != 0)
			fputc(u.repl, f);
		else
			fwrite(s + i, 1, u.len, f);
		i += u.len;
	}
}

size_t render_width(const char *s)
{
	size_t n = strlen(s), w = 0;

	for (const char *p = s; *p != '\0';) {
		struct uchar u = next_char(p, n - (size_t)(p - s));
		w += (size_t)u.cols;
		p += u.len;
	}
	return w;
}

char *render_fit(const char *s, size_t max)
{
	size_t n = strlen(s), w = 0;
	const char *p = s;

	if (render_width(s) <= max)
		return strdup(s);
	while (*p != '\0') {
		struct uchar u = next_char(p, n - (size_t)(p - s));
		if (w + (size_t)u.cols + 1 > max)
			break;
		w += (size_t)u.cols;
		p += u.len;
	}
	size_t keep = (size_t)(p - s);
	char *out = malloc(keep + sizeof ELLIPSIS);
	if (out == NULL)
		return NULL;
	memcpy(out, s, keep);
	memcpy(out + keep, ELLIPSIS, sizeof ELLIPSIS);
	return out;
}

/* Cleaned copy cut to maxw columns. */
static char *cell_copy(const char *s, size_t maxw)
{
	char *clean = render_clean(s != NULL ? s : "");

	if (clean == NULL)
		return NULL;
	char *fit = render_fit(clean, maxw);
	free(clean);
	return fit;
}

struct render_table *render_table_new(size_t ncols, const char *const *headers, size_t maxw)
{
	struct render_table *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	t->maxw = maxw > 0 ? maxw : 1;
	t->head = calloc(ncols, sizeof *t->head);
	t->width = calloc(ncols, sizeof *t->width);
	t->keep = calloc(ncols, sizeof *t->keep);
	if (t->head == NULL || t->width == NULL || t->keep == NULL)
		goto fail;
	for (size_t i = 0; i < ncols; i++) {
		if ((t->head[i] = cell_copy(headers[i], maxw)) == NULL)
			goto fail;
		t->width[i] = render_width(t->head[i]);
	}
	return t;
fail:
	render_table_free(t);
	return NULL;
}

static int table_grow(struct render_table *t)
{
	if (t->nrows < t->cap)
		return 0;
	size_t cap = t->cap > 0 ? t->cap * 2 : 64;
	if (cap > SIZE_MAX / sizeof(char *) / t->ncols)
		return -1;
	char **cells = realloc(t->cells, cap * t->ncols * sizeof(char *));
	if (cells == NULL)
		return -1;
	t->cells = cells;
	t->cap = cap;
	return 0;
}

void render_table_keep(struct render_table *t, size_t col)
{
	if (col < t->ncols)
		t->keep[col] = true;
}

int render_table_add(struct render_table *t, const char *const *cells)
{
	if (table_grow(t) != 0)
		return -1;
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		/* Once rows are out, the columns' widths are fixed: a wider cell
		 * on a later page is cut (…) rather than shifting what follows. */
		size_t maxw =
		    t->head_done && i + 1 < t->ncols && !t->keep[i] ? t->width[i] : t->maxw;

		if ((row[i] = cell_copy(cells[i], maxw)) == NULL) {
			while (i > 0)
				free(row[--i]);
			return -1;
		}
		size_t w = render_width(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	return 0;
}

static void table_row(const struct render_table *t, char *const *row, FILE *f)
{
	for (size_t i = 0; i < t->ncols; i++) {
		fputs(row[i], f);
		if (i + 1 == t->ncols)
			break;
		for (size_t w = render_width(row[i]); w < t->width[i] + 2; w++)
			fputc(' ', f);
	}
	fputc('\n', f);
}

static void table_drop_rows(struct render_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
}

void render_table_flush(struct render_table *t, FILE *f)
{
	if (!t->head_done) {
		table_row(t, t->head, f);
		t->head_done = true;
	}
	for (size_t r = 0; r < t->nrows; r++)
		table_row(t, t->cells + r * t->ncols, f);
	table_drop_rows(t);
}

void render_table_free(struct render_table *t)
{
	if (t == NULL)
		return;
	if (t->cells != NULL)
		table_drop_rows(t);
	for (size_t i = 0; t->head != NULL && i < t->ncols; i++)
		free(t->head[i]);
	free(t->head);
	free(t->width);
	free(t->keep);
	free(t->cells);
	free(t);
}

void render_csv_cell(FILE *f, const char *s)
{
	if (s == NULL)
		return;
	bool formula = s[0] != '\0' && strchr(LDAPDESK_CSV_FORMULA, s[0]) != NULL;
	if (!formula && strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	if (formula)
		fputc('\'', f);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
}

void render_csv_row(FILE *f, const char *const *cells, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', f);
		render_csv_cell(f, cells[i]);
	}
	fputs("\r\n", f);
}

void render_bom(FILE *f)
{
	fputs("\xef\xbb\xbf", f);
}

#define BAR_WIDTH 30

void render_progress(char *buf, size_t len, long long done, long long total)
{
	char bar[BAR_WIDTH + 1];
	bool mib = total >= 1024LL * 1024;
	double unit = mib ? 1024.0 * 1024 : 1024.0;

	if (done > total)
		done = total;
	if (done < 0 || total <= 0)
		done = 0;
	int pct = total > 0 ? (int)(done * 100 / total) : 0;
	int fill = total > 0 ? (int)(done * BAR_WIDTH / total) : 0;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(BAR_WIDTH - fill));
	bar[BAR_WIDTH] = '\0';
	snprintf(buf, len, "[%s] %3d%%  %.1f of %.1f %s", bar, pct, (double)done / unit,
	         (double)(total > 0 ? total : 0) / unit, mib ? "MiB" : "KiB");
}

#define JSON_OUT_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)

int render_json(FILE *f, const json_t *j)
{
	if (json_dumpf(j, f, JSON_OUT_FLAGS) != 0)
		return -1;
	fputc('\n', f);
	return 0;
}

int render_json_nested(FILE *f, const json_t *j, int indent)
{
	char *text = json_dumps(j, JSON_OUT_FLAGS);

	if (text == NULL)
		return -1;
	/* Strings never hold a raw newline in JSON text: every '\n' is layout. */
	for (const char *p = text; *p != '\0'; p++) {
		fputc(*p, f);
		if (*p == '\n')
			fprintf(f, "%*s", indent, "");
	}
	free(text);
	return 0;
}

const char *render_scalar(const json_t *v, char *buf, size_t len, bool human)
{
	if (v == NULL)
		return human ? "-" : "";
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_value(v);
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return human ? "yes" : "true";
	case JSON_FALSE:
		return human ? "no" : "false";
	default:
		return human ? "-" : "";
	}
}
