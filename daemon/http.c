/*
 * http.c — listeners and the evhttp objects behind them. Own evconnlistener
 * objects give an error callback (accept on EMFILE backs off instead of
 * spinning); a watcher on each connection's input turns requests evhttp
 * would answer with an HTML page (too large, chunked) into internal paths
 * that we answer in JSON.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

#include "config.h"
#include "conns.h"
#include "http.h"
#include "log.h"
#include "ldapdesk/wire.h"

#define HTTP_MAX_HEADERS (16 * 1024)
/* Header lines in one head. evhttp makes three allocations a line: 64 KiB
 * of "a:" lines held ~27 times its size (helper-110: 40 connections, +66.7
 * MB RSS), where the size limits alone assume a few long lines. 100 is
 * Apache's LimitRequestFields; ldapdesk's clients send under 10. */
#define HTTP_MAX_HEADER_LINES 100
/* A head in several pieces may grow to HEAD_MAX. */
#define HEAD_MAX (4 * HTTP_MAX_HEADERS)
/* Bits of the numbers kept between a head's pieces (head_put): its size
 * (at most HEAD_MAX + a read) and its Content-Length + 1 (at most an
 * import's HTTP_IMPORT_MAX + 1, beyond which the head is rewritten whole). */
#define HEAD_BITS 26
/* Bodies above LDAPDESK_MAX_BODY but below this are read and discarded so the
 * 413 reaches the client; larger ones are cut off (the client may then see a
 * reset instead of the answer). */
#define HTTP_DRAIN_MAX (1024 * 1024)
/* POST /v1/import carries half a year of hand-kept events as CSV. */
#define HTTP_IMPORT_MAX LDAPDESK_MAX_IMPORT
_Static_assert(((long long)1 << HEAD_BITS) > (long long)HTTP_IMPORT_MAX + 1 &&
                   ((long long)1 << HEAD_BITS) > 2LL * HEAD_MAX,
               "HEAD_BITS holds a head's Content-Length and size");
/* What a TLS connection's input may hold before the daemon stops reading
 * it (the client's sends then stall): evhttp answers one request at a time,
 * and while a reply waits for its client, what that client pipelines behind
 * it is not parsed. evhttp also takes a body only once all of it is in, so
 * the bound holds a head and the largest body read (a refused one drained,
 * HTTP_DRAIN_MAX); an import let through its gate raises it by its 32 MiB
 * for that request (import_gate, request_cb). unix: clients are local, and
 * not bounded, as for [limits]. See input_bound. */
#define HTTP_INPUT_MAX    (HTTP_DRAIN_MAX + 2 * HEAD_MAX)
#define HTTP_TIMEOUT_S    30
#define HTTP_BACKLOG      128
#define HTTP_COALESCE_MAX (64 * 1024) /* replies up to this go out as one TLS record */
#define HTTP_MAX_LISTEN   CONFIG_MAX_LIST

/* Internal paths the input watcher rewrites refused requests to. */
#define PATH_TOO_LARGE "/.ldapdesk/too-large"
#define PATH_CHUNKED   "/.ldapdesk/length-required"
#define PATH_HEADERS   "/.ldapdesk/headers-too-large"
/* Ends a head the watcher cut short (rest_check); its value is the internal
 * path that answers it. */
#define HEADER_REFUSED       "X-Ldapdesk-Refused"
#define PATH_UNAUTHENTICATED "/.ldapdesk/unauthenticated"
/* Requests evhttp would refuse with an HTML page (start_check): the reason
 * follows the prefix. */
#define PATH_BAD       "/.ldapdesk/bad/"
#define PATH_METHOD    "/.ldapdesk/method"
#define PATH_EXPECT    "/.ldapdesk/expectation"
#define HTTP_TOKEN_MAX 1024 /* a bearer token longer than this matches no session */
/* Marks a POST to the API whose body was refused (its value a reason of
 * body_refusals): the API answers it, and records it as the operator's
 * refused attempt when the token is good. */
#define HEADER_BODY   "X-Ldapdesk-Body"
#define HTTP_PATH_MAX 1024 /* a longer target is refused without a record */

static const struct {
	const char *reason, *error, *message;
	int code;
} body_refusals[] = {
    {"too-large", "too_large", "the request body is over 64 KiB (32 MiB for /v1/import)", 413},
    {"length-required", "length_required", "send the body with Content-Length, not chunked", 411},
};

struct http;

/* What one connection's input watcher knows: the front, and the
 * connection's admission record (conns.h; NULL on a unix: listener, whose
 * clients are local and allowed by the socket's mode). A TLS connection's
 * link is its SSL's ex_data, freed with it. */
struct link {
	struct http *h;
	struct conn *conn;
	struct bufferevent *bev; /* a TLS connection's (its input bound); NULL on unix: */
	bool raised;             /* its bound raised for an import's body */
	size_t wm;               /* the read watermark set on bev now; 0: none */
};

struct http {
	struct event_base *base;
	SSL_CTX *ssl;
	struct evhttp *tls, *plain;
	struct evconnlistener *lev[HTTP_MAX_LISTEN];
	size_t n_lev;
	struct bound {
		char *path; /* unix: paths bound, removed at the end ... */
		dev_t dev;  /* ... if they are still this socket */
		ino_t ino;
	} sockets[HTTP_MAX_LISTEN];
	size_t n_sockets;
	http_handler_fn fn;
	void *arg;
	http_gate_fn gate; /* may a session send a large body? (NULL: not asked) */
	void *gate_arg;
	http_allow_fn allow; /* the methods a path takes, for 405's Allow (NULL: all) */
	void *allow_arg;
	int unsent;          /* connections with a reply not yet handed to the kernel */
	size_t unsent_bytes; /* the bytes those replies still hold */
	struct conns *conns; /* TCP connections: limits and deadlines */
	int link_idx;        /* the SSL ex_data index of a connection's link */
	struct link local;   /* the link of every unix: connection */
};

static void watch_again(struct evbuffer *in);
static void mark_start(struct evbuffer *in);
static void head_drop(struct evbuffer *in);
static const char *head_bearer(const char *p, const char *end, char *buf, size_t len);

void http_reply_raw(struct evhttp_request *req, int code, const char *content_type,
                    const char *body, size_t len)
{
	struct evbuffer *buf = evbuffer_new(), *out = NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	/* libevent 2.1 writes a HEAD reply's body anyway, and without a length:
	 * on a kept-alive connection the client would read it as the start of
	 * its next reply. The length GET would have, and no body. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		char n[24];

		snprintf(n, sizeof(n), "%zu", len);
		evhttp_add_header(h, "Content-Length", n);
		len = 0;
	}
	if (buf != NULL && len > 0)
		evbuffer_add(buf, body, len);
	/* A request pipelined behind this one is in the input buffer already and
	 * is parsed once this reply is written, with no new data for the watcher
	 * to see: its head is checked now. */
	if (bev != NULL) {
		/* What the input holds or gets next starts the next request. */
		head_drop(bufferevent_get_input(bev));
		mark_start(bufferevent_get_input(bev));
		watch_again(bufferevent_get_input(bev));
		out = bufferevent_get_output(bev);
	}
	evhttp_send_reply(req, code, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	/* The TLS bufferevent writes each chunk of its buffer as its own record
	 * and write(2): header and body would be two. One contiguous chunk makes
	 * a small reply one record (the write happens later, in the loop). */
	if (out != NULL && evbuffer_get_length(out) <= HTTP_COALESCE_MAX)
		evbuffer_pullup(out, -1);
}

void http_reply_json(struct evhttp_request *req, int code, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t n;

	if (s == NULL) {
		static const char fallback[] =
		    "{\"error\":\"internal\",\"message\":\"the reply could not be built\"}";

		json_decref(body);
		http_reply_raw(req, 500, "application/json", fallback, sizeof(fallback) - 1);
		return;
	}
	n = strlen(s);
	http_reply_raw(req, code, "application/json", s, n);
	/* It may hold a one-time password or a session token. */
	OPENSSL_cleanse(s, n);
	free(s);
	json_decref(body);
}

void http_reply_error(struct evhttp_request *req, int code, const char *error, const char *message)
{
	json_t *body = json_pack("{s:s, s:s}", "error", error, "message", message);

	/* A message quoting bytes that are not UTF-8: the code still goes out. */
	if (body == NULL)
		body = json_pack("{s:s, s:s}", "error", error, "message",
		                 "the request holds bytes that are not valid UTF-8");
	http_reply_json(req, code, body);
}

bool http_is_tls(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

	return bev != NULL && bufferevent_openssl_get_ssl(bev) != NULL;
}

const char *http_peer_cn(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *cert = ssl != NULL ? SSL_get_peer_certificate(ssl) : NULL;
	int n = -1;

	if (cert != NULL)
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
		                              (int)len);
	X509_free(cert);
	return n > 0 ? buf : NULL;
}

