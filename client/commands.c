/*
 * commands.c — one function per ldapdesk command, the table mapping names to
 * them and to their help, and what they share: the cached session and
 * auto-login, and turning HTTP answers into output and exit codes.
 */
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "ldapdesk/wire.h"
#include "args.h"
#include "cache.h"
#include "commands.h"
#include "httpc.h"
#include "render.h"

#define DEFAULT_URL   "https://127.0.0.1:8636"
#define MAX_TOKEN     4096
#define ERRLEN        1024
#define NOT_LOGGED_IN "not logged in or session expired: run 'ldapdesk login'"
#define NO_TTY        (-1) /* no terminal to ask on */

struct ctx {
	const struct args *a;
	struct httpc *h;
	const char *url;                 /* normalised, borrowed from h */
	char user[LDAPDESK_MAX_UID + 1]; /* operator of the session */
	char *token;                     /* owned, wiped when dropped */
	bool relogged;                   /* auto-login done: never twice */
	int login_status;                /* HTTP status of the last login answer, or 0 */
	bool streaming;                  /* stdout holds part of a --json answer already */
	char uncached[ERRLEN];           /* why the session could not be cached, or "" */
};

typedef void (*human_fn)(const struct ctx *c, json_t *ans);

/* ---- messages and exit codes ------------------------------------------- */

/*
 * What a --json run owes its script on stdout when it fails: the daemon's
 * error object, or, for a failure of the client's own (a usage error, no
 * session, an unreachable daemon), one made of the last message said. One
 * per process, like stderr itself.
 */
static struct {
	char last[512]; /* the last message said */
	bool answered;  /* stdout holds a JSON answer or error object already */
	bool unknown;   /* a change was sent and its answer lost: it may be done */
} said;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap, copy;
	size_t n;

	va_start(ap, fmt);
	va_copy(copy, ap);
	fputs("ldapdesk: ", stderr);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is just above
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	vsnprintf(said.last, sizeof(said.last), fmt, copy);
	va_end(copy);
	/* Kept whole for the JSON object: a cut never splits a character. */
	n = strlen(said.last);
	if (n == sizeof(said.last) - 1)
		while (n > 0 && ((unsigned char)said.last[n - 1] & 0xC0) == 0x80)
			said.last[--n] = '\0';
	if (n > 0 && (unsigned char)said.last[n - 1] >= 0xC0)
		said.last[--n] = '\0';
}

/* Prints a JSON document for a script on stdout (--json). */
static void print_json(const json_t *j)
{
	render_json(stdout, j);
	said.answered = true;
}

/* The error object a --json run that failed on its own prints on stdout. */
static void say_json_error(int rc)
{
	static const char *const codes[] = {
	    [EXIT_REFUSED] = "failed",         [EXIT_USAGE] = "usage",
	    [EXIT_UNAUTH] = "unauthenticated", [EXIT_FORBIDDEN] = "forbidden",
	    [EXIT_NOT_FOUND] = "not_found",    [EXIT_UNREACHABLE] = "unreachable",
	};
	json_t *j;

	if (said.answered || rc <= 0 || rc >= (int)(sizeof(codes) / sizeof(codes[0])))
		return;
	j = json_pack("{s:s, s:s}", "error",
	              rc == EXIT_REFUSED && said.unknown ? "outcome_unknown" : codes[rc], "message",
	              said.last);
	if (j != NULL)
		print_json(j);
	json_decref(j);
}

static int out_of_memory(void)
{
	say("out of memory");
	return EXIT_REFUSED;
}

static bool is_2xx(long status)
{
	return status >= 200 && status <= 299;
}

static int exit_for(long status)
{
	if (is_2xx(status))
		return EXIT_DONE;
	switch (status) {
	case 400:
		return EXIT_USAGE;
	case 401:
		return EXIT_UNAUTH;
	case 403:
		return EXIT_FORBIDDEN;
	case 404:
		return EXIT_NOT_FOUND;
	default:
		return EXIT_REFUSED;
	}
}

/* Prints the API's {"error","message"} (or the status) and returns the exit
 * code. With session, a 401 means our token is no good. */
static int reply_error(const struct ctx *c, const struct httpc_resp *rs, bool session)
{
	json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "message"));
	const char *code = json_string_value(json_object_get(j, "error"));

	/* With --json a script reads stdout: the daemon's error object goes
	 * there too (the message still goes to stderr), as import's does. */
	if (c->a->json && !c->streaming && json_is_object(j) && code != NULL)
		print_json(j);

	/* A 401 on a session: our token is no good. The daemon's own words win
	 * when it says more than that (roles removed: ask an administrator). */
	if (rs->status == 401 && session &&
	    (code == NULL || strcmp(code, "unauthenticated") == 0 || msg == NULL)) {
		json_decref(j);
		say(NOT_LOGGED_IN);
		return EXIT_UNAUTH;
	}
	if (msg == NULL)
		msg = json_string_value(json_object_get(j, "error"));
	char *clean = msg != NULL ? render_clean(msg) : NULL;
	if (clean != NULL)
		say("%s", clean);
	else if (is_2xx(rs->status))
		say("the server's answer (HTTP %ld) is not what was expected", rs->status);
	else
		say("the server answered HTTP %ld", rs->status);
	free(clean);
	json_decref(j);
	return is_2xx(rs->status) ? EXIT_REFUSED : exit_for(rs->status);
}

static json_t *parse_answer(const struct httpc_resp *rs)
{
	json_t *j = json_loadb(rs->body, rs->len, 0, NULL);

	if (j == NULL)
		say("the server's answer (HTTP %ld) is not JSON", rs->status);
	return j;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* ---- sending ------------------------------------------------------------ */

static int send_once(struct ctx *c, const struct httpc_req *rq, struct httpc_resp *rs)
{
	char err[ERRLEN];

	if (httpc_do(c->h, rq, rs, err, sizeof err) == 0)
		return 0;
	say("%s", err);
	/* Not "failed": a script must not take a change that may be done for
	 * one that was not (exit 1 either way, as DESIGN fixes). */
	said.unknown = (rs->why == HTTPC_LOST || rs->why == HTTPC_SLOW) && rq->method != NULL &&
	               strcmp(rq->method, "POST") == 0 && strcmp(rq->path, "/v1/login") != 0 &&
	               strstr(rq->path, "check=1") == NULL;
	return rs->why == HTTPC_NET || rs->why == HTTPC_TLS ? EXIT_UNREACHABLE : EXIT_REFUSED;
}

static void drop_token(struct ctx *c)
{
	if (c->token != NULL)
		OPENSSL_cleanse(c->token, strlen(c->token));
	free(c->token);
	c->token = NULL;
}

/* The JSON login body; the password's copy inside jansson is wiped. */
static char *login_body(const char *user, const char *password)
{
	json_t *j = json_pack("{s:s, s:s}", "user", user, "password", password);

	if (j == NULL)
		return NULL;
	char *text = json_dumps(j, JSON_COMPACT);
	json_t *p = json_object_get(j, "password");
	OPENSSL_cleanse((char *)json_string_value(p), json_string_length(p));
	json_decref(j);
	return text;
}

static int store_session(struct ctx *c, const char *user, const char *token, const char *expires)
{
	char err[ERRLEN];
	struct cache_session s = {
	    .url = (char *)c->url,
	    .user = (char *)user,
	    .token = (char *)token,
	    .expires = (char *)expires,
	};

	/* An auto-login goes on with the token it holds; `login` says so. Only
	 * `login` makes its operator the one later commands act as: a script's
	 * LDAPDESK_USER must not turn the next bare command into its operator. */
	if (cache_save(&s, !c->relogged, err, sizeof err) != 0) {
		say("warning: session not cached: %s", err);
		snprintf(c->uncached, sizeof c->uncached, "%s", err);
	}
	drop_token(c);
	snprintf(c->user, sizeof c->user, "%s", user);
	c->token = strdup(token);
	return c->token != NULL ? 0 : out_of_memory();
}

static int login_answer(struct ctx *c, const char *user, const struct httpc_resp *rs, json_t **ansp)
{
	if (!is_2xx(rs->status))
		return reply_error(c, rs, false);
	json_t *j = parse_answer(rs);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL || tok[0] == '\0' || strlen(tok) > MAX_TOKEN) {
		if (j != NULL)
			say("the server's login answer holds no usable token");
		json_decref(j);
		return EXIT_REFUSED;
	}
	int rc = store_session(c, user, tok, json_string_value(json_object_get(j, "expires")));
	if (rc == 0 && ansp != NULL) {
		*ansp = j;
	} else {
		OPENSSL_cleanse((char *)tok, strlen(tok));
		json_decref(j);
	}
	return rc;
}

/* POST /v1/login; on success the session is cached and c->token set. */
static int do_login(struct ctx *c, const char *user, const char *password, json_t **ansp)
{
	struct httpc_resp rs = {0};
	char *body = login_body(user, password);

	if (body == NULL) {
		say("the operator name or password is not valid UTF-8");
		return EXIT_USAGE;
	}
	struct httpc_req rq = {
	    .method = "POST", .path = "/v1/login", .body = body, .bodylen = strlen(body)};
	int rc = send_once(c, &rq, &rs);
	OPENSSL_cleanse(body, rq.bodylen);
	free(body);
	c->login_status = rc == 0 ? rs.status : 0;
	if (rc == 0)
		rc = login_answer(c, user, &rs, ansp);
	httpc_resp_free(&rs);
	return rc;
}

