/*
 * api.c — routes requests to actions and queries. Errors are answered in the
 * order DESIGN.md fixes: 401, 400, 403 (role), 404, 403 (protection), 409;
 * 413 is answered by http.c before a route is chosen.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "actions.h"
#include "api.h"
#include "audit.h"
#include "backup.h"
#include "import.h"
#include "job.h"
#include "report.h"
#include "clock.h"
#include "config.h"
#include "dir.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "ldapdesk/wire.h"

#define API_MAX_SEGMENTS 8

/* Counters for GET /metrics, by action kind and HTTP status class. */
#define API_KINDS 22

enum job_kind { JOB_REPORT, JOB_VERIFY, JOB_IMPORT, JOB_QUERY, JOB_KINDS };

/* Slots: one report, one verify, one import, API_QUERIES log queries at once. */
#define API_QUERIES 4
/* Replies waiting for their clients above which no log or report job
 * starts (503 busy): what the daemon holds for readers that do not read. */
#define API_UNSENT_MAX ((size_t)256 << 20)
#define API_JOB_SLOTS  (JOB_QUERY + API_QUERIES)

struct api {
	struct job *jobs[API_JOB_SLOTS]; /* running jobs by slot, or NULL */
	bool stopping;                   /* api_stopping: no new job starts */
	struct job_call *job_calls[API_JOB_SLOTS];
	const struct config *conf;
	unsigned long long requests;
	unsigned long long answered[API_KINDS][6]; /* [kind][status / 100] */
	struct backup *backup;                     /* may be NULL */
	const struct http *http;                   /* may be NULL */
	struct actions *A;
	struct sessions *sessions;
	struct audit *audit;
	struct dir *dir;
};

/* One request being routed: the decoded path, the body and the session. */
struct call {
	struct api *api;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	char *seg[API_MAX_SEGMENTS];
	size_t n_seg;
	const struct evhttp_uri *uri;
	struct session *session;
	json_t *body;
	char peer[64];
	/* The action this call answers, counted in ldapdesk_actions_total
	 * when its reply goes out (API_KINDS: not an action). */
	unsigned counted_kind;
	unsigned roles_gen; /* configuration generation a role re-read started under */
	bool bad_body;      /* the body is not a JSON object (body is then {}) */
	/* The front refused the body (http_body_refusal): its status (0: not),
	 * error code and message. */
	int refused_code;
	const char *refused_error, *refused_message;
	int status; /* the reply's, for -v's request line (0: none sent) */
	struct timespec started;
};

struct api *api_new(const struct config *conf, struct actions *A, struct sessions *s,
                    struct audit *a, struct dir *d)
{
	struct api *api = calloc(1, sizeof(*api));

	if (api == NULL)
		return NULL;
	api->conf = conf;
	api->A = A;
	api->sessions = s;
	api->audit = a;
	api->dir = d;
	return api;
}

void api_set_backup(struct api *api, struct backup *b)
{
	api->backup = b;
}

void api_set_http(struct api *api, const struct http *h)
{
	api->http = h;
}

void api_set_config(struct api *api, const struct config *conf)
{
	api->conf = conf;
	session_config_changed(api->sessions);
}

static void job_call_free(struct job_call *jc);

void api_free(struct api *api)
{
	/* A job's request died with the listeners: wait for its thread, answer nobody. */
	for (int k = 0; api != NULL && k < API_JOB_SLOTS; k++)
		if (api->jobs[k] != NULL) {
			job_cancel(api->jobs[k]);
			job_call_free(api->job_calls[k]);
		}
	free(api);
}

int api_jobs(const struct api *api)
{
	int n = 0;

	for (int k = 0; k < API_JOB_SLOTS; k++)
		n += api->jobs[k] != NULL;
	return n;
}

void api_stopping(struct api *api)
{
	api->stopping = true;
}

void api_stop_jobs(struct api *api)
{
	for (int k = 0; k < API_JOB_SLOTS; k++)
		if (api->jobs[k] != NULL)
			job_stop(api->jobs[k]);
}

/* -v: one line per request answered (no query, no body: nothing secret). */
static void log_request(const struct call *c)
{
	struct timespec now;
	const char *path = c->uri != NULL ? evhttp_uri_get_path(c->uri) : NULL;

	if (c->status == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	log_debug("%s %s %d %.1f ms (%s)", c->method == EVHTTP_REQ_POST ? "POST" : "GET",
	          path != NULL ? path : "?", c->status,
	          (double)(now.tv_sec - c->started.tv_sec) * 1e3 +
	              (double)(now.tv_nsec - c->started.tv_nsec) / 1e6,
	          c->peer);
}

static void call_free(struct call *c)
{
	json_t *pw = json_object_get(c->body, "password");

	log_request(c);
	/* jansson frees without wiping; the login password must not linger. */
	if (json_is_string(pw))
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(pw), json_string_length(pw));
	for (size_t i = 0; i < c->n_seg; i++)
		free(c->seg[i]);
	json_decref(c->body);
	free(c);
}

static int status_code(enum act_status st)
{
	static const int codes[] = {
	    [ACT_OK] = 200,          [ACT_BAD_REQUEST] = 400, [ACT_UNAUTHORIZED] = 401,
	    [ACT_FORBIDDEN] = 403,   [ACT_NOT_FOUND] = 404,   [ACT_CONFLICT] = 409,
	    [ACT_UNAVAILABLE] = 503, [ACT_FAILED] = 502,      [ACT_NOT_IMPLEMENTED] = 501,
	    [ACT_TOO_MANY] = 429,
	};
	return codes[st];
}

/* By jansson, which refuses a string that is not valid UTF-8. */
static bool utf8_valid(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);

	json_decref(j);
	return j != NULL;
}

/* The length of s's first max bytes or fewer, cut at a character's start
 * (a message quoting part of a value stays UTF-8, so it can be recorded). */
static int utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return (int)max;
}

/*
 * Splits the path into percent-decoded segments. A segment that decodes to
 * something with a NUL cannot be a name: it is kept as "\x01" so that the
 * route still matches and the action answers 404 for it; one that decodes to
 * bytes that are not UTF-8 is kept undecoded, for the same 404.
 */
static int split_path(struct call *c, const char *path)
{
	char *copy = strdup(path), *save = NULL, *tok;

	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		size_t n = 0;
		char *dec = evhttp_uridecode(tok, 0, &n);

		if (c->n_seg == API_MAX_SEGMENTS || dec == NULL) {
			free(dec);
			free(copy);
			return -1;
		}
		if (strlen(dec) != n) {
			free(dec);
			dec = strdup("\x01");
		} else if (!utf8_valid(dec, n)) {
			/* Not text: kept percent-encoded ("%FF"), which is no uid
			 * either (404) and can be recorded (a record is UTF-8),
			 * whether it came encoded or as raw bytes. */
			free(dec);
			dec = utf8_valid(tok, strlen(tok)) ? strdup(tok)
			                                   : evhttp_uriencode(tok, -1, 0);
		}
		if (dec == NULL) {
			free(copy);
			return -1;
		}
		c->seg[c->n_seg++] = dec;
	}
	free(copy);
	return 0;
}

/* c's path matches pattern ("*" matches one segment). Compared in place,
 * without a copy: it runs for every route, some thirty times a request. */
static bool path_is(const struct call *c, const char *pattern)
{
	size_t i = 0;

	for (const char *p = pattern; *p != '\0'; i++) {
		size_t len = strcspn(p, "/");
		bool any = len == 1 && *p == '*';

		if (i >= c->n_seg ||
		    (!any && (strncmp(p, c->seg[i], len) != 0 || c->seg[i][len] != '\0')))
			return false;
		p += len;
		p += *p == '/';
	}
	return i == c->n_seg;
}

static bool route(const struct call *c, enum evhttp_cmd_type m, const char *pattern)
{
	return c->method == m && path_is(c, pattern);
}

/* Every endpoint of DESIGN's HTTP API, for 405 on a known path asked with
 * the wrong method (GET /v1/login is not an unknown path, nor a login). */
/* With the action each stands for (-1: none) and the path segments that
 * name its target and permission (0: none), for recording a request refused
 * before it reached the action (no session). */
static const struct {
	enum evhttp_cmd_type method;
	int kind;
	const char *pattern;
	size_t target_seg, perm_seg;
} routes[] = {
    {EVHTTP_REQ_GET, -1, "v1/health", 0, 0},
    {EVHTTP_REQ_GET, -1, "health", 0, 0},
    {EVHTTP_REQ_GET, -1, "metrics", 0, 0},
    {EVHTTP_REQ_POST, ACT_LOGIN, "v1/login", 0, 0},
    {EVHTTP_REQ_POST, ACT_LOGOUT, "v1/logout", 0, 0},
    {EVHTTP_REQ_GET, ACT_STATUS, "v1/users/*", 2, 0},
    {EVHTTP_REQ_POST, ACT_UNLOCK, "v1/users/*/unlock", 2, 0},
    {EVHTTP_REQ_POST, ACT_RESET, "v1/users/*/reset", 2, 0},
    {EVHTTP_REQ_POST, ACT_GRANT, "v1/users/*/grants", 2, 0},
    {EVHTTP_REQ_POST, ACT_REVOKE, "v1/users/*/grants/*/revoke", 2, 4},
    {EVHTTP_REQ_POST, ACT_MOVE, "v1/users/*/move", 2, 0},
    {EVHTTP_REQ_POST, ACT_DISABLE, "v1/users/*/disable", 2, 0},
    {EVHTTP_REQ_POST, ACT_ENABLE, "v1/users/*/enable", 2, 0},
    {EVHTTP_REQ_POST, ACT_DELETE, "v1/users/*/delete", 2, 0},
    {EVHTTP_REQ_POST, ACT_CREATE, "v1/users", 0, 0},
    {EVHTTP_REQ_POST, ACT_RECORD, "v1/events", 0, 0},
    {EVHTTP_REQ_POST, ACT_IMPORT, "v1/import", 0, 0},
    {EVHTTP_REQ_POST, ACT_BACKUP, "v1/backup", 0, 0},
    {EVHTTP_REQ_GET, ACT_REQUESTS, "v1/requests", 0, 0},
    {EVHTTP_REQ_POST, ACT_APPROVE, "v1/requests/*/approve", 0, 0},
    {EVHTTP_REQ_POST, ACT_REJECT, "v1/requests/*/reject", 0, 0},
    {EVHTTP_REQ_GET, ACT_REPORT, "v1/report", 0, 0},
    {EVHTTP_REQ_GET, ACT_LOG, "v1/audit", 0, 0},
    {EVHTTP_REQ_GET, ACT_VERIFY, "v1/verify", 0, 0},
};