const char *http_peer(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, (char **)(void *)&addr, &port);
	snprintf(buf, len, "%s", addr != NULL && addr[0] != '\0' ? addr : "unix");
	return buf;
}

/* ---- input watcher --------------------------------------------------------- */

/* Value of header name in the head [p, end), or -1 / NULL when absent. */
static const char *head_header(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (const char *line = p; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));

		if ((size_t)(end - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':')
			return line + n + 1;
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return NULL;
}

/* Replaces the whole buffered request with a bodiless one to path. */
static void head_rewrite_as(struct evbuffer *in, const char *path, const char *bearer)
{
	char head[256 + HTTP_TOKEN_MAX];
	int n = snprintf(head, sizeof(head),
	                 "POST %s HTTP/1.1\r\nHost: ldapdesk\r\n%s%s%sContent-Length: 0\r\n"
	                 "Connection: close\r\n\r\n",
	                 path, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
	                 bearer ? "\r\n" : "");

	/* Prepended, not added: outside a read (watch_again) a socket
	 * bufferevent keeps the end of its input buffer frozen. The new head
	 * is whole: what follows is no part of it. */
	head_drop(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_prepend(in, head, (size_t)n);
	OPENSSL_cleanse(head, sizeof(head));
}

static void head_rewrite(struct evbuffer *in, const char *path)
{
	head_rewrite_as(in, path, NULL);
}

/* The target of a "POST /v1/..." request line starting head[0..n), into
 * buf; NULL for another method or path, or one too long. */
static const char *post_target(const char *head, size_t n, char *buf, size_t len)
{
	const char *t = head + 5, *sp;

	if (n < 9 || memcmp(head, "POST /v1/", 9) != 0 || (sp = memchr(t, ' ', n - 5)) == NULL ||
	    (size_t)(sp - t) >= len || memchr(t, '\r', (size_t)(sp - t)) != NULL ||
	    memchr(t, '\n', (size_t)(sp - t)) != NULL)
		return NULL;
	memcpy(buf, t, (size_t)(sp - t));
	buf[sp - t] = '\0';
	return buf;
}

/*
 * A POST to the API whose body is refused (reason): instead of an internal
 * path, the request goes on to the API marked, so that it is recorded as
 * the operator's refused attempt (an action refused is an action logged).
 * whole: the body is not read (chunked, over HTTP_DRAIN_MAX, or awaited
 * with Expect): the buffered request becomes a bodiless one to the same
 * target with the same token, closed after its answer. Else only the marker
 * goes in after the request line, and evhttp reads (and bounds) the body.
 * Return: false (nothing done) when head is not such a POST.
 */
static bool refuse_post(struct evbuffer *in, const char *head, size_t n, const char *reason,
                        bool whole)
{
	char target[HTTP_PATH_MAX], token[HTTP_TOKEN_MAX],
	    buf[256 + HTTP_PATH_MAX + HTTP_TOKEN_MAX];
	struct evbuffer_ptr eol;
	int len;

	if (post_target(head, n, target, sizeof(target)) == NULL)
		return false;
	if (!whole) {
		/* After the request line, before its line break. */
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0 || (size_t)eol.pos >= sizeof(target) + 32)
			return false;
		evbuffer_remove(in, buf, (size_t)eol.pos);
		len = snprintf(buf + eol.pos, sizeof(buf) - (size_t)eol.pos,
		               "\r\n" HEADER_BODY ": %s", reason);
		evbuffer_prepend(in, buf, (size_t)eol.pos + (size_t)len);
		return true;
	}
	head_bearer(head, head + n, token, sizeof(token));
	len = snprintf(buf, sizeof(buf),
	               "POST %s HTTP/1.1\r\nHost: ldapdesk\r\n%s%s%s" HEADER_BODY
	               ": %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	               target, token[0] != '\0' ? "Authorization: Bearer " : "", token,
	               token[0] != '\0' ? "\r\n" : "", reason);
	head_drop(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_prepend(in, buf, (size_t)len);
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(buf, sizeof(buf));
	return true;
}

bool http_body_refusal(struct evhttp_request *req, int *code, const char **error,
                       const char **message)
{
	const char *r = evhttp_find_header(evhttp_request_get_input_headers(req), HEADER_BODY);

	for (size_t i = 0; r != NULL && i < sizeof(body_refusals) / sizeof(body_refusals[0]); i++)
		if (strcmp(r, body_refusals[i].reason) == 0) {
			*code = body_refusals[i].code;
			*error = body_refusals[i].error;
			*message = body_refusals[i].message;
			return true;
		}
	return false;
}

/* Replaces only the request line: evhttp still reads (and bounds) the body. */
static void line_rewrite(struct evbuffer *in, const char *path)
{
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
	char line[96];

	if (eol.pos < 0)
		return;
	evbuffer_drain(in, (size_t)eol.pos);
	snprintf(line, sizeof(line), "POST %s HTTP/1.1", path);
	evbuffer_prepend(in, line, strlen(line));
}

/* The bearer token of the head [p, end) into buf, or "" when it has none. */
static const char *head_bearer(const char *p, const char *end, char *buf, size_t len)
{
	const char *v = head_header(p, end, "Authorization");
	size_t n = 0;

	buf[0] = '\0';
	while (v != NULL && v < end && *v == ' ')
		v++;
	/* The scheme is case-insensitive (RFC 9110, 11.1). */
	if (v == NULL || end - v < 7 || strncasecmp(v, "Bearer ", 7) != 0)
		return buf;
	for (v += 7; v < end && *v == ' ';) /* 1*SP (RFC 9110, 11.4) */
		v++;
	for (; v < end && *v != '\r' && *v != '\n' && n + 1 < len; v++)
		buf[n++] = *v;
	buf[n] = '\0';
	return buf;
}

/*
 * Keeps a TLS connection's input under its bound (HTTP_INPUT_MAX, raised for
 * an import). libevent's read watermark is set only while the input is over
 * half the bound, and taken off below a quarter: set all the time, its own
 * input callback ran on every read and drain of every connection (~5,700
 * instructions a request), where the input watcher runs anyway.
 */
static void input_bound(struct link *l)
{
	size_t max, len, want;

	if (l->bev == NULL)
		return;
	max = l->raised ? HTTP_IMPORT_MAX + HTTP_INPUT_MAX : HTTP_INPUT_MAX;
	len = evbuffer_get_length(bufferevent_get_input(l->bev));
	if (len >= max / 2)
		want = max;
	else if (len < max / 4)
		want = 0;
	else
		want = l->wm != 0 ? max : 0; /* in between: as it was */
	if (want != l->wm) {
		bufferevent_setwatermark(l->bev, EV_READ, 0, want);
		l->wm = want;
	}
}

/* A body over LDAPDESK_MAX_BODY (an import) is read only for a session that
 * may send it: the gate is asked before the body is buffered. */
static bool import_gate(struct evbuffer *in, struct link *l, const char *head, size_t n)
{
	const struct http *h = l->h;
	char token[HTTP_TOKEN_MAX];
	int code;

	if (h->gate == NULL)
		return false;
	code = h->gate(h->gate_arg, head_bearer(head, head + n, token, sizeof(token)));
	if (code == 401)
		head_rewrite(in, PATH_UNAUTHENTICATED);
	else if (code != 0)
		/* Refused by the API, as a smaller import is: recorded, with who
		 * asked. The body is never read (Content-Length: 0, then closed). */
		head_rewrite_as(in, "/v1/import", token);
	OPENSSL_cleanse(token, sizeof(token));
	/* Up to 32 MiB from a session that may send it: no deadline for the
	 * whole body (a slow link takes minutes); each pause is still bounded.
	 * evhttp takes the body once it is all in: the input may hold it. */
	if (code == 0) {
		conn_request_arrived(l->conn);
		l->raised = true;
		input_bound(l);
	}
	return code != 0;
}

/* The request line of an import: "POST /v1/import", with or without a
 * trailing slash (the API routes both), then a query or the version. */
static bool is_import(const char *head, size_t n)
{
	size_t i = 15;

	if (n < 16 || memcmp(head, "POST /v1/import", 15) != 0)
		return false;
	if (head[i] == '/' && ++i == n)
		return false;
	return head[i] == ' ' || head[i] == '?';
}

/*
 * head[0..n) is a copy of the start of in, n at most HTTP_MAX_HEADERS. When
 * it starts a request whose body would be refused, the request is redirected
 * to an internal path answered in JSON, instead of letting evhttp read the
 * body first (up to 32 MiB) or write its own HTML error page. A body that
 * merely looks like such a head is refused the same way, which is harmless.
 * Return: true when the whole head was replaced (by one that ends).
 */
static bool head_check(struct evbuffer *in, struct link *l, const char *head, size_t n)
{
	const char *cl, *te, *crlf, *lf;
	unsigned long long len;

	/* Every method: evhttp 2.1.12 reads a body on GET, DELETE or OPTIONS
	 * too, up to its 32 MiB limit, with no token asked. */
	if (n < 8 || strncmp(head, "POST " PATH_TOO_LARGE " ", strlen(PATH_TOO_LARGE) + 6) == 0)
		return false;
	/* Only this request's own head: a request pipelined behind a GET must
	 * not lend the GET its Content-Length. */
	crlf = memmem(head, n, "\r\n\r\n", 4);
	lf = memmem(head, n, "\n\n", 2);
	if (crlf != NULL && (lf == NULL || crlf < lf))
		n = (size_t)(crlf - head) + 2;
	else if (lf != NULL)
		n = (size_t)(lf - head) + 1;
	cl = head_header(head, head + n, "Content-Length");
	te = head_header(head, head + n, "Transfer-Encoding");
	len = cl != NULL ? strtoull(cl, NULL, 10) : 0;
	if (is_import(head, n)) {
		if (te == NULL && len <= HTTP_IMPORT_MAX)
			return len > LDAPDESK_MAX_BODY && import_gate(in, l, head, n);
		/* Refused unread, and recorded for the session that sent it. */
		if (!refuse_post(in, head, n, te != NULL ? "length-required" : "too-large", true))
			head_rewrite(in, te != NULL ? PATH_CHUNKED : PATH_TOO_LARGE);
		return true;
	}
	/* Marked by refuse_post (or sent so): read, up to HTTP_DRAIN_MAX, and
	 * answered by the API as refused (not marked again: the marker's own
	 * insertion runs this watcher once more). */
	if (head_header(head, head + n, HEADER_BODY) != NULL && te == NULL &&
	    len <= HTTP_DRAIN_MAX && head_header(head, head + n, "Expect") == NULL)
		return false;
	/* A client waiting for "100 Continue" has not sent the body: it is
	 * refused at once instead of being invited to upload it first. */
	if (te != NULL || len > HTTP_DRAIN_MAX ||
	    (len > LDAPDESK_MAX_BODY && head_header(head, head + n, "Expect") != NULL)) {
		if (!refuse_post(in, head, n, te != NULL ? "length-required" : "too-large", true))
			head_rewrite(in, te != NULL ? PATH_CHUNKED : PATH_TOO_LARGE);
		return true;
	}
	if (len > LDAPDESK_MAX_BODY && !refuse_post(in, head, n, "too-large", false))
		line_rewrite(in, PATH_TOO_LARGE);
	return false;
}

/*
 * Whether a connection's input starts a request: a disabled callback on the
 * input buffer, present from the connection's start and from each reply until
 * the watcher has seen that request's first line. libevent 2.1 gives no
 * other per-connection storage that needs neither an allocation nor a hook
 * to free it (a connection can close before any request reaches us).
 */
static void mark_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	(void)in, (void)info, (void)arg;
}

