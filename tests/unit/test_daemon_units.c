/*
 * test_daemon_units.c — the daemon's pure modules: password generation,
 * sessions, time conversions, uid validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fds.h"
#include "dir.h"
#include "limit.h"
#include "passgen.h"
#include "session.h"
#include "throttle.h"
#include "ucache.h"

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

/* A policy asking more than 16 characters gets them (an AD domain with
 * minPwdLength 20 refused every 16-character one), within PASSGEN_MAX. */
static void test_password_length_follows_the_policy(void **state)
{
	char pw[PASSGEN_MAX + 1];

	(void)state;
	assert_int_equal(passgen_length(0), PASSGEN_LEN);
	assert_int_equal(passgen_length(8), PASSGEN_LEN);
	assert_int_equal(passgen_length(40), 40);
	assert_int_equal(passgen_length(100000), PASSGEN_MAX);
	assert_int_equal(passgen_make_n(pw, sizeof(pw), 40), 0);
	assert_int_equal(strlen(pw), 40);
	assert_int_equal(passgen_make_n(pw, sizeof(pw), PASSGEN_MAX), 0);
	assert_int_equal(strlen(pw), PASSGEN_MAX);
	assert_int_equal(passgen_make_n(pw, 40, 40), -1); /* no room for the NUL */
	assert_int_equal(passgen_make_n(pw, sizeof(pw), PASSGEN_LEN - 1), -1);
	assert_int_equal(passgen_make_n(pw, sizeof(pw), PASSGEN_MAX + 1), -1);
}

static char keydir[64];

static struct sessions *store(int idle)
{
	char path[128], err[256];
	struct sessions *s;

	snprintf(path, sizeof(path), "%s/session.key", keydir);
	s = session_store_new(path, idle, err, sizeof(err));
	if (s == NULL || session_store_started(s, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	return s;
}

static int keydir_setup(void **state)
{
	(void)state;
	snprintf(keydir, sizeof(keydir), "/tmp/ldapdesk-keys-XXXXXX");
	return mkdtemp(keydir) == NULL ? -1 : 0;
}

static int keydir_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", keydir);
	return system(cmd);
}

static void test_session_roundtrip_and_logout(void **state)
{
	struct sessions *s = store(600);
	struct session in = {
	    .uid = "hd1", .dn = "uid=hd1,ou=信息中心,dc=x", .roles = ROLE_HELPDESK};
	char tok[SESSION_TOKEN_MAX], other[SESSION_TOKEN_MAX];
	const struct session *got;

	(void)state;
	assert_int_equal(session_create(s, &in, 60, tok), 0);
	got = session_find(s, tok);
	assert_non_null(got);
	assert_string_equal(got->uid, "hd1");
	assert_string_equal(got->dn, "uid=hd1,ou=信息中心,dc=x");
	assert_int_equal(got->roles, ROLE_HELPDESK);
	assert_true(got->expires > time(NULL) + 50);
	assert_int_equal(session_create(s, &in, 60, other), 0);
	assert_string_not_equal(tok, other);
	{
		struct session ended;

		assert_int_equal(session_revoke(s, tok, &ended), 0);
		assert_string_equal(ended.uid, "hd1");
		assert_null(session_find(s, tok));
		assert_non_null(session_find(s, other));
		assert_int_equal(session_revoke(s, tok, &ended), -1);
	}
	session_store_free(s);
}

/* A login refused after its session was made (it could not be recorded)
 * gives its slot back at once: a revoked one would stay taken until its
 * token expired, and a failing store would fill the table with them. */
static void test_discarded_session_frees_its_slot(void **state)
{
	struct sessions *s = store(600);
	struct session in = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	char first[SESSION_TOKEN_MAX], tok[SESSION_TOKEN_MAX];
	int n = 0;

	(void)state;
	assert_int_equal(session_create(s, &in, 600, first), 0);
	/* Many operators (one operator's logins would end its own oldest). */
	for (; n < 2 * SESSION_MAX; n++) {
		snprintf(in.uid, sizeof(in.uid), "op%d", n);
		if (session_create(s, &in, 600, tok) == -1)
			break;
	}
	assert_int_equal(n, SESSION_MAX - 1); /* the table is full now */
	session_discard(s, first);
	assert_null(session_find(s, first));
	assert_int_equal(session_create(s, &in, 600, tok), 0);
	assert_int_equal(session_create(s, &in, 600, tok), -1);
	session_store_free(s);
}

/* base64url without padding, as tokens are written (session.c keeps its own
 * codec private). */
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_enc(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return o;
}

static size_t b64url_dec(const char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p = strchr(b64url, in[i]);

		assert_non_null(p);
		acc = (acc << 6) | (unsigned)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

/* tok with its payload's fourth line (the roles) replaced by roles, the
 * signature kept: a well-formed token whose MAC no longer matches. */
static void forge_roles(const char *tok, const char *roles, char *out)
{
	const char *dot = strchr(tok, '.');
	unsigned char payload[SESSION_TOKEN_MAX];
	char forged[SESSION_TOKEN_MAX], *line = NULL, *from;
	size_t n, o;

	assert_non_null(dot);
	n = b64url_dec(tok, (size_t)(dot - tok), payload);
	payload[n] = '\0';
	/* v1 \n uid \n dn \n roles \n ... */
	from = (char *)payload;
	for (int i = 0; i < 3; i++) {
		line = strchr(from, '\n');
		assert_non_null(line);
		from = line + 1;
	}
	assert_true(strlen(line + 1) < sizeof(forged));
	snprintf(forged, sizeof(forged), "%.*s\n%s%s", (int)(line - (char *)payload), payload,
	         roles, strchr(line + 1, '\n'));
	o = b64url_enc((const unsigned char *)forged, strlen(forged), out);
	snprintf(out + o, SESSION_TOKEN_MAX - o, "%s", dot);
}

/* The signature is HMAC-SHA256 of the payload under the key file's 32
 * bytes, computed here with OpenSSL's one-shot HMAC(): tokens issued before
 * a restart into another version must still be found. Twice, as the store
 * keys its HMAC once and starts it again for each token. */
static void test_token_signature_is_hmac_sha256_of_the_key_file(void **state)
{
	struct sessions *s = store(600);
	struct session in = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	unsigned char key[32], payload[SESSION_TOKEN_MAX], sig[64], want[32];
	unsigned int wlen = 0;
	char path[128], tok[SESSION_TOKEN_MAX];
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/session.key", keydir);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(key, 1, sizeof(key), fp), sizeof(key));
	fclose(fp);
	for (int round = 0; round < 2; round++) {
		const char *dot;
		size_t n;

		assert_int_equal(session_create(s, &in, 60, tok), 0);
		dot = strchr(tok, '.');
		assert_non_null(dot);
		n = b64url_dec(tok, (size_t)(dot - tok), payload);
		assert_int_equal(b64url_dec(dot + 1, strlen(dot + 1), sig), 32);
		assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), payload, n, want, &wlen));
		assert_int_equal(wlen, 32);
		assert_memory_equal(sig, want, 32);
		assert_non_null(session_find(s, tok));
	}
	session_store_free(s);
}