/* The method c's path takes when it is a known endpoint asked with another
 * one (405), else 0. */
static enum evhttp_cmd_type route_other_method(const struct call *c)
{
	bool same = false;
	enum evhttp_cmd_type other = 0;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_is(c, routes[i].pattern))
			continue;
		if (routes[i].method == c->method)
			same = true;
		else
			other = routes[i].method;
	}
	return same ? 0 : other;
}

const char *api_allow(void *arg, const char *uri)
{
	struct evhttp_uri *u = evhttp_uri_parse(uri);
	struct call c = {.api = arg};
	bool get = false, post = false;

	if (u != NULL && evhttp_uri_get_path(u) != NULL &&
	    split_path(&c, evhttp_uri_get_path(u)) == 0)
		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
			if (path_is(&c, routes[i].pattern)) {
				get = get || routes[i].method == EVHTTP_REQ_GET;
				post = post || routes[i].method == EVHTTP_REQ_POST;
			}
	for (size_t i = 0; i < c.n_seg; i++)
		free(c.seg[i]);
	if (u != NULL)
		evhttp_uri_free(u);
	return get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : post ? "POST" : NULL;
}

static void count_answer(struct call *c, int code)
{
	c->status = code;
	if (c->counted_kind < API_KINDS && code / 100 < 6)
		c->api->answered[c->counted_kind][code / 100]++;
}

static void reply_error(struct call *c, int code, const char *error, const char *message)
{
	count_answer(c, code);
	http_reply_error(c->req, code, error, message);
	call_free(c);
}

static void reply_json(struct call *c, int code, json_t *body)
{
	count_answer(c, code);
	http_reply_json(c->req, code, body);
	call_free(c);
}

int api_import_gate(void *arg, const char *bearer)
{
	struct api *api = arg;
	const struct session *s = bearer[0] != '\0' ? session_find(api->sessions, bearer) : NULL;

	if (s == NULL)
		return 401;
	return (s->roles & ROLE_ADMIN) != 0 ? 0 : 403;
}

/* The token of "Authorization: Bearer TOKEN", or NULL. The scheme is
 * case-insensitive (RFC 9110, 11.1), and 1*SP may follow it. */
static const char *bearer_token(const struct call *c)
{
	const char *h =
	    evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	return h + 7 + strspn(h + 7, " ");
}

static struct session *authenticate(struct call *c)
{
	const char *token = bearer_token(c);

	return token != NULL ? session_find(c->api->sessions, token) : NULL;
}

/* Parses the body as a JSON object into c->body; one that is not leaves {}
 * there and sets c->bad_body, for the action to refuse (and record). Never
 * keeps the parser's text: it quotes the input, which may hold a password. */
static void parse_body(struct call *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t n = evbuffer_get_length(in);
	unsigned char *raw;
	json_error_t jerr;

	/* Refused by the front (too large, chunked): not read, refused as a
	 * bad body is, with the front's status and words (refuse_body). */
	if (c->refused_code != 0) {
		c->body = json_object();
		c->bad_body = true;
		return;
	}
	if (n == 0) {
		c->body = json_object();
		return;
	}
	raw = evbuffer_pullup(in, -1);
	c->body = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &jerr);
	/* The raw body may hold a password: wipe it now that it is parsed. */
	OPENSSL_cleanse(raw, n);
	OPENSSL_cleanse(jerr.text, sizeof(jerr.text));
	OPENSSL_cleanse(jerr.source, sizeof(jerr.source));
	if (c->body == NULL || !json_is_object(c->body)) {
		json_decref(c->body);
		c->body = json_object();
		c->bad_body = true;
	}
}

