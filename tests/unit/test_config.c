/*
 * test_config.c — the configuration parser: known keys, FILE:LINE errors,
 * the 200-byte line limit, secret-file permissions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

struct fixture {
	char dir[64];
	char conf[128];
	char secret[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	FILE *fp;

	snprintf(f->dir, sizeof(f->dir), "/tmp/ldapdesk-config-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->conf, sizeof(f->conf), "%s/ldapdeskd.conf", f->dir);
	snprintf(f->secret, sizeof(f->secret), "%s/bind.pw", f->dir);
	fp = fopen(f->secret, "w");
	assert_non_null(fp);
	fputs("s3cret\n", fp);
	fclose(fp);
	chmod(f->secret, 0600);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Writes a minimal valid config followed by extra lines. */
static void write_conf(const struct fixture *f, const char *extra)
{
	FILE *fp = fopen(f->conf, "w");

	assert_non_null(fp);
	fprintf(fp,
	        "[server]\nlisten = unix:%s/sock\n"
	        "[ldap]\nuri = ldap://127.0.0.1:389/\nbind_dn = cn=svc,dc=example,dc=com\n"
	        "bind_password_file = %s\nuser_base = ou=people,dc=example,dc=com\n"
	        "[audit]\ndatabase = %s/audit.db\n"
	        "[roles]\nadmin = cn=admins,ou=groups,dc=example,dc=com\n%s",
	        f->dir, f->secret, f->dir, extra);
	fclose(fp);
}

static void load_fails_with(const struct fixture *f, const char *extra, const char *want)
{
	struct config *c = NULL;
	char err[512];

	write_conf(f, extra);
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), -1);
	assert_null(c);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_minimal_config_loads_with_defaults(void **state)
{
	struct fixture *f = *state;
	struct config *c = NULL;
	char err[512];

	write_conf(f, "");
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), 0);
	assert_string_equal(c->bind_password, "s3cret");
	assert_string_equal(c->user_attr, "uid");
	assert_int_equal(c->pool_size, 4);
	assert_int_equal(c->timeout_ms, 5000);
	assert_non_null(config_category(c, "unlock-reset"));
	assert_string_equal(config_category(c, "vuln-fix")->label, "漏洞修复");
	config_free(c);
}

/* AD has no uid: a flavour = ad that leaves user_attr out looks users up by
 * sAMAccountName (with "uid" every login was a wrong password); one given
 * is kept. */
static void test_ad_looks_users_up_by_samaccountname(void **state)
{
	struct fixture *f = *state;
	struct config *c = NULL;
	char err[512];

	write_conf(f, "[ldap]\nflavor = ad\n");
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), 0);
	assert_string_equal(c->user_attr, "sAMAccountName");
	config_free(c);
	write_conf(f, "[ldap]\nflavor = ad\nuser_attr = uid\n");
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), 0);
	assert_string_equal(c->user_attr, "uid");
	config_free(c);
}

/* A reload retires the old configuration while requests still hold it:
 * freed by whichever comes last, never while held. (Under the sanitize build
 * a missed free is a leak report and a early one a use-after-free.) */
static void test_retired_config_is_freed_by_its_last_holder(void **state)
{
	struct fixture *f = *state;
	struct config *c = NULL, *d = NULL;
	char err[512];

	write_conf(f, "");
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&c->refs), 0);
	assert_ptr_equal(config_ref(c), c);
	config_ref(c);
	assert_int_equal(atomic_load(&c->refs), 4);
	config_retire(c);
	assert_int_equal(atomic_load(&c->refs), 5); /* retired, still held twice */
	assert_string_equal(c->user_attr, "uid");
	config_unref(c);
	assert_int_equal(atomic_load(&c->refs), 3);
	assert_string_equal(c->bind_password, "s3cret");
	config_unref(c); /* the last holder frees it */

	/* Never retired: the last unref leaves it to its owner. */
	assert_int_equal(config_load(f->conf, &d, err, sizeof(err)), 0);
	config_ref(d);
	config_unref(d);
	assert_int_equal(atomic_load(&d->refs), 0);
	assert_string_equal(d->user_attr, "uid");
	config_unref(NULL);
	config_retire(d); /* no holder: freed at once */
	config_retire(NULL);
}

/* libinih joins an indented line to the previous value and keeps the last
 * of two values of a key: both would silently change what the file says. */
static void test_indented_lines_and_repeated_single_keys_are_errors(void **state)
{
	struct fixture *f = *state;

	load_fails_with(f, "[protect]\ngroups = cn=a,\n  dc=x\n",
	                ":14: an indented line continues the previous value");
	load_fails_with(f, "[ldap]\nuri = ldap://127.0.0.2/\n",
	                ":13: uri is given twice in [ldap] (first at line 4)");
	load_fails_with(f, "[grant.a]\ngroup = cn=a,dc=x\ngroup = cn=b,dc=x\n",
	                "group is given twice in [grant.a]");
}

