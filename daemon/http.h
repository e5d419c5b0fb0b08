/*
 * http.h — the HTTP front: evhttp over TLS bufferevents on TCP listeners and
 * plaintext on unix: listeners, body and header limits, and JSON replies.
 * Every answer the daemon gives, errors included, is JSON (never evhttp's
 * HTML pages). Knows nothing of LDAP or SQLite.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct event_base;
struct evhttp_request;
struct config;
struct http;

/* Called for every well-formed request; must answer it (now or later). */
typedef void (*http_handler_fn)(void *arg, struct evhttp_request *req);

/* For -n: the TLS certificate and key load, and match (FILE:LINE in err).
 * Return 0/-1; 0 when there is no TLS listener. */
int http_check_tls(const struct config *conf, char *err, size_t errlen);
/* For -n: calls fn for each TCP listen address another socket holds now
 * (EADDRINUSE on a trial bind; a running ldapdeskd holds its own). */
void http_ports_taken(const struct config *conf, void (*fn)(const char *addr));

/* Binds every [server] listen address. Return: 0, or -1 with err naming the
 * FILE:LINE or address at fault. conf must outlive the object. */
int http_new(struct event_base *base, const struct config *conf, http_handler_fn fn, void *arg,
             struct http **hp, char *err, size_t errlen);
/* May the session with this bearer token ("" when the head has none) send a
 * body over 64 KiB (POST /v1/import)? 0 yes, else 401 or 403: the request is
 * refused with it before its body is read. */
typedef int (*http_gate_fn)(void *arg, const char *bearer);
/* The methods the API takes on the request target uri ("GET, HEAD",
 * "POST"), for a 405's Allow header; NULL for a path it does not have.
 * Returns a static string. */
typedef const char *(*http_allow_fn)(void *arg, const char *uri);
/* Sets how 405's Allow is found (unset: every method the API uses). */
void http_set_allow(struct http *h, http_allow_fn fn, void *arg);
/* Sets the gate for large bodies (unset: they are read for anyone, up to the
 * import limit, and refused later by the handler). */
void http_set_gate(struct http *h, http_gate_fn fn, void *arg);

/* A TLS context read for a reload, not yet in use. */
struct http_tls;
/* For a reload: reads conf's tls_cert, tls_key and client_ca into a new TLS
 * context (*pending; NULL when conf has no TLS). Return: 0 read; 1 one of
 * the files cannot be read by the user the daemon runs as (err says which,
 * as a warning: the running context is to be kept); -1 an error in them
 * (err names FILE:LINE). */
int http_tls_load(const struct config *conf, struct http_tls **pending, char *err, size_t errlen);
/* Puts pending (ownership taken; NULL: nothing) in use for connections
 * accepted from now on; open ones keep theirs. Return: true when its
 * certificate differs from the one it replaces. */
bool http_tls_install(struct http *h, struct http_tls *pending);
/* Frees a context read but not installed. NULL: nothing. */
void http_tls_discard(struct http_tls *pending);
/* Applies [limits] connections, connections_per_address and
 * request_seconds (at start, by http_new, and on reload; open connections
 * are kept). */
void http_set_limits(struct http *h, const struct config *conf);
/* For GET /metrics: TCP connections open, refused at [limits] connections,
 * refused at connections_per_address, and shut for want of a whole request
 * within request_seconds. */
void http_conn_stats(const struct http *h, unsigned long long *open,
                     unsigned long long *refused_total, unsigned long long *refused_per_addr,
                     unsigned long long *cut);
/* Stops accepting new connections (open ones are served until they end). */
void http_stop_accepting(struct http *h);

/* Stops accepting; open connections are closed. */
void http_free(struct http *h);

/* Connections holding a reply not yet written to their socket (a large one
 * to a slow reader): a stop waits for them, up to its deadline. */
int http_unsent(const struct http *h);

/* The bytes those replies hold (the API refuses new log and report jobs
 * above a bound, so that clients that never read cannot grow it). */
size_t http_unsent_bytes(const struct http *h);

/* Answers with body (reference stolen) as application/json. */
void http_reply_json(struct evhttp_request *req, int code, json_t *body);
/* Answers {"error": error, "message": message}. */
void http_reply_error(struct evhttp_request *req, int code, const char *error, const char *message);
/* Answers a non-JSON body (reports, CSV, metrics). */
void http_reply_raw(struct evhttp_request *req, int code, const char *content_type,
                    const char *body, size_t len);

/* A POST whose body the front refused (over 64 KiB, chunked): true with
 * the status to answer (413, 411), its error code and message. The API
 * records it as the operator's refused attempt when the session is good,
 * and answers it as it is otherwise. */
bool http_body_refusal(struct evhttp_request *req, int *code, const char **error,
                       const char **message);
/* true when req came over TLS (a TCP listener). */
bool http_is_tls(struct evhttp_request *req);

/* The common name of the client certificate (TLS with client_ca), into
 * buf; NULL when there is none (plaintext unix socket, no mTLS). */
const char *http_peer_cn(struct evhttp_request *req, char *buf, size_t len);

/* The peer's address as "IP" or "unix", into buf. */
const char *http_peer(struct evhttp_request *req, char *buf, size_t len);