/* A string member of the body, or NULL. Sets *bad when it has another type. */
static const char *body_str(json_t *body, const char *key, bool *bad)
{
	json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* ---- actions ------------------------------------------------------------------ */

static json_t *roles_json(unsigned roles)
{
	json_t *a = json_array();

	for (unsigned r = ROLE_HELPDESK; r <= ROLE_AUDITOR; r <<= 1)
		if (roles & r)
			json_array_append_new(a, json_string(session_role_name((enum role)r)));
	return a;
}

static json_t *local_time_json(const char *utc)
{
	char local[CLOCK_ISO_LEN];

	if (utc == NULL || utc[0] == '\0' || clock_local(utc, local, sizeof(local)) == -1)
		return json_null();
	return json_string(local);
}

static json_t *act_body(struct call *c, enum act_kind kind, struct act_reply *r)
{
	char utc[CLOCK_ISO_LEN];

	switch (kind) {
	case ACT_LOGIN:
		clock_utc(r->session_expires, utc, sizeof(utc));
		return json_pack("{s:s, s:o, s:o}", "token", r->token, "expires",
		                 local_time_json(utc), "roles", roles_json(r->roles));
	case ACT_STATUS:
		return json_incref(r->body);
	case ACT_RESET:
		return json_pack("{s:I, s:s, s:s, s:b}", "event", (json_int_t)r->event, "result",
		                 r->result, "password", r->password, "must_change",
		                 !r->change_not_forced);
	case ACT_GRANT:
		if (r->request_id != 0)
			return json_pack("{s:I, s:s, s:I}", "request", (json_int_t)r->request_id,
			                 "status", "pending-approval", "event",
			                 (json_int_t)r->event);
		/* fall through */
	case ACT_APPROVE:
		return json_pack("{s:I, s:s, s:o}", "event", (json_int_t)r->event, "result",
		                 r->result, "expires", local_time_json(r->expires));
	case ACT_RECORD:
		return json_pack("{s:I}", "event", (json_int_t)r->event);
	case ACT_LOGOUT:
		return json_pack("{s:b}", "ok", 1);
	case ACT_CREATE:
		return json_pack("{s:I, s:s, s:s}", "event", (json_int_t)r->event, "result",
		                 r->result, "password", r->password);
	default:
		(void)c;
		return json_pack("{s:I, s:s}", "event", (json_int_t)r->event, "result", r->result);
	}
}

struct pending {
	struct call *c;
	enum act_kind kind;
};

static void act_done(void *arg, struct act_reply *r)
{
	struct pending *p = arg;
	struct call *c = p->c;
	int code = r->status != ACT_OK ? status_code(r->status) : r->request_id != 0 ? 202 : 200;

	if (r->status == ACT_TOO_MANY) {
		char secs[16];

		snprintf(secs, sizeof(secs), "%d", r->retry_after > 0 ? r->retry_after : 1);
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", secs);
	}
	/* A body the front refused keeps the front's status (413, 411). */
	if (r->status == ACT_BAD_REQUEST && c->refused_code != 0)
		code = c->refused_code;
	if (r->status != ACT_OK)
		reply_error(c, code, r->code != NULL ? r->code : "error", r->message);
	else
		reply_json(c, code, act_body(c, p->kind, r));
	free(p);
}

static void start_action(struct call *c, struct act_request *req)
{
	struct pending *p = malloc(sizeof(*p));

	if (p == NULL) {
		reply_error(c, 503, "no_memory", "out of memory");
		return;
	}
	p->c = c;
	p->kind = req->kind;
	c->counted_kind = (unsigned)req->kind; /* counted by reply_error / reply_json */
	if (req->operator== NULL)
		req->operator= c->session;
	req->client_addr = c->peer;
	act_start(c->api->A, req, act_done, p);
}

/* A request refused before its action ran (no session, a bad body) goes to
 * the action anyway, which records it and answers with code and message. */
static void refuse_as(struct call *c, struct act_request *req, enum act_status st, const char *code,
                      const char *message)
{
	req->refused = st;
	req->refused_code = code;
	req->refused_message = message;
	start_action(c, req);
}

static void refuse_body(struct call *c, struct act_request *req)
{
	if (c->refused_code != 0)
		refuse_as(c, req, ACT_BAD_REQUEST, c->refused_error, c->refused_message);
	else
		refuse_as(c, req, ACT_BAD_REQUEST, "bad_json", "the body must be a JSON object");
}

/* A body the front refused, on a request that reaches no action (no
 * session, no such endpoint): answered as the front would, not recorded.
 * Return: true when answered. */
static bool body_refused_reply(struct call *c)
{
	if (c->refused_code == 0)
		return false;
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Connection", "close");
	reply_error(c, c->refused_code, c->refused_error, c->refused_message);
	return true;
}

/* Event fields shared by every action. Return -1 (answered 400) on a bad type. */
int api_body_fields(json_t *body, struct act_request *req)
{
	bool bad = false;
	json_t *days = json_object_get(body, "days"), *unlock = json_object_get(body, "unlock");

	req->ticket = body_str(body, "ticket", &bad);
	req->requester = body_str(body, "requester", &bad);
	req->department = body_str(body, "department", &bad);
	req->channel = body_str(body, "channel", &bad);
	req->note = body_str(body, "note", &bad);
	req->until = body_str(body, "until", &bad);
	req->category = body_str(body, "category", &bad);
	req->description = body_str(body, "description", &bad);
	req->name = body_str(body, "name", &bad);
	req->mail = body_str(body, "mail", &bad);
	req->reason = body_str(body, "reason", &bad);
	if (req->permission == NULL)
		req->permission = body_str(body, "permission", &bad);
	if (days != NULL && !json_is_null(days)) {
		if (!json_is_integer(days) || json_integer_value(days) < 1 ||
		    json_integer_value(days) > 36500)
			bad = true;
		else
			req->days = (int)json_integer_value(days);
	}
	if (unlock != NULL && !json_is_boolean(unlock))
		bad = true;
	req->unlock = unlock != NULL && json_is_true(unlock);
	return bad ? -1 : 0;
}

/* Event fields shared by every action. Return -1 (refused: 400) when the
 * body is no JSON object or a field has a bad type. */
static int event_fields(struct call *c, struct act_request *req)
{
	if (c->bad_body) {
		refuse_body(c, req);
		return -1;
	}
	if (api_body_fields(c->body, req) == 0)
		return 0;
	/* What was read is not kept: a field of the wrong type is not stored. */
	*req = (struct act_request){.kind = req->kind,
	                            .target = req->target,
	                            .permission = req->permission,
	                            .request_id = req->request_id};
	refuse_as(c, req, ACT_BAD_REQUEST, "bad_request",
	          "a field has the wrong type: strings for text, a whole number of days "
	          "from 1 to 36500, true or false for unlock");
	return -1;
}

/* With [server] client_ca, a TLS request must come with the operator's own
 * certificate (CN = uid): its login, and every request of its session, so a
 * token taken elsewhere is no use with another certificate from the CA.
 * unix-socket requests are local and exempt (the socket's mode decides).
 * Return: true if it may go on; else note says whose certificate it was. */
static bool cert_is(struct call *c, const char *uid, char *note, size_t len)
{
	char cn[128];
	const char *got;

	if (c->api->conf->client_ca == NULL || !http_is_tls(c->req))
		return true;
	got = http_peer_cn(c->req, cn, sizeof(cn));
	if (got != NULL && uid != NULL && strcasecmp(got, uid) == 0)
		return true;
	snprintf(note, len, "client certificate %s%s", got != NULL ? "CN=" : "without a CN",
	         got != NULL ? got : "");
	return false;
}

/* A login refused for its certificate is recorded as any refused login is:
 * the certificate's CN, which the CA vouches for, not the name typed. */
static bool cert_matches(struct call *c, const char *user)
{
	char note[160];

	if (cert_is(c, user, note, sizeof(note)))
		return true;
	refuse_as(c, &(struct act_request){.kind = ACT_LOGIN, .note = note}, ACT_UNAUTHORIZED,
	          "certificate_mismatch",
	          "log in with the client certificate issued to you (its CN must be your uid)");
	return false;
}

static void do_login(struct call *c)
{
	struct act_request req = {.kind = ACT_LOGIN};
	bool bad = false;

	if (c->bad_body) {
		refuse_body(c, &req);
		return;
	}
	req.target = body_str(c->body, "user", &bad);
	req.password = body_str(c->body, "password", &bad);
	if (bad) {
		/* Neither is kept: a password typed as a number is still one. */
		refuse_as(c, &(struct act_request){.kind = ACT_LOGIN}, ACT_BAD_REQUEST,
		          "bad_request", "user and password must be strings");
		return;
	}
	if (!cert_matches(c, req.target))
		return;
	start_action(c, &req); /* the password in the body is wiped by call_free */
}

static void do_target(struct call *c, enum act_kind kind, const char *permission)
{
	struct act_request req = {.kind = kind, .target = c->seg[2], .permission = permission};

	if (event_fields(c, &req) == 0)
		start_action(c, &req);
}

/* The token stops working at once (its session leaves the table); the answer
 * waits for the logout's record (one group commit, off the loop). */
static void do_logout(struct call *c)
{
	const char *h = bearer_token(c);
	struct act_request req = {.kind = ACT_LOGOUT};
	struct session ended;

	/* A body that is no JSON is refused (recorded) before the session ends. */
	if (c->bad_body) {
		refuse_body(c, &req);
		return;
	}
	if (h == NULL || session_revoke(c->api->sessions, h, &ended) == -1) {
		reply_error(c, 401, "unauthenticated", "the session ended: log in again");
		return;
	}
	req.operator= & ended; /* copied by act_start */
	start_action(c, &req);
}

/* ---- audit, verify, health ------------------------------------------------------ */

struct query {
	struct evkeyvalq kv;
	char from[CLOCK_ISO_LEN], to[CLOCK_ISO_LEN];
	struct audit_filter f;
	bool csv;
	bool category_unset;  /* f.category is in no [category.*]: the job looks in the log */
	bool category_absent; /* ... and found no record of it */
};

/* "+" in a query string decodes to a space; a time zone "+08:00" needs it back. */
static const char *plus_fixed(const char *v, char *buf, size_t len)
{
	snprintf(buf, len, "%s", v);
	for (char *p = buf; *p != '\0'; p++)
		if (*p == ' ')
			*p = '+';
	return buf;
}

static int query_bound(struct query *q, const char *key, bool end, char *out, const char **fp)
{
	const char *v = evhttp_find_header(&q->kv, key);
	char fixed[64];

	if (v == NULL || v[0] == '\0')
		return 0;
	if (clock_bound(plus_fixed(v, fixed, sizeof(fixed)), end, out, CLOCK_ISO_LEN) == -1)
		return -1;
	*fp = out;
	return 0;
}

static int query_int(struct query *q, const char *key, long lo, long hi, long *out)
{
	const char *v = evhttp_find_header(&q->kv, key);
	char *end;

	if (v == NULL || v[0] == '\0')
		return 0;
	*out = strtol(v, &end, 10);
	return (*end != '\0' || *out < lo || *out > hi) ? -1 : 0;
}

static const char *query_str(struct query *q, const char *key)
{
	const char *v = evhttp_find_header(&q->kv, key);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A misspelt key ("operater", "dept") read as no filter would quietly hand
 * out the whole log, a key given twice as its first value only, and one
 * given empty as no filter: all are refused. Return: 0, or -1 with msg filled. */
static int query_keys_check(const struct evkeyvalq *kv, const char *const *known, char *msg,
                            size_t len)
{
	const struct evkeyval *e, *f;

	TAILQ_FOREACH(e, kv, next)
	{
		bool ok = false;

		/* Echoed or recorded, bytes that are not text would make the
		 * refusal itself unrecordable (a record is UTF-8). */
		if (!utf8_valid(e->key, strlen(e->key)) ||
		    (e->value != NULL && !utf8_valid(e->value, strlen(e->value)))) {
			snprintf(
			    msg, len,
			    "the query string is not valid UTF-8: percent-encode text as UTF-8 "
			    "(信 is %%E4%%BF%%A1)");
			return -1;
		}
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(e->key, known[i]) == 0;
		if (!ok) {
			size_t o =
			    (size_t)snprintf(msg, len, "unknown query parameter \"%.*s\": use ",
			                     utf8_prefix(e->key, 40), e->key);

			for (size_t i = 0; known[i] != NULL && o < len; i++)
				o += (size_t)snprintf(msg + o, len - o, "%s%s", i > 0 ? ", " : "",
				                      known[i]);
			return -1;
		}
		/* Read as no filter, an empty value (a script's unset variable)
		 * would hand out the whole log as well. */
		if (e->value == NULL || e->value[0] == '\0') {
			snprintf(
			    msg, len,
			    "query parameter \"%s\" is empty: give it a value, or leave it out "
			    "for no filter",
			    e->key);
			return -1;
		}
		for (f = TAILQ_NEXT(e, next); f != NULL; f = TAILQ_NEXT(f, next))
			if (strcmp(e->key, f->key) == 0) {
				snprintf(msg, len,
				         "query parameter \"%s\" is given twice: give it once",
				         e->key);
				return -1;
			}
	}
	return 0;
}

/* A read (log, report, verify) refused for its query: recorded as a failed
 * attempt, as a bad body of an action is (DESIGN: refused requests are
 * attempts too). */
static void bad_query(struct call *c, enum act_kind kind, const char *message)
{
	refuse_as(c, &(struct act_request){.kind = kind}, ACT_BAD_REQUEST, "bad_request", message);
}

/* One message for a bad from or to, in log and report alike: which one, as
 * given (cut at 64 bytes), and the two forms taken. */
static void bad_bound(struct call *c, enum act_kind kind, const char *key, const char *value)
{
	char msg[200];

	snprintf(msg, sizeof(msg),
	         "%s '%.*s' is not a date that exists (YYYY-MM-DD) nor an ISO 8601 time", key,
	         utf8_prefix(value, 64), value);
	bad_query(c, kind, msg);
}

/*
 * The query string of a read (log, report, verify) into kv, checked: one
 * libevent cannot parse (it then empties the whole list: verify would check
 * all, a filter would go), a value cut at an encoded NUL ("user=%00" read as
 * no filter), a key the endpoint does not take, or one given twice, is 400,
 * recorded as kind. Return: 0, or -1 (answered; kv empty or the caller's to
 * clear).
 */
static int read_query(struct call *c, enum act_kind kind, struct evkeyvalq *kv,
                      const char *const *known)
{
	const char *qs = evhttp_uri_get_query(c->uri);
	char msg[300];

	if (qs != NULL && (evhttp_parse_query_str(qs, kv) == -1 || strstr(qs, "%00") != NULL)) {
		bad_query(c, kind, "malformed query string: give key=value pairs (no NUL byte)");
		return -1;
	}
	if (query_keys_check(kv, known, msg, sizeof(msg)) == -1) {
		bad_query(c, kind, msg);
		return -1;
	}
	return 0;
}

static int parse_audit_query(struct call *c, struct query *q)
{
	const char *fmt;
	long limit = 0, after = 0;

	if (query_bound(q, "from", false, q->from, &q->f.from) == -1)
		return bad_bound(c, ACT_LOG, "from", evhttp_find_header(&q->kv, "from")), -1;
	if (query_bound(q, "to", true, q->to, &q->f.to) == -1)
		return bad_bound(c, ACT_LOG, "to", evhttp_find_header(&q->kv, "to")), -1;
	/* Both are stored-format UTC, which sorts as text; as for a report. */
	if (q->f.from != NULL && q->f.to != NULL && strcmp(q->f.from, q->f.to) > 0)
		return bad_query(c, ACT_LOG, "from is after to: swap them"), -1;
	if (query_int(q, "limit", 1, LDAPDESK_AUDIT_PAGE_MAX, &limit) == -1 ||
	    query_int(q, "after", 0, INT64_MAX, &after) == -1)
		return bad_query(c, ACT_LOG, "limit is 1 to 5000 and after an event id"), -1;
	q->f.limit = (int)limit;
	q->f.after = after;
	q->f.user = query_str(q, "user");
	q->f.operator= query_str(q, "operator");
	q->f.action = query_str(q, "action");
	q->f.category = query_str(q, "category");
	q->f.department = query_str(q, "department");
	q->f.result = query_str(q, "result");
	/* A typo must not read as "nothing happened": only known values. */
	if (q->f.action != NULL && !actions_is_action(q->f.action)) {
		char names[400], msg[480];

		snprintf(msg, sizeof(msg), "no such action: use one of %s",
		         actions_names(names, sizeof(names)));
		return bad_query(c, ACT_LOG, msg), -1;
	}
	if (q->f.result != NULL && strcmp(q->f.result, "ok") != 0 &&
	    strcmp(q->f.result, "unchanged") != 0 && strcmp(q->f.result, "denied") != 0 &&
	    strcmp(q->f.result, "failed") != 0 && strcmp(q->f.result, "pending") != 0)
		return bad_query(c, ACT_LOG, "result is ok, unchanged, denied, failed or pending"),
		       -1;
	/* One removed from the configuration still names records in the log:
	 * the job looks there (query_work) before calling it a typo. */
	q->category_unset =
	    q->f.category != NULL && config_category(c->api->conf, q->f.category) == NULL;
	fmt = query_str(q, "format");
	if (fmt != NULL && strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0)
		return bad_query(c, ACT_LOG, "format is json or csv"), -1;
	q->csv = fmt != NULL && strcmp(fmt, "csv") == 0;
	return 0;
}

static int collect_row(void *arg, json_t *row)
{
	json_t *copy = json_deep_copy(row);
	static const char *times[] = {"requested_at", "finished_at"};

	for (size_t i = 0; i < 2; i++)
		json_object_set_new(
		    copy, times[i],
		    local_time_json(json_string_value(json_object_get(row, times[i]))));
	json_array_append_new(arg, copy);
	return 0;
}

static void csv_cell(struct evbuffer *out, json_t *v)
{
	char num[32];
	const char *s = json_is_string(v) ? json_string_value(v) : "";

	if (json_is_integer(v))
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v)), s = num;
	else if (json_is_boolean(v))
		s = json_is_true(v) ? "true" : "false";
	/* Formula injection: Excel runs cells starting with = + - @. */
	if (s[0] != '\0' && strchr(LDAPDESK_CSV_FORMULA, s[0]) != NULL) {
		evbuffer_add(out, "\"'", 2);
	} else if (strpbrk(s, ",\"\r\n") != NULL) {
		evbuffer_add(out, "\"", 1);
	} else {
		evbuffer_add(out, s, strlen(s));
		return;
	}
	for (; *s != '\0'; s++) {
		if (*s == '"')
			evbuffer_add(out, "\"\"", 2);
		else
			evbuffer_add(out, s, 1);
	}
	evbuffer_add(out, "\"", 1);
}