/* Adds a disabled callback: a mark that holds state, never runs. */
static void mark(struct evbuffer *in, evbuffer_cb_func cb, void *arg)
{
	struct evbuffer_cb_entry *e = evbuffer_add_cb(in, cb, arg);

	if (e != NULL)
		evbuffer_cb_clear_flags(in, e, EVBUFFER_CB_ENABLED);
}

static void mark_start(struct evbuffer *in)
{
	evbuffer_remove_cb(in, mark_cb, NULL);
	mark(in, mark_cb, NULL);
}

/* True (and the mark is gone) when in was at a request's start. */
static bool take_start(struct evbuffer *in)
{
	return evbuffer_remove_cb(in, mark_cb, NULL) == 0;
}

/*
 * A head that goes on after the data seen so far: what the watcher knows of
 * it is kept in more disabled callbacks until its next piece, one that the
 * head goes on, one while evhttp has taken none of its lines (the buffer
 * still starts at its request line), and numbers as one callback per set
 * bit (the argument is the bit's place + 1), found by trying each.
 */
struct head_state {
	bool untaken;  /* evhttp has taken none of its lines yet */
	size_t total;  /* its bytes received so far */
	long long len; /* the Content-Length evhttp has taken, -1 none */
	size_t lines;  /* its header lines so far */
};

static void head_mark_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	(void)in, (void)info, (void)arg;
}

static void untaken_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	(void)in, (void)info, (void)arg;
}

static void total_bit_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	(void)in, (void)info, (void)arg;
}

static void len_bit_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	(void)in, (void)info, (void)arg;
}

static void lines_bit_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	(void)in, (void)info, (void)arg;
}

static void bits_put(struct evbuffer *in, evbuffer_cb_func cb, uintptr_t v)
{
	for (uintptr_t b = 0; b < HEAD_BITS; b++)
		if ((v >> b) & 1)
			mark(in, cb, (void *)(b + 1));
}

static uintptr_t bits_take(struct evbuffer *in, evbuffer_cb_func cb)
{
	uintptr_t v = 0;

	for (uintptr_t b = 0; b < HEAD_BITS; b++)
		if (evbuffer_remove_cb(in, cb, (void *)(b + 1)) == 0)
			v |= (uintptr_t)1 << b;
	return v;
}

static void head_put(struct evbuffer *in, const struct head_state *s)
{
	mark(in, head_mark_cb, NULL);
	if (s->untaken)
		mark(in, untaken_cb, NULL);
	bits_put(in, total_bit_cb, s->total);
	bits_put(in, len_bit_cb, (uintptr_t)(s->len + 1));
	bits_put(in, lines_bit_cb, s->lines);
}