static void test_forged_and_tampered_tokens_find_nothing(void **state)
{
	struct sessions *s = store(600);
	struct session in = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	char tok[SESSION_TOKEN_MAX], bad[SESSION_TOKEN_MAX];
	char *dot;

	(void)state;
	assert_int_equal(session_create(s, &in, 60, tok), 0);
	assert_null(session_find(s, ""));
	assert_null(session_find(s, "short"));
	assert_null(session_find(s, "abc.def"));
	/* The payload re-encoded unchanged, with its signature: the same token
	 * (so the forgery below differs from it in the roles alone). */
	forge_roles(tok, "1", bad);
	assert_string_equal(bad, tok);
	assert_non_null(session_find(s, bad));
	/* The roles line changed (helpdesk 1 -> all roles 7), still well formed,
	 * the signature kept: the MAC must cover it. */
	forge_roles(tok, "7", bad);
	assert_string_not_equal(bad, tok);
	assert_null(session_find(s, bad));
	/* Change one payload character. */
	memcpy(bad, tok, sizeof(bad));
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	assert_null(session_find(s, bad));
	/* Change one signature character. */
	memcpy(bad, tok, sizeof(bad));
	dot = strchr(bad, '.');
	dot[2] = dot[2] == 'A' ? 'B' : 'A';
	assert_null(session_find(s, bad));
	assert_non_null(session_find(s, tok));
	session_store_free(s);
}

static void test_expired_and_idle_sessions_are_gone(void **state)
{
	struct sessions *s = store(1);
	struct session in = {.uid = "a", .dn = "uid=a", .roles = ROLE_ADMIN};
	char tok[SESSION_TOKEN_MAX], tok2[SESSION_TOKEN_MAX];

	(void)state;
	assert_int_equal(session_create(s, &in, -1, tok), 0);
	assert_null(session_find(s, tok));
	assert_int_equal(session_create(s, &in, 60, tok2), 0);
	assert_non_null(session_find(s, tok2));
	sleep(3);
	assert_null(session_find(s, tok2));
	session_store_free(s);
}