static void reply_csv(struct call *c, json_t *rows, int64_t next)
{
	struct evbuffer *out = evbuffer_new();
	json_t *row;
	const char *key;
	json_t *v;
	size_t i;
	char hdr[32];

	size_t nkeys;
	const char *const *keys = audit_row_keys(&nkeys);

	/* The header always, so an empty result is still a CSV file with columns. */
	for (i = 0; i < nkeys; i++)
		evbuffer_add_printf(out, "%s%s", i == 0 ? "" : ",", keys[i]);
	evbuffer_add(out, "\r\n", 2);
	json_array_foreach(rows, i, row)
	{
		bool first = true;

		json_object_foreach(row, key, v)
		{
			if (!first)
				evbuffer_add(out, ",", 1);
			csv_cell(out, v);
			first = false;
		}
		evbuffer_add(out, "\r\n", 2);
	}
	if (next != 0) {
		snprintf(hdr, sizeof(hdr), "%lld", (long long)next);
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "X-Next", hdr);
	}
	count_answer(c, 200);
	http_reply_raw(c->req, 200, "text/csv; charset=utf-8",
	               (const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
	json_decref(rows);
	call_free(c);
}

static bool has_role(const struct call *c, unsigned roles)
{
	return (c->session->roles & roles) != 0;
}

/* The last backup as health shows it: its time in the server's zone, as
 * every time an operator reads (DESIGN: stored in UTC, shown local). */
static json_t *last_backup_json(const struct api *a)
{
	json_t *last = a->backup != NULL ? backup_last(a->backup) : json_null();
	json_t *copy = json_is_object(last) ? json_deep_copy(last) : NULL;
	const char *at = json_string_value(json_object_get(last, "at"));

	if (copy == NULL)
		return last;
	if (at != NULL)
		json_object_set_new(copy, "at", local_time_json(at));
	json_decref(last);
	return copy;
}

static void do_health(struct call *c)
{
	bool conn = dir_available(c->api->dir), up = dir_answering(c->api->dir);
	const char *audit_err = actions_audit_error(c->api->A);
	const char *bk_err = c->api->backup != NULL ? backup_failing(c->api->backup) : NULL;
	char db[320], bk[2100];

	snprintf(db, sizeof(db), "%s%s", audit_err != NULL ? "failing: " : "ok",
	         audit_err != NULL ? audit_err : "");
	/* A failing backup does not stop the service (status stays as it is),
	 * but it is reported until a backup succeeds. */
	snprintf(bk, sizeof(bk), "%s%s",
	         c->api->backup == NULL ? "not set up"
	         : bk_err != NULL       ? "failing: "
	                                : "ok",
	         bk_err != NULL ? bk_err : "");
	reply_json(c, up && audit_err == NULL ? 200 : 503,
	           json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "status",
	                     up && audit_err == NULL ? "ok" : "degraded", "directory",
	                     up     ? "up"
	                     : conn ? "not answering"
	                            : "down",
	                     "database", db, "backup", bk, "last_backup", last_backup_json(c->api),
	                     "version", LDAPDESK_VERSION));
}

/* ---- reports, verify, import: jobs off the loop --------------------------------- */

/*
 * Reports, verify and import read (or write) every event of a period or of the
 * whole store: over a million events each takes seconds to a minute, so they
 * run as jobs (job.h) and their answer comes back to the loop. One of each
 * kind at a time: a second one waits its turn (409).
 */
struct job_call {
	struct call *c;
	enum job_kind kind;
	int slot;                  /* in api->jobs */
	const struct config *conf; /* held (config_ref) until the job is freed */
	/* report */
	char from[CLOCK_ISO_LEN], to[CLOCK_ISO_LEN], fmt[16];
	char *out;
	size_t len;
	const char *ctype;
	/* verify */
	char since[128];
	bool has_since;
	struct audit_verify v;
	/* import: the body is moved out of the request into body_buf, so the
	 * thread never reads memory that evhttp frees (at shutdown, say) */
	char uid[LDAPDESK_MAX_UID + 1], dn[1024], peer[64];
	struct evbuffer *body_buf;
	const char *body;
	size_t body_len;
	int64_t imported;
	json_t *errors;
	bool check;              /* ?check=1: checked and shown, nothing stored */
	json_t *preview;         /* what import_check found */
	job_work_fn work;        /* what the job runs (job_call_start) */
	struct event_base *base; /* the loop its end is answered on */
	/* query (GET /v1/audit): the filter points into q.kv */
	struct query q;
	json_t *rows;
	int64_t next;
};

static void job_call_free(struct job_call *jc)
{
	if (jc->body_buf != NULL)
		evbuffer_free(jc->body_buf);
	if (jc->kind == JOB_QUERY)
		evhttp_clear_headers(&jc->q.kv);
	json_decref(jc->rows);
	free(jc->out);
	json_decref(jc->errors);
	json_decref(jc->preview);
	config_unref(jc->conf);
	free(jc);
}

