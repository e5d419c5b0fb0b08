/*
 * render.h — output for people and spreadsheets: display width of UTF-8 text
 * (CJK = 2 columns), aligned tables, RFC 4180 CSV cells, pretty JSON.
 * Width functions need an UTF-8 LC_CTYPE (main sets C.UTF-8).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

/* Widest table cell, in terminal columns, before it is cut with "…". */
#define RENDER_MAX_CELL 40

/* Copy of s that is safe on a terminal: tab, CR and LF become spaces, other
 * control characters and invalid UTF-8 become '?'. Caller frees; NULL on ENOMEM. */
char *render_clean(const char *s);

/* Writes n bytes of s (UTF-8 text, e.g. a report) to f for a terminal:
 * newlines and tabs kept, any other control or invalid character written
 * as '?' or a blank, so no escape sequence reaches the terminal. */
void render_text_tty(FILE *f, const char *s, size_t n);

/* Columns s takes on a terminal; an invalid byte or control character counts 1. */
size_t render_width(const char *s);

/* Copy of s cut to at most max (>= 1) columns, ending in "…" when it was cut.
 * Caller frees; NULL on ENOMEM. */
char *render_fit(const char *s, size_t max);

/* A table whose columns are aligned by display width. Rows are kept until
 * render_table_flush prints them; column widths only grow, so a table flushed
 * page by page stays aligned as long as later pages are no wider. */
struct render_table;

/* New table with ncols headers (copied) and cells cut at maxw columns.
 * NULL on ENOMEM. */
struct render_table *render_table_new(size_t ncols, const char *const *headers, size_t maxw);

/* Column col is never cut to the width earlier pages gave it (an id: a cut
 * one names nothing); a wider cell widens it from that row on. */
void render_table_keep(struct render_table *t, size_t col);

/* Adds a row of ncols cells (copied, cleaned, cut; NULL = empty). -1 on ENOMEM. */
int render_table_add(struct render_table *t, const char *const *cells);

/* Prints the header (first time only) and the pending rows, then drops them.
 * Columns are separated by two spaces; no trailing blanks. */
void render_table_flush(struct render_table *t, FILE *f);

/* Frees t and any rows not flushed; NULL is fine. */
void render_table_free(struct render_table *t);

/* Writes one CSV cell (RFC 4180): quoted when it holds a comma, quote, CR or
 * LF, quotes doubled; a cell starting with = + - @ is written quoted with a
 * leading ' so spreadsheets don't run it as a formula. NULL = empty. */
void render_csv_cell(FILE *f, const char *s);

/* Writes n cells separated by commas and ended by CRLF. */
void render_csv_row(FILE *f, const char *const *cells, size_t n);

/* Writes the UTF-8 byte order mark EF BB BF (for Excel). */
void render_bom(FILE *f);

/* A one-line progress bar, "[#####     ]  50%  12.0 of 24.0 KiB", into buf
 * (cut to len - 1 bytes). done is clamped to 0..total; total <= 0 is 0%. */
void render_progress(char *buf, size_t len, long long done, long long total);

/* Writes j indented by 2, keys in order, UTF-8 unescaped, then a newline.
 * Return: 0, or -1 if jansson failed to encode. */
int render_json(FILE *f, const json_t *j);

/* Writes j like render_json but with every line after the first indented by
 * indent more spaces and no newline, for streaming items into an array. */
int render_json_nested(FILE *f, const json_t *j, int indent);

/* Text of a JSON scalar: strings as they are, numbers in decimal, booleans
 * as "true"/"false" (human: "yes"/"no"); null, missing or a container gives
 * "" ("-" when human). The result points into v or into buf (len >= 32). */
const char *render_scalar(const json_t *v, char *buf, size_t len, bool human);