/* Values -n used to pass that the daemon would then misread. */
static void test_times_zones_and_paths_are_checked_strictly(void **state)
{
	struct fixture *f = *state;

	load_fails_with(f, "[audit]\nbackup_at = 3:00 pm\n", "backup_at: expected HH:MM");
	load_fails_with(f, "[audit]\nbackup_at = 03:00:59\n", "backup_at: expected HH:MM");
	load_fails_with(f, "[audit]\nbackup_at = 24:00\n", "backup_at: expected HH:MM");
	load_fails_with(f, "[server]\ntimezone = Asia\n", "unknown time zone \"Asia\"");
	load_fails_with(f, "[server]\ntimezone = zone.tab\n", "unknown time zone");
	load_fails_with(f, "[server]\ntimezone = /etc/localtime\n", "unknown time zone");
	load_fails_with(f, "[audit]\nbackup_dir = backups\n",
	                "backup_dir: \"backups\" is not an "
	                "absolute path");
	load_fails_with(f, "[server]\nkey_file =\n", "[server] key_file has no value");
	/* What start-up would fail on, -n says first. */
	load_fails_with(f, "[server]\nlisten = localhost:8636\ntls_cert = /etc/hostname\n",
	                "\"localhost:8636\" is not IP:PORT");
	load_fails_with(
	    f,
	    "[server]\nlisten = unix:/tmp/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
	    "is longer than 107 bytes");
}

static void test_grant_sections_and_repeated_keys(void **state)
{
	struct fixture *f = *state;
	struct config *c = NULL;
	char err[512];

	write_conf(f, "[protect]\ngroups = cn=a,dc=x\ngroups = cn=b,dc=x\n"
	              "[grant.procurement]\ngroup = cn=procurement,dc=x\nlabel = 采管系统\n"
	              "max_days = 90\napproval = no\n[category.notice]\nlabel = 通知\n");
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), 0);
	assert_int_equal(c->n_protect, 2);
	assert_string_equal(c->protect[1], "cn=b,dc=x");
	assert_non_null(config_grant(c, "procurement"));
	assert_int_equal(config_grant(c, "procurement")->max_days, 90);
	assert_string_equal(config_grant(c, "procurement")->label, "采管系统");
	assert_null(config_grant(c, "nope"));
	assert_string_equal(config_category(c, "notice")->label, "通知");
	config_free(c);
}

static void test_unknown_key_names_file_and_line(void **state)
{
	struct fixture *f = *state;
	char want[200];

	/* The minimal config has 11 lines; the bad key is line 13. */
	snprintf(want, sizeof(want), "%s:13: unknown key \"colour\" in [ldap]", f->conf);
	load_fails_with(f, "[ldap]\ncolour = blue\n", want);
}

static void test_bad_values_are_errors(void **state)
{
	struct fixture *f = *state;

	load_fails_with(f, "[ldap]\npool_size = lots\n", "pool_size: expected a whole number");
	load_fails_with(f, "[ldap]\nstarttls = maybe\n", "starttls: expected yes or no");
	load_fails_with(f, "[ldap]\nflavor = novell\n", "flavor: expected openldap, 389ds or ad");
	load_fails_with(f, "[audit]\nbackup_at = 25:00\n", "backup_at: expected HH:MM");
	load_fails_with(f, "[server]\ntimezone = Mars/Olympus\n", "unknown time zone");
	load_fails_with(f, "[grant.x]\nlabel = X\n", "[grant.x] has no group");
	{
		char want[600];

		/* FILE:LINE, the section's first key (the extra text starts at line 12) */
		snprintf(want, sizeof(want), "%s:13: [grant.x] has no group", f->conf);
		load_fails_with(f, "[grant.x]\nlabel = X\n", want);
		snprintf(want, sizeof(want), "%s:13: [scope.s] needs group", f->conf);
		load_fails_with(f, "[scope.s]\ndepartments = 财务管理部\n", want);
	}
}

/* 61 scopes fill the membership mask with the three role groups; a 62nd
 * would never be searched, and its members would act unscoped. */
static void test_scopes_beyond_the_mask_are_refused(void **state)
{
	struct fixture *f = *state;
	size_t cap = 62 * 100 + 1, o = 0;
	char *extra = malloc(cap), want[200];

	assert_non_null(extra);
	for (int i = 1; i <= 62; i++)
		o += (size_t)snprintf(extra + o, cap - o,
		                      "[scope.s%d]\ngroup = cn=g%d,dc=x\ndepartments = d\n", i, i);
	/* scope 62's group line: 11 lines of the minimal config + 3 per scope */
	snprintf(want, sizeof(want), "%s:%d: too many [scope.*] sections: at most 61", f->conf,
	         11 + 3 * 61 + 2);
	load_fails_with(f, extra, want);
	extra[o - strlen("[scope.s62]\ngroup = cn=g62,dc=x\ndepartments = d\n")] = '\0';
	{
		struct config *c = NULL;
		char err[512];

		write_conf(f, extra);
		if (config_load(f->conf, &c, err, sizeof(err)) != 0)
			fail_msg("61 scopes: %s", err);
		assert_int_equal(c->n_scopes, 61);
		config_free(c);
	}
	free(extra);
}