static int report_work(struct audit *a, void *arg, char *err, size_t errlen)
{
	struct job_call *jc = arg;

	return report_build(a, jc->conf, jc->from, jc->to, jc->fmt, &jc->out, &jc->len, &jc->ctype,
	                    err, errlen);
}

static int verify_work(struct audit *a, void *arg, char *err, size_t errlen)
{
	struct job_call *jc = arg;

	return audit_verify(a, jc->has_since ? jc->since : NULL, &jc->v, err, errlen);
}

/* An unindexed filter (department, category, result) reads the whole store. */
static int query_work(struct audit *a, void *arg, char *err, size_t errlen)
{
	struct job_call *jc = arg;

	if (jc->q.category_unset) {
		int used = audit_category_used(a, jc->q.f.category, err, errlen);

		if (used == -1)
			return -1;
		if ((jc->q.category_absent = used == 0))
			return 0;
	}
	return audit_query(a, &jc->q.f, collect_row, jc->rows, &jc->next, err, errlen);
}

static int import_work(struct audit *a, void *arg, char *err, size_t errlen)
{
	struct job_call *jc = arg;

	if (jc->check)
		return import_check(a, jc->conf, jc->body, jc->body_len, &jc->preview, &jc->errors,
		                    err, errlen);
	return import_csv(a, jc->conf, jc->uid, jc->dn, jc->peer, jc->body, jc->body_len,
	                  &jc->imported, &jc->errors, err, errlen);
}

static void report_answer(struct job_call *jc, int rc, const char *err)
{
	struct call *c = jc->c;

	/* The range and format were checked before the job: what fails now is
	 * the store (or a text in it) or the report's size. */
	if (rc == -1) {
		if (strstr(err, "larger than") != NULL)
			reply_error(c, 413, "bad_request", err);
		else if (strstr(err, "categories in the range") != NULL)
			reply_error(c, 400, "bad_request", err);
		else
			reply_error(c, 503, "audit_unavailable", err);
		return;
	}
	count_answer(c, 200);
	http_reply_raw(c->req, 200, jc->ctype, jc->out, jc->len);
	call_free(c);
}

static void verify_answer(struct job_call *jc, int rc, const char *err)
{
	const struct audit_verify *v = &jc->v;

	if (rc == -1) {
		reply_error(jc->c, jc->has_since ? 400 : 503,
		            jc->has_since ? "bad_request" : "audit_unavailable", err);
		return;
	}
	reply_json(jc->c, 200,
	           json_pack("{s:b, s:b, s:I, s:o, s:s, s:s, s:I, s:s?}", "ok", v->complete,
	                     "whole", v->ok, "records", (json_int_t)v->records, "first_bad",
	                     v->first_bad != 0 ? json_integer(v->first_bad) : json_null(), "head",
	                     v->head, "reason", v->reason, "lost", (json_int_t)v->n_lost,
	                     "lost_detail", v->lost[0] != '\0' ? v->lost : NULL));
}

static void import_answer(struct job_call *jc, int rc, const char *err)
{
	if (rc == 0 && jc->check) {
		reply_json(jc->c, 200, jc->preview);
		jc->preview = NULL; /* reply_json took it */
	} else if (rc == 0)
		reply_json(jc->c, 200, json_pack("{s:I}", "imported", (json_int_t)jc->imported));
	else if (rc == -2 && jc->errors != NULL) /* rows in the log already */
		reply_json(jc->c, 409,
		           json_pack("{s:s, s:s, s:O}", "error", "already_imported", "message", err,
		                     "errors", jc->errors));
	else if (rc == -2)
		reply_error(jc->c, 409, "already_imported", err);
	else if (jc->errors != NULL || strncmp(err, "import: line 1", 14) == 0) {
		json_t *errors = jc->errors != NULL ? json_incref(jc->errors) : json_array();
		int line = 0, off = 0;

		/* An error of the file as a whole ("import: line N: ...", the
		 * header's) is listed like a row's: DESIGN's errors. */
		if (json_array_size(errors) == 0 &&
		    sscanf(err, "import: line %d: %n", &line, &off) == 1 && off > 0)
			json_array_append_new(
			    errors, json_pack("{s:i, s:s}", "line", line, "message", err + off));
		reply_json(jc->c, 400,
		           json_pack("{s:s, s:s, s:o}", "error", "bad_request", "message", err,
		                     "errors", errors));
	} else
		reply_error(jc->c, 503, "audit_unavailable", err);
}

static void query_answer(struct job_call *jc, int rc, const char *err)
{
	json_t *rows = jc->rows;

	if (rc == -1) {
		reply_error(jc->c, 503, "audit_unavailable", err);
		return;
	}
	/* A typo must not read as "nothing happened". (Found by the job, so
	 * after the role check: a 403 comes first here.) */
	if (jc->q.category_absent) {
		/* Looked up again: the job ran while the table changed. */
		jc->c->session = authenticate(jc->c);
		bad_query(
		    jc->c, ACT_LOG,
		    "no such category: the keys are those of the report's table ([category.KEY] "
		    "in the configuration) and those of records in the log");
		return;
	}
	jc->rows = NULL; /* handed to the reply */
	if (jc->q.csv) {
		reply_csv(jc->c, rows, jc->next);
		return;
	}
	reply_json(jc->c, 200,
	           json_pack("{s:o, s:o}", "events", rows, "next",
	                     jc->next != 0 ? json_integer(jc->next) : json_null()));
}

static void job_call_done(void *arg, int rc, const char *err)
{
	struct job_call *jc = arg;

	jc->c->api->jobs[jc->slot] = NULL;
	jc->c->api->job_calls[jc->slot] = NULL;
	if (rc == JOB_STOPPED)
		reply_error(jc->c, 503, "stopping", err);
	else if (jc->kind == JOB_REPORT)
		report_answer(jc, rc, err);
	else if (jc->kind == JOB_VERIFY)
		verify_answer(jc, rc, err);
	else if (jc->kind == JOB_QUERY)
		query_answer(jc, rc, err);
	else
		import_answer(jc, rc, err);
	job_call_free(jc);
}

/* A job that cannot start. An import is an action: its refusal is recorded
 * (with who asked), as every refused action is. */
/* A job refused before it starts is the caller's refused attempt too. */
static void job_refuse(struct call *c, enum job_kind kind, enum act_status st, const char *code,
                       const char *message)
{
	static const enum act_kind acts[JOB_KINDS] = {
	    [JOB_QUERY] = ACT_LOG,
	    [JOB_REPORT] = ACT_REPORT,
	    [JOB_VERIFY] = ACT_VERIFY,
	    [JOB_IMPORT] = ACT_IMPORT,
	};

	refuse_as(c, &(struct act_request){.kind = acts[kind]}, st, code, message);
}

/* A slot is taken by a running job, or by one waiting to start
 * (job_call_start). */
static bool slot_taken(const struct api *api, int slot)
{
	return api->jobs[slot] != NULL || api->job_calls[slot] != NULL;
}

/* A job_call for c of kind, or NULL when c was answered (409, no memory). */
static struct job_call *job_call_new(struct call *c, enum job_kind kind)
{
	static const char *const busy[JOB_KINDS] = {
	    [JOB_QUERY] = "",
	    [JOB_REPORT] = "a report is being built: try again shortly",
	    [JOB_VERIFY] = "the chain is being verified: try again shortly",
	    [JOB_IMPORT] = "an import is running: try again when it ends",
	};
	struct job_call *jc;
	int slot = kind;
	char msg[128];

	/* A job begun during the stop would outlive its deadline. */
	if (c->api->stopping) {
		job_refuse(c, kind, ACT_UNAVAILABLE, "stopping",
		           "ldapdeskd is stopping: try again once it is back");
		return NULL;
	}
	/* Replies not yet read by their clients stay in memory: a client that
	 * never reads must not make the daemon hold page after page. */
	if (c->api->http != NULL && kind != JOB_IMPORT &&
	    http_unsent_bytes(c->api->http) > API_UNSENT_MAX) {
		snprintf(msg, sizeof(msg),
		         "%zu MiB of replies wait for clients to read them: try again shortly",
		         http_unsent_bytes(c->api->http) >> 20);
		job_refuse(c, kind, ACT_UNAVAILABLE, "busy", msg);
		return NULL;
	}
	/* Log queries share API_QUERIES slots; the rest have one each. */
	while (kind == JOB_QUERY && slot < API_JOB_SLOTS && slot_taken(c->api, slot))
		slot++;
	if (kind == JOB_QUERY && slot == API_JOB_SLOTS) {
		job_refuse(c, kind, ACT_UNAVAILABLE, "busy",
		           "too many log queries are running: try again shortly");
		return NULL;
	}
	if (slot_taken(c->api, slot)) {
		job_refuse(c, kind, ACT_CONFLICT, kind == JOB_REPORT ? "report_running" : "busy",
		           busy[kind]);
		return NULL;
	}
	if ((jc = calloc(1, sizeof(*jc))) == NULL) {
		reply_error(c, 503, "no_memory", "out of memory");
		return NULL;
	}
	jc->c = c;
	jc->kind = kind;
	jc->slot = slot;
	jc->conf = config_ref(c->api->conf); /* the job thread reads it */
	return jc;
}

