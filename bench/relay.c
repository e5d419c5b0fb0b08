/*
 * relay.c — the least an HTTPS broker can do, as a bench server: the bench's
 * fourth driver (bench/run.sh, BENCH_DRIVERS=relay) runs bench/loadgen against
 * it, so the same requests arrive over the same keep-alive TLS connections
 * as at ldapdeskd, and each becomes the floor's LDAP writes on a pool of
 * StartTLS connections. Nothing else: no token check, no JSON parsing, no
 * audit record, no user cache, no policy. Its ops/s over the floor's is what
 * HTTPS in front of slapd costs on this machine (loadgen, TLS, HTTP and a
 * second process beside slapd on the same CPUs), whatever a broker adds.
 *
 *   relay --port P --cert PEM --key PEM --uri ldap://127.0.0.1:PORT --ca FILE
 *         --bind-dn DN --bind-pw-file F --base PARENT_DN --group GROUP_DN --pool N
 *
 * Routes (the daemon's, as loadgen calls them): GET /v1/health, POST /v1/login
 * (any body: a fixed token), POST /v1/users/UID/unlock | reset | grants and
 * /v1/users/UID/grants/NAME/revoke. It runs until SIGTERM or SIGINT.
 * Listens on 127.0.0.1 only: a benchmark, not a service.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <lber.h>
#include <ldap.h>
#include <openssl/ssl.h>

#include "common.h"
#include "ldapconn.h"

#define RL_HOST       "127.0.0.1"
#define RL_POOL_MAX   64
#define RL_PENDING    1024 /* operations outstanding per LDAP connection */
#define RL_DN_MAX     512
#define RL_UID_MAX    64
#define RL_PW_MAX     256
#define RL_URI_PREFIX "ldap://127.0.0.1:"

enum rl_kind { RL_UNLOCK, RL_RESET, RL_RESET_FLAG, RL_GRANT, RL_REVOKE };

struct rl;

/* One HTTP request waiting for its LDAP reply, on its connection's list. */
struct rl_op {
	struct rl *rl;
	/* Always answered (reply): libevent 2.1 keeps a request whose client
	 * went away until evhttp_send_reply, which then frees it. */
	struct evhttp_request *req;
	enum rl_kind kind;
	int msgid;
	char dn[RL_DN_MAX];
	char pw[96];
	struct rl_op *next;
};

struct rl_conn {
	LDAP *ld;
	struct event *ev;
	struct rl_op *ops;
	int n;
	bool dead; /* lost: its ops were answered 502, it takes no more */
};

struct rl {
	struct event_base *base;
	SSL_CTX *ssl;
	int port, pool;
	const char *cert, *key, *uri, *ca, *bind_dn, *pwfile, *base_dn, *group;
	unsigned next_conn, pw_serial;
	struct rl_conn conns[RL_POOL_MAX];
};

static void usage(void)
{
	fprintf(stderr, "usage: relay --port P --cert PEM --key PEM --uri ldap://127.0.0.1:PORT "
	                "--ca FILE --bind-dn DN --bind-pw-file F --base PARENT_DN --group GROUP_DN "
	                "--pool N\n");
}

/* ---- replies ------------------------------------------------------------------ */

static void reply(struct evhttp_request *req, int code, const char *json)
{
	struct evbuffer *b = evbuffer_new();

	if (b != NULL)
		evbuffer_add(b, json, strlen(json));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	if (b != NULL)
		evbuffer_free(b);
}

static void reply_ldap_error(struct evhttp_request *req, int rc)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"error\":\"directory\",\"message\":\"%s\"}",
	         ldap_err2string(rc));
	reply(req, 502, body);
}

/* ---- LDAP ----------------------------------------------------------------------- */

