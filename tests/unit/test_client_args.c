/*
 * test_client_args.c — the ldapdesk command line: global options anywhere,
 * unknown and misplaced options refused, event options to JSON fields,
 * exclusive and required options, value checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ldapdesk/wire.h"
#include "args.h"

#define ARGV(...)                                                                                  \
	(char *[])                                                                                 \
	{                                                                                          \
		"ldapdesk", __VA_ARGS__, NULL                                                      \
	}
#define ARGC(...)          ((int)(sizeof((char *[]){"ldapdesk", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(a, err, ...) args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a), (err), sizeof(err))

static void test_global_options_before_and_after_command_parse_the_same(void **state)
{
	struct args before, after;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&before, err, "--json", "--url", "unix:/run/d.sock", "--ca",
	                       "ca.pem", "status", "alice"),
	                 0);
	assert_int_equal(PARSE(&after, err, "status", "alice", "--json", "--url=unix:/run/d.sock",
	                       "--ca", "ca.pem"),
	                 0);
	assert_true(before.json && after.json);
	assert_string_equal(before.url, "unix:/run/d.sock");
	assert_string_equal(after.url, before.url);
	assert_string_equal(after.ca, before.ca);
	assert_string_equal(before.command, "status");
	assert_string_equal(after.command, "status");
	assert_int_equal(before.npos, 1);
	assert_int_equal(after.npos, 1);
	assert_string_equal(after.pos[0], "alice");
}

static void test_unknown_option_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--frobnicate"), -1);
	assert_non_null(strstr(err, "--frobnicate"));
	/* the value of an unknown --x=value is never echoed: it may be a password */
	assert_int_equal(PARSE(&a, err, "status", "bob", "--password=hunter2"), -1);
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "--password"));
	/* ... nor of a short one glued to its value, as ldapsearch's -wSECRET */
	assert_int_equal(PARSE(&a, err, "login", "--user", "hd1", "-whunter2"), -1);
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "unknown option '-w'"));
	/* the help named is the command's, once the command is known */
	assert_non_null(strstr(err, "see 'ldapdesk login --help'"));
	assert_int_equal(PARSE(&a, err, "user", "create", "x", "--zz"), -1);
	assert_non_null(strstr(err, "see 'ldapdesk user create --help'"));
	assert_int_equal(PARSE(&a, err, "--zz", "reset", "bob"), -1);
	assert_non_null(strstr(err, "see 'ldapdesk --help'"));
}

static void test_option_of_another_command_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "status", "bob", "--days", "3"), -1);
	assert_non_null(strstr(err, "--days"));
	assert_int_equal(PARSE(&a, err, "log", "--ticket", "T-1"), -1);
}

static void test_missing_argument_or_value_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "status"), -1);
	assert_non_null(strstr(err, "USER"));
	assert_int_equal(PARSE(&a, err, "grant", "bob"), -1);
	assert_non_null(strstr(err, "PERMISSION"));
	assert_int_equal(PARSE(&a, err, "status", "bob", "--url"), -1);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(PARSE(&a, err, "status", "bob", "carol"), -1);
	assert_int_equal(PARSE(&a, err, "--json"), -1); /* no command */
	assert_int_equal(PARSE(&a, err, "frob"), -1);
	assert_non_null(strstr(err, "frob"));
}

static void test_event_options_map_to_json_fields(void **state)
{
	struct args a;
	char err[256];
	json_t *obj = json_object();

	(void)state;
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--ticket", "T-7", "--requester", "王芳",
	                       "--dept", "办公室(外事办公室董事会办公室)", "--channel", "hotline",
	                       "--note", "called twice"),
	                 0);
	assert_int_equal(args_event_json(&a, obj), 0);
	assert_int_equal(json_object_size(obj), 5);
	assert_string_equal(json_string_value(json_object_get(obj, "ticket")), "T-7");
	assert_string_equal(json_string_value(json_object_get(obj, "requester")), "王芳");
	assert_string_equal(json_string_value(json_object_get(obj, "department")),
	                    "办公室(外事办公室董事会办公室)");
	assert_string_equal(json_string_value(json_object_get(obj, "channel")), "hotline");
	assert_string_equal(json_string_value(json_object_get(obj, "note")), "called twice");
	json_decref(obj);
}

