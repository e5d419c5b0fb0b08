/*
 * httpc.h — the client's one way to talk to ldapdeskd: a libcurl handle for
 * one server (https://HOST:PORT, or unix:/PATH spoken as plain HTTP), peer and
 * host verification always on, answers read into a bounded buffer.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Largest answer body read (a page of the audit log, a report). */
#define HTTPC_MAX_BODY ((size_t)64 * 1024 * 1024)

struct httpc;

/* Why httpc_do got no HTTP answer. */
enum httpc_fail {
	HTTPC_NET = 1, /* connect, resolve, timeout: daemon unreachable */
	HTTPC_TLS,     /* handshake or certificate verification */
	HTTPC_TOOBIG,  /* body larger than the request's cap */
	HTTPC_SLOW,    /* sent, but no answer within the wait (the daemon may still work) */
	HTTPC_LOST,    /* sent, but the connection broke before the answer (it may be done) */
	HTTPC_OTHER,   /* out of memory, bad option */
};

struct httpc_req {
	const char *method; /* "GET" or "POST" */
	const char *path;   /* starts with '/', already percent-encoded */
	const char *token;  /* bearer token; NULL = no Authorization header */
	const char *ctype;  /* POST body type; NULL = application/json */
	const char *body;   /* POST body, borrowed; NULL = empty */
	size_t bodylen;
	size_t cap; /* body cap; 0 = HTTPC_MAX_BODY */
	/* Called as the body goes out (bytes sent, bytes in all); NULL = quiet. */
	void (*progress)(void *arg, long long sent, long long total);
	void *progress_arg;
	/* Send "Expect: 100-continue" and wait for the go-ahead before a large
	 * body: the daemon refuses an import with a bad session before taking
	 * it, which a body already on its way would meet as a broken pipe. */
	bool expect_continue;
};

struct httpc_resp {
	long status;         /* HTTP status */
	char *body;          /* NUL-terminated, owned; free with httpc_resp_free */
	size_t len;          /* bytes in body, without the NUL */
	enum httpc_fail why; /* set when httpc_do returns -1 */
};

/* Checks url (https://HOST[:PORT] or unix:/PATH) and sets up a handle; ca may
 * be NULL (system store). Return: 0 with *hp set, or -1 with err set. */
int httpc_new(const char *url, const char *ca, struct httpc **hp, char *err, size_t errlen);

/* Frees h; NULL is fine. */
void httpc_free(struct httpc *h);

/* The URL as given, for messages. Borrowed from h. */
const char *httpc_url(const struct httpc *h);

/* Sends rq and reads the answer into rs (cleared first). Return: 0 when an
 * HTTP answer arrived, whatever its status; -1 with rs->why and err set (err
 * names the URL and curl's reason, never the request body). */
int httpc_do(struct httpc *h, const struct httpc_req *rq, struct httpc_resp *rs, char *err,
             size_t errlen);

/* Wipes and frees rs->body, and clears rs. */
void httpc_resp_free(struct httpc_resp *rs);

/* Percent-encodes s for a path segment or query value. Caller frees with
 * free(); NULL on ENOMEM. */
char *httpc_escape(struct httpc *h, const char *s);