static int send_op(struct rl *rl, struct rl_conn *c, struct rl_op *op)
{
	char *vals[2] = {NULL, NULL};
	LDAPMod mod = {0, NULL, {vals}}, *mods[2] = {&mod, NULL};
	struct berval user, pw;

	switch (op->kind) {
	case RL_RESET:
		ber_str2bv(op->dn, 0, 0, &user);
		ber_str2bv(op->pw, 0, 0, &pw);
		return ldap_passwd(c->ld, &user, NULL, &pw, NULL, NULL, &op->msgid);
	case RL_RESET_FLAG:
		mod = (LDAPMod){LDAP_MOD_REPLACE, "pwdReset", {vals}};
		vals[0] = "TRUE";
		return ldap_modify_ext(c->ld, op->dn, mods, NULL, NULL, &op->msgid);
	case RL_UNLOCK:
		mod = (LDAPMod){LDAP_MOD_DELETE, "pwdAccountLockedTime", {NULL}};
		return ldap_modify_ext(c->ld, op->dn, mods, NULL, NULL, &op->msgid);
	case RL_GRANT:
	case RL_REVOKE:
		mod = (LDAPMod){
		    op->kind == RL_GRANT ? LDAP_MOD_ADD : LDAP_MOD_DELETE, "member", {vals}};
		vals[0] = op->dn;
		return ldap_modify_ext(c->ld, rl->group, mods, NULL, NULL, &op->msgid);
	}
	return LDAP_PARAM_ERROR;
}

/* Takes op (freed here once answered) onto connection c. */
static void op_start(struct rl *rl, struct rl_conn *c, struct rl_op *op)
{
	int rc;

	if (c->n >= RL_PENDING) {
		reply(op->req, 503, "{\"error\":\"busy\"}");
		free(op);
		return;
	}
	if ((rc = send_op(rl, c, op)) != LDAP_SUCCESS) {
		reply_ldap_error(op->req, rc);
		free(op);
		return;
	}
	op->next = c->ops;
	c->ops = op;
	c->n++;
}

static struct rl_op *op_take(struct rl_conn *c, int msgid)
{
	for (struct rl_op **p = &c->ops; *p != NULL; p = &(*p)->next) {
		if ((*p)->msgid == msgid) {
			struct rl_op *op = *p;

			*p = op->next;
			c->n--;
			return op;
		}
	}
	return NULL;
}

/* The daemon's readings: a lock already gone, a member already in or out,
 * is done ("unchanged"), not an error. */
static void op_result(struct rl *rl, struct rl_conn *c, struct rl_op *op, int rc)
{
	bool unchanged = (op->kind == RL_UNLOCK || op->kind == RL_REVOKE)
	                     ? rc == LDAP_NO_SUCH_ATTRIBUTE
	                     : op->kind == RL_GRANT && rc == LDAP_TYPE_OR_VALUE_EXISTS;
	char body[128];

	if (rc != LDAP_SUCCESS && !unchanged) {
		reply_ldap_error(op->req, rc);
	} else if (op->kind == RL_RESET) {
		op->kind = RL_RESET_FLAG;
		op_start(rl, c, op);
		return;
	} else if (op->kind == RL_RESET_FLAG) {
		snprintf(body, sizeof(body), "{\"result\":\"done\",\"password\":\"%s\"}", op->pw);
		reply(op->req, 200, body);
	} else {
		reply(op->req, 200,
		      unchanged ? "{\"result\":\"unchanged\"}" : "{\"result\":\"done\"}");
	}
	free(op);
}

/* Answers what was out on a lost connection, which takes no more. */
static void conn_lost(struct rl_conn *c)
{
	struct rl_op *op;

	fprintf(stderr, "relay: directory connection lost\n");
	event_del(c->ev);
	c->dead = true;
	while ((op = c->ops) != NULL) {
		c->ops = op->next;
		reply_ldap_error(op->req, LDAP_SERVER_DOWN);
		free(op);
	}
	c->n = 0;
}

/* The next live connection, round robin; NULL if all are lost. */
static struct rl_conn *conn_pick(struct rl *rl)
{
	for (int i = 0; i < rl->pool; i++) {
		struct rl_conn *c = &rl->conns[rl->next_conn++ % (unsigned)rl->pool];

		if (!c->dead)
			return c;
	}
	return NULL;
}

/* Every reply that has arrived; with TLS libldap may hold decrypted ones
 * while the socket looks idle, hence the loop to the end. */