static void test_absent_event_options_are_omitted(void **state)
{
	struct args a;
	char err[256];
	json_t *obj = json_object();

	(void)state;
	assert_int_equal(PARSE(&a, err, "reset", "bob", "--unlock", "--ticket", "T-8"), 0);
	assert_true(a.unlock);
	assert_int_equal(args_event_json(&a, obj), 0);
	assert_int_equal(json_object_size(obj), 1);
	assert_null(json_object_get(obj, "department"));
	json_decref(obj);
}

static void test_channel_must_be_hotline_or_request(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--channel", "phone"), -1);
	assert_non_null(strstr(err, "--channel"));
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--channel", "request"), 0);
}

static void test_days_and_until_together_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "grant", "bob", "caiguan", "--days", "30", "--until",
	                       "2024-12-31T00:00:00Z"),
	                 -1);
	assert_non_null(strstr(err, "--until"));
	assert_int_equal(PARSE(&a, err, "grant", "bob", "caiguan", "--days=30"), 0);
	assert_int_equal(a.days, 30);
	assert_string_equal(a.pos[1], "caiguan");
	assert_int_equal(PARSE(&a, err, "grant", "bob", "caiguan", "--days", "0"), -1);
	assert_int_equal(PARSE(&a, err, "grant", "bob", "caiguan", "--days", "3x"), -1);
}

static void test_required_options_are_enforced(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "user", "delete", "zs"), -1);
	assert_non_null(strstr(err, "--yes"));
	assert_int_equal(PARSE(&a, err, "user", "delete", "zs", "--yes"), 0);
	assert_string_equal(a.sub, "delete");
	assert_int_equal(PARSE(&a, err, "record", "todo-mail"), -1);
	assert_non_null(strstr(err, "--desc"));
	assert_int_equal(PARSE(&a, err, "report", "--from", "2024-01-01"), -1);
	assert_non_null(strstr(err, "--to"));
	/* Everything missing is named at once, the words first. */
	assert_int_equal(PARSE(&a, err, "user", "create"), -1);
	assert_non_null(strstr(err, "'user create' needs UID, --dept and --name;"));
	assert_int_equal(PARSE(&a, err, "reject"), -1);
	assert_non_null(strstr(err, "'reject' needs ID and --reason;"));
}

static void test_format_values_depend_on_the_command(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "log", "--format", "csv", "--bom", "--limit", "10"), 0);
	assert_int_equal(a.limit, 10);
	assert_int_equal(PARSE(&a, err, "log", "--format", "html"), -1);
	assert_int_equal(PARSE(&a, err, "report", "--from", "a", "--to", "b", "--format", "html",
	                       "-o", "r.html"),
	                 0);
	assert_string_equal(a.output, "r.html");
	/* --bom is for CSV only: a BOM before JSON breaks every parser. */
	assert_int_equal(PARSE(&a, err, "log", "--bom"), -1);
	assert_non_null(strstr(err, "--format csv"));
	assert_int_equal(
	    PARSE(&a, err, "report", "--from", "a", "--to", "b", "--format", "json", "--bom"), -1);
	assert_int_equal(
	    PARSE(&a, err, "report", "--from", "a", "--to", "b", "--format", "csv", "--bom"), 0);
}

static void test_json_with_another_format_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "log", "--json", "--format", "table"), -1);
	assert_non_null(strstr(err, "give --json or --format table, not both"));
	assert_int_equal(
	    PARSE(&a, err, "--json", "report", "--from", "a", "--to", "b", "--format=csv"), -1);
	assert_non_null(strstr(err, "not both"));
	assert_int_equal(PARSE(&a, err, "log", "--json", "--format", "json"), 0);
	assert_int_equal(PARSE(&a, err, "report", "--from", "a", "--to", "b", "--json"), 0);
	/* A format that does not exist is named as such, not as a clash. */
	assert_int_equal(PARSE(&a, err, "log", "--json", "--format", "xml"), -1);
	assert_non_null(strstr(err, "--format must be table, csv or json, not 'xml'"));
}

/* --format json is --json, errors included (README). */
static void test_format_json_is_json(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "log", "--format", "json"), 0);
	assert_true(a.json);
	assert_int_equal(PARSE(&a, err, "log", "--format", "csv"), 0);
	assert_false(a.json);
}