/* False when in is not within a head (one failed lookup); else true with
 * *s, and the marks are gone. */
static bool head_take(struct evbuffer *in, struct head_state *s)
{
	if (evbuffer_remove_cb(in, head_mark_cb, NULL) != 0)
		return false;
	s->untaken = evbuffer_remove_cb(in, untaken_cb, NULL) == 0;
	s->total = bits_take(in, total_bit_cb);
	s->len = (long long)bits_take(in, len_bit_cb) - 1;
	s->lines = bits_take(in, lines_bit_cb);
	return true;
}

static void head_drop(struct evbuffer *in)
{
	struct head_state s;

	head_take(in, &s);
}

static bool is_method(const char *m, size_t n)
{
	static const char *const known[] = {"GET",     "POST",  "HEAD",    "PUT",  "DELETE",
	                                    "OPTIONS", "TRACE", "CONNECT", "PATCH"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == n && memcmp(known[i], m, n) == 0)
			return true;
	return false;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112, 2.3), major 0 or 1:
 * evhttp's own sscanf would take "HTTP/1.199999999999999999" and answer
 * it as "HTTP/1.-1". */
static bool version_ok(const char *v, size_t n)
{
	return n == 8 && memcmp(v, "HTTP/", 5) == 0 && (v[5] == '0' || v[5] == '1') &&
	       v[6] == '.' && v[7] >= '0' && v[7] <= '9';
}

/* Does evhttp parse the target? (A copy: the parser wants a C string.) */
static bool target_ok(const char *t, size_t n)
{
	char *copy = strndup(t, n);
	struct evhttp_uri *u;

	if (copy == NULL)
		return true; /* evhttp fails on the same memory and closes */
	u = evhttp_uri_parse_with_flags(copy, EVHTTP_URI_NONCONFORMANT);
	free(copy);
	if (u == NULL)
		return false;
	evhttp_uri_free(u);
	return true;
}

/* The request line [p, p + n) as evhttp 2.1 splits it: trailing blanks
 * dropped, the method before the first blank, the version after the last.
 * Return: NULL when evhttp would take it, else the internal path for it.
 * CONNECT goes with the unknown methods: its target is an authority, which
 * evhttp parses with a function it does not export. */
static const char *line_check(const char *p, size_t n)
{
	const char *sp, *ver;

	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n < strlen("GET / HTTP/1.0") || memchr(p, '\0', n) != NULL ||
	    memchr(p, '\r', n) != NULL || (sp = memchr(p, ' ', n)) == NULL)
		return PATH_BAD "line";
	for (ver = p + n; ver[-1] != ' '; ver--)
		;
	/* evhttp wants a target between the blanks ("GET  HTTP/1.1" has none). */
	if (ver - 1 == sp || ver - 1 == sp + 1)
		return PATH_BAD "line";
	if (!is_method(p, (size_t)(sp - p)) || strncmp(p, "CONNECT ", 8) == 0)
		return PATH_METHOD;
	if (!version_ok(ver, (size_t)(p + n - ver)))
		return PATH_BAD "version";
	if (!target_ok(sp + 1, (size_t)(ver - 1 - (sp + 1))))
		return PATH_BAD "target";
	return NULL;
}

/* The value after colon up to end, blanks trimmed, into *v; its length. */
static size_t header_value(const char *colon, const char *end, const char **v)
{
	const char *s = colon + 1;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*v = s;
	return (size_t)(end - s);
}

static bool header_is(const char *p, const char *colon, const char *name)
{
	return (size_t)(colon - p) == strlen(name) && strncasecmp(p, name, strlen(name)) == 0;
}

/* One header line [p, end) without its line break; *len: the Content-Length
 * seen so far (-1: none). Return: NULL or the internal path for it. */
static const char *header_line_check(const char *p, const char *end, long long *len)
{
	const char *colon = memchr(p, ':', (size_t)(end - p)), *v;
	size_t n;
	long long l = 0;

	/* A folded line (obsolete, RFC 9112 5.2) is refused, as are a bare CR
	 * and a NUL, which evhttp refuses with an HTML page or cuts short, and
	 * the header the watcher itself adds to a head it cuts short. */
	if (colon == NULL || colon == p || *p == ' ' || *p == '\t' ||
	    memchr(p, '\r', (size_t)(end - p)) != NULL ||
	    memchr(p, '\0', (size_t)(end - p)) != NULL || header_is(p, colon, HEADER_REFUSED))
		return PATH_BAD "header";
	n = header_value(colon, end, &v);
	if (header_is(p, colon, "Expect") &&
	    (n != strlen("100-continue") || strncasecmp(v, "100-continue", n) != 0))
		return PATH_EXPECT;
	if (!header_is(p, colon, "Content-Length"))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (i == 18 || !isdigit((unsigned char)v[i]))
			return PATH_BAD "length";
		l = l * 10 + (v[i] - '0');
	}
	/* No value, or two that differ: which one frames the body is a guess. */
	if (n == 0 || (*len >= 0 && *len != l))
		return PATH_BAD "length";
	*len = l;
	return NULL;
}

/* The whole header lines in [p, lim), up to the blank line that ends the
 * head; *len as for header_line_check, *lines counts them. Return: NULL or
 * the internal path for the first bad line (or the line over
 * HTTP_MAX_HEADER_LINES). *next: past the blank line (*ended) or past the
 * last whole line, where evhttp stops taking lines. */
static const char *lines_check(const char *p, const char *lim, long long *len, size_t *lines,
                               bool *ended, const char **next)
{
	const char *eol, *end, *path;

	*ended = false;
	for (; (eol = memchr(p, '\n', (size_t)(lim - p))) != NULL; p = eol + 1) {
		end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		if (end == p) {
			*ended = true; /* the blank line: the head ends */
			p = eol + 1;
			break;
		}
		if (++*lines > HTTP_MAX_HEADER_LINES)
			return PATH_HEADERS;
		if ((path = header_line_check(p, end, len)) != NULL)
			return path;
	}
	*next = p;
	return NULL;
}

/*
 * A request's first bytes, head[0..n) (n at most HTTP_MAX_HEADERS): what
 * evhttp would refuse with its own HTML page (a request line it cannot
 * parse, an unknown method, a header line without a colon, a length that is
 * not a number, an expectation it does not meet) goes to an internal path
 * answered in JSON. A head that goes on past head[n) (total bytes so far)
 * is marked for rest_check. Return: -1 when the request line is not complete
 * yet, 0 when all is well, 1 with *path set.
 */
static int start_check(struct evbuffer *in, const char *head, size_t n, const char **path,
                       struct head_state *s, bool *ended)
{
	const char *eol = memchr(head, '\n', n), *end, *next;

	/* evhttp has taken nothing of it: in holds all of it so far. */
	*s = (struct head_state){.untaken = true, .total = evbuffer_get_length(in), .len = -1};
	*ended = false;
	if (eol == NULL) {
		*path = PATH_HEADERS;
		return n == HTTP_MAX_HEADERS ? 1 : -1;
	}
	end = eol > head && eol[-1] == '\r' ? eol - 1 : eol;
	if ((*path = line_check(head, (size_t)(end - head))) != NULL)
		return 1;
	if ((*path = lines_check(eol + 1, head + n, &s->len, &s->lines, ended, &next)) != NULL)
		return 1;
	/* A head that does not end within the window (its lines beyond are
	 * not checked) or within HEAD_MAX: evhttp would refuse it in HTML. */
	*path = PATH_HEADERS;
	return !*ended && (n == HTTP_MAX_HEADERS || s->total > HEAD_MAX) ? 1 : 0;
}