static void ldap_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rl_conn *c = arg;
	struct timeval zero = {0, 0};
	LDAPMessage *msg;
	int rc, err;

	(void)fd;
	(void)what;
	while ((rc = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg)) > 0) {
		struct rl_op *op = op_take(c, ldap_msgid(msg));

		if (ldap_parse_result(c->ld, msg, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS)
			err = LDAP_OTHER;
		ldap_msgfree(msg);
		if (op != NULL)
			op_result(op->rl, c, op, err);
	}
	if (rc < 0)
		conn_lost(c);
}

/* Connect, StartTLS, bind: blocking, before any request is taken. */
static int conn_open(struct rl *rl, struct rl_conn *c, const char *pw)
{
	int fd;

	if (bench_ldap_open("relay", rl->uri, rl->ca, rl->bind_dn, pw, &c->ld, &fd) != 0)
		return -1;
	/* libldap's sends stay blocking: fine for a bench at this concurrency. */
	c->ev = event_new(rl->base, fd, EV_READ | EV_PERSIST, ldap_read_cb, c);
	return c->ev != NULL && event_add(c->ev, NULL) == 0 ? 0 : -1;
}

/* ---- HTTP ----------------------------------------------------------------------- */

/* "/v1/users/UID/ACTION...": the uid copied out (letters and digits only, so
 * the DN needs no escaping) and the rest returned; NULL if it is not that. */
static const char *user_route(const char *path, char uid[RL_UID_MAX])
{
	static const char prefix[] = "/v1/users/";
	size_t n = 0;

	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return NULL;
	path += sizeof(prefix) - 1;
	while ((path[n] >= 'a' && path[n] <= 'z') || (path[n] >= '0' && path[n] <= '9'))
		n++;
	if (n == 0 || n >= RL_UID_MAX || path[n] != '/')
		return NULL;
	memcpy(uid, path, n);
	uid[n] = '\0';
	return path + n + 1;
}

static bool route_kind(const char *action, enum rl_kind *kind)
{
	size_t n = strlen(action);

	if (strcmp(action, "unlock") == 0)
		*kind = RL_UNLOCK;
	else if (strcmp(action, "reset") == 0)
		*kind = RL_RESET;
	else if (strcmp(action, "grants") == 0)
		*kind = RL_GRANT;
	else if (strncmp(action, "grants/", 7) == 0 && n > 14 &&
	         strcmp(action + n - 7, "/revoke") == 0)
		*kind = RL_REVOKE;
	else
		return false;
	return true;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct rl *rl = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)), *action;
	char uid[RL_UID_MAX];
	struct rl_op *op;
	struct rl_conn *c;
	enum rl_kind kind;

	if (path == NULL) {
		reply(req, 400, "{\"error\":\"bad_request\"}");
	} else if (strcmp(path, "/v1/health") == 0) {
		reply(req, 200, "{\"status\":\"ok\"}");
	} else if (strcmp(path, "/v1/login") == 0) {
		reply(req, 200, "{\"token\":\"relay\"}");
	} else if ((action = user_route(path, uid)) == NULL || !route_kind(action, &kind)) {
		reply(req, 404, "{\"error\":\"not_found\"}");
	} else if ((c = conn_pick(rl)) == NULL) {
		reply(req, 502, "{\"error\":\"directory\",\"message\":\"every connection lost\"}");
	} else if ((op = calloc(1, sizeof(*op))) == NULL) {
		reply(req, 503, "{\"error\":\"out_of_memory\"}");
	} else {
		op->rl = rl;
		op->req = req;
		op->kind = kind;
		snprintf(op->dn, sizeof(op->dn), "uid=%s,%s", uid, rl->base_dn);
		/* A fresh password each time, as the daemon generates one. */
		snprintf(op->pw, sizeof(op->pw), "Relay-%08x-%s", ++rl->pw_serial, uid);
		op_start(rl, c, op);
	}
}