/* A value given twice would silently replace the first. */
static void test_an_option_given_twice_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--ticket", "a", "--ticket=b"), -1);
	assert_non_null(strstr(err, "--ticket is given twice"));
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--json", "--json"), 0);
}

static void test_help_anywhere_succeeds_without_checks(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "unlock", "--help"), 0);
	assert_true(a.help);
	assert_string_equal(a.command, "unlock");
	assert_int_equal(PARSE(&a, err, "-h"), 0);
	assert_true(a.help);
	assert_null(a.command);
}

static void test_help_for_an_unknown_command_is_an_error(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "bogus", "--help"), -1);
	assert_non_null(strstr(err, "unknown command 'bogus'"));
	assert_int_equal(PARSE(&a, err, "--help", "user", "bogus"), -1);
	assert_non_null(strstr(err, "unknown command 'user bogus'"));
	assert_int_equal(PARSE(&a, err, "status", "--help", "--bogus"), -1);
	assert_non_null(strstr(err, "--bogus"));
	/* "user" alone is the help of all its subcommands */
	assert_int_equal(PARSE(&a, err, "user", "--help"), 0);
	assert_int_equal(PARSE(&a, err, "user", "create", "--help"), 0);
	assert_int_equal(PARSE(&a, err, "bogus", "--version"), 0);
}

static void test_lengths_are_bounded(void **state)
{
	struct args a;
	char err[256];
	char uid[LDAPDESK_MAX_UID + 2], note[LDAPDESK_MAX_FIELD + 2];

	(void)state;
	memset(uid, 'u', sizeof uid - 1);
	uid[sizeof uid - 1] = '\0';
	memset(note, 'n', sizeof note - 1);
	note[sizeof note - 1] = '\0';
	assert_int_equal(PARSE(&a, err, "status", uid), -1);
	assert_int_equal(PARSE(&a, err, "unlock", "bob", "--note", note), -1);
	uid[LDAPDESK_MAX_UID] = '\0';
	assert_int_equal(PARSE(&a, err, "status", uid), 0);
}

static void test_since_head_must_be_id_and_hash(void **state)
{
	struct args a;
	char err[256];
	char head[100];

	(void)state;
	snprintf(head, sizeof head, "42:%064d", 0);
	assert_int_equal(PARSE(&a, err, "verify", "--since-head", head), 0);
	assert_int_equal(PARSE(&a, err, "verify", "--since-head", "42:abc"), -1);
	snprintf(head, sizeof head, "42:%064d", 0);
	head[3] = 'A'; /* verify prints lower case; the daemon refuses upper */
	assert_int_equal(PARSE(&a, err, "verify", "--since-head", head), -1);
	head[3] = 'a';
	assert_int_equal(PARSE(&a, err, "verify", "--since-head", head), 0);
	assert_int_equal(PARSE(&a, err, "verify", "--head", "--since-head", head), -1);
}

static void test_double_dash_ends_options(void **state)
{
	struct args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "status", "--", "-odd"), 0);
	assert_string_equal(a.pos[0], "-odd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_global_options_before_and_after_command_parse_the_same),
	    cmocka_unit_test(test_unknown_option_is_an_error),
	    cmocka_unit_test(test_option_of_another_command_is_an_error),
	    cmocka_unit_test(test_missing_argument_or_value_is_an_error),
	    cmocka_unit_test(test_event_options_map_to_json_fields),
	    cmocka_unit_test(test_absent_event_options_are_omitted),
	    cmocka_unit_test(test_channel_must_be_hotline_or_request),
	    cmocka_unit_test(test_days_and_until_together_is_an_error),
	    cmocka_unit_test(test_required_options_are_enforced),
	    cmocka_unit_test(test_format_values_depend_on_the_command),
	    cmocka_unit_test(test_json_with_another_format_is_an_error),
	    cmocka_unit_test(test_help_anywhere_succeeds_without_checks),
	    cmocka_unit_test(test_help_for_an_unknown_command_is_an_error),
	    cmocka_unit_test(test_lengths_are_bounded),
	    cmocka_unit_test(test_since_head_must_be_id_and_hash),
	    cmocka_unit_test(test_double_dash_ends_options),
	    cmocka_unit_test(test_format_json_is_json),
	    cmocka_unit_test(test_an_option_given_twice_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
