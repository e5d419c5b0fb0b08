/*
 * test_client_render.c — display width of CJK text, table alignment and
 * truncation, CSV quoting and formula guarding, BOM, terminal cleaning,
 * the upload progress bar.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define DEPT_LONG "办公室(外事办公室董事会办公室)"

/* What fn wrote into a memory FILE, NUL-terminated; caller frees. */
struct mem {
	FILE *f;
	char *buf;
	size_t len;
};

static void mem_open(struct mem *m)
{
	m->buf = NULL;
	m->f = open_memstream(&m->buf, &m->len);
	assert_non_null(m->f);
}

static char *mem_close(struct mem *m)
{
	assert_int_equal(fclose(m->f), 0);
	return m->buf;
}

static char *csv_cell(const char *s)
{
	struct mem m;

	mem_open(&m);
	render_csv_cell(m.f, s);
	return mem_close(&m);
}

static void test_width_of_ascii_is_its_length(void **state)
{
	(void)state;
	assert_int_equal(render_width(""), 0);
	assert_int_equal(render_width("alice"), 5);
}

static void test_width_counts_chinese_as_two_columns(void **state)
{
	(void)state;
	/* 8 columns for its 12 bytes: a byte count would pad it wrongly */
	assert_int_equal(render_width("信息中心"), 8);
	/* 14 CJK characters and two ASCII parentheses */
	assert_int_equal(render_width(DEPT_LONG), 30);
	assert_int_equal(render_width("IT部 a"), 6);
}

static void test_table_aligns_chinese_and_ascii_rows(void **state)
{
	static const char *const head[] = {"department", "n"};
	static const char *const row1[] = {DEPT_LONG, "1"};
	static const char *const row2[] = {"IT", "22"};
	struct render_table *t = render_table_new(2, head, 40);
	struct mem m;

	(void)state;
	assert_non_null(t);
	assert_int_equal(render_table_add(t, row1), 0);
	assert_int_equal(render_table_add(t, row2), 0);
	mem_open(&m);
	render_table_flush(t, m.f);
	char *out = mem_close(&m);
	/* Column 1 is 30 columns wide (the Chinese cell) plus two spaces. */
	assert_string_equal(out, "department"
	                         "                      "
	                         "n\n" DEPT_LONG "  1\n"
	                         "IT"
	                         "                              "
	                         "22\n");
	free(out);
	render_table_free(t);
}

static void test_table_keeps_widths_across_flushes(void **state)
{
	static const char *const head[] = {"a", "b"};
	static const char *const wide[] = {"信息中心", "x"};
	static const char *const narrow[] = {"c", "y"};
	struct render_table *t = render_table_new(2, head, 40);
	struct mem m;

	(void)state;
	mem_open(&m);
	render_table_add(t, wide);
	render_table_flush(t, m.f);
	render_table_add(t, narrow);
	render_table_flush(t, m.f);
	char *out = mem_close(&m);
	/* the header is printed once, the second page keeps the first's width */
	assert_string_equal(out, "a         b\n信息中心  x\nc         y\n");
	free(out);
	/* a wider cell on a later page is cut to that width: columns stay put */
	static const char *const wider[] = {"审计部(审计派驻办)", "z"};
	mem_open(&m);
	render_table_add(t, wider);
	render_table_flush(t, m.f);
	out = mem_close(&m);
	assert_string_equal(out, "审计部(…  z\n");
	free(out);
	render_table_free(t);
}

static void test_table_kept_column_is_never_cut(void **state)
{
	static const char *const head[] = {"id", "b"};
	static const char *const first[] = {"9999", "x"};
	static const char *const later[] = {"10001", "y"};
	struct render_table *t = render_table_new(2, head, 40);
	struct mem m;

	(void)state;
	render_table_keep(t, 0);
	mem_open(&m);
	render_table_add(t, first);
	render_table_flush(t, m.f);
	render_table_add(t, later);
	render_table_add(t, first);
	render_table_flush(t, m.f);
	char *out = mem_close(&m);
	/* the id is whole; the column widens from that row on */
	assert_string_equal(out, "id    b\n9999  x\n10001  y\n9999   x\n");
	free(out);
	render_table_free(t);
}

