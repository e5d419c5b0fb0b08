/*
 * test_daemon_units.c — the daemon's pure modules: password generation,
 * sessions, time conversions, uid validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dir.h"
#include "passgen.h"
#include "session.h"

static void test_passwords_have_four_classes_and_no_lookalikes(void **state)
{
	char pw[PASSGEN_LEN + 1], prev[PASSGEN_LEN + 1] = "";

	(void)state;
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(passgen_make(pw, sizeof(pw)), 0);
		assert_int_equal(strlen(pw), PASSGEN_LEN);
		assert_true(PASSGEN_LEN >= 14);
		assert_non_null(strpbrk(pw, "ABCDEFGHJKLMNPQRSTUVWXYZ"));
		assert_non_null(strpbrk(pw, "abcdefghijkmnpqrstuvwxyz"));
		assert_non_null(strpbrk(pw, "23456789"));
		assert_non_null(strpbrk(pw, "!#%+-=?@^_"));
		assert_null(strpbrk(pw, "0Oo1lI\"'\\ "));
		assert_string_not_equal(pw, prev);
		memcpy(prev, pw, sizeof(pw));
	}
}

static void test_password_buffer_too_short_is_refused(void **state)
{
	char pw[PASSGEN_LEN];

	(void)state;
	assert_int_equal(passgen_make(pw, sizeof(pw)), -1);
}

static void test_session_roundtrip_and_logout(void **state)
{
	struct sessions *s = session_store_new();
	struct session in = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	char tok[SESSION_TOKEN_LEN + 1], other[SESSION_TOKEN_LEN + 1];
	const struct session *got;

	(void)state;
	assert_int_equal(session_create(s, &in, 60, tok), 0);
	assert_int_equal(strlen(tok), SESSION_TOKEN_LEN);
	got = session_find(s, tok);
	assert_non_null(got);
	assert_string_equal(got->uid, "hd1");
	assert_int_equal(got->roles, ROLE_HELPDESK);
	assert_true(got->expires > time(NULL) + 50);
	assert_int_equal(session_create(s, &in, 60, other), 0);
	assert_string_not_equal(tok, other);
	assert_int_equal(session_drop(s, tok), 0);
	assert_null(session_find(s, tok));
	assert_non_null(session_find(s, other));
	assert_int_equal(session_drop(s, tok), -1);
	session_store_free(s);
}

static void test_garbage_and_tampered_tokens_find_nothing(void **state)
{
	struct sessions *s = session_store_new();
	struct session in = {.uid = "a", .roles = ROLE_ADMIN};
	char tok[SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(session_create(s, &in, 60, tok), 0);
	assert_null(session_find(s, ""));
	assert_null(session_find(s, "short"));
	tok[5] = tok[5] == 'A' ? 'B' : 'A';
	assert_null(session_find(s, tok));
	session_store_free(s);
}

static void test_expired_session_is_gone(void **state)
{
	struct sessions *s = session_store_new();
	struct session in = {.uid = "a", .roles = ROLE_ADMIN};
	char tok[SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(session_create(s, &in, -1, tok), 0);
	assert_null(session_find(s, tok));
	session_store_free(s);
}

static void test_date_bounds_cover_the_local_day(void **state)
{
	char b[CLOCK_ISO_LEN];

	(void)state;
	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
	assert_int_equal(clock_bound("2026-03-01", false, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-02-28T16:00:00.000Z");
	assert_int_equal(clock_bound("2026-03-01", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T15:59:59.999Z");
	assert_int_equal(clock_bound("2026-03-01T08:30:00+08:00", false, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T00:30:00.000Z");
	assert_int_equal(clock_bound("2026-03-01T00:30:00.250Z", false, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T00:30:00.250Z");
	assert_int_equal(clock_bound("yesterday", false, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2026-13-01", false, b, sizeof(b)), -1);
}

static void test_local_display_and_gentime(void **state)
{
	char b[CLOCK_ISO_LEN];
	time_t t;

	(void)state;
	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
	assert_int_equal(clock_local("2026-11-26T01:54:33.123Z", b, sizeof(b)), 0);
	assert_string_equal(b, "2026-11-26T09:54:33.123+08:00");
	assert_int_equal(clock_parse_gentime("20261126015433Z", &t), 0);
	clock_utc(t, b, sizeof(b));
	assert_string_equal(b, "2026-11-26T01:54:33Z");
	assert_int_equal(clock_parse_gentime("000001010000Z", &t), -1);
	assert_int_equal(clock_local("garbage", b, sizeof(b)), -1);
}

static void test_uid_with_metacharacters_is_not_a_uid(void **state)
{
	static const char *bad[] = {"a*", "(uid=*)", "a)(b", "a\\2a", "a,ou=x", "a=b",
	                            "",   "a b",     "a\nb", "a+b",   "a;b"};
	char longname[80];

	(void)state;
	assert_true(dir_valid_uid("alice"));
	assert_true(dir_valid_uid("j.doe-2@corp"));
	assert_true(dir_valid_uid("王丽"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dir_valid_uid(bad[i]))
			fail_msg("\"%s\" accepted as a uid", bad[i]);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(dir_valid_uid(longname));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_passwords_have_four_classes_and_no_lookalikes),
	    cmocka_unit_test(test_password_buffer_too_short_is_refused),
	    cmocka_unit_test(test_session_roundtrip_and_logout),
	    cmocka_unit_test(test_garbage_and_tampered_tokens_find_nothing),
	    cmocka_unit_test(test_expired_session_is_gone),
	    cmocka_unit_test(test_date_bounds_cover_the_local_day),
	    cmocka_unit_test(test_local_display_and_gentime),
	    cmocka_unit_test(test_uid_with_metacharacters_is_not_a_uid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