/* One operator logging in again and again ends its own oldest sessions,
 * never takes the table from the others. */
static void test_one_operator_holds_a_bounded_number_of_sessions(void **state)
{
	struct sessions *s = store(600);
	struct session hd1 = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	struct session adm1 = {.uid = "adm1", .dn = "uid=adm1,dc=x", .roles = ROLE_ADMIN};
	char first[SESSION_TOKEN_MAX], second[SESSION_TOKEN_MAX], tok[SESSION_TOKEN_MAX];
	char admin[SESSION_TOKEN_MAX];

	(void)state;
	assert_int_equal(session_create(s, &adm1, 600, admin), 0);
	assert_int_equal(session_create(s, &hd1, 600, first), 0);
	assert_int_equal(session_create(s, &hd1, 600, second), 0);
	for (int i = 2; i < SESSION_PER_OPERATOR; i++)
		assert_int_equal(session_create(s, &hd1, 600, tok), 0);
	assert_non_null(session_find(s, first)); /* 32 of hd1's, all live; second is now the LRU */
	assert_int_equal(session_create(s, &hd1, 600, tok), 0);
	assert_null(session_find(s, second)); /* the 33rd ended the least recently used */
	assert_non_null(session_find(s, first));
	for (int i = 0; i < SESSION_MAX + 10; i++)
		assert_int_equal(session_create(s, &hd1, 600, tok), 0);
	assert_null(session_find(s, first)); /* a flood ends them all in turn */
	assert_non_null(session_find(s, tok));
	assert_non_null(session_find(s, admin));
	/* Ending the operator (disabled, deleted, moved) ends all of them. */
	assert_int_equal(session_end_operator(s, "UID=hd1,dc=x"), SESSION_PER_OPERATOR);
	assert_null(session_find(s, tok));
	assert_non_null(session_find(s, admin));
	session_store_free(s);
}

static void test_tokens_survive_a_stop_not_a_crash(void **state)
{
	struct sessions *s = store(600);
	struct session in = {.uid = "adm1", .dn = "uid=adm1", .roles = ROLE_ADMIN};
	char kept[SESSION_TOKEN_MAX], ended[SESSION_TOKEN_MAX], err[256];
	struct session *got, out;

	(void)state;
	assert_int_equal(session_create(s, &in, 60, kept), 0);
	assert_int_equal(session_create(s, &in, 60, ended), 0);
	assert_int_equal(session_revoke(s, ended, &out), 0);
	assert_int_equal(session_store_save(s, err, sizeof(err)), 0);
	session_store_free(s);
	s = store(600);
	got = session_find(s, kept);
	assert_non_null(got);
	assert_string_equal(got->uid, "adm1");
	assert_true(session_stale(s, got)); /* roles must be re-read after a restart */
	/* ... and its scope bits are never taken as current until then */
	assert_int_equal(got->roles_gen, UINT_MAX);
	session_set_roles(s, got, ROLE_HELPDESK, 0, session_gen(s));
	assert_false(session_stale(s, got));
	assert_int_equal(session_find(s, kept)->roles, ROLE_HELPDESK);
	/* A reload makes roles and scopes stale; a read begun before it does
	 * not make them fresh again. */
	{
		unsigned before = session_gen(s);

		session_config_changed(s);
		assert_true(session_stale(s, got));
		session_set_roles(s, got, ROLE_HELPDESK, 0, before);
		assert_true(session_stale(s, got));
		session_set_roles(s, got, ROLE_HELPDESK, 0, session_gen(s));
		assert_false(session_stale(s, got));
	}
	assert_null(session_find(s, ended));
	/* A crash (no save): the start emptied the saved file, so nothing of
	 * this run comes back — not even a live session. */
	session_store_free(s);
	s = store(600);
	assert_null(session_find(s, kept));
	session_store_free(s);
	/* Ended by a role re-read (roles 0): not saved either. */
	s = store(600);
	assert_int_equal(session_create(s, &in, 60, kept), 0);
	session_set_roles(s, session_find(s, kept), 0, 0, session_gen(s));
	assert_null(session_find(s, kept));
	assert_int_equal(session_store_save(s, err, sizeof(err)), 0);
	session_store_free(s);
	s = store(600);
	assert_null(session_find(s, kept));
	session_store_free(s);
}

/* A start refused after the sessions were read (a port in use, say) keeps
 * the saved file: the next start takes them in. */
