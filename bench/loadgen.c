/*
 * loadgen.c — HTTPS load generator for ldapdeskd. C keep-alive TLS
 * connections, each with exactly one request in flight, so the concurrency
 * the daemon sees is the concurrency asked for. Logs in once, then issues
 * reset / unlock / grant-then-revoke on bench users round robin until the
 * time or count bound, and prints one JSON result line (common.c). Every
 * connection is opened (TCP and TLS handshake, one GET /v1/health) before
 * the clock starts, as the floor binds its connections first: the run
 * measures keep-alive operations, not 64 handshakes at once.
 *
 *   loadgen --port P --ca FILE --user UID --password-file F --op OP
 *           --concurrency C [--seconds S] [--count N] --users N [--prefix bench]
 *           [--permission general] [--driver ldapdesk]
 *
 * Only 127.0.0.1 is ever contacted: this is a benchmark, not a load tool.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common.h"

#define LG_HOST       "127.0.0.1"
#define LG_TIMEOUT_S  10
#define LG_BODY_PEEK  512 /* bytes of a reply looked at for "unchanged" */
#define LG_TOKEN_MAX  1024
#define LG_PW_MAX     256
#define LG_ERRS_SHOWN 3

struct lg;

struct lg_slot {
	struct lg *lg;
	struct evhttp_connection *conn;
	struct bench_slot seq;
	bool dead;    /* its connection failed: no more requests on it */
	bool nodelay; /* TCP_NODELAY is set on its socket */
};

struct lg {
	struct event_base *base;
	SSL_CTX *ctx;
	int port;
	const char *ca, *user, *pwfile, *permission;
	char password[LG_PW_MAX];
	char token[LG_TOKEN_MAX];
	struct bench_opts o;
	struct bench_run run;
	struct lg_slot *slots;
	struct event *watchdog;
	int errs_shown;
	int warming; /* warm-up requests still out */
	bool login_ok;
};

static void usage(void)
{
	fprintf(stderr, "usage: loadgen --port P --ca FILE --user UID --password-file F "
	                "--op reset|unlock|grant-revoke --concurrency C [--seconds S] "
	                "[--count N] --users N [--prefix P] [--permission NAME] [--driver NAME]\n");
}

/* ---- TLS ------------------------------------------------------------------ */

static SSL_CTX *tls_ctx(const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fprintf(stderr, "loadgen: cannot load CA %s\n", ca);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* The harness certificate names IP:127.0.0.1; check it like a client would. */
	X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), LG_HOST);
	return ctx;
}

static struct evhttp_connection *tls_conn(struct lg *lg)
{
	SSL *ssl = SSL_new(lg->ctx);
	struct bufferevent *bev;
	struct evhttp_connection *c;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(lg->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	c = evhttp_connection_base_bufferevent_new(lg->base, NULL, bev, LG_HOST,
	                                           (unsigned short)lg->port);
	if (c == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	evhttp_connection_set_timeout(c, LG_TIMEOUT_S);
	/* A TLS bufferevent cannot be reconnected in place: a lost connection ends its slot. */
	evhttp_connection_set_retries(c, 0);
	return c;
}

/* ---- requests --------------------------------------------------------------- */

static int request(struct lg *lg, struct evhttp_connection *c, enum evhttp_cmd_type method,
                   const char *path, const char *body, void (*cb)(struct evhttp_request *, void *),
                   void *arg)
{
	struct evhttp_request *req = evhttp_request_new(cb, arg);
	struct bufferevent *bev;
	struct evkeyvalq *h;

	if (req == NULL)
		return -1;
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", LG_HOST);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (lg->token[0] != '\0') {
		char auth[LG_TOKEN_MAX + 16];

		snprintf(auth, sizeof(auth), "Bearer %s", lg->token);
		evhttp_add_header(h, "Authorization", auth);
	}
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	/* On failure libevent has already freed req. */
	if (evhttp_make_request(c, req, method, path) == -1)
		return -1;
	/* Header and body in one chunk: one TLS record and one write(2) per
	 * request (a client like curl sends it so too), not two. */
	bev = evhttp_connection_get_bufferevent(c);
	if (bev != NULL)
		evbuffer_pullup(bufferevent_get_output(bev), -1);
	return 0;
}

static int post(struct lg *lg, struct evhttp_connection *c, const char *path, const char *body,
                void (*cb)(struct evhttp_request *, void *), void *arg)
{
	return request(lg, c, EVHTTP_REQ_POST, path, body, cb, arg);
}

static void show_error(struct lg *lg, struct evhttp_request *req, int code)
{
	struct evbuffer *in;
	size_t n;

	if (lg->errs_shown++ >= LG_ERRS_SHOWN)
		return;
	if (req == NULL || code == 0) {
		fprintf(stderr, "loadgen: connection failed or timed out\n");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(in);
	if (n > LG_BODY_PEEK)
		n = LG_BODY_PEEK;
	fprintf(stderr, "loadgen: HTTP %d: %.*s\n", code, (int)n,
	        (const char *)evbuffer_pullup(in, (ev_ssize_t)n));
}

static bool reply_unchanged(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	const char *p;

	if (n > LG_BODY_PEEK)
		n = LG_BODY_PEEK;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	return p != NULL && memmem(p, n, "\"unchanged\"", 11) != NULL;
}

static void op_done(struct evhttp_request *req, void *arg);

/*
 * evhttp writes a request's headers and body as two TLS records; with Nagle
 * the second waits for the daemon's delayed ACK (40 ms and more), which would
 * be the load generator's latency, not the daemon's. curl sets TCP_NODELAY
 * too. The socket exists once the first request has started the connect (the
 * address is numeric, so evhttp resolves and connects synchronously).
 */
static void set_nodelay(struct lg_slot *s)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->conn);
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
	int one = 1;