/* Starts jc's job once the outcomes answered before it are stored. */
static void job_call_go(void *arg)
{
	struct job_call *jc = arg;
	struct call *c = jc->c;
	char err[256];

	/* Taken before a stop began (job_call_new refuses after): it runs, and
	 * the stop waits for it as for any job. Its slot stays taken. */
	c->api->jobs[jc->slot] =
	    job_start(jc->base, c->api->audit, jc->work, job_call_done, jc, err, sizeof(err));
	if (c->api->jobs[jc->slot] == NULL) {
		enum job_kind kind = jc->kind;

		c->api->job_calls[jc->slot] = NULL;
		job_call_free(jc);
		job_refuse(c, kind, ACT_UNAVAILABLE, "busy", err);
	}
}

/* A change is answered before its outcome record is stored (commit.c), so
 * a log, report or verify could miss the outcome of one answered just
 * before it: the job starts once those are stored (a few milliseconds),
 * holding its slot meanwhile. */
static void job_call_start(struct job_call *jc, job_work_fn work)
{
	/* Taken now: a client gone while the job waits leaves its request
	 * without a connection. */
	jc->base = evhttp_connection_get_base(evhttp_request_get_connection(jc->c->req));
	jc->work = work;
	jc->c->api->job_calls[jc->slot] = jc;
	actions_after_settled(jc->c->api->A, job_call_go, jc);
}

/* DESIGN's order: a bad query (400) is answered before the role (403).
 * A refusal is recorded, as every refused request (actions answers it). */
static bool auditor_or_admin(struct call *c, enum act_kind kind)
{
	struct act_request req = {.kind = kind};

	if (has_role(c, ROLE_ADMIN | ROLE_AUDITOR))
		return true;
	start_action(c, &req);
	return false;
}

static void do_audit(struct call *c)
{
	static const char *const known[] = {"from",   "to",       "user",   "operator",
	                                    "action", "category", "result", "department",
	                                    "limit",  "after",    "format", NULL};
	struct job_call *jc = job_call_new(c, JOB_QUERY);

	if (jc == NULL)
		return;
	TAILQ_INIT(&jc->q.kv);
	if (read_query(c, ACT_LOG, &jc->q.kv, known) == -1 || parse_audit_query(c, &jc->q) == -1 ||
	    !auditor_or_admin(c, ACT_LOG)) {
		job_call_free(jc); /* answered */
		return;
	}
	if ((jc->rows = json_array()) == NULL) {
		job_call_free(jc);
		reply_error(c, 503, "no_memory", "out of memory");
		return;
	}
	job_call_start(jc, query_work);
}

static void do_report(struct call *c)
{
	static const char *const known[] = {"from", "to", "format", NULL};
	struct evkeyvalq kv;
	const char *from, *to, *fmt;
	char f[CLOCK_ISO_LEN], t[CLOCK_ISO_LEN], ff[64], tf[64], err[160];
	struct job_call *jc;

	TAILQ_INIT(&kv);
	if (read_query(c, ACT_REPORT, &kv, known) == -1) {
		evhttp_clear_headers(&kv);
		return;
	}
	from = evhttp_find_header(&kv, "from");
	to = evhttp_find_header(&kv, "to");
	fmt = evhttp_find_header(&kv, "format");
	if (from == NULL || to == NULL)
		bad_query(c, ACT_REPORT, "from and to are required: YYYY-MM-DD or ISO 8601 times");
	else if (clock_bound(plus_fixed(from, ff, sizeof(ff)), false, f, sizeof(f)) == -1)
		bad_bound(c, ACT_REPORT, "from", from);
	else if (clock_bound(plus_fixed(to, tf, sizeof(tf)), true, t, sizeof(t)) == -1)
		bad_bound(c, ACT_REPORT, "to", to);
	else if (strcmp(f, t) > 0) /* stored-format UTC sorts as text */
		bad_query(c, ACT_REPORT, "from is after to: swap them");
	else if (fmt != NULL && !report_format_known(fmt))
		bad_query(c, ACT_REPORT, "format is text, md, csv, json or html");
	else if (report_range_check(f, t, err, sizeof(err)) == -1)
		bad_query(c, ACT_REPORT, err);
	else if (auditor_or_admin(c, ACT_REPORT) && (jc = job_call_new(c, JOB_REPORT)) != NULL) {
		snprintf(jc->from, sizeof(jc->from), "%s", f);
		snprintf(jc->to, sizeof(jc->to), "%s", t);
		snprintf(jc->fmt, sizeof(jc->fmt), "%s", fmt != NULL ? fmt : "json");
		job_call_start(jc, report_work);
	}
	evhttp_clear_headers(&kv);
}

static void do_verify(struct call *c)
{
	static const char *const known[] = {"since", NULL};
	struct evkeyvalq kv;
	const char *since;
	struct job_call *jc;

	TAILQ_INIT(&kv);
	if (read_query(c, ACT_VERIFY, &kv, known) == -1) {
		evhttp_clear_headers(&kv);
		return;
	}
	since = evhttp_find_header(&kv, "since");
	if (since != NULL &&
	    (strlen(since) >= sizeof(((struct job_call *)0)->since) || !audit_head_valid(since)))
		bad_query(c, ACT_VERIFY, "since is ID:HASH, as verify --head prints it");
	else if (auditor_or_admin(c, ACT_VERIFY) && (jc = job_call_new(c, JOB_VERIFY)) != NULL) {
		jc->has_since = since != NULL;
		snprintf(jc->since, sizeof(jc->since), "%s", since != NULL ? since : "");
		job_call_start(jc, verify_work);
	}
	evhttp_clear_headers(&kv);
}

static void do_import(struct call *c)
{
	static const char *const known[] = {"check", NULL};
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	struct evkeyvalq kv = TAILQ_HEAD_INITIALIZER(kv);
	const char *check;
	struct job_call *jc;

	/* ?check=1: the rows as they would be stored (their categories), none
	 * stored; the file can then be fixed before it is imported for good. */
	if (read_query(c, ACT_IMPORT, &kv, known) == -1) {
		evhttp_clear_headers(&kv);
		return;
	}
	check = evhttp_find_header(&kv, "check");
	bool checking = check != NULL, bad = checking && strcmp(check, "1") != 0;

	evhttp_clear_headers(&kv);
	if (bad) {
		bad_query(c, ACT_IMPORT,
		          "check is 1 (only check the file, store nothing) or absent");
		return;
	}
	if ((jc = job_call_new(c, JOB_IMPORT)) == NULL)
		return;
	jc->check = checking;
	/* The session may end while the job runs: who imported is copied. */
	snprintf(jc->uid, sizeof(jc->uid), "%s", c->session->uid);
	snprintf(jc->dn, sizeof(jc->dn), "%s", c->session->dn);
	snprintf(jc->peer, sizeof(jc->peer), "%s", c->peer);
	if ((jc->body_buf = evbuffer_new()) == NULL ||
	    evbuffer_remove_buffer(in, jc->body_buf, evbuffer_get_length(in)) < 0) {
		job_call_free(jc);
		reply_error(c, 503, "no_memory", "out of memory");
		return;
	}
	jc->body_len = evbuffer_get_length(jc->body_buf);
	jc->body = (const char *)evbuffer_pullup(jc->body_buf, -1);
	if (jc->body == NULL)
		jc->body = "";
	job_call_start(jc, import_work);
}

static void backup_done(void *arg, int ok, const char *file, int64_t records, const char *err)
{
	struct call *c = arg;

	if (ok) {
		json_t *o = json_pack("{s:s, s:I}", "file", file, "records", (json_int_t)records);

		/* A copy kept though its chain is broken (as the live database's
		 * is) says where: err holds that note then (backup_fn). */
		if (o != NULL && err != NULL && err[0] != '\0')
			json_object_set_new(o, "chain", json_string(err));
		reply_json(c, 200, o);
	} else if (c->api->stopping && err != NULL &&
	           strncmp(err, "ldapdeskd is stopping", 21) == 0)
		reply_error(c, 503, "stopping", err); /* stopped at the stop's deadline */
	else
		reply_error(c, 500, "backup_failed", err != NULL ? err : "the backup failed");
}

/* A backup that cannot start is a refused one: recorded, with who asked. */
static void do_backup(struct call *c)
{
	struct backup_who who = {c->session->uid, c->session->dn, c->peer};
	struct act_request req = {.kind = ACT_BACKUP};
	char err[256] = "";
	int rc;

	/* A backup started now would outlast the stop's deadline unanswered. */
	if (c->api->stopping) {
		refuse_as(c, &req, ACT_UNAVAILABLE, "stopping",
		          "ldapdeskd is stopping: try again once it is back");
		return;
	}
	rc = c->api->backup != NULL
	         ? backup_start(c->api->backup, &who, backup_done, c, err, sizeof(err))
	         : 0;
	if (c->api->backup == NULL)
		refuse_as(c, &req, ACT_UNAVAILABLE, "backup_unavailable",
		          "backups are not set up: set [audit] backup_dir");
	else if (rc == -1)
		refuse_as(c, &req, ACT_CONFLICT, "backup_running",
		          "a backup is running: try again when it ends");
	else if (rc == -2) /* its attempt is recorded failed already */
		reply_error(c, 503, "busy",
		            "no thread could be started for the backup (out of resources): try "
		            "again shortly");
	else if (rc == -3)
		refuse_as(c, &req, ACT_CONFLICT, "backup_running",
		          "a backup was made this very second: try again in a second");
	else if (rc == -4)
		reply_error(c, 503, "audit_unavailable", err);
	else if (rc == -5) /* not recorded either: the store could not take it */
		reply_error(c, 503, "busy", err);
}