static bool can_autologin(void)
{
	return env("LDAPDESK_USER") != NULL && env("LDAPDESK_PASSWORD") != NULL;
}

static int auto_login(struct ctx *c)
{
	const char *user = env("LDAPDESK_USER"), *pw = env("LDAPDESK_PASSWORD");

	c->relogged = true;
	if (strlen(user) > LDAPDESK_MAX_UID || strlen(pw) > LDAPDESK_MAX_FIELD) {
		say("LDAPDESK_USER or LDAPDESK_PASSWORD is too long");
		return EXIT_USAGE;
	}
	int rc = do_login(c, user, pw, NULL);

	/* The command typed was not a login: say which settings made one, when
	 * they were refused (a wrong password, or too many of them), not when
	 * the directory or the daemon failed. */
	if (rc == EXIT_UNAUTH || c->login_status == 429)
		say("(that was the automatic login as LDAPDESK_USER=%s with LDAPDESK_PASSWORD: "
		    "correct them, or unset LDAPDESK_PASSWORD and run 'ldapdesk login')",
		    user);
	return rc;
}

/* Finds the cached token: LDAPDESK_USER's, else the last operator's. */
static int load_session(struct ctx *c)
{
	char err[ERRLEN];
	struct cache_session s = {0};
	const char *user = env("LDAPDESK_USER");
	int rc;

	if (user != NULL && strlen(user) > LDAPDESK_MAX_UID) {
		say("LDAPDESK_USER is longer than %d bytes", LDAPDESK_MAX_UID);
		return EXIT_USAGE;
	}
	if (user != NULL)
		snprintf(c->user, sizeof c->user, "%s", user);
	else if ((rc = cache_last_user(c->url, c->user, sizeof c->user, err, sizeof err)) != 1)
		goto out;
	if ((rc = cache_load(c->url, c->user, &s, err, sizeof err)) == 1) {
		c->token = s.token;
		s.token = NULL;
	}
	cache_session_clear(&s);
out:
	if (rc < 0)
		say("warning: %s", err);
	return 0;
}

static int session_ensure(struct ctx *c)
{
	if (c->token != NULL)
		return 0;
	int rc = load_session(c);
	if (rc != 0 || c->token != NULL)
		return rc;
	if (can_autologin())
		return auto_login(c);
	const char *user = env("LDAPDESK_USER");
	if (user != NULL)
		say("not logged in as LDAPDESK_USER=%s, or that session expired: run 'ldapdesk "
		    "login' (it logs in as %s), or set LDAPDESK_PASSWORD too",
		    user, user);
	else
		say(NOT_LOGGED_IN);
	return EXIT_UNAUTH;
}

static void forget_session(struct ctx *c)
{
	char err[ERRLEN];

	if (c->user[0] != '\0' && cache_remove(c->url, c->user, err, sizeof err) != 0)
		say("warning: %s", err);
	drop_token(c);
}

/* Sends rq with the session's token, logging in by itself once when
 * LDAPDESK_USER and LDAPDESK_PASSWORD allow. Return: 0 when an answer
 * arrived (any status), else the exit code, the reason printed. */
static int send_authed(struct ctx *c, struct httpc_req *rq, struct httpc_resp *rs)
{
	int rc = session_ensure(c);

	if (rc != 0)
		return rc;
	rq->token = c->token;
	if ((rc = send_once(c, rq, rs)) != 0 || rs->status != 401)
		return rc;
	if (c->relogged || !can_autologin()) {
		forget_session(c);
		return 0;
	}
	httpc_resp_free(rs);
	if ((rc = auto_login(c)) != 0)
		return rc;
	rq->token = c->token;
	return send_once(c, rq, rs);
}

/* One JSON call: POST sends body (NULL = {}), 2xx answers land in *outp. */
static int api(struct ctx *c, const char *method, const char *path, const json_t *body,
               json_t **outp)
{
	struct httpc_resp rs = {0};
	bool post = strcmp(method, "POST") == 0;
	char *text = !post ? NULL : body != NULL ? json_dumps(body, JSON_COMPACT) : strdup("{}");

	if (path == NULL || (post && text == NULL)) {
		free(text);
		return out_of_memory();
	}
	struct httpc_req rq = {
	    .method = method, .path = path, .body = text, .bodylen = text ? strlen(text) : 0};
	int rc = send_authed(c, &rq, &rs);
	free(text);
	if (rc == 0 && !is_2xx(rs.status))
		rc = reply_error(c, &rs, true);
	else if (rc == 0 && (*outp = parse_answer(&rs)) == NULL)
		rc = EXIT_REFUSED;
	httpc_resp_free(&rs);
	return rc;
}

/* ---- paths and queries -------------------------------------------------- */

/* pre + v percent-encoded + post. Caller frees; NULL on ENOMEM. */
static char *mkpath(struct ctx *c, const char *pre, const char *v, const char *post)
{
	char *e = httpc_escape(c->h, v), *path = NULL;

	if (e != NULL && asprintf(&path, "%s%s%s", pre, e, post) < 0)
		path = NULL;
	free(e);
	return path;
}

/* A fixed path, as a string call() can free. */
static char *fixed(const char *path)
{
	return strdup(path);
}

struct query {
	FILE *f;
	char *buf;
	size_t len;
	char sep;
	bool ok;
};

static void query_open(struct query *q, const char *path)
{
	q->buf = NULL;
	q->f = open_memstream(&q->buf, &q->len);
	q->ok = q->f != NULL;
	q->sep = '?';
	if (q->ok)
		fputs(path, q->f);
}

static void query_add(struct ctx *c, struct query *q, const char *key, const char *val)
{
	if (val == NULL || !q->ok)
		return;
	char *e = httpc_escape(c->h, val);
	if (e == NULL) {
		q->ok = false;
		return;
	}
	fprintf(q->f, "%c%s=%s", q->sep, key, e);
	q->sep = '&';
	free(e);
}

static void query_add_num(struct ctx *c, struct query *q, const char *key, long long v)
{
	char num[32];

	snprintf(num, sizeof num, "%lld", v);
	query_add(c, q, key, num);
}

/* The path with its query; NULL on ENOMEM. */
static char *query_close(struct query *q)
{
	if (q->f != NULL && fclose(q->f) != 0)
		q->ok = false;
	if (!q->ok) {
		free(q->buf);
		return NULL;
	}
	return q->buf;
}

/* ---- showing answers ---------------------------------------------------- */

/* Makes every string in j safe for a terminal before human output. */
static void clean_tree(json_t *j)
{
	if (json_is_string(j)) {
		/* Replaced only when cleaning changed it; the old value and the
		 * copy are wiped either way (a password or token may be one). */
		char *old = (char *)json_string_value(j), *s = render_clean(old);
		if (s != NULL && strcmp(s, old) != 0) {
			OPENSSL_cleanse(old, strlen(old));
			json_string_set(j, s);
		}
		if (s != NULL)
			OPENSSL_cleanse(s, strlen(s));
		free(s);
		return;
	}
	for (void *it = json_object_iter(j); it != NULL; it = json_object_iter_next(j, it))
		clean_tree(json_object_iter_value(it));
	for (size_t i = 0; i < json_array_size(j); i++)
		clean_tree(json_array_get(j, i));
}