/*
 * Replaces what in holds with the end of a head that request_cb answers
 * from path. evhttp keeps the first of a header: a Content-Length it took
 * from an earlier piece (len) is met with that many filler bytes, or it
 * would wait for a body that is not coming (request_cb closes the
 * connection after its answer).
 */
static void head_cut(struct evbuffer *in, const char *path, long long len)
{
	static const char filler[65536];
	struct evbuffer *pad = len > 0 ? evbuffer_new() : NULL;
	char end[128];
	int n = snprintf(end, sizeof(end), HEADER_REFUSED ": %s\r\n%s\r\n", path,
	                 len < 0 || (len > 0 && pad == NULL) ? "Content-Length: 0\r\n" : "");

	evbuffer_drain(in, evbuffer_get_length(in));
	/* By reference to one static block, prepended at once: no copy, one
	 * callback run, whatever the length (up to an import's 32 MiB). */
	for (long long left = len; pad != NULL && left > 0; left -= (long long)sizeof(filler))
		evbuffer_add_reference(
		    pad, filler, left < (long long)sizeof(filler) ? (size_t)left : sizeof(filler),
		    NULL, NULL);
	if (pad != NULL) {
		evbuffer_prepend_buffer(in, pad);
		evbuffer_free(pad);
	}
	evbuffer_prepend(in, end, (size_t)n);
}

/*
 * The rest of a head whose request line (and maybe more) evhttp has taken,
 * head[0..n) from a line's start (evhttp takes whole lines), s as its last
 * piece left it, added bytes new: the same checks as start_check, and the
 * sizes head_check makes, since the route is not known here any more.
 */
static void rest_check(struct evbuffer *in, const char *head, size_t n, struct head_state *s,
                       size_t added)
{
	const char *next, *path;
	long long len = s->len; /* a second one must be the same */
	bool ended;

	/* evhttp took the whole lines of the last piece: those here are new. */
	s->total += added;
	if ((path = lines_check(head, head + n, &len, &s->lines, &ended, &next)) != NULL)
		head_cut(in, path, s->len);
	else if (head_header(head, next, "Transfer-Encoding") != NULL)
		head_cut(in, PATH_CHUNKED, s->len);
	else if (len != s->len && len > LDAPDESK_MAX_BODY) /* earlier ones were judged */
		head_cut(in, PATH_TOO_LARGE, s->len);
	else if (!ended && (n == HTTP_MAX_HEADERS || s->total > HEAD_MAX))
		head_cut(in, PATH_HEADERS, s->len);
	else if (!ended) {
		s->len = len;
		head_put(in, s);
	}
}

/* Fires the input watcher again (it runs on additions): a request pipelined
 * behind the one being answered is buffered already and is parsed once the
 * reply is written, with no new data arriving for the watcher to see. */
static void watch_again(struct evbuffer *in)
{
	char c;

	if (evbuffer_remove(in, &c, 1) == 1)
		evbuffer_prepend(in, &c, 1);
}

/* Runs when data arrives, before evhttp parses it: the buffer starts with a
 * request line, with the rest of a head, or with body bytes (left alone). */
static void input_watch_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	char head[HTTP_MAX_HEADERS];
	struct head_state s;
	ev_ssize_t n;
	bool start, within;

	input_bound(arg);
	/* Lines taken by evhttp (the watcher's own drains come after
	 * head_take): the buffer no longer starts at the request line. */
	if (info->n_added == 0) {
		if (info->n_deleted > 0)
			evbuffer_remove_cb(in, untaken_cb, NULL);
		return;
	}
	if ((n = evbuffer_copyout(in, head, sizeof(head))) <= 0)
		return;
	start = take_start(in);
	if (start)
		conn_request_begins(((struct link *)arg)->conn);
	within = !start && head_take(in, &s);
	if (within && !s.untaken) {
		rest_check(in, head, (size_t)n, &s, info->n_added);
		return;
	}
	/* At a request's start (or a read adding to one evhttp has not parsed
	 * yet), what evhttp would refuse in HTML is refused here. */
	if (start || within) {
		const char *path = NULL;
		bool ended;
		int r = start_check(in, head, (size_t)n, &path, &s, &ended);

		if (r < 0) {
			mark_start(in); /* not a whole line yet: still at the start */
		} else if (r > 0) {
			head_rewrite(in, path);
		} else if (!head_check(in, arg, head, (size_t)n) && !ended) {
			/* Marked after head_check: its rewrites (drains and prepends
			 * that run this watcher again) must not see a head state. */
			s.total = evbuffer_get_length(in);
			head_put(in, &s);
		}
		return;
	}
	head_check(in, arg, head, (size_t)n);
}

/*
 * Counts the connections whose output holds bytes not yet written to the
 * socket, so that a stop waits for a large reply to a slow reader (a report)
 * instead of cutting it when the loop ends. Edges only: empty to not empty
 * and back. libevent drains the output of a connection it resets (the
 * callback sees that); one it frees with bytes left is settled by closed_cb.
 * Both are set up by request_cb (watch_output): evhttp writes to a connection
 * before any request reaches us too (a "100 Continue"), and one freed then
 * would stay counted, with no close callback to settle it.
 */
static void output_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	struct http *h = arg;
	size_t now = info->orig_size + info->n_added - info->n_deleted;

	(void)out;
	if (info->orig_size == 0 && now > 0)
		h->unsent++;
	else if (info->orig_size > 0 && now == 0)
		h->unsent--;
	h->unsent_bytes = h->unsent_bytes + info->n_added - info->n_deleted;
}

/* While a reply is being written the read timeout is off: evhttp keeps
 * reading (to see a close) and its read timeout would cut a reply that
 * takes over HTTP_TIMEOUT_S to download however steadily the client reads.
 * The write timeout still ends a client that stops reading. */
static void reply_timeout_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	struct bufferevent *bev = arg;
	struct timeval tv = {HTTP_TIMEOUT_S, 0};
	size_t now = info->orig_size + info->n_added - info->n_deleted;

	(void)out;
	if (info->orig_size == 0 && now > 0)
		bufferevent_set_timeouts(bev, NULL, &tv);
	else if (info->orig_size > 0 && now == 0)
		bufferevent_set_timeouts(bev, &tv, &tv);
}

static void closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http *h = arg;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	struct evbuffer *out = bev != NULL ? bufferevent_get_output(bev) : NULL;

	/* Removed first: whatever libevent does with the buffer next is not
	 * counted twice. */
	if (out != NULL && evbuffer_remove_cb(out, output_cb, h) == 0 &&
	    evbuffer_get_length(out) > 0) {
		h->unsent--;
		h->unsent_bytes -= evbuffer_get_length(out);
	}
}

int http_unsent(const struct http *h)
{
	return h->unsent;
}

size_t http_unsent_bytes(const struct http *h)
{
	return h->unsent_bytes;
}

/* From a connection's first request on: its output counted, its close seen. */
static void watch_output(struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct evbuffer *out = bev != NULL ? bufferevent_get_output(bev) : NULL;

	if (out == NULL)
		return;
	/* Not watched yet: what it holds now (a "100 Continue") counts too. */
	if (evbuffer_remove_cb(out, output_cb, h) != 0 && evbuffer_get_length(out) > 0) {
		h->unsent++;
		h->unsent_bytes += evbuffer_get_length(out);
	}
	evbuffer_add_cb(out, output_cb, h);
	evbuffer_remove_cb(out, reply_timeout_cb, bev);
	evbuffer_add_cb(out, reply_timeout_cb, bev);
	evhttp_connection_set_closecb(evcon, closed_cb, h);
}