static void do_create(struct call *c)
{
	struct act_request req = {.kind = ACT_CREATE};
	bool bad = false;

	req.target = body_str(c->body, "uid", &bad);
	if (bad && !c->bad_body)
		refuse_as(c, &(struct act_request){.kind = ACT_CREATE}, ACT_BAD_REQUEST,
		          "bad_request", "uid must be a string");
	else if (event_fields(c, &req) == 0)
		start_action(c, &req);
}

static void request_json(void *arg, const struct audit_req *r)
{
	json_array_append_new(
	    arg, json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "id", (json_int_t)r->id, "operator",
	                   r->operator, "target", r->target, "permission", r->permission, "status",
	                   r->status, "created_at", local_time_json(r->created_at)));
}

static void do_requests(struct call *c)
{
	json_t *list = json_array();
	char err[256];

	if (audit_request_list(c->api->audit, NULL, request_json, list, err, sizeof(err)) == -1) {
		json_decref(list);
		reply_error(c, 503, "audit_unavailable", err);
		return;
	}
	reply_json(c, 200, json_pack("{s:o}", "requests", list));
}

/* POST /v1/requests/{id}/approve | reject */
static void do_decide(struct call *c, enum act_kind kind)
{
	struct act_request req = {.kind = kind};
	const char *seg = c->seg[2];
	size_t n = strlen(seg);
	/* Digits only, as `pending` shows them: strtoll alone takes " 1" and
	 * "+1", and turns an overflow into LLONG_MAX, another id. */
	bool digits = n > 0 && n <= 18 && strspn(seg, "0123456789") == n;
	long long id = digits ? strtoll(seg, NULL, 10) : -1;

	req.request_id = id > 0 ? id : -1;
	if (event_fields(c, &req) == 0)
		start_action(c, &req);
}

static void dispatch_admin(struct call *c)
{
	bool import = route(c, EVHTTP_REQ_POST, "v1/import");

	/* DESIGN's order: a bad body (400) before the role (403). An import's
	 * body is CSV, read only for an admin (the gate); a backup's is JSON. */
	if (!import && c->bad_body) {
		refuse_body(c, &(struct act_request){.kind = ACT_BACKUP});
		return;
	}
	/* An import's body the front refused (chunked, over 32 MiB): recorded. */
	if (import && c->refused_code != 0) {
		refuse_body(c, &(struct act_request){.kind = ACT_IMPORT});
		return;
	}
	/* Refused as an action (recorded: denied, with who asked). */
	if (!has_role(c, ROLE_ADMIN)) {
		struct act_request req = {.kind = import ? ACT_IMPORT : ACT_BACKUP};

		start_action(c, &req);
		return;
	}
	c->counted_kind = import ? ACT_IMPORT : ACT_BACKUP;
	if (import)
		do_import(c);
	else
		do_backup(c);
}

/* Prometheus text format: request and action counters, and gauges for what
 * health reports. No secrets, no per-user labels: open like /v1/health. */
/* The HTTP front's TCP connections (conns.h): open, refused, cut. */
static void metrics_connections(struct evbuffer *out, const struct http *h)
{
	unsigned long long open, total, per_addr, cut;

	if (h == NULL)
		return;
	http_conn_stats(h, &open, &total, &per_addr, &cut);
	evbuffer_add_printf(
	    out,
	    "# HELP ldapdesk_connections_open TCP connections open.\n"
	    "# TYPE ldapdesk_connections_open gauge\nldapdesk_connections_open %llu\n"
	    "# HELP ldapdesk_connections_refused_total TCP connections shut at once: "
	    "[limits] connections or connections_per_address reached.\n"
	    "# TYPE ldapdesk_connections_refused_total counter\n"
	    "ldapdesk_connections_refused_total{limit=\"connections\"} %llu\n"
	    "ldapdesk_connections_refused_total{limit=\"connections_per_address\"} %llu\n"
	    "# HELP ldapdesk_connections_cut_total TCP connections shut for sending no whole "
	    "request within [limits] request_seconds.\n"
	    "# TYPE ldapdesk_connections_cut_total counter\n"
	    "ldapdesk_connections_cut_total %llu\n",
	    open, total, per_addr, cut);
}