	if (s->nodelay || fd < 0)
		return;
	s->nodelay = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

static int op_send(struct lg_slot *s)
{
	struct lg *lg = s->lg;
	char uid[BENCH_UID_MAX], path[256];
	const char *body = "{}";

	bench_uid(&lg->o, s->seq.user, uid, sizeof(uid));
	switch (lg->o.op) {
	case BENCH_RESET:
		snprintf(path, sizeof(path), "/v1/users/%s/reset", uid);
		break;
	case BENCH_UNLOCK:
		snprintf(path, sizeof(path), "/v1/users/%s/unlock", uid);
		break;
	case BENCH_GRANT_REVOKE:
		if (s->seq.revoke) {
			snprintf(path, sizeof(path), "/v1/users/%s/grants/%s/revoke", uid,
			         lg->permission);
		} else {
			static char grant_body[128];

			snprintf(grant_body, sizeof(grant_body), "{\"permission\":\"%s\"}",
			         lg->permission);
			snprintf(path, sizeof(path), "/v1/users/%s/grants", uid);
			body = grant_body;
		}
		break;
	}
	return post(lg, s->conn, path, body, op_done, s);
}

/* Issues the slot's next request, or retires the slot; the last one out stops the loop. */
static void slot_next(struct lg_slot *s)
{
	struct lg *lg = s->lg;

	if (!s->dead && bench_next(&lg->run, &s->seq)) {
		if (op_send(s) == 0) {
			set_nodelay(s);
			return;
		}
		bench_done(&lg->run, &s->seq, false, false);
		s->dead = true;
	}
	if (--lg->run.active == 0)
		event_base_loopexit(lg->base, NULL);
}

static void op_done(struct evhttp_request *req, void *arg)
{
	struct lg_slot *s = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	bool ok = code >= 200 && code < 300;

	if (!ok) {
		show_error(s->lg, req, code);
		/* code 0: the connection is gone and cannot be reused. */
		s->dead = code == 0;
	}
	bench_done(&s->lg->run, &s->seq, ok, ok && reply_unchanged(req));
	slot_next(s);
}

/* ---- login ------------------------------------------------------------------ */

static void login_done(struct evhttp_request *req, void *arg)
{
	struct lg *lg = arg;
	struct evbuffer *in;
	json_t *j, *tok;
	size_t n;

	event_base_loopexit(lg->base, NULL);
	if (req == NULL || evhttp_request_get_response_code(req) != 200) {
		show_error(lg, req, req != NULL ? evhttp_request_get_response_code(req) : 0);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(in);
	j = json_loadb((const char *)evbuffer_pullup(in, -1), n, 0, NULL);
	tok = json_object_get(j, "token");
	if (json_is_string(tok) && json_string_length(tok) < sizeof(lg->token)) {
		snprintf(lg->token, sizeof(lg->token), "%s", json_string_value(tok));
		lg->login_ok = true;
	}
	json_decref(j);
}

static int login(struct lg *lg)
{
	struct evhttp_connection *c = tls_conn(lg);
	json_t *body = json_pack("{s:s, s:s}", "user", lg->user, "password", lg->password);
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc = -1;

	if (c != NULL && text != NULL && post(lg, c, "/v1/login", text, login_done, lg) == 0) {
		event_base_dispatch(lg->base);
		rc = lg->login_ok ? 0 : -1;
	}
	if (text != NULL) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_decref(body);
	if (c != NULL)
		evhttp_connection_free(c);
	if (rc == -1)
		fprintf(stderr, "loadgen: login as %s failed\n", lg->user);
	return rc;
}

/* ---- run --------------------------------------------------------------------- */

/* Past deadline + grace, requests still out are abandoned and counted as errors. */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;

	(void)fd;
	(void)what;
	fprintf(stderr, "loadgen: %d request(s) still out after the grace period\n",
	        lg->run.active);
	lg->run.st.errors += (uint64_t)lg->run.active;
	event_base_loopexit(lg->base, NULL);
}

static void warm_done(struct evhttp_request *req, void *arg)
{
	struct lg_slot *s = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	if (code != 200) {
		show_error(s->lg, req, code);
		s->dead = true;
	}
	if (--s->lg->warming == 0)
		event_base_loopexit(s->lg->base, NULL);
}

/* Opens every connection with one GET /v1/health, all at once. Return: 0, or
 * -1 if any failed. */
static int warm_up(struct lg *lg)
{
	int c = lg->o.concurrency;

	for (int i = 0; i < c; i++) {
		struct lg_slot *s = &lg->slots[i];

		if (request(lg, s->conn, EVHTTP_REQ_GET, "/v1/health", "", warm_done, s) == -1)
			return -1;
		set_nodelay(s);
		lg->warming++;
	}
	event_base_dispatch(lg->base);
	for (int i = 0; i < c; i++)
		if (lg->slots[i].dead)
			return -1;
	return 0;
}

static int start_slots(struct lg *lg)
{
	int c = lg->o.concurrency;

	lg->slots = calloc((size_t)c, sizeof(*lg->slots));
	if (lg->slots == NULL)
		return -1;
	for (int i = 0; i < c; i++) {
		lg->slots[i].lg = lg;
		if ((lg->slots[i].conn = tls_conn(lg)) == NULL)
			return -1;
	}
	if (warm_up(lg) == -1)
		return -1;
	lg->run.st.t_start_us = lg->run.st.t_end_us = bench_now_us();
	lg->run.active = c;
	for (int i = 0; i < c; i++)
		slot_next(&lg->slots[i]);
	return 0;
}

static int parse_args(struct lg *lg, int argc, char **argv)
{
	long n;

	for (int i = 1; i < argc; i++) {
		int r = bench_opt(&lg->o, argc, argv, &i);
		const char *a = argv[i];

		if (r == -1)
			return -1;
		if (r == 1)
			continue;
		if (i + 1 >= argc) {
			usage();
			return -1;
		}
		if (strcmp(a, "--port") == 0 && bench_num(argv[i + 1], 1, 65535, &n) == 0)
			lg->port = (int)n;
		else if (strcmp(a, "--ca") == 0)
			lg->ca = argv[i + 1];
		else if (strcmp(a, "--user") == 0)
			lg->user = argv[i + 1];
		else if (strcmp(a, "--password-file") == 0)
			lg->pwfile = argv[i + 1];
		else if (strcmp(a, "--permission") == 0)
			lg->permission = argv[i + 1];
		else {
			usage();
			return -1;
		}
		i++;
	}
	if (lg->port == 0 || lg->ca == NULL || lg->user == NULL || lg->pwfile == NULL) {
		usage();
		return -1;
	}
	/* It goes into a URL path and a JSON string unescaped. */
	if (lg->permission[0] == '\0' || strlen(lg->permission) > 64 ||
	    strspn(lg->permission, "abcdefghijklmnopqrstuvwxyz0123456789._-") !=
	        strlen(lg->permission)) {
		fprintf(stderr, "loadgen: --permission: lower-case letters, digits, . _ - only\n");
		return -1;
	}
	return bench_opts_check(&lg->o);
}

int main(int argc, char **argv)
{
	static struct lg lg = {.permission = "general",
	                       .o = {.concurrency = 1, .prefix = "bench", .driver = "ldapdesk"}};
	struct timeval grace;
	int rc = 1;

	if (parse_args(&lg, argc, argv) == -1 ||
	    bench_read_secret(lg.pwfile, lg.password, sizeof(lg.password)) == -1)
		return 2;
	lg.run.o = &lg.o;
	if ((lg.base = event_base_new()) == NULL || (lg.ctx = tls_ctx(lg.ca)) == NULL ||
	    bench_stats_init(&lg.run.st, &lg.o) == -1)
		return 1;
	if (login(&lg) == -1)
		goto out;
	OPENSSL_cleanse(lg.password, sizeof(lg.password));
	grace.tv_sec = (time_t)lg.o.seconds + 2 * BENCH_GRACE_S;
	grace.tv_usec = 0;
	lg.watchdog = evtimer_new(lg.base, watchdog_cb, &lg);
	if (lg.o.seconds <= 0)
		grace.tv_sec = 3600;
	if (lg.watchdog == NULL || start_slots(&lg) == -1) {
		fprintf(stderr, "loadgen: cannot set up %d connections\n", lg.o.concurrency);
		goto out;
	}
	evtimer_add(lg.watchdog, &grace);
	event_base_dispatch(lg.base);
	bench_stats_print(&lg.run.st, &lg.o);
	rc = lg.run.st.errors != 0 ? 3 : 0;
out:
	/* Connections and the base are left to exit(): freeing them in the right
	 * order buys nothing for a process that ends here. */
	bench_stats_free(&lg.run.st);
	return rc;
}