static void wipe_member(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* Prints ans as JSON (--json) or through fn, then frees it. */
static int show(const struct ctx *c, json_t *ans, human_fn fn)
{
	if (c->a->json) {
		print_json(ans);
	} else {
		clean_tree(ans);
		fn(c, ans);
	}
	wipe_member(ans, "password");
	wipe_member(ans, "token");
	json_decref(ans);
	return EXIT_DONE;
}

/* api() then show(); takes path and body. */
static int call(struct ctx *c, const char *method, char *path, json_t *body, human_fn fn)
{
	json_t *ans = NULL;
	int rc = api(c, method, path, body, &ans);

	free(path);
	json_decref(body);
	return rc == 0 ? show(c, ans, fn) : rc;
}

/* Text of member key, "-" when null or absent; buf has 32 bytes. */
static const char *txt(const json_t *o, const char *key, char *buf)
{
	return render_scalar(json_object_get(o, key), buf, 32, true);
}

#define KEY_WIDTH 17 /* "password_changed:" */

static void kv(const char *key, const char *value)
{
	printf("%s:%*s %s\n", key, (int)(KEY_WIDTH - strlen(key) - 1), "", value);
}

/* "alice was not locked: unchanged (event 12)" or "unlocked alice (event 12)". */
static void say_result(const json_t *ans, const char *done, const char *same)
{
	char ev[32], res[32];

	if (strcmp(txt(ans, "result", res), "unchanged") == 0)
		printf("%s: unchanged (event %s)\n", same, txt(ans, "event", ev));
	else
		printf("%s (event %s)\n", done, txt(ans, "event", ev));
}

static void show_password(const json_t *ans, const char *uid)
{
	const char *pw = json_string_value(json_object_get(ans, "password"));

	if (pw == NULL)
		return;
	printf("One-time password for %s: %s\n", uid, pw);
	/* Said only when the directory will enforce it. */
	if (json_is_false(json_object_get(ans, "must_change")))
		printf("The directory's password policy does not force a change: ask the user to "
		       "change it.\n");
	else
		printf("The user must change it at the next login.\n");
	/* The reset is done: a password nobody saw must be said lost. */
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		say("%s's password was reset, but the one-time password could not be written out "
		    "(%s): run 'ldapdesk reset %s' again for a new one",
		    uid, errno != 0 ? strerror(errno) : "write error", uid);
}

/* A table from an array of objects; the keys are the headers. */
static void show_table(const json_t *rows, const char *const *keys, size_t n)
{
	struct render_table *t = render_table_new(n, keys, RENDER_MAX_CELL);
	const char *cells[16];
	char bufs[16][32];

	if (t == NULL || n > 16) {
		render_table_free(t);
		out_of_memory();
		return;
	}
	for (size_t i = 0; i < json_array_size(rows); i++) {
		const json_t *row = json_array_get(rows, i);
		for (size_t k = 0; k < n; k++)
			cells[k] = txt(row, keys[k], bufs[k]);
		render_table_add(t, cells);
	}
	render_table_flush(t, stdout);
	render_table_free(t);
}

/* ---- status, unlock, reset, grant, revoke, record ----------------------- */

static const char *locked_text(const json_t *s, char *buf, size_t len)
{
	char since[32];

	if (!json_is_true(json_object_get(s, "locked")))
		return "no";
	snprintf(buf, len, "yes%s%s%s",
	         json_is_string(json_object_get(s, "locked_since")) ? ", since " : "",
	         json_is_string(json_object_get(s, "locked_since")) ? txt(s, "locked_since", since)
	                                                            : "",
	         json_is_true(json_object_get(s, "admin_locked")) ? ", by administrator" : "");
	return buf;
}

/* The last audit rows about the user, newest first. */
static void show_history(const json_t *h)
{
	static const char *const keys[] = {"id",     "requested_at", "operator",
	                                   "action", "result",       "detail"};

	if (json_array_size(h) == 0)
		return;
	printf("recent events:\n");
	show_table(h, keys, 6);
}

static void show_status(const struct ctx *c, json_t *s)
{
	static const char *const fields[] = {"uid", "dn", "name", "department"};
	static const char *const gkeys[] = {"permission", "label", "expires", "granted_by"};
	char b[32], locked[256];
	const json_t *grants = json_object_get(s, "grants");

	(void)c;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		kv(fields[i], txt(s, fields[i], b));
	kv("locked", locked_text(s, locked, sizeof locked));
	kv("failures", txt(s, "failures", b));
	kv("must_change", txt(s, "must_change", b));
	kv("password_changed", txt(s, "password_changed", b));
	if (json_is_string(json_object_get(s, "lock_reason")))
		kv("why", json_string_value(json_object_get(s, "lock_reason")));
	if (json_is_integer(json_object_get(s, "password_age_days")))
		kv("password_age", txt(s, "password_age_days", b));
	if (json_array_size(grants) == 0) {
		kv("grants", "none");
	} else {
		printf("grants:\n");
		show_table(grants, gkeys, 4);
	}
	show_history(json_object_get(s, "history"));
}

static int cmd_status(struct ctx *c)
{
	return call(c, "GET", mkpath(c, "/v1/users/", c->a->pos[0], ""), NULL, show_status);
}

static json_t *event_body(const struct args *a)
{
	json_t *j = json_object();

	if (j != NULL && args_event_json(a, j) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static void show_unlock(const struct ctx *c, json_t *ans)
{
	char done[128], same[128];
	const char *uid = c->a->pos[0];

	snprintf(done, sizeof done, "unlocked %s", uid);
	snprintf(same, sizeof same, "%s was not locked", uid);
	say_result(ans, done, same);
}

static int cmd_unlock(struct ctx *c)
{
	json_t *body = event_body(c->a);

	if (body == NULL)
		return out_of_memory();
	return call(c, "POST", mkpath(c, "/v1/users/", c->a->pos[0], "/unlock"), body, show_unlock);
}

static void show_reset(const struct ctx *c, json_t *ans)
{
	show_password(ans, c->a->pos[0]);
}

static int cmd_reset(struct ctx *c)
{
	json_t *body = event_body(c->a);

	if (body == NULL || json_object_set_new(body, "unlock", json_boolean(c->a->unlock)) != 0) {
		json_decref(body);
		return out_of_memory();
	}
	return call(c, "POST", mkpath(c, "/v1/users/", c->a->pos[0], "/reset"), body, show_reset);
}

static void show_grant(const struct ctx *c, json_t *ans)
{
	char done[512], same[512];
	const char *uid = c->a->pos[0], *exp = json_string_value(json_object_get(ans, "expires"));
	const char *label = json_string_value(json_object_get(ans, "label"));

	if (json_object_get(ans, "request") != NULL) {
		char b[32];
		printf("request %s is pending approval\n", txt(ans, "request", b));
		return;
	}
	if (label == NULL)
		label = c->a->pos[1];
	snprintf(done, sizeof done, "granted %s to %s %s%s", label, uid,
	         exp != NULL ? "until " : "without expiry", exp != NULL ? exp : "");
	snprintf(same, sizeof same, "%s already has %s", uid, label);
	say_result(ans, done, same);
}

static int cmd_grant(struct ctx *c)
{
	const struct args *a = c->a;
	json_t *body = event_body(a);
	int bad = body == NULL;

	bad |= json_object_set_new(body, "permission", json_string(a->pos[1]));
	if (a->days > 0)
		bad |= json_object_set_new(body, "days", json_integer(a->days));
	if (a->until != NULL)
		bad |= json_object_set_new(body, "until", json_string(a->until));
	if (bad) {
		json_decref(body);
		return out_of_memory();
	}
	return call(c, "POST", mkpath(c, "/v1/users/", a->pos[0], "/grants"), body, show_grant);
}

static void show_revoke(const struct ctx *c, json_t *ans)
{
	char done[512], same[512];
	const char *uid = c->a->pos[0], *perm = c->a->pos[1];

	snprintf(done, sizeof done, "revoked %s from %s", perm, uid);
	snprintf(same, sizeof same, "%s did not have %s", uid, perm);
	say_result(ans, done, same);
}

static int cmd_revoke(struct ctx *c)
{
	const struct args *a = c->a;
	json_t *body = event_body(a);

	if (body == NULL)
		return out_of_memory();
	char *rest = mkpath(c, "/grants/", a->pos[1], "/revoke");
	char *path = rest != NULL ? mkpath(c, "/v1/users/", a->pos[0], rest) : NULL;
	free(rest);
	return call(c, "POST", path, body, show_revoke);
}

static void show_record(const struct ctx *c, json_t *ans)
{
	char b[32];

	printf("recorded %s (event %s)\n", c->a->pos[0], txt(ans, "event", b));
}

static int cmd_record(struct ctx *c)
{
	const struct args *a = c->a;
	json_t *body = event_body(a);
	int bad = body == NULL;

	bad |= json_object_set_new(body, "category", json_string(a->pos[0]));
	bad |= json_object_set_new(body, "description", json_string(a->desc));
	if (bad) {
		json_decref(body);
		return out_of_memory();
	}
	return call(c, "POST", fixed("/v1/events"), body, show_record);
}

/* ---- log ---------------------------------------------------------------- */

enum log_kind { LOG_TABLE, LOG_CSV, LOG_JSON };

/* The 22 columns of an audit row, in DESIGN.md order. */
static const char *const audit_cols[] = {
    "id",        "requested_at", "finished_at", "operator",    "operator_dn", "client_addr",
    "action",    "target",       "target_dn",   "permission",  "category",    "ticket",
    "requester", "department",   "channel",     "description", "note",        "result",
    "detail",    "request_id",   "imported",    "hash",
};
#define AUDIT_NCOLS (sizeof audit_cols / sizeof audit_cols[0])

/* The table shows them all too (DESIGN: log, CSV and JSON alike), cut at
 * the hash's 64 columns: the full DN or detail is in --format csv|json. */
#define LOG_TABLE_CELL 64

/* Rows printed so far and where they go; pages are printed as they come. */
struct logview {
	enum log_kind kind;
	struct render_table *table;
	long rows;
	long limit; /* 0 = all */
	long long after;
	bool tty; /* CSV to a terminal: cells cleaned, as report does */
};

static enum log_kind log_kind(const struct args *a)
{
	const char *f = a->format != NULL ? a->format : a->json ? "json" : "table";

	return strcmp(f, "csv") == 0 ? LOG_CSV : strcmp(f, "json") == 0 ? LOG_JSON : LOG_TABLE;
}

static void log_row(struct logview *v, const json_t *ev)
{
	const char *cells[AUDIT_NCOLS];
	char bufs[AUDIT_NCOLS][32];
	bool human = v->kind == LOG_TABLE;

	if (v->kind == LOG_JSON) {
		fputs(v->rows > 0 ? ",\n    " : "\n    ", stdout);
		render_json_nested(stdout, ev, 4);
		return;
	}
	for (size_t i = 0; i < AUDIT_NCOLS; i++)
		cells[i] = render_scalar(json_object_get(ev, audit_cols[i]), bufs[i], 32, human);
	if (human) {
		render_table_add(v->table, cells);
	} else if (!v->tty) {
		render_csv_row(stdout, cells, AUDIT_NCOLS);
	} else {
		/* Any operator writes descriptions: an escape sequence in one must
		 * not reach an auditor's terminal (the table cleans its cells). */
		char *clean[AUDIT_NCOLS];
		size_t n = 0;

		while (n < AUDIT_NCOLS && (clean[n] = render_clean(cells[n])) != NULL)
			n++;
		if (n == AUDIT_NCOLS)
			render_csv_row(stdout, (const char *const *)clean, AUDIT_NCOLS);
		while (n > 0)
			free(clean[--n]);
	}
}

/* Prints one page. Return: 1 when it was the last, 0 when more follow, -1
 * when the answer makes no sense. */
static int log_page(struct logview *v, const json_t *page)
{
	const json_t *events = json_object_get(page, "events");
	const json_t *next = json_object_get(page, "next");

	if (!json_is_array(events) ||
	    (next != NULL && !json_is_null(next) && !json_is_integer(next)))
		return -1;
	for (size_t i = 0; i < json_array_size(events); i++) {
		if (v->limit > 0 && v->rows >= v->limit)
			break;
		log_row(v, json_array_get(events, i));
		v->rows++;
	}
	if (v->table != NULL)
		render_table_flush(v->table, stdout);
	if (!json_is_integer(next) || (v->limit > 0 && v->rows >= v->limit))
		return 1;
	/* A next that does not move forward would loop for ever. */
	if (json_integer_value(next) <= v->after || json_array_size(events) == 0)
		return -1;
	v->after = json_integer_value(next);
	return 0;
}

static char *log_path(struct ctx *c, const struct logview *v)
{
	const struct args *a = c->a;
	struct query q;
	long want = v->limit - v->rows;

	query_open(&q, "/v1/audit");
	query_add(c, &q, "from", a->from);
	query_add(c, &q, "to", a->to);
	query_add(c, &q, "user", a->user);
	query_add(c, &q, "operator", a->oper);
	query_add(c, &q, "action", a->action);
	query_add(c, &q, "category", a->category);
	query_add(c, &q, "department", a->dept);
	query_add(c, &q, "result", a->result);
	if (v->limit > 0)
		query_add_num(c, &q, "limit",
		              want < LDAPDESK_AUDIT_PAGE_MAX ? want : LDAPDESK_AUDIT_PAGE_MAX);
	if (v->after > 0)
		query_add_num(c, &q, "after", v->after);
	return query_close(&q);
}

static int log_begin(struct logview *v, const struct args *a)
{
	if (v->kind == LOG_TABLE) {
		v->table = render_table_new(AUDIT_NCOLS, audit_cols, LOG_TABLE_CELL);
		if (v->table == NULL)
			return out_of_memory();
		render_table_keep(v->table, 0); /* the id: what auditors cite */
		return 0;
	}
	if (a->bom)
		render_bom(stdout);
	v->tty = isatty(STDOUT_FILENO);
	if (v->kind == LOG_CSV)
		render_csv_row(stdout, audit_cols, AUDIT_NCOLS);
	else
		fputs("{\n  \"events\": [", stdout);
	return 0;
}

static void log_end(const struct logview *v)
{
	if (v->kind == LOG_JSON)
		fputs(v->rows > 0 ? "\n  ]\n}\n" : "]\n}\n", stdout);
	else if (v->kind == LOG_TABLE && v->rows == 0)
		printf("no events\n");
}

static int cmd_log(struct ctx *c)
{
	struct logview v = {.kind = log_kind(c->a), .limit = c->a->limit};
	int rc = 0, more = 0;
	bool begun = false;

	while (rc == 0 && more == 0) {
		json_t *page = NULL;
		char *path = log_path(c, &v);
		rc = api(c, "GET", path, NULL, &page);
		free(path);
		/* The opening ("{ \"events\": [", the CSV header) only once the
		 * first page came: a refusal (403) leaves stdout empty. */
		if (rc == 0 && !begun) {
			rc = log_begin(&v, c->a);
			begun = c->streaming = true;
		}
		if (rc == 0 && (more = log_page(&v, page)) < 0) {
			say("the server's audit page makes no sense (events/next)");
			rc = EXIT_REFUSED;
		}
		json_decref(page);
	}
	if (rc == 0)
		log_end(&v);
	else if (begun && v.kind == LOG_JSON)
		/* Cut off after the first page (the daemon went away, the session
		 * ended): what was printed stays valid JSON, and says it is not all;
		 * the exit code and stderr say why. */
		fputs(v.rows > 0 ? "\n  ],\n  \"incomplete\": true\n}\n"
		                 : "],\n  \"incomplete\": true\n}\n",
		      stdout);
	render_table_free(v.table);
	return rc;
}

/* ---- report, import, verify, backup, health ----------------------------- */

static int write_report(const struct args *a, const struct httpc_resp *rs)
{
	FILE *f = a->output != NULL ? fopen(a->output, "wb") : stdout;
	bool has_bom = rs->len >= 3 && memcmp(rs->body, "\xef\xbb\xbf", 3) == 0;

	if (f == NULL) {
		say("cannot create %s: %s", a->output, strerror(errno));
		return EXIT_REFUSED;
	}
	if (a->bom && !has_bom)
		render_bom(f);
	/* Event fields may hold control characters: to a terminal, none of
	 * them goes out raw (an escape sequence could rewrite the screen). */
	if (f == stdout && isatty(STDOUT_FILENO))
		render_text_tty(f, rs->body, rs->len);
	else
		fwrite(rs->body, 1, rs->len, f);
	if (f != stdout && (ferror(f) | fclose(f)) != 0) {
		say("cannot write %s: %s", a->output, strerror(errno));
		return EXIT_REFUSED;
	}
	/* With -o the report is in the file; --json still answers on stdout
	 * (a script reads one document there): where it went and its size. */
	if (a->output != NULL && a->json) {
		json_t *j = json_pack("{s:s, s:I}", "file", a->output, "bytes",
		                      (json_int_t)rs->len + (a->bom && !has_bom ? 3 : 0));
		print_json(j);
		json_decref(j);
	}
	return EXIT_DONE;
}

/* -o checked before the report is built: a long report for a directory
 * that is not there would be made for nothing. Return: 0, or EXIT_USAGE. */
static int output_writable(const char *path)
{
	char *copy = path != NULL ? strdup(path) : NULL;
	struct stat st;
	int rc = 0;

	if (path == NULL)
		return 0;
	if (copy == NULL)
		return out_of_memory();
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		say("cannot write %s: it is a directory (give -o a file name)", path);
		rc = EXIT_USAGE;
	} else if (access(path, F_OK) == 0 ? access(path, W_OK) != 0
	                                   : access(dirname(copy), W_OK) != 0) {
		say("cannot write %s: %s (give -o a file in a directory that exists and you may "
		    "write to)",
		    path, strerror(errno));
		rc = EXIT_USAGE;
	}
	free(copy);
	return rc;
}

static int cmd_report(struct ctx *c)
{
	const struct args *a = c->a;
	struct httpc_resp rs = {0};
	struct query q;

	int bad = output_writable(a->output);

	if (bad != 0)
		return bad;

	query_open(&q, "/v1/report");
	query_add(c, &q, "from", a->from);
	query_add(c, &q, "to", a->to);
	query_add(c, &q, "format", a->format != NULL ? a->format : a->json ? "json" : "text");
	struct httpc_req rq = {.method = "GET", .path = query_close(&q)};
	if (rq.path == NULL)
		return out_of_memory();
	int rc = send_authed(c, &rq, &rs);
	free((char *)rq.path);
	if (rc == 0)
		rc = is_2xx(rs.status) ? write_report(a, &rs) : reply_error(c, &rs, true);
	httpc_resp_free(&rs);
	return rc;
}

/* Reads a whole file of at most max bytes. */
static int read_file(const char *path, size_t max, char **bufp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, n;

	if (f == NULL) {
		say("cannot open %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	do {
		char *more = realloc(buf, len + 65536 + 1);
		if (more == NULL) {
			free(buf);
			fclose(f);
			return out_of_memory();
		}
		buf = more;
		n = fread(buf + len, 1, 65536, f);
		len += n;
	} while (n > 0 && len <= max);
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad || len > max) {
		if (bad)
			say("cannot read %s", path);
		else
			say("%s is larger than %zu MiB: split it", path, max >> 20);
		free(buf);
		return EXIT_USAGE;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* 400 (bad rows) or 409 (rows in the log already) {"message", "errors":
 * [{"line","message"}]}: one "FILE:LINE: message" each, then the message,
 * which says how many there were and, past the daemon's bound on the list,
 * how many more it left out. */
static bool import_errors(const char *file, const struct httpc_resp *rs, bool json)
{
	json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
	const json_t *errors = json_object_get(j, "errors");
	const char *all;
	char b[32];

	/* No rows listed: reply_error shows the message itself. */
	if ((rs->status != 400 && rs->status != 409) || !json_is_array(errors) ||
	    json_array_size(errors) == 0) {
		json_decref(j);
		return false;
	}
	if (json) /* --json: the daemon's answer for scripts, the lines for people */
		print_json(j);
	clean_tree(j);
	for (size_t i = 0; i < json_array_size(errors); i++) {
		const json_t *e = json_array_get(errors, i);
		const char *msg = json_string_value(json_object_get(e, "message"));
		fprintf(stderr, "%s:%s: %s\n", file, txt(e, "line", b),
		        msg != NULL ? msg : "bad row");
	}
	if ((all = json_string_value(json_object_get(j, "message"))) != NULL)
		fprintf(stderr, "ldapdesk: %s\n", all);
	json_decref(j);
	return true;
}

static void show_import(const struct ctx *c, json_t *ans)
{
	char b[32];

	printf("imported %s events from %s\n", txt(ans, "imported", b), c->a->pos[0]);
}

/* import --check: what each row would be, by category, and nothing stored. */
static void show_check(const struct ctx *c, json_t *ans)
{
	const json_t *events = json_object_get(ans, "events");
	json_t *counts = json_object_get(ans, "categories");
	char b1[32];

	clean_tree(ans);
	printf("%s: %s rows would be imported (nothing was stored):\n", c->a->pos[0],
	       txt(ans, "rows", b1));
	for (void *it = json_object_iter(counts); it != NULL;
	     it = json_object_iter_next(counts, it))
		printf("  %-14s %lld\n", json_object_iter_key(it),
		       (long long)json_integer_value(json_object_iter_value(it)));
	printf("line  category        submitted                     description\n");
	for (size_t i = 0; i < json_array_size(events); i++) {
		const json_t *e = json_array_get(events, i);
		const char *cat = json_string_value(json_object_get(e, "category"));
		const char *at = json_string_value(json_object_get(e, "submitted"));
		const char *desc = json_string_value(json_object_get(e, "description"));

		printf("%-5s %-15s %-29s %s\n", txt(e, "line", b1), cat != NULL ? cat : "",
		       at != NULL ? at : "", desc != NULL ? desc : "");
	}
	if (json_is_false(json_object_get(ans, "complete")))
		printf("(the first %zu rows are listed; the counts above are of all %s)\n",
		       json_array_size(events), txt(ans, "rows", b1));
}

static int import_answer(const struct ctx *c, const struct httpc_resp *rs)
{
	json_t *ans;

	if (import_errors(c->a->pos[0], rs, c->a->json))
		return rs->status == 409 ? EXIT_REFUSED : EXIT_USAGE;
	if (!is_2xx(rs->status))
		return reply_error(c, rs, true);
	if ((ans = parse_answer(rs)) == NULL)
		return EXIT_REFUSED;
	return show(c, ans, c->a->check ? show_check : show_import);
}

/* The upload's progress bar on stderr, redrawn when the percentage moves. */
struct bar {
	int last; /* percentage drawn, -1 = none yet */
};

static void bar_draw(void *arg, long long sent, long long total)
{
	struct bar *b = arg;
	char line[96];
	int pct = (int)(sent * 100 / total);

	if (pct == b->last)
		return;
	b->last = pct;
	render_progress(line, sizeof line, sent, total);
	fprintf(stderr, "\r%s", line);
}

static int cmd_import(struct ctx *c)
{
	struct bar bar = {.last = -1};
	struct httpc_resp rs = {0};
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(c->a->pos[0], LDAPDESK_MAX_IMPORT, &data, &len);

	if (rc != 0)
		return rc;
	struct httpc_req rq = {.method = "POST",
	                       .path = c->a->check ? "/v1/import?check=1" : "/v1/import",
	                       .ctype = "text/csv",
	                       .body = data,
	                       .bodylen = len,
	                       .progress = isatty(STDERR_FILENO) ? bar_draw : NULL,
	                       .progress_arg = &bar,
	                       .expect_continue = true};
	rc = send_authed(c, &rq, &rs);
	if (bar.last >= 0)
		fputc('\n', stderr);
	free(data);
	if (rc == 0)
		rc = import_answer(c, &rs);
	httpc_resp_free(&rs);
	return rc;
}

/* The daemon's reason names the record ("record 5: hash does not match its
 * contents"); records is the whole chain, walked to its end. */
static void show_broken(const json_t *ans)
{
	const char *reason = json_string_value(json_object_get(ans, "reason"));
	char b1[32], b2[32];

	if (reason != NULL && reason[0] != '\0')
		printf("audit chain BROKEN: %s (%s records)\n", reason, txt(ans, "records", b2));
	else
		printf("audit chain BROKEN: first bad record %s (%s records)\n",
		       txt(ans, "first_bad", b1), txt(ans, "records", b2));
}

static void show_verify(const struct ctx *c, json_t *ans)
{
	char b1[32], b2[32];

	if (c->a->head)
		printf("%s\n", txt(ans, "head", b1));
	else if (json_is_true(json_object_get(ans, "ok")))
		printf("audit chain ok: %s records, head %s\n", txt(ans, "records", b1),
		       txt(ans, "head", b2));
	else {
		show_broken(ans);
	}
}

static int cmd_verify(struct ctx *c)
{
	struct query q;
	json_t *ans = NULL;

	query_open(&q, "/v1/verify");
	query_add(c, &q, "since", c->a->since_head);
	char *path = query_close(&q);
	int rc = api(c, "GET", path, NULL, &ans);
	free(path);
	if (rc != 0)
		return rc;
	bool ok = json_is_true(json_object_get(ans, "ok"));
	/* Records lost in a restore leave the chain whole: its head is sound. */
	bool whole = json_is_true(json_object_get(ans, "whole"));
	const char *reason = json_string_value(json_object_get(ans, "reason"));
	if (c->a->head && whole) {
		show(c, ans, show_verify);
		return EXIT_DONE;
	}
	if (!ok && reason != NULL && strncmp(reason, "head ", 5) == 0 && c->a->since_head != NULL)
		say("the log does not hold the head you gave (%s): check that it is the one you "
		    "saved; if it is, records up to it were changed or cut off: keep a copy of the "
		    "database as it is for the investigation, and see 'How to restore' in "
		    "doc/auditing.md",
		    reason);
	else if (!ok && whole) {
		char b[32];
		say("records from %s on are missing from the log (the chain around them is whole): "
		    "if no restore explains it, keep a copy of the database as it is for the "
		    "investigation; see 'How to restore' in doc/auditing.md",
		    txt(ans, "first_bad", b));
	} else if (!ok) {
		char b[32];
		say("audit chain broken at record %s: keep a copy of the database as it is for the "
		    "investigation, and see 'How to restore' in doc/auditing.md",
		    txt(ans, "first_bad", b));
	}
	show(c, ans, show_verify);
	return ok ? EXIT_DONE : EXIT_REFUSED;
}

static void show_backup(const struct ctx *c, json_t *ans)
{
	char b1[32], b2[32];

	(void)c;
	printf("backup written to %s (%s records)\n", txt(ans, "file", b1),
	       txt(ans, "records", b2));
	/* Kept with its chain broken as the live database's: said, not hidden. */
	if (json_is_string(json_object_get(ans, "chain")))
		printf("%s\n", json_string_value(json_object_get(ans, "chain")));
}

static int cmd_backup(struct ctx *c)
{
	return call(c, "POST", fixed("/v1/backup"), NULL, show_backup);
}

static void show_fields(const struct ctx *c, json_t *ans)
{
	char b[32];

	(void)c;
	for (void *it = json_object_iter(ans); it != NULL; it = json_object_iter_next(ans, it)) {
		char *k = render_clean(json_object_iter_key(it));
		json_t *v = json_object_iter_value(it);

		/* An object (last_backup) shows as its file and time, and a
		 * backup kept with a broken chain says where it breaks. */
		const json_t *chain = json_object_get(v, "chain");
		if (json_is_object(v))
			v = json_object_get(v, "file") != NULL ? json_object_get(v, "file")
			                                       : json_object_get(v, "at");
		kv(k != NULL ? k : "?", render_scalar(v, b, sizeof b, true));
		if (json_is_string(chain))
			kv("  chain", render_scalar(chain, b, sizeof b, true));
		free(k);
	}
}

/* Health needs no session; a degraded daemon may answer 503 with the same
 * fields, which are shown before exiting 1. */
static int cmd_health(struct ctx *c)
{
	struct httpc_req rq = {.method = "GET", .path = "/v1/health"};
	struct httpc_resp rs = {0};
	int rc = send_once(c, &rq, &rs);

	if (rc != 0)
		return rc;
	json_t *ans = json_loadb(rs.body, rs.len, 0, NULL);
	if (json_is_string(json_object_get(ans, "status")) &&
	    json_object_get(ans, "error") == NULL) {
		show(c, ans, show_fields);
		rc = exit_for(rs.status);
	} else {
		json_decref(ans);
		rc = reply_error(c, &rs, false);
	}
	httpc_resp_free(&rs);
	return rc;
}

/* ---- approval requests -------------------------------------------------- */

static void show_pending(const struct ctx *c, json_t *ans)
{
	static const char *const keys[] = {"id",         "operator", "target",
	                                   "permission", "status",   "created_at"};
	const json_t *reqs = json_object_get(ans, "requests");

	(void)c;
	if (json_array_size(reqs) == 0)
		printf("no pending requests\n");
	else
		show_table(reqs, keys, sizeof keys / sizeof keys[0]);
}

static int cmd_pending(struct ctx *c)
{
	return call(c, "GET", fixed("/v1/requests"), NULL, show_pending);
}

static void show_decision(const struct ctx *c, json_t *ans)
{
	char done[128], same[128];
	bool approve = strcmp(c->a->command, "approve") == 0;

	snprintf(done, sizeof done, "%s request %s", approve ? "approved" : "rejected",
	         c->a->pos[0]);
	snprintf(same, sizeof same, "request %s was already decided", c->a->pos[0]);
	say_result(ans, done, same);
}

static int cmd_approve(struct ctx *c)
{
	return call(c, "POST", mkpath(c, "/v1/requests/", c->a->pos[0], "/approve"), NULL,
	            show_decision);
}

static int cmd_reject(struct ctx *c)
{
	json_t *body = json_pack("{s:s}", "reason", c->a->reason);

	if (body == NULL)
		return out_of_memory();
	return call(c, "POST", mkpath(c, "/v1/requests/", c->a->pos[0], "/reject"), body,
	            show_decision);
}

/* ---- user management ---------------------------------------------------- */

static void show_user_change(const struct ctx *c, json_t *ans)
{
	/* sub, verb, preposition before --dept (NULL: don't name it), unchanged text */
	static const char *const verbs[][4] = {
	    {"create", "created", " in ", "already exists"},
	    {"move", "moved", " to ", "is already there"},
	    {"disable", "disabled", NULL, "was already disabled"},
	    {"enable", "enabled", NULL,
	     "was not disabled (a lock from failed logins is lifted with 'ldapdesk unlock')"},
	    {"delete", "deleted", NULL, "was already gone"},
	};
	const char *uid = c->a->pos[0], *dept = c->a->dept;
	char done[256] = "", same[256] = "";

	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		const char *const *v = verbs[i];
		if (strcmp(v[0], c->a->sub) != 0)
			continue;
		bool where = v[2] != NULL && dept != NULL;
		snprintf(done, sizeof done, "%s %s%s%s", v[1], uid, where ? v[2] : "",
		         where ? dept : "");
		snprintf(same, sizeof same, "%s %s", uid, v[3]);
	}
	say_result(ans, done, same);
	show_password(ans, uid);
}

static int cmd_user_create(struct ctx *c)
{
	const struct args *a = c->a;
	json_t *body = event_body(a);
	int bad = body == NULL;

	bad |= json_object_set_new(body, "uid", json_string(a->pos[0]));
	bad |= json_object_set_new(body, "name", json_string(a->name));
	if (a->mail != NULL)
		bad |= json_object_set_new(body, "mail", json_string(a->mail));
	if (bad) {
		json_decref(body);
		return out_of_memory();
	}
	return call(c, "POST", fixed("/v1/users"), body, show_user_change);
}

/* move, disable, enable, delete: POST /v1/users/{uid}/{sub} with the event
 * fields (department = --dept) and --reason. */
static int cmd_user_change(struct ctx *c)
{
	const struct args *a = c->a;
	json_t *body = event_body(a);
	int bad = body == NULL;
	char rest[32];

	if (a->reason != NULL)
		bad |= json_object_set_new(body, "reason", json_string(a->reason));
	if (bad) {
		json_decref(body);
		return out_of_memory();
	}
	snprintf(rest, sizeof rest, "/%s", a->sub);
	return call(c, "POST", mkpath(c, "/v1/users/", a->pos[0], rest), body, show_user_change);
}

/* ---- login and logout --------------------------------------------------- */

enum line_end { LINE_OK, LINE_LONG, LINE_EOF, LINE_INTR };

static int tty_open(void)
{
	return open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static void tty_puts(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	(void)n; /* a prompt that can't be shown still gets its answer read */
}

/* Drops the last UTF-8 character of buf[0..n). */
static size_t erase_char(const char *buf, size_t n)
{
	while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
		n--;
	return n > 0 ? n - 1 : 0;
}

/* Reads a line from the tty byte by byte; in raw mode (t != NULL) it does
 * erase, kill, end-of-file and interrupt itself, as ISIG is off. */
static enum line_end tty_line(int fd, const struct termios *t, char *buf, size_t len)
{
	size_t n = 0;
	unsigned char ch = 0;
	enum line_end end = LINE_OK;
	bool lng = false;

	for (;;) {
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (t != NULL && ch == t->c_cc[VEOF] && n == 0)) {
			end = LINE_EOF;
			break;
		}
		if (ch == '\n' || ch == '\r')
			break;
		if (t != NULL && ch == t->c_cc[VINTR]) {
			end = LINE_INTR;
			break;
		}
		if (t != NULL && (ch == t->c_cc[VERASE] || ch == 0x7f || ch == 0x08))
			n = erase_char(buf, n);
		else if (t != NULL && ch == t->c_cc[VKILL])
			n = 0;
		else if (n + 1 < len)
			buf[n++] = (char)ch;
		else
			lng = true;
	}
	buf[n] = '\0';
	ch = 0;
	return end == LINE_OK && lng ? LINE_LONG : end;
}

static int prompt_user(char *user, size_t len)
{
	int fd = tty_open();

	if (fd < 0) {
		say("no operator given: use --user or LDAPDESK_USER");
		return EXIT_USAGE;
	}
	tty_puts(fd, "Operator: ");
	enum line_end end = tty_line(fd, NULL, user, len);
	close(fd);
	if (end != LINE_OK || user[0] == '\0') {
		say(end == LINE_LONG ? "operator name too long" : "no operator given");
		return EXIT_USAGE;
	}
	return 0;
}

/* Return: 0, EXIT_USAGE said, or NO_TTY for the caller to say why it
 * needed to ask. */
static int prompt_password(const char *user, char *pw, size_t len)
{
	struct termios old, raw;
	int fd = tty_open();

	if (fd < 0 || tcgetattr(fd, &old) != 0) {
		if (fd >= 0)
			close(fd);
		return NO_TTY;
	}
	raw = old;
	raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | ISIG);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	tty_puts(fd, "Password for ");
	tty_puts(fd, user);
	tty_puts(fd, ": ");
	tcsetattr(fd, TCSAFLUSH, &raw);
	enum line_end end = tty_line(fd, &old, pw, len);
	tcsetattr(fd, TCSAFLUSH, &old);
	tty_puts(fd, "\n");
	close(fd);
	if (end == LINE_INTR) {
		OPENSSL_cleanse(pw, len);
		raise(SIGINT); /* the echo is back on: die as Ctrl-C would have */
	}
	if (end != LINE_OK || pw[0] == '\0') {
		say(end == LINE_LONG ? "password too long" : "no password given");
		return EXIT_USAGE;
	}
	return 0;
}

/* --password-file: the first bytes up to one trailing newline. */
static int read_password_file(const char *path, char *pw, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r = 0;

	if (fd < 0) {
		say("cannot open password file %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	while (n + 1 < len &&
	       ((r = read(fd, pw + n, len - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	close(fd);
	if (n > 0 && pw[n - 1] == '\n')
		n--;
	if (n > 0 && pw[n - 1] == '\r')
		n--;
	pw[n] = '\0';
	/* A second line is not part of a password: sent whole, it would be a
	 * failed login toward the operator's lockout. */
	if (r < 0 || n == 0 || n > LDAPDESK_MAX_FIELD || memchr(pw, '\0', n) != NULL ||
	    memchr(pw, '\n', n) != NULL || memchr(pw, '\r', n) != NULL) {
		say("password file %s holds no usable password (1 to %d bytes, one line)", path,
		    LDAPDESK_MAX_FIELD);
		return EXIT_USAGE;
	}
	return 0;
}

static int login_user(const struct args *a, char *user, size_t len)
{
	const char *u = a->user != NULL ? a->user : env("LDAPDESK_USER");

	if (u == NULL)
		return prompt_user(user, len);
	if (strlen(u) >= len) {
		say("operator name is longer than %d bytes", LDAPDESK_MAX_UID);
		return EXIT_USAGE;
	}
	snprintf(user, len, "%s", u);
	return 0;
}

/* $LDAPDESK_PASSWORD is LDAPDESK_USER's (uids ignore case): sent for
 * another operator it would be a failed login toward their lockout. With
 * LDAPDESK_USER unset it is the password of whoever logs in (DESIGN:
 * "password: prompt, $LDAPDESK_PASSWORD, or the file"). */
static bool env_password_is_for(const struct args *a, const char *user)
{
	const char *envu = env("LDAPDESK_USER");

	(void)a;
	return envu == NULL || strcasecmp(envu, user) == 0;
}

static int ask_password(const char *user, char *pw, size_t len)
{
	const char *envu = env("LDAPDESK_USER");
	int rc = prompt_password(user, pw, len);

	if (rc != NO_TTY)
		return rc;
	if (env("LDAPDESK_PASSWORD") == NULL)
		say("no password: use --password-file or LDAPDESK_PASSWORD, or run on a terminal");
	else
		say("LDAPDESK_PASSWORD is only for LDAPDESK_USER=%s, not for --user %s: use "
		    "--password-file F, or run on a terminal to be asked for the password",
		    envu != NULL ? envu : "", user);
	return EXIT_USAGE;
}

static int login_password(const struct args *a, const char *user, char *pw, size_t len)
{
	const char *p = env("LDAPDESK_PASSWORD");

	if (a->password_file != NULL)
		return read_password_file(a->password_file, pw, len);
	if (p == NULL || !env_password_is_for(a, user))
		return ask_password(user, pw, len);
	if (strlen(p) > LDAPDESK_MAX_FIELD) {
		say("LDAPDESK_PASSWORD is longer than %d bytes", LDAPDESK_MAX_FIELD);
		return EXIT_USAGE;
	}
	snprintf(pw, len, "%s", p);
	return 0;
}

static void show_login(const struct ctx *c, json_t *ans)
{
	const json_t *roles = json_object_get(ans, "roles");
	char b[32];

	printf("logged in as %s (roles: ", c->user);
	for (size_t i = 0; i < json_array_size(roles); i++) {
		const char *r = json_string_value(json_array_get(roles, i));
		printf("%s%s", i > 0 ? ", " : "", r != NULL ? r : "?");
	}
	printf("%s) until %s\n", json_array_size(roles) == 0 ? "none" : "", txt(ans, "expires", b));
}

/* A session that could not be cached is held by nobody after this command:
 * ended rather than left open (an operator holds at most 32, the oldest
 * ended for a new one, perhaps one in use elsewhere). Best effort. */
static void end_uncached(struct ctx *c)
{
	struct httpc_req rq = {.method = "POST", .path = "/v1/logout", .body = "{}", .bodylen = 2};
	struct httpc_resp rs = {0};

	rq.token = c->token;
	if (c->token != NULL && send_once(c, &rq, &rs) == 0)
		httpc_resp_free(&rs);
}

static int cmd_login(struct ctx *c)
{
	char user[LDAPDESK_MAX_UID + 1], pw[LDAPDESK_MAX_FIELD + 3];
	json_t *ans = NULL;
	int rc = login_user(c->a, user, sizeof user);

	if (rc == 0)
		rc = login_password(c->a, user, pw, sizeof pw);
	if (rc == 0)
		rc = do_login(c, user, pw, &ans);
	OPENSSL_cleanse(pw, sizeof pw);
	if (rc != 0)
		return rc;
	/* A login is for the commands after it: kept nowhere, it did nothing. */
	if (c->uncached[0] != '\0') {
		end_uncached(c);
		wipe_member(ans, "token");
		json_decref(ans);
		say("logged in, but the session could not be cached, so the next command will not "
		    "find it: %s (check XDG_CACHE_HOME, or set LDAPDESK_USER and "
		    "LDAPDESK_PASSWORD to log in per command)",
		    c->uncached);
		return EXIT_REFUSED;
	}
	/* The token stays in the cache file; it is not for the terminal. */
	wipe_member(ans, "token");
	json_object_del(ans, "token");
	return show(c, ans, show_login);
}

static int cmd_logout(struct ctx *c)
{
	struct httpc_req rq = {.method = "POST", .path = "/v1/logout", .body = "{}", .bodylen = 2};
	struct httpc_resp rs = {0};
	int rc = load_session(c);

	if (rc != 0 || c->token == NULL) {
		if (rc == 0 && c->a->json)
			printf("{\"logged_out\": false}\n");
		else if (rc == 0)
			printf("not logged in at %s\n", c->url);
		return rc;
	}
	rq.token = c->token;
	if ((rc = send_once(c, &rq, &rs)) != 0) {
		/* The daemon may never have heard: the session is kept to retry. */
		say("not logged out: %s's session at %s may still be valid and stays cached; run "
		    "'ldapdesk logout' again once the daemon answers",
		    c->user, c->url);
		return rc;
	}
	if (!is_2xx(rs.status) && rs.status != 401)
		rc = reply_error(c, &rs, false);
	/* A 5xx did not end the session (the store, a stop): kept, to retry. */
	if (rs.status >= 500) {
		say("%s's session at %s may still be valid and stays cached: run 'ldapdesk "
		    "logout' again",
		    c->user, c->url);
		httpc_resp_free(&rs);
		return rc;
	}
	forget_session(c);
	httpc_resp_free(&rs);
	if (rc == 0 && !c->a->json)
		printf("logged out %s from %s\n", c->user, c->url);
	else if (rc == 0)
		printf("{\"logged_out\": true}\n");
	return rc;
}

/* ---- command table and help --------------------------------------------- */

struct command {
	const char *name;
	const char *sub;
	int (*run)(struct ctx *c);
	const char *usage; /* after "ldapdesk " */
	const char *about;
	const char *example;
};

static const struct command commands[] = {
    {"login", NULL, cmd_login, "login [--user UID] [--password-file F]",
     "Log in and cache the session for this server. The operator is --user, else\n"
     "$LDAPDESK_USER, else asked on the terminal; the password comes from --password-file\n"
     "(one trailing newline stripped), else $LDAPDESK_PASSWORD when $LDAPDESK_USER is\n"
     "unset or names the same operator, else a prompt without echo. The password is\n"
     "never stored.",
     "ldapdesk login --user hd1"},
    {"logout", NULL, cmd_logout, "logout", "End the session and delete its cache file.",
     "ldapdesk logout"},
    {"status", NULL, cmd_status, "status USER",
     "Show why USER may not log in: lock, failures, password age, grants.", "ldapdesk status bob"},
    {"unlock", NULL, cmd_unlock, "unlock USER [event options]", "Unlock USER's account.",
     "ldapdesk unlock bob --ticket T-1024 --requester 王芳 --dept 信息中心 --channel hotline"},
    {"reset", NULL, cmd_reset, "reset USER [--unlock] [event options]",
     "Set a one-time password that USER must change at the next login; it is\n"
     "printed once and kept nowhere. A reset also unlocks the account (a new\n"
     "password clears the lock on every directory); --unlock says so in the\n"
     "request. An account an administrator disabled is refused: 'user enable'.",
     "ldapdesk reset bob --unlock --ticket T-1025"},
    {"grant", NULL, cmd_grant, "grant USER PERMISSION [--days N | --until TIME] [event options]",
     "Grant PERMISSION (a system from the allow-list) to USER, for N days or until\n"
     "TIME (ISO 8601; a date alone means through that day, in the server's time\n"
     "zone). Some permissions need an administrator's approval first.",
     "ldapdesk grant bob procurement --days 30 --ticket T-1026"},
    {"revoke", NULL, cmd_revoke, "revoke USER PERMISSION [event options]",
     "Take PERMISSION away from USER.", "ldapdesk revoke bob procurement"},
    {"record", NULL, cmd_record, "record CATEGORY --desc TEXT [event options]",
     "Record work done outside the directory (CATEGORY: app-request, todo-mail,\n"
     "mobile-app, notice, login-issue, knowledge-doc, vuln-fix, ...).",
     "ldapdesk record todo-mail --desc '删除过期待办' --dept 财务管理部"},
    {"log", NULL, cmd_log,
     "log [--from D] [--to D] [--user U] [--operator O] [--action A] [--category C]\n"
     "      [--dept D] [--result R] [--limit N] [--format table|csv|json] [--bom]",
     "Print the audit log, one line per attempt in the order recorded (an import's\n"
     "events where it ran, with their own times), following the pages\n"
     "to the end. The filters combine (all must hold):\n"
     "  --from D, --to D  the period, both ends included; D is YYYY-MM-DD (the whole\n"
     "                    day, in the server's time zone) or an ISO 8601 time\n"
     "  --user U          the user acted on (uid, any case)\n"
     "  --operator O      the operator who acted (uid; ldapdeskd for its own)\n"
     "  --action A        login, logout, unlock, reset, grant, revoke, record, create,\n"
     "                    move, disable, enable, delete, approve, reject, expire,\n"
     "                    import, backup; status, log, report, verify, requests\n"
     "  --category C      a record's category (as given to 'record')\n"
     "  --dept D          the event's department\n"
     "  --result R        ok, unchanged, denied, failed or pending\n"
     "  --limit N         at most N lines\n"
     "  --format F        table (cells cut at 64 characters), csv or json; all 22\n"
     "                    columns\n"
     "  --bom             a UTF-8 byte order mark before the CSV, for Excel",
     "ldapdesk log --from 2024-01-01 --to 2024-06-30 --format csv --bom > log.csv"},
    {"report", NULL, cmd_report,
     "report --from D --to D [--format text|md|csv|json|html] [--bom] [-o FILE]",
     "Produce the period report: counts per category and the table of events.\n"
     "  --from D, --to D  the period, both ends included; D is YYYY-MM-DD (the whole\n"
     "                    day, in the server's time zone) or an ISO 8601 time\n"
     "  --format F        text (default), md, csv, json or html\n"
     "  --bom             a UTF-8 byte order mark before the CSV, for Excel\n"
     "  -o FILE           write the report to FILE instead of stdout (with --json,\n"
     "                    stdout then says which file and how many bytes)",
     "ldapdesk report --from 2024-01-01 --to 2024-06-30 --format html -o h1.html"},
    {"import", NULL, cmd_import, "import [--check] FILE.csv",
     "Import historical events given in the report's detail-table columns.\n"
     "  --check   only check the file and show each row's category (guessed from\n"
     "            事件描述 and 解决办法 when there is no 类别 column); nothing is stored.\n"
     "            Exits 1 if the file was imported already, 2 listing every bad row",
     "ldapdesk import --check events-2023.csv && ldapdesk import events-2023.csv"},
    {"verify", NULL, cmd_verify, "verify [--head | --since-head ID:HASH]",
     "Check the audit chain; exit 1 naming the first bad record. --head prints ID:HASH\n"
     "to keep; --since-head also proves that record is still there unchanged.",
     "ldapdesk verify --since-head 5120:3f6a...e9"},
    {"backup", NULL, cmd_backup, "backup", "Back up the audit database now.", "ldapdesk backup"},
    {"user", "create", cmd_user_create,
     "user create UID --name N --dept D [--mail M] [event options]",
     "Create a user; prints the one-time password.",
     "ldapdesk user create zhangsan --name 张三 --dept 信息中心"},
    {"user", "move", cmd_user_change, "user move UID --dept D [event options]",
     "Move a user to department D.", "ldapdesk user move zhangsan --dept 审计部(审计派驻办)"},
    {"user", "disable", cmd_user_change, "user disable UID --reason R [event options]",
     "Disable a user's account.", "ldapdesk user disable zhangsan --reason 离职"},
    {"user", "enable", cmd_user_change, "user enable UID [event options]",
     "Enable an account an administrator disabled.", "ldapdesk user enable zhangsan"},
    {"user", "delete", cmd_user_change, "user delete UID --yes [event options]",
     "Delete a user for good.", "ldapdesk user delete zhangsan --yes"},
    {"pending", NULL, cmd_pending, "pending", "List grant requests waiting for approval.",
     "ldapdesk pending"},
    {"approve", NULL, cmd_approve, "approve ID", "Approve grant request ID.", "ldapdesk approve 7"},
    {"reject", NULL, cmd_reject, "reject ID --reason R", "Reject grant request ID.",
     "ldapdesk reject 7 --reason 'not needed'"},
    {"health", NULL, cmd_health, "health", "Show the daemon's health; needs no login.",
     "ldapdesk health"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* The event options but --dept, which user create and move take for the
 * user's own department (the event's department is then that one). */
#define EVENT_WHO                                                                                  \
	"  --ticket ID         helpdesk ticket number\n"                                           \
	"  --requester NAME    who asked for it\n"
#define EVENT_HOW                                                                                  \
	"  --channel hotline|request\n"                                                            \
	"  --note TEXT         anything else worth keeping\n"

static const char event_help[] =
    "event options:\n" EVENT_WHO "  --dept DEPT         the requester's department\n" EVENT_HOW;
static const char event_help_own_dept[] =
    "event options (--dept is the user's department here, recorded as the event's):\n" EVENT_WHO
        EVENT_HOW;

static const char global_help[] =
    "global options (before or after the command):\n"
    "  --url URL   https://HOST:PORT or unix:/PATH ($LDAPDESK_URL, default " DEFAULT_URL ")\n"
    "  --ca FILE   CA certificate that signed the daemon's ($LDAPDESK_CA)\n"
    "  --json      print the daemon's JSON answer instead of text\n"
    "  -h, --help  help; 'ldapdesk COMMAND --help' for one command\n"
    "  --version   print the version\n";

static void help_top(void)
{
	printf("usage: ldapdesk [--url URL] [--ca FILE] [--json] COMMAND ...\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %s\n", commands[i].usage);
	printf("\n%s\n%s\n", event_help, global_help);
	printf(
	    "environment: LDAPDESK_URL, LDAPDESK_CA, LDAPDESK_USER, LDAPDESK_PASSWORD\n"
	    "  (with user and password set, commands log in by themselves),\n"
	    "  LDAPDESK_CERT, LDAPDESK_KEY (a TLS client certificate, when the daemon asks),\n"
	    "  LDAPDESK_TIMEOUT (seconds without an answer before giving up: default 120,\n"
	    "  3600 for verify, import, report, log and backup)\n\n"
	    "exit codes: 0 done, 1 refused or failed, 2 usage or bad request, 3 not logged in,\n"
	    "  4 forbidden, 5 no such user, permission or request, 6 daemon unreachable or TLS\n\n"
	    "example:\n  ldapdesk login --user hd1 && ldapdesk status bob && ldapdesk unlock "
	    "bob\n");
}

static const char *event_help_for(const struct command *cmd)
{
	if (strstr(cmd->usage, "[event options]") == NULL)
		return NULL;
	return strstr(cmd->usage, "--dept D") != NULL ? event_help_own_dept : event_help;
}

static void help_command(const struct command *cmd)
{
	const char *ev = event_help_for(cmd);

	printf("usage: ldapdesk %s\n\n%s\n\n", cmd->usage, cmd->about);
	if (ev != NULL)
		printf("%s\n", ev);
	printf("example:\n  %s\n\n", cmd->example);
}

static bool help_matches(const struct command *cmd, const struct args *a)
{
	return strcmp(cmd->name, a->command) == 0 &&
	       (cmd->sub == NULL || a->sub == NULL || strcmp(cmd->sub, a->sub) == 0);
}

/* "user --help": every subcommand's usage first, then what each does, and
 * the event options once (they are the same for all five). */
static void help_group(const struct args *a)
{
	printf("usage:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (help_matches(&commands[i], a))
			printf("  ldapdesk %s\n", commands[i].usage);
	printf("\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (help_matches(&commands[i], a))
			printf("%s %s: %s\n  example: %s\n", commands[i].name, commands[i].sub,
			       commands[i].about, commands[i].example);
	printf("\n%s\n%s\n", event_help,
	       "(user create and user move take --dept for the user's own department, "
	       "recorded as the event's)");
}

/* --help: for the command named, for all of "user", or the overview. */
static int help(const struct args *a)
{
	size_t found = 0, last = 0;

	for (size_t i = 0; a->command != NULL && i < NCOMMANDS; i++)
		if (help_matches(&commands[i], a)) {
			found++;
			last = i;
		}
	if (found == 1)
		help_command(&commands[last]);
	else if (found > 1)
		help_group(a);
	else
		help_top();
	if (found > 0)
		printf("%s", global_help);
	return EXIT_DONE;
}

static const struct command *find_command(const struct args *a)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *cmd = &commands[i];
		if (strcmp(cmd->name, a->command) == 0 &&
		    (cmd->sub == NULL || (a->sub != NULL && strcmp(cmd->sub, a->sub) == 0)))
			return cmd;
	}
	return NULL;
}

/* ---- entry -------------------------------------------------------------- */

static int ctx_open(struct ctx *c)
{
	const struct args *a = c->a;
	const char *url = a->url != NULL ? a->url : env("LDAPDESK_URL");
	const char *ca = a->ca != NULL ? a->ca : env("LDAPDESK_CA");
	char err[ERRLEN];

	if (url == NULL)
		url = DEFAULT_URL;
	if (strlen(url) > LDAPDESK_MAX_FIELD || (ca != NULL && strlen(ca) > LDAPDESK_MAX_FIELD)) {
		say("the URL or CA file name is too long");
		return EXIT_USAGE;
	}
	if (httpc_new(url, ca, &c->h, err, sizeof err) != 0) {
		say("%s", err);
		return EXIT_USAGE;
	}
	c->url = httpc_url(c->h);
	return 0;
}

/* A result that could not be written is no result. */
static int finish(int rc)
{
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* An earlier write may have failed (errno since overwritten). */
		say("cannot write the output: %s",
		    errno != 0 ? strerror(errno)
		               : "a write failed (disk full, or the reader went away)");
		return rc != 0 ? rc : EXIT_REFUSED;
	}
	return rc;
}

int cli_main(int argc, char **argv)
{
	struct args a;
	char err[ERRLEN];

	if (args_parse(argc, argv, &a, err, sizeof err) != 0) {
		say("%s", err);
		/* --json (or --format json) may stand after what failed to parse. */
		for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
			if (strcmp(argv[i], "--json") == 0 || strncmp(argv[i], "--json=", 7) == 0 ||
			    strcmp(argv[i], "--format=json") == 0 ||
			    (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
			     strcmp(argv[i + 1], "json") == 0)) {
				say_json_error(EXIT_USAGE);
				break;
			}
		return finish(EXIT_USAGE);
	}
	if (a.version) {
		printf("ldapdesk %s\n", LDAPDESK_VERSION);
		return finish(EXIT_DONE);
	}
	if (a.help)
		return finish(help(&a));
	const struct command *cmd = find_command(&a);
	if (cmd == NULL) {
		say("'%s' has no handler", a.command); /* args.c and this table disagree */
		return EXIT_USAGE;
	}
	struct ctx c = {.a = &a};
	int rc = ctx_open(&c);
	if (rc == 0)
		rc = cmd->run(&c);
	/* `login` ends its own uncached session (and says so). */
	if (c.relogged && c.uncached[0] != '\0')
		end_uncached(&c);
	drop_token(&c);
	httpc_free(c.h);
	/* Not after a log already streaming its JSON: it is closed as it is. */
	if (a.json && !c.streaming)
		say_json_error(rc);
	return finish(rc);
}