static struct bufferevent *watched(struct bufferevent *bev, struct link *l)
{
	/* The mark is added after the watcher, and so lies before it in the
	 * buffer's list (new entries go first): the watcher may then remove it,
	 * and add it back, while libevent walks the list. */
	if (bev != NULL) {
		evbuffer_add_cb(bufferevent_get_input(bev), input_watch_cb, l);
		mark_start(bufferevent_get_input(bev));
	}
	return bev;
}

/* The SSL's ex_data free function: the connection is gone (bufferevents are
 * freed by a finalizer, which may run after http_free: the link holds only
 * the conns table, which outlives the front while connections remain). */
static void link_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
	struct link *l = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (l == NULL)
		return;
	conn_free(l->conn);
	free(l);
}

/* A connection's link, from its request (NULL for a unix: connection). */
static struct link *req_link(const struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl != NULL ? SSL_get_ex_data(ssl, h->link_idx) : NULL;
}

/* Ownership: the SSL owns the link (ex_data) and the bufferevent the SSL.
 * On failure what was made is freed here and NULL returned: libevent 2.1
 * then serves the connection on a plain bufferevent, whose requests
 * tls_request_cb refuses. */
static struct bufferevent *tls_bev_cb(struct event_base *base, void *arg)
{
	struct http *h = arg;
	SSL *ssl = SSL_new(h->ssl);
	struct link *l = calloc(1, sizeof(*l));
	struct bufferevent *bev;

	if (ssl == NULL || l == NULL || SSL_set_ex_data(ssl, h->link_idx, l) != 1) {
		SSL_free(ssl);
		free(l);
		return NULL;
	}
	/* From here on SSL_free frees l (link_free_cb). */
	l->h = h;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	if ((l->conn = conn_new(h->conns, bev)) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	l->bev = bev;
	return watched(bev, l);
}

static struct bufferevent *plain_bev_cb(struct event_base *base, void *arg)
{
	struct http *h = arg;

	return watched(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE), &h->local);
}

static bool head_has_body(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *cl = evhttp_find_header(in, "Content-Length");

	return evhttp_find_header(in, "Transfer-Encoding") != NULL ||
	       (cl != NULL && strspn(cl, "0") != strlen(cl));
}

/* The method evhttp does not know, or CONNECT: the same answer as for a
 * method the API does not use. Closed after, as its body is not read. */
static void not_allowed(const struct http *h, struct evhttp_request *req, const char *uri)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const char *allow = h->allow != NULL && uri != NULL ? h->allow(h->allow_arg, uri) : NULL;

	/* The methods this path takes; every method the API uses for a path it
	 * does not have (or a request line that named none). */
	evhttp_add_header(out, "Allow", allow != NULL ? allow : "GET, POST, HEAD");
	evhttp_add_header(out, "Connection", "close");
	http_reply_error(req, 405, "method_not_allowed",
	                 "the API uses GET and POST only (see DESIGN.md, HTTP API)");
}

/* Requests start_check sent to an internal path. Return: false for a path
 * that is not one of them. */
static bool bad_cb(const struct http *h, struct evhttp_request *req, const char *path)
{
	static const struct {
		const char *path, *message;
	} bad[] = {
	    {PATH_BAD "line", "the request line is not METHOD TARGET HTTP/1.1"},
	    {PATH_BAD "version", "the HTTP version is not 1.0 or 1.1"},
	    {PATH_BAD "target", "the request target is not a URL path"},
	    {PATH_BAD "header", "a header line is not NAME: VALUE on one line"},
	    {PATH_BAD "length", "Content-Length is not one number"},
	};

	if (strcmp(path, PATH_METHOD) == 0) {
		not_allowed(h, req, NULL);
		return true;
	}
	if (strcmp(path, PATH_EXPECT) == 0) {
		http_reply_error(req, 417, "expectation_failed",
		                 "the only Expect this server meets is 100-continue");
		return true;
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strcmp(path, bad[i].path) == 0) {
			http_reply_error(req, 400, "bad_request", bad[i].message);
			return true;
		}
	return false;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	const char *path = evhttp_request_get_uri(req);
	const char *cut = evhttp_find_header(evhttp_request_get_input_headers(req), HEADER_REFUSED);
	struct link *l;

	watch_output(h, req);
	if ((l = req_link(h, req)) != NULL)
		conn_request_arrived(l->conn);
	/* Its body is in: an import's raised bound is back to the usual one
	 * for what the client pipelines behind it. */
	if (l != NULL && l->raised) {
		l->raised = false;
		input_bound(l);
	}
	/* Over a limit: answered, so that the client can say why (a handshake
	 * cut short would read as a TLS or CA problem), then closed. */
	if (l != NULL && conn_over_limit(l->conn)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		http_reply_error(req, 503, "busy",
		                 "ldapdeskd has as many connections open as [limits] connections "
		                 "(or connections_per_address from your address) allows: try again "
		                 "shortly, or ask its administrator");
		return;
	}
	/* A head rest_check cut short (no client may send the header: 400) is
	 * answered from the path it names, and closed: what the client sends
	 * next is the rest of the refused request. */
	if (cut != NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		path = strncmp(cut, "/.ldapdesk/", 11) == 0 ? cut : PATH_TOO_LARGE;
	}
	if (path != NULL && strcmp(path, PATH_TOO_LARGE) == 0) {
		http_reply_error(req, 413, "too_large",
		                 "the request body is over 64 KiB (32 MiB for /v1/import)");
		return;
	}
	if (path != NULL && strcmp(path, PATH_UNAUTHENTICATED) == 0) {
		http_reply_error(req, 401, "unauthenticated",
		                 "log in first: a body over 64 KiB is read only for a session");
		return;
	}
	if (path != NULL && strcmp(path, PATH_HEADERS) == 0) {
		http_reply_error(
		    req, 431, "headers_too_large",
		    "the request headers are over 16 KiB in one piece or 64 KiB in all");
		return;
	}
	if (path != NULL && strncmp(path, "/.ldapdesk/", 11) == 0 && bad_cb(h, req, path))
		return;
	if (path != NULL && strcmp(path, PATH_CHUNKED) == 0) {
		http_reply_error(req, 411, "length_required",
		                 "send the body with Content-Length, not chunked");
		return;
	}
	if (cut != NULL) { /* none of the above: still never a request run */
		http_reply_error(req, 413, "too_large", "the request was cut short");
		return;
	}
	/* Closed after: libevent 2.1 reads no body for DELETE, OPTIONS and the
	 * like, and its bytes must not be read as the next request. */
	if ((evhttp_request_get_command(req) &
	     (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD)) == 0) {
		not_allowed(h, req, path);
		return;
	}
	/* libevent 2.1 reads no body for HEAD: bytes sent as one would be
	 * parsed as the next request (smuggled past a proxy). Closed after. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD && head_has_body(req))
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	h->fn(h->arg, req);
}

/* The TLS listeners' requests: one that did not come over TLS (the
 * connection's TLS set-up failed, out of memory) is refused, never served
 * in plaintext on the TLS port. */
static void tls_request_cb(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;

	if (req_link(h, req) == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		http_reply_error(req, 503, "busy",
		                 "ldapdeskd could not set up TLS for this connection (out of "
		                 "memory): try again shortly");
		return;
	}
	request_cb(req, arg);
}

/* ---- listeners ----------------------------------------------------------------- */

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

/*
 * Out of descriptors (EMFILE, ENFILE, ENOBUFS): stop accepting for a second
 * instead of spinning on a listener that stays readable. arg is NOT ours:
 * evhttp_bind_listener made it the struct evhttp, so only lev is used, and
 * the resume is a one-shot timer of the base (freed with it; the loop has
 * ended before the listeners are freed). A listener shut down by
 * http_stop_accepting answers EINVAL: it stays disabled.
 */
static void listener_error_cb(struct evconnlistener *lev, void *arg)
{
	struct timeval tv = {1, 0};
	int e = EVUTIL_SOCKET_ERROR();

	(void)arg;
	evconnlistener_disable(lev);
	if (e == EINVAL)
		return;
	errno = e;
	log_warn("accept (accepting again in 1 s)");
	/* Enabled again at once it would spin (still readable): it stays off,
	 * and the log says so. (event_base_once fails only out of memory.) */
	if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, resume_cb, lev, &tv) ==
	    -1)
		log_warnx("accept: out of memory for the timer to resume: this listener stays off "
		          "until ldapdeskd is restarted");
}