static void test_fit_cuts_by_display_width_with_ellipsis(void **state)
{
	char *s;

	(void)state;
	s = render_fit("abcdefgh", 5);
	assert_string_equal(s, "abcd…");
	free(s);
	s = render_fit("信息中心信息中心", 7);
	assert_string_equal(s, "信息中…");
	assert_int_equal(render_width(s), 7);
	free(s);
	/* a wide character that would overshoot is left out, not split */
	s = render_fit("信息中心", 6);
	assert_string_equal(s, "信息…");
	free(s);
	s = render_fit("abc", 3);
	assert_string_equal(s, "abc");
	free(s);
}

static void test_table_truncates_long_cells(void **state)
{
	static const char *const head[] = {"dept", "n"};
	static const char *const row[] = {DEPT_LONG, "1"};
	struct render_table *t = render_table_new(2, head, 10);
	struct mem m;

	(void)state;
	mem_open(&m);
	render_table_add(t, row);
	render_table_flush(t, m.f);
	char *out = mem_close(&m);
	assert_string_equal(out, "dept        n\n办公室(外…  1\n");
	free(out);
	render_table_free(t);
}

static void test_table_cleans_control_characters(void **state)
{
	static const char *const head[] = {"x"};
	static const char *const row[] = {"a\x1b[31mb\nc"};
	struct render_table *t = render_table_new(1, head, 40);
	struct mem m;

	(void)state;
	mem_open(&m);
	render_table_add(t, row);
	render_table_flush(t, m.f);
	char *out = mem_close(&m);
	assert_string_equal(out, "x\na?[31mb c\n");
	free(out);
	render_table_free(t);
}

/* A report written to a terminal keeps its lines and tabs and CJK text,
 * but no escape sequence from an event field gets through. */
static void test_text_for_a_terminal_has_no_escapes(void **state)
{
	static const char in[] = "a\x1b]0;x\x07"
	                         "b\n中文\t\x9b\xc2\x9b"
	                         "2J\n";
	struct mem m;

	(void)state;
	mem_open(&m);
	render_text_tty(m.f, in, sizeof in - 1);
	assert_string_equal(mem_close(&m), "a?]0;x?b\n中文\t??2J\n");
	free(m.buf);
}

static void test_clean_replaces_invalid_utf8(void **state)
{
	char *s = render_clean("ok\xff\xfe中");

	(void)state;
	assert_string_equal(s, "ok??中");
	free(s);
}

static void test_csv_quotes_comma_quote_and_newline(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"a,b", "\"a,b\""},
	    {"say \"hi\"", "\"say \"\"hi\"\"\""},
	    {"line1\nline2", "\"line1\nline2\""},
	    {"cr\rhere", "\"cr\rhere\""},
	    {"", ""},
	    {"采管系统", "采管系统"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out = csv_cell(cases[i].in);
		assert_string_equal(out, cases[i].out);
		free(out);
	}
}

static void test_csv_guards_formula_cells(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"=1+2", "\"'=1+2\""},
	    {"+1", "\"'+1\""},
	    {"-5", "\"'-5\""},
	    {"@SUM(A1)", "\"'@SUM(A1)\""},
	    {"=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""},
	    {"a=b", "a=b"},
	    /* OWASP: a leading tab or carriage return also starts a formula */
	    {"\t=1+1", "\"'\t=1+1\""},
	    {"\r=2", "\"'\r=2\""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out = csv_cell(cases[i].in);
		assert_string_equal(out, cases[i].out);
		free(out);
	}
}