static void test_line_over_200_bytes_is_an_error_with_its_number(void **state)
{
	struct fixture *f = *state;
	char extra[400], want[200];

	snprintf(extra, sizeof(extra), "[protect]\ngroups = cn=%0250d\n", 0);
	snprintf(want, sizeof(want), "%s:13: line is", f->conf);
	load_fails_with(f, extra, want);
}

/* The limit counts the line break: 198 bytes of text fit with LF, 197 with
 * CRLF; the message gives the limit that applies (it said "198 bytes long;
 * the limit is 198" for a CRLF line). */
static void test_line_limit_counts_a_crlf_break(void **state)
{
	struct fixture *f = *state;
	char extra[400], want[200];

	/* "groups = cn=" (12) + 186 digits = 198 bytes of text */
	snprintf(extra, sizeof(extra), "[protect]\r\ngroups = cn=%0186d\r\n", 0);
	snprintf(want, sizeof(want),
	         "%s:13: line is 198 bytes long; the limit is 197 with a CRLF line break", f->conf);
	load_fails_with(f, extra, want);
}

/* A "[section" without its "]" is named at its own line, not as the
 * unknown keys it makes of the lines after it. */
static void test_section_without_bracket_is_named_at_its_line(void **state)
{
	struct fixture *f = *state;
	char want[200];

	snprintf(want, sizeof(want), "%s:12: syntax error", f->conf);
	load_fails_with(f, "[ldap\npool_size = 2\n", want);
}

/* No listen key: DESIGN's 127.0.0.1:8636 (the client's default URL), so a
 * TCP listener, which wants its TLS files: the error names that address. */
static void test_listen_defaults_to_designs_address(void **state)
{
	struct fixture *f = *state;
	struct config *c = NULL;
	char err[512];
	FILE *fp = fopen(f->conf, "w");

	assert_non_null(fp);
	fprintf(fp,
	        "[ldap]\nuri = ldap://127.0.0.1:389/\nbind_dn = cn=svc,dc=example,dc=com\n"
	        "bind_password_file = %s\nuser_base = ou=people,dc=example,dc=com\n"
	        "[audit]\ndatabase = %s/audit.db\n",
	        f->secret, f->dir);
	fclose(fp);
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), -1);
	if (strstr(err, "127.0.0.1:8636") == NULL || strstr(err, "unix: sockets") == NULL)
		fail_msg("error \"%s\" does not name the default TCP listener", err);
}

static void test_tcp_listener_without_tls_is_refused(void **state)
{
	struct fixture *f = *state;

	load_fails_with(f, "[server]\nlisten = 127.0.0.1:8636\n",
	                "plaintext is allowed only on unix: sockets");
}

static void test_group_readable_secret_is_refused_naming_the_file(void **state)
{
	struct fixture *f = *state;
	char want[200];

	chmod(f->secret, 0640);
	snprintf(want, sizeof(want), "%s is readable by group or others", f->secret);
	load_fails_with(f, "", want);
	chmod(f->secret, 0620); /* not readable by the group: said as it is */
	snprintf(want, sizeof(want), "%s is writable or executable by group or others", f->secret);
	load_fails_with(f, "", want);
}

static void test_missing_file_and_required_key(void **state)
{
	struct fixture *f = *state;
	struct config *c = NULL;
	char err[512], path[200];

	snprintf(path, sizeof(path), "%s/absent.conf", f->dir);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	write_conf(f, "");
	/* Drop uri by rewriting the file without it. */
	{
		FILE *fp = fopen(f->conf, "w");

		fprintf(fp, "[server]\nlisten = unix:/tmp/x\n[ldap]\nbind_dn = cn=x\n");
		fclose(fp);
	}
	assert_int_equal(config_load(f->conf, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[ldap] uri: missing"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_minimal_config_loads_with_defaults, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_grant_sections_and_repeated_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_times_zones_and_paths_are_checked_strictly, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_indented_lines_and_repeated_single_keys_are_errors,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_key_names_file_and_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_values_are_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_limit_counts_a_crlf_break, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_section_without_bracket_is_named_at_its_line,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scopes_beyond_the_mask_are_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_line_over_200_bytes_is_an_error_with_its_number,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_defaults_to_designs_address, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_listener_without_tls_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_group_readable_secret_is_refused_naming_the_file,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file_and_required_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ad_looks_users_up_by_samaccountname, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_retired_config_is_freed_by_its_last_holder, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