static void test_a_refused_start_keeps_the_saved_sessions(void **state)
{
	struct sessions *s = store(600);
	struct session in = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	char tok[SESSION_TOKEN_MAX], path[128], err[256];

	(void)state;
	assert_int_equal(session_create(s, &in, 60, tok), 0);
	assert_int_equal(session_store_save(s, err, sizeof(err)), 0);
	session_store_free(s);
	snprintf(path, sizeof(path), "%s/session.key", keydir);
	s = session_store_new(path, 600, err, sizeof(err)); /* and then the start fails */
	assert_non_null(s);
	session_store_free(s);
	s = store(600);
	assert_non_null(session_find(s, tok));
	session_store_free(s);
}

/* The saved file is the daemon's, but its numbers are checked: a last use
 * in the future would never go idle, a huge one would overflow. */
static void test_saved_sessions_with_impossible_times_are_dropped(void **state)
{
	char path[160], line[200];
	struct sessions *s;
	FILE *fp;
	time_t now = time(NULL);

	(void)state;
	session_store_free(store(600)); /* the key */
	snprintf(path, sizeof(path), "%s/session.key.sessions", keydir);
	assert_non_null(fp = fopen(path, "w"));
	snprintf(line, sizeof(line), "%032d %lld %lld uid=a\n", 1, (long long)now + 86400,
	         (long long)now + 600);
	fputs(line, fp);
	fprintf(fp, "%032d -9223372036854775808 9223372036854775807 uid=b\n", 2);
	fclose(fp);
	s = store(600);
	assert_int_equal(session_end_operator(s, "uid=a"), 0);
	assert_int_equal(session_end_operator(s, "uid=b"), 0);
	session_store_free(s);
}

/* A login under way when its operator is ended (disabled, moved, deleted)
 * must make no session: the mark taken at its start says so. */
static void test_a_login_sees_its_operator_ended_meanwhile(void **state)
{
	struct sessions *s = store(600);
	unsigned long long mark = session_ended_mark(s);

	(void)state;
	assert_false(session_ended_since(s, "uid=hd2,dc=x", mark));
	session_end_operator(s, "uid=other,dc=x");
	assert_false(session_ended_since(s, "uid=hd2,dc=x", mark));
	session_end_operator(s, "UID=hd2,dc=x");
	assert_true(session_ended_since(s, "uid=hd2,dc=x", mark));
	assert_false(session_ended_since(s, "uid=hd2,dc=x", session_ended_mark(s)));
	/* More ended since than are kept: cannot tell, so yes. */
	mark = session_ended_mark(s);
	for (int i = 0; i < 100; i++)
		session_end_operator(s, "uid=other,dc=x");
	assert_true(session_ended_since(s, "uid=hd2,dc=x", mark));
	session_store_free(s);
}

/* The idle time goes on across a restart: a token idle too long before the
 * stop is refused after it, and a saved session's operator can be ended
 * before its token is seen again. */
static void test_idle_time_survives_a_restart(void **state)
{
	struct sessions *s = store(2);
	struct session in = {.uid = "hd1", .dn = "uid=hd1,dc=x", .roles = ROLE_HELPDESK};
	char idle[SESSION_TOKEN_MAX], fresh[SESSION_TOKEN_MAX], err[256];

	(void)state;
	assert_int_equal(session_create(s, &in, 60, idle), 0);
	sleep(2);
	assert_int_equal(session_create(s, &in, 60, fresh), 0);
	assert_int_equal(session_store_save(s, err, sizeof(err)), 0);
	session_store_free(s);
	sleep(1); /* idle is now 3 s old: over the 2 s limit */
	s = store(2);
	assert_null(session_find(s, idle));
	assert_int_equal(session_end_operator(s, "uid=hd1,dc=x"), 1);
	assert_null(session_find(s, fresh));
	session_store_free(s);
}