static void do_metrics(struct call *c)
{
	static const char *const kinds[] = {
	    "login",  "status",  "unlock", "reset",  "grant",  "revoke",  "record", "create",
	    "move",   "disable", "enable", "delete", "expire", "approve", "reject", "logout",
	    "import", "backup",  "log",    "report", "verify", "requests"};
	struct evbuffer *out = evbuffer_new();
	const struct api *a = c->api;
	int queries = 0;
	unsigned long long commits, records, pairs, hits, misses, early, settled;

	evbuffer_add_printf(out,
	                    "# HELP ldapdesk_http_requests_total Requests routed.\n"
	                    "# TYPE ldapdesk_http_requests_total counter\n"
	                    "ldapdesk_http_requests_total %llu\n",
	                    a->requests);
	evbuffer_add_printf(out, "# HELP ldapdesk_actions_total Actions answered, by action and "
	                         "HTTP status class.\n# TYPE ldapdesk_actions_total counter\n");
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (int s = 2; s < 6; s++)
			if (a->answered[k][s] != 0)
				evbuffer_add_printf(
				    out,
				    "ldapdesk_actions_total{action=\"%s\",code=\"%dxx\"} "
				    "%llu\n",
				    kinds[k], s, a->answered[k][s]);
	evbuffer_add_printf(
	    out,
	    "# HELP ldapdesk_directory_up 1 while the directory answers.\n"
	    "# TYPE ldapdesk_directory_up gauge\nldapdesk_directory_up %d\n"
	    "# HELP ldapdesk_audit_failing 1 while the audit store cannot record "
	    "(actions are refused).\n"
	    "# TYPE ldapdesk_audit_failing gauge\nldapdesk_audit_failing %d\n"
	    "# HELP ldapdesk_requests_in_flight Requests started, not yet answered.\n"
	    "# TYPE ldapdesk_requests_in_flight gauge\n"
	    "ldapdesk_requests_in_flight %d\n"
	    "# HELP ldapdesk_build_info The version of ldapdeskd.\n"
	    "# TYPE ldapdesk_build_info gauge\n"
	    "ldapdesk_build_info{version=\"%s\"} 1\n",
	    dir_answering(a->dir) ? 1 : 0, actions_audit_error(a->A) != NULL, actions_busy(a->A),
	    LDAPDESK_VERSION);
	for (int k = JOB_QUERY; k < API_JOB_SLOTS; k++)
		queries += a->jobs[k] != NULL;
	evbuffer_add_printf(
	    out,
	    "# HELP ldapdesk_jobs_running Reports, verifies, imports and log queries "
	    "running on their own threads.\n# TYPE ldapdesk_jobs_running gauge\n"
	    "ldapdesk_jobs_running{kind=\"report\"} %d\n"
	    "ldapdesk_jobs_running{kind=\"verify\"} %d\n"
	    "ldapdesk_jobs_running{kind=\"import\"} %d\n"
	    "ldapdesk_jobs_running{kind=\"query\"} %d\n",
	    a->jobs[JOB_REPORT] != NULL, a->jobs[JOB_VERIFY] != NULL, a->jobs[JOB_IMPORT] != NULL,
	    queries);
	actions_commit_stats(a->A, &commits, &records, &pairs);
	evbuffer_add_printf(
	    out,
	    "# HELP ldapdesk_audit_commits_total Group commits of action records.\n"
	    "# TYPE ldapdesk_audit_commits_total counter\n"
	    "ldapdesk_audit_commits_total %llu\n"
	    "# HELP ldapdesk_audit_records_total Action records in those commits.\n"
	    "# TYPE ldapdesk_audit_records_total counter\n"
	    "ldapdesk_audit_records_total %llu\n"
	    "# HELP ldapdesk_audit_pairs_total Requests among them stored as an attempt "
	    "and its outcome in one commit (refusals, logins, events).\n"
	    "# TYPE ldapdesk_audit_pairs_total counter\n"
	    "ldapdesk_audit_pairs_total %llu\n",
	    commits, records, pairs);
	actions_answer_stats(a->A, &early, &settled);
	evbuffer_add_printf(out,
	                    "# HELP ldapdesk_audit_answered_first_total Changes answered before "
	                    "their outcome record was stored.\n"
	                    "# TYPE ldapdesk_audit_answered_first_total counter\n"
	                    "ldapdesk_audit_answered_first_total %llu\n"
	                    "# HELP ldapdesk_audit_answered_first_settled_total Of them, those "
	                    "whose outcome's commit has ended (stored, or kept for a retry).\n"
	                    "# TYPE ldapdesk_audit_answered_first_settled_total counter\n"
	                    "ldapdesk_audit_answered_first_settled_total %llu\n",
	                    early, settled);
	dir_cache_stats(a->dir, &hits, &misses);
	evbuffer_add_printf(out,
	                    "# HELP ldapdesk_user_cache_total Unlocks that went by a cached DN "
	                    "(hit) or searched (miss).\n"
	                    "# TYPE ldapdesk_user_cache_total counter\n"
	                    "ldapdesk_user_cache_total{result=\"hit\"} %llu\n"
	                    "ldapdesk_user_cache_total{result=\"miss\"} %llu\n",
	                    hits, misses);
	metrics_connections(out, a->http);
	c->status = 200;
	http_reply_raw(c->req, 200, "text/plain; version=0.0.4; charset=utf-8",
	               (const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
	call_free(c);
}

/* ---- routing ------------------------------------------------------------------ */

static void dispatch_authenticated(struct call *c)
{
	if (route(c, EVHTTP_REQ_POST, "v1/logout"))
		do_logout(c);
	else if (route(c, EVHTTP_REQ_GET, "v1/users/*"))
		do_target(c, ACT_STATUS, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/unlock"))
		do_target(c, ACT_UNLOCK, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/reset"))
		do_target(c, ACT_RESET, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/grants"))
		do_target(c, ACT_GRANT, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/grants/*/revoke"))
		do_target(c, ACT_REVOKE, c->seg[4]);
	else if (route(c, EVHTTP_REQ_POST, "v1/events"))
		do_target(c, ACT_RECORD, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users"))
		do_create(c);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/move"))
		do_target(c, ACT_MOVE, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/disable"))
		do_target(c, ACT_DISABLE, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/enable"))
		do_target(c, ACT_ENABLE, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/users/*/delete"))
		do_target(c, ACT_DELETE, NULL);
	else if (route(c, EVHTTP_REQ_POST, "v1/import") || route(c, EVHTTP_REQ_POST, "v1/backup"))
		dispatch_admin(c);
	else if (route(c, EVHTTP_REQ_GET, "v1/requests")) {
		c->counted_kind = ACT_REQUESTS;
		if (auditor_or_admin(c, ACT_REQUESTS))
			do_requests(c);
	} else if (route(c, EVHTTP_REQ_POST, "v1/requests/*/approve"))
		do_decide(c, ACT_APPROVE);
	else if (route(c, EVHTTP_REQ_POST, "v1/requests/*/reject"))
		do_decide(c, ACT_REJECT);
	else if (route(c, EVHTTP_REQ_GET, "v1/report")) {
		c->counted_kind = ACT_REPORT; /* each checks the role after the query */
		do_report(c);
	} else if (route(c, EVHTTP_REQ_GET, "v1/audit")) {
		c->counted_kind = ACT_LOG;
		do_audit(c);
	} else if (route(c, EVHTTP_REQ_GET, "v1/verify")) {
		c->counted_kind = ACT_VERIFY;
		do_verify(c);
	} else if (!body_refused_reply(c))
		reply_error(c, 404, "no_route", "no such API endpoint");
}

/* A refusal before the action ran, for a known endpoint, is an attempt of
 * its action: by its operator when the session is known, else by nobody
 * known (throttled per address: act_start). Other paths are answered. */
static void refuse_route_note(struct call *c, enum act_status st, int http, const char *code,
                              const char *msg, const char *note)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		struct act_request req = {.kind = (enum act_kind)routes[i].kind, .note = note};

		if (routes[i].kind < 0 || !route(c, routes[i].method, routes[i].pattern))
			continue;
		/* Only a name that can be a uid: the caller is nobody known. */
		if (routes[i].target_seg > 0 && dir_valid_uid(c->seg[routes[i].target_seg]))
			req.target = c->seg[routes[i].target_seg];
		if (routes[i].perm_seg > 0 &&
		    strlen(c->seg[routes[i].perm_seg]) <= LDAPDESK_MAX_UID)
			req.permission = c->seg[routes[i].perm_seg];
		refuse_as(c, &req, st, code, msg);
		return;
	}
	reply_error(c, http, code, msg);
}

static void refuse_route(struct call *c, enum act_status st, int http, const char *code,
                         const char *msg)
{
	refuse_route_note(c, st, http, code, msg, NULL);
}

/* A session used over TLS with another operator's certificate: refused and
 * recorded under the session's operator (its token is out of its hands),
 * saying whose certificate came with it. */
static bool session_cert_ok(struct call *c)
{
	char note[256], cert[160];

	if (cert_is(c, c->session->uid, cert, sizeof(cert)))
		return true;
	snprintf(note, sizeof(note), "%s, not %s's: refused", cert, c->session->uid);
	refuse_route_note(c, ACT_UNAUTHORIZED, 401, "certificate_mismatch",
	                  "this session belongs to another operator than the client certificate "
	                  "shown: use your own certificate, and log in with it",
	                  note);
	return false;
}

static void refuse_unauthenticated(struct call *c)
{
	c->session = NULL;
	refuse_route(
	    c, ACT_UNAUTHORIZED, 401, "unauthenticated",
	    "missing, unknown, expired, idle or ended token: log in with 'ldapdesk login'");
}

/*
 * Roles are re-read once per idle period, so removing an operator from a role
 * group takes effect without waiting for the token to expire. The session is
 * looked up again: the table may have changed while the directory answered.
 */
static void roles_refreshed(void *arg, bool ok, unsigned roles, unsigned long scopes,
                            const char *ended)
{
	struct call *c = arg;

	c->session = authenticate(c);
	if (c->session == NULL) {
		refuse_route(c, ACT_UNAUTHORIZED, 401, "unauthenticated",
		             "the session ended: log in again");
		return;
	}
	/* Read under a configuration a reload has replaced since: the scope
	 * bits would number the wrong [scope.*] sections. */
	if (ok && c->roles_gen != session_gen(c->api->sessions)) {
		refuse_route(
		    c, ACT_UNAVAILABLE, 503, "reloaded",
		    "the configuration was reloaded while your roles were read: try again");
		return;
	}
	/* Not re-read, and from before a reload (or a restart): the bits would
	 * number the wrong [scope.*] sections. */
	if (!ok && c->session->roles_gen != session_gen(c->api->sessions)) {
		refuse_route(
		    c, ACT_UNAVAILABLE, 503, "directory_unavailable",
		    "your roles must be re-read after a reload and the directory cannot be "
		    "asked now: try again");
		return;
	}
	if (ok)
		session_set_roles(c->api->sessions, c->session, roles, scopes, c->roles_gen);
	if (ok && ended != NULL) {
		char msg[160];
		size_t n;

		/* All of the operator's sessions, as an admin's disable does; this
		 * one's slot stays readable for the record below. */
		n = session_end_operator(c->api->sessions, c->session->dn);
		log_info("session of %s: %s: %zu session(s) ended", c->session->uid, ended, n);
		/* Recorded as the operator's denied attempt; its own code, so that
		 * the client shows why rather than "not logged in". */
		snprintf(msg, sizeof(msg), "%s: the session ended (ask an administrator)", ended);
		refuse_route(c, ACT_UNAUTHORIZED, 401, "account_ended", msg);
		return;
	}
	if (ok && roles == 0) {
		/* Recorded as the operator's denied attempt (the session has ended). */
		refuse_route(c, ACT_UNAUTHORIZED, 401, "roles_removed",
		             "you no longer have an ldapdesk role: ask an administrator");
		return;
	}
	if (!route(c, EVHTTP_REQ_POST, "v1/import"))
		parse_body(c);
	dispatch_authenticated(c);
}

void api_handle(void *arg, struct evhttp_request *req)
{
	struct call *c = calloc(1, sizeof(*c));
	enum evhttp_cmd_type other;

	if (c == NULL) {
		http_reply_error(req, 503, "no_memory", "out of memory");
		return;
	}
	c->api = arg;
	c->req = req;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	c->counted_kind = API_KINDS;
	c->method = evhttp_request_get_command(req);
	c->uri = evhttp_request_get_evhttp_uri(req);
	http_peer(req, c->peer, sizeof(c->peer));
	if (!http_body_refusal(req, &c->refused_code, &c->refused_error, &c->refused_message))
		c->refused_code = 0;
	if (c->uri == NULL || split_path(c, evhttp_uri_get_path(c->uri)) == -1) {
		if (!body_refused_reply(c))
			reply_error(c, 404, "no_route", "no such API endpoint");
		return;
	}
	c->api->requests++;
	/* HEAD is GET without the body (libevent leaves it out). */
	if (c->method == EVHTTP_REQ_HEAD)
		c->method = EVHTTP_REQ_GET;
	if ((other = route_other_method(c)) != 0) {
		bool get = other == EVHTTP_REQ_GET;

		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		                  get ? "GET, HEAD" : "POST");
		reply_error(c, 405, "method_not_allowed",
		            get ? "this endpoint takes GET (or HEAD)" : "this endpoint takes POST");
		return;
	}
	if (route(c, EVHTTP_REQ_GET, "v1/health") || route(c, EVHTTP_REQ_GET, "health")) {
		do_health(c);
		return;
	}
	if (route(c, EVHTTP_REQ_GET, "metrics")) {
		do_metrics(c);
		return;
	}
	if (route(c, EVHTTP_REQ_POST, "v1/login")) {
		parse_body(c);
		do_login(c);
		return;
	}
	if ((c->session = authenticate(c)) == NULL) {
		if (!body_refused_reply(c))
			refuse_unauthenticated(c);
		return;
	}
	if (!session_cert_ok(c))
		return;
	/* Ending a session needs no role: a logout must not wait on (or fail
	 * with) a directory that cannot re-read them. */
	if (session_stale(c->api->sessions, c->session) &&
	    !route(c, EVHTTP_REQ_POST, "v1/logout")) {
		c->roles_gen = session_gen(c->api->sessions);
		/* A re-read that cannot even start is one that failed: the same
		 * answer (idle-stale roles go on, roles from before a reload not). */
		if (act_refresh_roles(c->api->A, c->session->uid, c->session->dn, roles_refreshed,
		                      c) == -1)
			roles_refreshed(c, false, 0, 0, NULL);
		return;
	}
	if (!route(c, EVHTTP_REQ_POST, "v1/import"))
		parse_body(c);
	dispatch_authenticated(c);
}