static int add_listener(struct http *h, struct evconnlistener *lev, struct evhttp *http,
                        const char *addr, char *err, size_t errlen)
{
	if (lev == NULL) {
		snprintf(err, errlen, "listen: cannot listen on %s: %s", addr, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(lev, listener_error_cb);
	h->lev[h->n_lev++] = lev;
	if (evhttp_bind_listener(http, lev) == NULL) {
		snprintf(err, errlen, "cannot serve HTTP on %s", addr);
		return -1;
	}
	return 0;
}

/* A TCP listen address into ss. evutil wants [v6]:port or v4:port;
 * "localhost" is resolved by the admin. Return: 0, or -1. */
static int listen_addr(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
	char spec[128];

	*sslen = sizeof(*ss);
	snprintf(spec, sizeof(spec), "%s", addr);
	return evutil_parse_sockaddr_port(spec, (struct sockaddr *)ss, sslen);
}

static int listen_tcp(struct http *h, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen, one = 1;
	struct evconnlistener *lev;
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	if (listen_addr(addr, &ss, &sslen) == -1) {
		snprintf(err, errlen,
		         "listen: \"%s\" is not IP:PORT (use 127.0.0.1:8636 or "
		         "[::1]:8636)",
		         addr);
		return -1;
	}
	lev = evconnlistener_new_bind(h->base, NULL, h, flags, HTTP_BACKLOG, (struct sockaddr *)&ss,
	                              sslen);
	/* Replies go out as header and body writes; with Nagle on, the body waits
	 * for the client's delayed ACK (40 ms). Accepted sockets inherit
	 * TCP_NODELAY from the listener (Linux), so it is set once, not per request. */
	if (lev != NULL)
		(void)setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY, &one,
		                 sizeof(one));
	return add_listener(h, lev, h->tls, addr, err, errlen);
}

/* A unix socket is created 0660: the group decides who may talk plaintext. */
/* Something accepts connections on sun: unlinking it would cut a running
 * daemon off its clients. */
static bool socket_live(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool live;

	/* Non-blocking: a listener with a full backlog answers EAGAIN at once.
	 * Only "nobody listens" (or nothing there) makes it safe to unlink; any
	 * other answer (EACCES: another user's socket) counts as in use. */
	if (fd == -1)
		return false;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ||
	       (errno != ECONNREFUSED && errno != ENOENT);
	close(fd);
	return live;
}

static int listen_unix(struct http *h, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *path = addr + 5;
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "listen: socket path too long: %s", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (socket_live(&sun)) {
		snprintf(
		    err, errlen,
		    "listen: %s is in use (another ldapdeskd?) or cannot be checked: stop it, or "
		    "listen elsewhere",
		    path);
		return -1;
	}
	/* A socket left by a daemon that is gone is replaced; nothing else is
	 * ever removed (a typo in listen must not delete the audit database). */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen,
		         "listen: %s exists and is not a socket: choose a path of its own for the "
		         "socket",
		         path);
		return -1;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, 0660) == -1) {
		snprintf(err, errlen, "listen: cannot bind %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (h->n_sockets < HTTP_MAX_LISTEN && stat(path, &st) == 0) {
		struct bound *b = &h->sockets[h->n_sockets++];

		*b = (struct bound){.path = strdup(path), .dev = st.st_dev, .ino = st.st_ino};
	}
	return add_listener(h,
	                    evconnlistener_new(h->base, NULL, h,
	                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	                                       HTTP_BACKLOG, fd),
	                    h->plain, addr, err, errlen);
}

/* A listener that cannot start: where it is configured, and what to do for
 * the usual causes (e, the errno of the failure). */
static void listen_failed(const struct config *conf, size_t i, int e, char *err, size_t errlen)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", err);
	snprintf(err, errlen, "%s:%d: [server] %s%s", conf->path,
	         config_nth_line(conf, "server", "listen", i), why,
	         e == EADDRINUSE ? " (another process listens there, another ldapdeskd?: stop it, "
	                           "or listen elsewhere)"
	         : e == EACCES   ? " (the daemon's user may not: a port below 1024 needs "
	                           "CAP_NET_BIND_SERVICE, a socket's directory must be writable "
	                           "by that user)"
	                         : "");
}

/* OpenSSL's reason for e; some (a system error) have no text. */
static const char *tls_reason(unsigned long e)
{
	const char *r = ERR_reason_error_string(e);

	return r != NULL ? r : "cannot be loaded (not PEM?)";
}

static int key_mismatch(const struct config *conf, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: [server] tls_key: %s does not match tls_cert %s", conf->path,
	         config_line(conf, "server", "tls_key"), conf->tls_key, conf->tls_cert);
	return -1;
}

static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

static int tls_setup(struct http *h, const struct config *conf, char *err, size_t errlen)
{
	unsigned long e;

	h->ssl = SSL_CTX_new(TLS_server_method());
	if (h->ssl == NULL)
		return snprintf(err, errlen, "cannot create a TLS context"), -1;
	SSL_CTX_set_min_proto_version(h->ssl, TLS1_2_VERSION);
	/* libevent 2.1 + OpenSSL 3 report a close without close_notify as an error. */
	/* CLEANSE_PLAINTEXT: a request's plaintext (a login's password) is
	 * wiped from OpenSSL's record buffer once read, not left there. */
	SSL_CTX_set_options(h->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
	                                SSL_OP_CLEANSE_PLAINTEXT);
	/* A keep-alive connection between requests holds no 17 KiB read and
	 * write buffers: with hundreds of clients that is most of the RSS. */
	SSL_CTX_set_mode(h->ssl, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(h->ssl, conf->tls_cert) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen, "%s:%d: [server] tls_cert: %s: %s", conf->path,
		         config_line(conf, "server", "tls_cert"), conf->tls_cert, tls_reason(e));
		return -1;
	}
	if (conf->client_ca != NULL) {
		/* mTLS: every TCP client must show a certificate from this CA. */
		if (SSL_CTX_load_verify_locations(h->ssl, conf->client_ca, NULL) != 1) {
			snprintf(err, errlen, "%s:%d: [server] client_ca: %s: not a PEM CA file",
			         conf->path, config_line(conf, "server", "client_ca"),
			         conf->client_ca);
			return -1;
		}
		SSL_CTX_set_verify(h->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		/* A session resumed under client verification needs an id context,
		 * or OpenSSL ends the handshake (alert 80): the CLI's second request
		 * of a command resumes the first's session. */
		SSL_CTX_set_session_id_context(h->ssl, (const unsigned char *)"ldapdeskd", 9);
	}
	/* An encrypted key would prompt on the terminal (twice) and block a
	 * service: no pass phrase is ever given. */
	SSL_CTX_set_default_passwd_cb(h->ssl, no_passphrase);
	if (SSL_CTX_use_PrivateKey_file(h->ssl, conf->tls_key, SSL_FILETYPE_PEM) != 1) {
		e = ERR_get_error();
		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			return key_mismatch(conf, err, errlen);
		snprintf(err, errlen,
		         "%s:%d: [server] tls_key: %s: %s (a PEM key without a pass phrase is "
		         "needed)",
		         conf->path, config_line(conf, "server", "tls_key"), conf->tls_key,
		         tls_reason(e));
		return -1;
	}
	if (SSL_CTX_check_private_key(h->ssl) != 1)
		return key_mismatch(conf, err, errlen);
	return 0;
}