static void test_key_file_readable_by_others_is_refused(void **state)
{
	char path[128], err[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/session.key", keydir);
	session_store_free(store(600));
	assert_int_equal(chmod(path, 0644), 0);
	assert_null(session_store_new(path, 600, err, sizeof(err)));
	assert_non_null(strstr(err, "mode 0600"));
}

struct sums {
	unsigned long total;
	int calls, overflow_calls;
	char last_key[64];
};

static void sum_cb(void *arg, const struct throttle_sum *s)
{
	struct sums *t = arg;

	t->total += s->count;
	t->calls++;
	t->overflow_calls += s->overflow;
	assert_true(!s->overflow || s->addr == NULL);
	snprintf(t->last_key, sizeof(t->last_key), "%s", s->key);
	assert_true(s->first <= s->last);
}

static void test_throttled_refusals_are_counted_after_the_first(void **state)
{
	struct throttle *t = throttle_new(2);
	struct sums s = {0};
	time_t now = 1000000;

	(void)state;
	assert_int_equal(throttle_note(t, "login-user:hd1", "10.0.0.1", now), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(throttle_note(t, "login-user:hd1", "10.0.0.1", now + i), 1);
	assert_int_equal(throttle_note(t, "login-addr:10.0.0.2", "10.0.0.2", now), 0);
	/* Full: keys past it are counted by their kind, the first of its
	 * period recorded (were each recorded, cap sources holding the table
	 * would let any other add a pair per request). */
	assert_int_equal(throttle_note(t, "login-user:hd2", NULL, now), 0);
	assert_int_equal(throttle_note(t, "login-user:hd2", NULL, now), 1);
	assert_int_equal(throttle_note(t, "login-user:hd3", NULL, now + 1), 1);
	assert_int_equal(throttle_note(t, "anon-addr:10.0.0.9", "10.0.0.9", now + 1), 0);
	assert_int_equal(throttle_note(t, "anon-addr:10.0.0.8", "10.0.0.8", now + 2), 1);
	throttle_flush(t, now + 10, 60, sum_cb, &s);
	assert_int_equal(s.total, 5 + 2 + 1);
	assert_int_equal(s.calls, 3);
	assert_int_equal(s.overflow_calls, 2);
	assert_string_equal(s.last_key, "anon-addr"); /* the kind alone */
	memset(&s, 0, sizeof(s));
	throttle_flush(t, now + 90, 60, sum_cb, &s); /* all idle: forgotten */
	assert_int_equal(s.calls, 0);
	assert_int_equal(throttle_note(t, "login-user:hd1", "10.0.0.1", now), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(throttle_note(t, "login-user:hd1", "10.0.0.1", now + i), 1);
	assert_int_equal(throttle_note(t, "login-addr:10.0.0.2", "10.0.0.2", now), 0);
	memset(&s, 0, sizeof(s));
	throttle_flush(t, now + 10, 60, sum_cb, &s);
	assert_int_equal(s.total, 5);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.last_key, "login-user:hd1");
	/* still in its period: counted, and nothing is flushed twice */
	assert_int_equal(throttle_note(t, "login-user:hd1", NULL, now + 20), 1);
	memset(&s, 0, sizeof(s));
	throttle_flush(t, now + 30, 60, sum_cb, &s);
	assert_int_equal(s.total, 1);
	/* idle for 60 s: forgotten, the next refusal opens a new period */
	throttle_flush(t, now + 90, 60, sum_cb, &s);
	assert_int_equal(throttle_note(t, "login-user:hd1", NULL, now + 91), 0);
	/* idle 0 (stop): everything goes, counts first */
	assert_int_equal(throttle_note(t, "login-user:hd1", NULL, now + 92), 1);
	memset(&s, 0, sizeof(s));
	throttle_flush(t, now + 92, 0, sum_cb, &s);
	assert_int_equal(s.total, 1);
	assert_int_equal(throttle_note(t, "login-user:hd1", NULL, now + 93), 0);
	throttle_free(t);
}

static void test_limits_count_within_a_window(void **state)
{
	struct limits *l = limits_new();
	time_t now = 1000000;

	(void)state;
	assert_int_equal(limits_wait(l, "login-user:hd1", 3, 60, now), 0);
	for (int i = 0; i < 3; i++)
		limits_count(l, "login-user:hd1", 60, now + i);
	assert_int_equal(limits_wait(l, "login-user:hd1", 3, 60, now + 10), 50);
	assert_int_equal(limits_wait(l, "login-user:hd2", 3, 60, now + 10), 0);
	assert_int_equal(limits_wait(l, "login-user:hd1", 3, 60, now + 61), 0);
	limits_count(l, "reset:x", 3600, time(NULL));
	limits_clear(l, "reset:x");
	assert_int_equal(limits_wait(l, "reset:x", 1, 3600, time(NULL)), 0);
	/* A flood of one-count keys (more than the table holds) does not push
	 * out a counter that is about to throttle. */
	for (int i = 0; i < 3; i++)
		limits_count(l, "login-user:adm1", 900, now + 100);
	for (int i = 0; i < 20000; i++) {
		char k[32];

		snprintf(k, sizeof(k), "login-user:x%d", i);
		limits_count(l, k, 900, now + 101);
	}
	assert_true(limits_wait(l, "login-user:adm1", 3, 900, now + 102) > 0);
	{
		char src[64];

		limits_source("2001:db8:1:2:aaaa::1", src, sizeof(src));
		assert_string_equal(src, "2001:db8:1:2::/64");
		limits_source("192.0.2.7", src, sizeof(src));
		assert_string_equal(src, "192.0.2.7");
		limits_source("unix", src, sizeof(src));
		assert_string_equal(src, "unix");
	}
	limits_free(l);
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
	/* Before 1970 (nothing is stored there): 1970's first ms, which sorts
	 * before every stored time ("999-12-31..." would sort after them). */
	assert_int_equal(clock_bound("1000-01-01", false, b, sizeof(b)), 0);
	assert_string_equal(b, "1970-01-01T00:00:00.000Z");
	assert_int_equal(clock_bound("0001-01-01", true, b, sizeof(b)), 0);
	assert_string_equal(b, "1970-01-01T00:00:00.000Z");
	assert_int_equal(clock_bound("1969-12-31T23:00:00Z", false, b, sizeof(b)), 0);
	assert_string_equal(b, "1970-01-01T00:00:00.000Z");
	assert_int_equal(clock_bound("yesterday", false, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2026-13-01", false, b, sizeof(b)), -1);
	/* Days a month does not have are errors, not the next month (a report
	 * --to 2026-06-31 would reach into July). */
	assert_int_equal(clock_bound("2026-06-31", true, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2026-02-29", false, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2024-02-29", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2024-02-29T15:59:59.999Z");
	assert_int_equal(clock_bound("2026-02-30T10:00:00Z", false, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2026-03-01T24:00:00Z", false, b, sizeof(b)), -1);
	/* ISO 8601 without seconds: local, or with a zone; a fraction needs seconds. */
	assert_int_equal(clock_bound("2026-03-01T09:00", false, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T01:00:00.000Z");
	/* An end covers its last digit's unit: the minute, the second, the
	 * tenth; to the ms it is exact. */
	assert_int_equal(clock_bound("2026-03-01T09:00+08:00", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T01:00:59.999Z");
	assert_int_equal(clock_bound("2026-03-01T09:00:14", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T01:00:14.999Z");
	assert_int_equal(clock_bound("2026-03-01T09:00:14", false, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T01:00:14.000Z");
	assert_int_equal(clock_bound("2026-03-01T09:00:14.5Z", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T09:00:14.599Z");
	assert_int_equal(clock_bound("2026-03-01T09:00:14.25Z", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T09:00:14.259Z");
	assert_int_equal(clock_bound("2026-03-01T09:00:14.250Z", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T09:00:14.250Z");
	assert_int_equal(clock_bound("2026-12-31T23:59:59Z", true, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-12-31T23:59:59.999Z");
	assert_int_equal(clock_bound("2026-03-01T09:00Z", false, b, sizeof(b)), 0);
	assert_string_equal(b, "2026-03-01T09:00:00.000Z");
	assert_int_equal(clock_bound("2026-03-01T09:00.5Z", false, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2026-03-01T09:0", false, b, sizeof(b)), -1);
	assert_int_equal(clock_bound("2026-03-01T09:00:5", false, b, sizeof(b)), -1);
	{
		time_t t;

		/* An end of term given as a date is that whole day (its last second). */
		assert_int_equal(clock_parse_until("2026-03-01", &t), 0);
		clock_utc(t, b, sizeof(b));
		assert_string_equal(b, "2026-03-01T15:59:59Z");
		assert_int_equal(clock_parse_until("2026-03-01T09:00", &t), 0);
		clock_utc(t, b, sizeof(b));
		assert_string_equal(b, "2026-03-01T01:00:00Z");
		assert_int_equal(clock_parse_until("2026-02-30", &t), -1);
	}
}

/* The entry two DNs share: whole RDNs only (an escaped ',' is no boundary,
 * "dc=xexample" is not under "dc=example"), in any spelling. */
static void test_dn_ancestor_is_the_deepest_entry_in_common(void **state)
{
	struct {
		const char *a, *b, *want; /* want NULL: none in common */
	} cases[] = {
	    {"ou=people,dc=example,dc=com", "cn=x,ou=groups,dc=example,dc=com",
	     "dc=example,dc=com"},
	    {"ou=people,dc=example,dc=com", "OU=People,DC=Example,dc=com",
	     "ou=people,dc=example,dc=com"},
	    {"cn=a\\,dc=com,ou=t,dc=example,dc=com", "ou=t,dc=example,dc=com",
	     "ou=t,dc=example,dc=com"},
	    {"ou=people,dc=example,dc=com", "commonName=g,ou=teams,dc=example,dc=com",
	     "dc=example,dc=com"},
	    {"ou=people,dc=example,dc=com", "ou=people,dc=xexample,dc=com", "dc=com"},
	    {"ou=people,dc=example,dc=com", "ou=people,dc=example,dc=org", NULL},
	    {"not a dn", "dc=com", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = dir_dn_ancestor(cases[i].a, cases[i].b);

		if (cases[i].want == NULL)
			assert_null(got);
		else
			assert_string_equal(got, cases[i].want);
		free(got);
	}
}

/* A group DN in the configuration spelled with an attribute's long name or
 * OID names the entry the directory returns under its short name. */
static void test_dn_spellings_of_one_entry_compare_equal(void **state)
{
	char *a = dir_dn_canon("commonName=Protected, organizationalUnitName=groups,DC=example,"
	                       "0.9.2342.19200300.100.1.25=org");
	char *b = dir_dn_canon("cn=protected,ou=groups,dc=example,dc=org");
	char *c = dir_dn_canon("2.5.4.3=protected,ou=groups,dc=example,dc=org");

	(void)state;
	assert_non_null(a);
	assert_string_equal(a, "cn=protected,ou=groups,dc=example,dc=org");
	assert_non_null(b);
	assert_string_equal(a, b);
	assert_non_null(c);
	assert_string_equal(c, b);
	assert_true(dir_dn_under("commonName=x,organizationalUnitName=groups,dc=example,dc=org",
	                         "ou=groups,dc=example,dc=org"));
	assert_true(dir_dn_equal("userid=bob,ou=people,dc=example,dc=org",
	                         "UID=bob,ou=people,dc=example,dc=org"));
	assert_false(
	    dir_dn_under("cn=x,ou=other,dc=example,dc=org", "ou=groups,dc=example,dc=org"));
	assert_false(
	    dir_dn_equal("cn=x,ou=groups,dc=example,dc=org", "sn=x,ou=groups,dc=example,dc=org"));
	assert_null(dir_dn_canon("not a dn"));
	free(a);
	free(b);
	free(c);
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

/* The uid -> DN cache: case-insensitive, expires, forgets moved subtrees,
 * and stays within its slots (a colliding uid replaces, never grows). */
static void test_user_cache_expires_and_forgets(void **state)
{
	struct ucache *c = ucache_new(4, 600);
	char *dn = NULL, *dept = NULL, *name = NULL;
	char uid[16];

	(void)state;
	assert_non_null(c);
	ucache_put(c, "Alice", "uid=alice,ou=市场营销中心,ou=people,dc=example,dc=com",
	           "市场营销中心", 1000);
	/* Found whatever the case asked, under the name it was put with. */
	assert_true(ucache_get(c, "ALICE", 1599, &name, &dn, &dept));
	assert_string_equal(name, "Alice");
	assert_string_equal(dn, "uid=alice,ou=市场营销中心,ou=people,dc=example,dc=com");
	assert_string_equal(dept, "市场营销中心");
	free(name);
	free(dn);
	free(dept);
	assert_false(ucache_get(c, "alice", 1600, NULL, &dn, &dept)); /* 600 s old */
	assert_false(ucache_get(c, "bob", 1001, NULL, &dn, &dept));
	ucache_put(c, "bob", "uid=bob,ou=物资采购中心,ou=people,dc=example,dc=com", NULL, 1000);
	ucache_drop(c, "ou=物资采购中心,ou=people,dc=example,dc=com");
	assert_false(ucache_get(c, "bob", 1001, NULL, &dn, &dept));
	/* 100 uids in 4 slots: at most 4 are found, each with its own DN. */
	for (int i = 0; i < 100; i++) {
		char d[64];

		snprintf(uid, sizeof(uid), "u%d", i);
		snprintf(d, sizeof(d), "uid=u%d,dc=example,dc=com", i);
		ucache_put(c, uid, d, NULL, 2000);
	}
	int found = 0;
	for (int i = 0; i < 100; i++) {
		char want[64];

		snprintf(uid, sizeof(uid), "u%d", i);
		snprintf(want, sizeof(want), "uid=u%d,dc=example,dc=com", i);
		if (ucache_get(c, uid, 2001, NULL, &dn, &dept)) {
			found++;
			assert_string_equal(dn, want);
			assert_null(dept);
			free(dn);
		}
	}
	assert_int_equal(found, 4); /* one set of 4: full, never more */
	ucache_drop(c, NULL);
	snprintf(uid, sizeof(uid), "u99");
	assert_false(ucache_get(c, uid, 2001, NULL, &dn, &dept));
	ucache_free(c);
}

static bool cached(struct ucache *c, const char *uid, time_t now)
{
	char *dn = NULL, *dept = NULL;
	bool hit = ucache_get(c, uid, now, NULL, &dn, &dept);

	free(dn);
	free(dept);
	return hit;
}

/* Set-associative: uids that share a set all stay until it is full; then
 * the one stored longest ago goes. A bench-sized population fits whole
 * (direct-mapped, a fifth of it collided and missed). */
static void test_user_cache_keeps_colliding_uids(void **state)
{
	struct ucache *c = ucache_new(8, 600); /* one set of 8 */
	char uid[16];
	int found = 0;

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < 8; i++) {
		snprintf(uid, sizeof(uid), "u%d", i);
		ucache_put(c, uid, "uid=x,dc=example,dc=com", NULL, 1000 + i);
	}
	for (int i = 0; i < 8; i++) {
		snprintf(uid, sizeof(uid), "u%d", i);
		found += cached(c, uid, 1010);
	}
	assert_int_equal(found, 8);
	ucache_put(c, "u8", "uid=u8,dc=example,dc=com", NULL, 1010); /* evicts u0, the oldest */
	assert_false(cached(c, "u0", 1011));
	assert_true(cached(c, "u1", 1011));
	assert_true(cached(c, "u8", 1011));
	ucache_put(c, "u1", "uid=u1,dc=example,dc=com", NULL, 1020); /* same uid: its own slot */
	ucache_put(c, "u9", "uid=u9,dc=example,dc=com", NULL, 1021); /* evicts u2 */
	assert_true(cached(c, "u1", 1022));
	assert_false(cached(c, "u2", 1022));
	ucache_free(c);

	c = ucache_new(8192, 600);
	assert_non_null(c);
	for (int i = 0; i < 2000; i++) {
		snprintf(uid, sizeof(uid), "bench%04d", i);
		ucache_put(c, uid, "uid=x,dc=example,dc=com", NULL, 2000);
	}
	found = 0;
	for (int i = 0; i < 2000; i++) {
		snprintf(uid, sizeof(uid), "BENCH%04d", i);
		found += cached(c, uid, 2001);
	}
	assert_int_equal(found, 2000);
	ucache_free(c);
}

/* With every descriptor under a low limit taken, fds_exhausted says so (and
 * fds_hint names it); with one free again, it does not. */
static void test_fds_exhausted_sees_the_limit(void **state)
{
	struct rlimit old, low;
	int fds[64] = {0}, n = 0, fd;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	assert_false(fds_exhausted());
	assert_string_equal(fds_hint(), "");
	low = old;
	low.rlim_cur = 48;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 64 && (fd = open("/dev/null", O_RDONLY)) != -1)
		fds[n++] = fd;
	assert_true(n > 0 && n < 64);
	assert_true(fds_exhausted());
	assert_non_null(strstr(fds_hint(), "out of file descriptors"));
	close(fds[--n]);
	assert_false(fds_exhausted());
	while (n > 0)
		close(fds[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fds_exhausted_sees_the_limit),
	    cmocka_unit_test(test_passwords_have_four_classes_and_no_lookalikes),
	    cmocka_unit_test(test_password_buffer_too_short_is_refused),
	    cmocka_unit_test(test_password_length_follows_the_policy),
	    cmocka_unit_test_setup_teardown(test_session_roundtrip_and_logout, keydir_setup,
	                                    keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_token_signature_is_hmac_sha256_of_the_key_file,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_forged_and_tampered_tokens_find_nothing,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_discarded_session_frees_its_slot, keydir_setup,
	                                    keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_expired_and_idle_sessions_are_gone, keydir_setup,
	                                    keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_one_operator_holds_a_bounded_number_of_sessions,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_idle_time_survives_a_restart, keydir_setup,
	                                    keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_a_refused_start_keeps_the_saved_sessions,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_saved_sessions_with_impossible_times_are_dropped,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_a_login_sees_its_operator_ended_meanwhile,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_tokens_survive_a_stop_not_a_crash, keydir_setup,
	                                    keydir_teardown),
	    cmocka_unit_test_setup_teardown(test_key_file_readable_by_others_is_refused,
	                                    keydir_setup, keydir_teardown),
	    cmocka_unit_test(test_limits_count_within_a_window),
	    cmocka_unit_test(test_throttled_refusals_are_counted_after_the_first),
	    cmocka_unit_test(test_date_bounds_cover_the_local_day),
	    cmocka_unit_test(test_dn_spellings_of_one_entry_compare_equal),
	    cmocka_unit_test(test_dn_ancestor_is_the_deepest_entry_in_common),
	    cmocka_unit_test(test_local_display_and_gentime),
	    cmocka_unit_test(test_uid_with_metacharacters_is_not_a_uid),
	    cmocka_unit_test(test_user_cache_expires_and_forgets),
	    cmocka_unit_test(test_user_cache_keeps_colliding_uids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