static void test_csv_row_uses_crlf_and_bom_comes_first(void **state)
{
	static const char *const cells[] = {"1", "a,b", NULL, "-x"};
	struct mem m;

	(void)state;
	mem_open(&m);
	render_bom(m.f);
	render_csv_row(m.f, cells, 4);
	char *out = mem_close(&m);
	assert_memory_equal(out, "\xef\xbb\xbf", 3);
	assert_string_equal(out + 3, "1,\"a,b\",,\"'-x\"\r\n");
	free(out);
}

static void test_progress_bar_fills_with_the_upload(void **state)
{
	char line[96];

	(void)state;
	render_progress(line, sizeof line, 0, 2048);
	assert_string_equal(line, "[                              ]   0%  0.0 of 2.0 KiB");
	render_progress(line, sizeof line, 1024, 2048);
	assert_string_equal(line, "[###############               ]  50%  1.0 of 2.0 KiB");
	render_progress(line, sizeof line, 3LL << 20, 3LL << 20);
	assert_string_equal(line, "[##############################] 100%  3.0 of 3.0 MiB");
	/* more sent than announced, or nothing announced: no overflow */
	render_progress(line, sizeof line, 5000, 2048);
	assert_non_null(strstr(line, "100%"));
	render_progress(line, sizeof line, 10, 0);
	assert_non_null(strstr(line, "  0%"));
	render_progress(line, 8, 1024, 2048);
	assert_string_equal(line, "[######");
}

static void test_json_nested_indents_following_lines(void **state)
{
	json_t *j = json_pack("{s:i, s:s}", "id", 1, "dept", "信息中心");
	struct mem m;

	(void)state;
	mem_open(&m);
	assert_int_equal(render_json_nested(m.f, j, 4), 0);
	char *out = mem_close(&m);
	/* UTF-8 kept as is, keys in order */
	assert_string_equal(out, "{\n      \"id\": 1,\n      \"dept\": \"信息中心\"\n    }");
	free(out);
	json_decref(j);
}

static void test_scalar_text_for_csv_and_humans(void **state)
{
	char buf[32];
	json_t *n = json_integer(42);

	(void)state;
	assert_string_equal(render_scalar(n, buf, sizeof buf, false), "42");
	assert_string_equal(render_scalar(json_null(), buf, sizeof buf, false), "");
	assert_string_equal(render_scalar(json_null(), buf, sizeof buf, true), "-");
	assert_string_equal(render_scalar(NULL, buf, sizeof buf, true), "-");
	assert_string_equal(render_scalar(json_true(), buf, sizeof buf, false), "true");
	assert_string_equal(render_scalar(json_false(), buf, sizeof buf, true), "no");
	json_decref(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_width_of_ascii_is_its_length),
	    cmocka_unit_test(test_width_counts_chinese_as_two_columns),
	    cmocka_unit_test(test_table_aligns_chinese_and_ascii_rows),
	    cmocka_unit_test(test_table_keeps_widths_across_flushes),
	    cmocka_unit_test(test_table_kept_column_is_never_cut),
	    cmocka_unit_test(test_fit_cuts_by_display_width_with_ellipsis),
	    cmocka_unit_test(test_table_truncates_long_cells),
	    cmocka_unit_test(test_table_cleans_control_characters),
	    cmocka_unit_test(test_text_for_a_terminal_has_no_escapes),
	    cmocka_unit_test(test_clean_replaces_invalid_utf8),
	    cmocka_unit_test(test_csv_quotes_comma_quote_and_newline),
	    cmocka_unit_test(test_csv_guards_formula_cells),
	    cmocka_unit_test(test_csv_row_uses_crlf_and_bom_comes_first),
	    cmocka_unit_test(test_progress_bar_fills_with_the_upload),
	    cmocka_unit_test(test_json_nested_indents_following_lines),
	    cmocka_unit_test(test_scalar_text_for_csv_and_humans),
	};

	if (setlocale(LC_ALL, "C.UTF-8") == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