/* The daemon's TLS settings (daemon/http.c), so the handshake and records cost the same. */
static SSL_CTX *tls_ctx(const struct rl *rl)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, rl->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, rl->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr, "relay: cannot load %s / %s\n", rl->cert, rl->key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static struct bufferevent *tls_bev_cb(struct event_base *base, void *arg)
{
	struct rl *rl = arg;
	SSL *ssl = SSL_new(rl->ssl);

	return ssl == NULL ? NULL
	                   : bufferevent_openssl_socket_new(
	                         base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static int serve(struct rl *rl)
{
	struct evhttp *http = evhttp_new(rl->base);
	struct evhttp_bound_socket *sock;
	struct event *term, *intr;
	int one = 1, rc = -1;

	if (http == NULL)
		return -1;
	evhttp_set_bevcb(http, tls_bev_cb, rl);
	evhttp_set_gencb(http, request_cb, rl);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	/* The daemon's (HTTP_TIMEOUT_S): evhttp re-arms it on every request. */
	evhttp_set_timeout(http, 30);
	sock = evhttp_bind_socket_with_handle(http, RL_HOST, (ev_uint16_t)rl->port);
	term = evsignal_new(rl->base, SIGTERM, stop_cb, rl->base);
	intr = evsignal_new(rl->base, SIGINT, stop_cb, rl->base);
	if (sock == NULL) {
		fprintf(stderr, "relay: cannot listen on %s:%d\n", RL_HOST, rl->port);
	} else if (term != NULL && intr != NULL && evsignal_add(term, NULL) == 0 &&
	           evsignal_add(intr, NULL) == 0) {
		/* As the daemon: accepted sockets inherit it, replies are not held back. */
		setsockopt(evhttp_bound_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one,
		           sizeof(one));
		fprintf(stderr, "relay: listening on %s:%d\n", RL_HOST, rl->port);
		rc = event_base_dispatch(rl->base) == -1 ? -1 : 0;
	}
	if (term != NULL)
		event_free(term);
	if (intr != NULL)
		event_free(intr);
	evhttp_free(http);
	return rc;
}

/* ---- main ------------------------------------------------------------------------ */

static int parse_args(struct rl *rl, int argc, char **argv)
{
	const char *port = NULL, *pool = NULL;
	const struct {
		const char *name;
		const char **to;
	} opts[] = {{"--port", &port},           {"--pool", &pool},
	            {"--cert", &rl->cert},       {"--key", &rl->key},
	            {"--uri", &rl->uri},         {"--ca", &rl->ca},
	            {"--bind-dn", &rl->bind_dn}, {"--bind-pw-file", &rl->pwfile},
	            {"--base", &rl->base_dn},    {"--group", &rl->group}};
	const size_t n_opts = sizeof(opts) / sizeof(opts[0]);
	long n;

	for (int i = 1; i < argc; i += 2) {
		size_t k = 0;

		while (k < n_opts && strcmp(argv[i], opts[k].name) != 0)
			k++;
		if (k == n_opts || i + 1 == argc)
			return -1;
		*opts[k].to = argv[i + 1];
	}
	for (size_t k = 0; k < n_opts; k++) /* every one is required */
		if (*opts[k].to == NULL)
			return -1;
	if (bench_num(port, 1, 65535, &n) != 0)
		return -1;
	rl->port = (int)n;
	if (bench_num(pool, 1, RL_POOL_MAX, &n) != 0)
		return -1;
	rl->pool = (int)n;
	/* Only the slapd the bench started: never a real directory. */
	return strncmp(rl->uri, RL_URI_PREFIX, sizeof(RL_URI_PREFIX) - 1) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static struct rl rl;
	char pw[RL_PW_MAX];
	int rc = 1, opened = 0;

	if ((argc == 2 && strcmp(argv[1], "--help") == 0) || parse_args(&rl, argc, argv) != 0) {
		usage();
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (bench_read_secret(rl.pwfile, pw, sizeof(pw)) != 0 ||
	    (rl.base = event_base_new()) == NULL || (rl.ssl = tls_ctx(&rl)) == NULL)
		goto out;
	for (; opened < rl.pool; opened++)
		if (conn_open(&rl, &rl.conns[opened], pw) != 0)
			goto out;
	rc = serve(&rl) == 0 ? 0 : 1;
out:
	for (int i = 0; i < opened; i++) {
		if (rl.conns[i].ev != NULL)
			event_free(rl.conns[i].ev);
		ldap_unbind_ext_s(rl.conns[i].ld, NULL, NULL);
	}
	if (rl.ssl != NULL)
		SSL_CTX_free(rl.ssl);
	if (rl.base != NULL)
		event_base_free(rl.base);
	return rc;
}