/* A TLS context loaded for a reload, not yet installed. */
struct http_tls {
	SSL_CTX *ctx;
};

/* The first of conf's TLS files this user cannot read (EACCES), or NULL. */
static const char *tls_unreadable(const struct config *conf)
{
	const char *files[] = {conf->tls_cert, conf->tls_key, conf->client_ca};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i] != NULL && access(files[i], R_OK) == -1 && errno == EACCES)
			return files[i];
	return NULL;
}

int http_tls_load(const struct config *conf, struct http_tls **pending, char *err, size_t errlen)
{
	struct http tmp = {0};
	const char *locked;

	*pending = NULL;
	if (conf->tls_cert == NULL || conf->tls_key == NULL)
		return 0;
	/* Root read them at start, before dropping to [server] user: a key only
	 * root may read must not fail every reload. */
	if ((locked = tls_unreadable(conf)) != NULL) {
		snprintf(err, errlen,
		         "%s cannot be read as the user ldapdeskd runs as: the running TLS "
		         "certificate, key and client CA stay until a restart (make the files "
		         "readable by that user, e.g. group ssl-cert, for a reload to read them)",
		         locked);
		return 1;
	}
	if (tls_setup(&tmp, conf, err, errlen) == -1) {
		SSL_CTX_free(tmp.ssl);
		ERR_clear_error();
		return -1;
	}
	if ((*pending = malloc(sizeof(**pending))) == NULL) {
		SSL_CTX_free(tmp.ssl);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	(*pending)->ctx = tmp.ssl;
	return 0;
}

bool http_tls_install(struct http *h, struct http_tls *pending)
{
	X509 *was, *now;
	bool changed;

	if (pending == NULL)
		return false;
	was = h->ssl != NULL ? SSL_CTX_get0_certificate(h->ssl) : NULL;
	now = SSL_CTX_get0_certificate(pending->ctx);
	changed = was == NULL || now == NULL || X509_cmp(was, now) != 0;
	/* Each open connection's SSL holds its own reference to the old
	 * context: they go on with it; new ones get the new context. */
	SSL_CTX_free(h->ssl);
	h->ssl = pending->ctx;
	free(pending);
	return changed;
}

void http_tls_discard(struct http_tls *pending)
{
	if (pending == NULL)
		return;
	SSL_CTX_free(pending->ctx);
	free(pending);
}

/* One TCP listen address taken by another socket now? */
static bool port_taken(const char *addr)
{
	struct sockaddr_storage ss;
	int sslen, one = 1, fd, rc = 0;

	if (listen_addr(addr, &ss, &sslen) == -1 ||
	    (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	/* As the daemon binds: a port in TIME_WAIT is no obstacle. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) == -1)
		rc = errno;
	close(fd);
	return rc == EADDRINUSE;
}

void http_ports_taken(const struct config *conf, void (*fn)(const char *addr))
{
	for (size_t i = 0; i < conf->n_listen; i++)
		if (strncmp(conf->listen[i], "unix:", 5) != 0 && port_taken(conf->listen[i]))
			fn(conf->listen[i]);
}

int http_check_tls(const struct config *conf, char *err, size_t errlen)
{
	struct http h = {0};
	int rc;

	if (conf->tls_cert == NULL || conf->tls_key == NULL)
		return 0;
	rc = tls_setup(&h, conf, err, errlen);
	SSL_CTX_free(h.ssl);
	ERR_clear_error();
	return rc;
}

static struct evhttp *http_server(struct http *h,
                                  struct bufferevent *(*bevcb)(struct event_base *, void *),
                                  void (*gencb)(struct evhttp_request *, void *))
{
	struct evhttp *http = evhttp_new(h->base);

	if (http == NULL)
		return NULL;
	evhttp_set_max_body_size(http, HTTP_IMPORT_MAX);
	/* Above the watcher's limit: evhttp's own refusal is an HTML page. */
	evhttp_set_max_headers_size(http, 2 * HEAD_MAX);
	evhttp_set_timeout(http, HTTP_TIMEOUT_S);
	/* Every method reaches request_cb, which answers the ones the API does
	 * not use with a JSON 405: evhttp's own answer is an HTML page. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                     EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(http, "application/json");
	evhttp_set_bevcb(http, bevcb, h);
	evhttp_set_gencb(http, gencb, h);
	return http;
}

int http_new(struct event_base *base, const struct config *conf, http_handler_fn fn, void *arg,
             struct http **hp, char *err, size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));
	int rc = 0;

	if (h == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	h->base = base;
	h->fn = fn;
	h->arg = arg;
	h->local.h = h;
	/* One index per front; its free function frees each connection's link. */
	h->link_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, link_free_cb);
	if (h->link_idx < 0 || (h->conns = conns_new(base)) == NULL) {
		free(h);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	http_set_limits(h, conf);
	h->tls = http_server(h, tls_bev_cb, tls_request_cb);
	h->plain = http_server(h, plain_bev_cb, request_cb);
	if (conf->tls_cert != NULL && tls_setup(h, conf, err, errlen) == -1)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < conf->n_listen; i++) {
		errno = 0;
		if (strncmp(conf->listen[i], "unix:", 5) == 0)
			rc = listen_unix(h, conf->listen[i], err, errlen);
		else
			rc = listen_tcp(h, conf->listen[i], err, errlen);
		if (rc == -1)
			listen_failed(conf, i, errno, err, errlen);
	}
	if (rc == -1) {
		http_free(h);
		return -1;
	}
	*hp = h;
	return 0;
}

void http_set_limits(struct http *h, const struct config *conf)
{
	conns_set_limits(h->conns, conf->connections, conf->connections_per_addr,
	                 conf->request_seconds);
}

void http_conn_stats(const struct http *h, unsigned long long *open,
                     unsigned long long *refused_total, unsigned long long *refused_per_addr,
                     unsigned long long *cut)
{
	struct conns_stats s = conns_stats(h->conns);

	*open = s.open;
	*refused_total = s.refused_total;
	*refused_per_addr = s.refused_per_address;
	*cut = s.cut_deadline;
}

void http_set_allow(struct http *h, http_allow_fn fn, void *arg)
{
	h->allow = fn;
	h->allow_arg = arg;
}

void http_set_gate(struct http *h, http_gate_fn fn, void *arg)
{
	h->gate = fn;
	h->gate_arg = arg;
}

void http_stop_accepting(struct http *h)
{
	/* shutdown(2) on a listening socket makes new connections fail at once
	 * (TCP: reset; unix: ECONNREFUSED) instead of waiting in the backlog
	 * for a daemon that no longer accepts; the descriptor stays ours to close. */
	for (size_t i = 0; i < h->n_lev; i++) {
		evconnlistener_disable(h->lev[i]);
		shutdown(evconnlistener_get_fd(h->lev[i]), SHUT_RDWR);
	}
}

void http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->tls != NULL)
		evhttp_free(h->tls); /* frees the bound listeners too */
	if (h->plain != NULL)
		evhttp_free(h->plain);
	/* No stale socket for the next start to find (it would test it first);
	 * a path someone else has bound since (after removing ours) is theirs. */
	for (size_t i = 0; i < h->n_sockets; i++) {
		const struct bound *b = &h->sockets[i];
		struct stat st;

		if (b->path != NULL && lstat(b->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == b->dev && st.st_ino == b->ino)
			unlink(b->path);
		free(b->path);
	}
	SSL_CTX_free(h->ssl);
	conns_close(h->conns);
	free(h);
}
