/*
 * httpc.c — HTTP requests to ldapdeskd with libcurl. One easy handle per
 * client, reused so that paging through the log keeps its connection.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "ldapdesk/wire.h"
#include "httpc.h"

#define CONNECT_TIMEOUT_S 10
/* Give up only when nothing moves for this long... */
#define STALL_TIMEOUT_S 120
/* ... or this long for what the daemon answers only once it has gone through
 * the whole store: verify, import, report, a page of the log, a backup (a
 * 10-million-record verify takes minutes). */
#define STALL_LONG_S 3600
#define MAX_TOKEN    4096

struct httpc {
	CURL *curl;
	char *url;  /* as given, trailing '/' removed */
	char *base; /* what paths are appended to */
	char *sock; /* unix socket path or NULL */
	char errbuf[CURL_ERROR_SIZE];
};

/* The answer being read. */
struct sink {
	char *buf;
	size_t len;
	size_t size;
	size_t cap;
	bool toobig;
	long stall_s; /* the wait that applied */
};

/* The paths are ours to add: a base with one would send /v1/v1/... */
static int https_bare(const char *url, char *err, size_t errlen)
{
	if (strpbrk(url + strlen("https://"), "/?#") == NULL)
		return 0;
	snprintf(err, errlen,
	         "bad URL '%s': no path, query or fragment; use https://HOST:PORT or unix:/PATH",
	         url);
	return -1;
}

/* libcurl's own parser decides what curl would refuse only at connect time
 * (which reads as "unreachable"): a port outside 1..65535. A user or
 * password in the URL would be written into the session cache's file name. */
static int https_parts(const char *url, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *user = NULL, *port = NULL;
	CURLUcode rc = u != NULL ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;

	if (rc == CURLUE_OK && curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
	    strtol(port, NULL, 10) == 0)
		rc = CURLUE_BAD_PORT_NUMBER;
	if (rc == CURLUE_OK && curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		snprintf(err, errlen,
		         "bad URL: give no user or password in it; use https://HOST:PORT");
		rc = CURLUE_MALFORMED_INPUT;
	} else if (rc == CURLUE_BAD_PORT_NUMBER) {
		snprintf(err, errlen, "bad URL '%s': the port must be a number from 1 to 65535",
		         url);
	} else if (rc != CURLUE_OK) {
		snprintf(err, errlen, "bad URL '%s': %s; use https://HOST:PORT", url,
		         curl_url_strerror(rc));
	}
	curl_free(user);
	curl_free(port);
	curl_url_cleanup(u);
	return rc == CURLUE_OK ? 0 : -1;
}

/* Splits url into base and socket; -1 when it is neither form. */
static int parse_url(struct httpc *h, const char *url, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if ((h->url = strndup(url, n)) == NULL)
		return -1;
	for (const char *p = h->url; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(err, errlen, "bad URL: it contains blanks or control characters");
			return -1;
		}
	}
	if (strncmp(h->url, "unix:/", 6) == 0) {
		if (strlen(h->url + 5) >= sizeof sa.sun_path) {
			snprintf(err, errlen, "socket path in '%s' is too long", h->url);
			return -1;
		}
		h->sock = strdup(h->url + 5);
		h->base = strdup("http://localhost");
	} else if (strncmp(h->url, "https://", 8) == 0 && h->url[8] != '\0') {
		if (https_bare(h->url, err, errlen) != 0 || https_parts(h->url, err, errlen) != 0)
			return -1;
		h->base = strdup(h->url);
	} else {
		snprintf(err, errlen, "bad URL '%s': use https://HOST:PORT or unix:/PATH", h->url);
		return -1;
	}
	return h->base == NULL ? -1 : 0;
}

static int set_fixed_options(struct httpc *h, const char *ca)
{
	CURL *c = h->curl;
	int bad = 0;

	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	bad |= CURLE_OK !=
	       curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, h->sock != NULL ? "http" : "https");
	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_USERAGENT, "ldapdesk/" LDAPDESK_VERSION);
	if (h->sock != NULL)
		bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->sock);
	if (ca != NULL)
		bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	/* Operators' client certificates, where the daemon asks for them (mTLS). */
	if (getenv("LDAPDESK_CERT") != NULL)
		bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_SSLCERT, getenv("LDAPDESK_CERT"));
	if (getenv("LDAPDESK_KEY") != NULL)
		bad |= CURLE_OK != curl_easy_setopt(c, CURLOPT_SSLKEY, getenv("LDAPDESK_KEY"));
	return bad ? -1 : 0;
}

/* The seconds env gives (1 to 86400), or 0 when it gives none. */
static long stall_for_env(const char *env)
{
	char *end;
	long t = env != NULL ? strtol(env, &end, 10) : 0;

	return env != NULL && *env != '\0' && *end == '\0' && t >= 1 && t <= 86400 ? t : 0;
}

int httpc_new(const char *url, const char *ca, struct httpc **hp, char *err, size_t errlen)
{
	const char *wait = getenv("LDAPDESK_TIMEOUT");
	struct httpc *h;

	/* stall_for takes it only when it is right: said once, here. */
	if (wait != NULL && *wait != '\0' && stall_for_env(wait) == 0) {
		snprintf(err, errlen, "LDAPDESK_TIMEOUT must be 1 to 86400 seconds, not \"%.40s\"",
		         wait);
		return -1;
	}
	h = calloc(1, sizeof *h);
	snprintf(err, errlen, "out of memory");
	if (h == NULL)
		return -1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(h);
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	if (parse_url(h, url, err, errlen) != 0)
		goto fail;
	if ((h->curl = curl_easy_init()) == NULL || set_fixed_options(h, ca) != 0) {
		snprintf(err, errlen, "cannot set up libcurl for %s", h->url);
		goto fail;
	}
	*hp = h;
	return 0;
fail:
	httpc_free(h);
	return -1;
}

void httpc_free(struct httpc *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h->url);
	free(h->base);
	free(h->sock);
	free(h);
	curl_global_cleanup();
}

const char *httpc_url(const struct httpc *h)
{
	return h->url;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;

	if (n > s->cap - s->len) {
		s->toobig = true;
		return 0;
	}
	if (s->len + n + 1 > s->size) {
		size_t want = s->size > 0 ? s->size : 16384;
		while (want < s->len + n + 1)
			want *= 2;
		/* Not realloc: the old block may hold a token or password and
		 * must be wiped before it is freed. */
		char *buf = malloc(want);
		if (buf == NULL)
			return 0;
		if (s->buf != NULL) {
			memcpy(buf, s->buf, s->len);
			OPENSSL_cleanse(s->buf, s->len);
			free(s->buf);
		}
		s->buf = buf;
		s->size = want;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

static int xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	const struct httpc_req *rq = arg;

	(void)dltotal;
	(void)dlnow;
	if (ultotal > 0)
		rq->progress(rq->progress_arg, (long long)ulnow, (long long)ultotal);
	return 0;
}

/* Request headers; the bearer line is built on the stack and wiped. */
static struct curl_slist *make_headers(const struct httpc_req *rq)
{
	struct curl_slist *l = NULL, *t;
	char line[MAX_TOKEN + 32];

	/* curl asks for "100 Continue" before any body over 1 KiB: only an
	 * import wants it (expect_continue); other bodies are small. */
	l = curl_slist_append(l, rq->expect_continue ? "Expect: 100-continue" : "Expect:");
	if (l != NULL && strcmp(rq->method, "POST") == 0) {
		snprintf(line, sizeof line, "Content-Type: %s",
		         rq->ctype != NULL ? rq->ctype : "application/json");
		if ((t = curl_slist_append(l, line)) != NULL)
			l = t;
	}
	if (l != NULL && rq->token != NULL && strlen(rq->token) <= MAX_TOKEN) {
		snprintf(line, sizeof line, "Authorization: Bearer %s", rq->token);
		if ((t = curl_slist_append(l, line)) != NULL)
			l = t;
	}
	OPENSSL_cleanse(line, sizeof line);
	return l;
}

/* $LDAPDESK_TIMEOUT (seconds, 1 to 86400) overrides both. */
static long stall_for(const char *path)
{
	static const char *const slow[] = {"/v1/verify", "/v1/import", "/v1/report", "/v1/audit",
	                                   "/v1/backup"};
	long t = stall_for_env(getenv("LDAPDESK_TIMEOUT"));

	if (t > 0)
		return t;

	for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
		if (strncmp(path, slow[i], strlen(slow[i])) == 0)
			return STALL_LONG_S;
	return STALL_TIMEOUT_S;
}

static int set_request(struct httpc *h, const struct httpc_req *rq, struct sink *s,
                       struct curl_slist *hdrs)
{
	size_t n = strlen(h->base) + strlen(rq->path) + 1;
	char *url = malloc(n);
	int bad = 0;

	if (url == NULL)
		return -1;
	snprintf(url, n, "%s%s", h->base, rq->path);
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_URL, url);
	free(url);
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, stall_for(rq->path));
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, write_cb);
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, s);
	/* The handle is reused: progress is set or cleared on every request. */
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, rq->progress ? 0L : 1L);
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION,
	                                    rq->progress ? xferinfo_cb : NULL);
	bad |= CURLE_OK !=
	       curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, rq->progress ? (void *)rq : NULL);
	/* A change goes on a connection of its own. On one kept from an earlier
	 * request, a daemon that dies before answering makes libcurl send the
	 * request again on a new connection: twice, or (that one failing) an
	 * "unreachable" for a change the daemon had taken. */
	bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT,
	                                    strcmp(rq->method, "POST") == 0 ? 1L : 0L);
	if (strcmp(rq->method, "POST") == 0) {
		bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
		bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS,
		                                    rq->body != NULL ? rq->body : "");
		bad |=
		    CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                                 (curl_off_t)(rq->body != NULL ? rq->bodylen : 0));
	} else {
		bad |= CURLE_OK != curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	}
	return bad ? -1 : 0;
}

static enum httpc_fail classify(CURLcode rc, const struct sink *s)
{
	switch (rc) {
	case CURLE_WRITE_ERROR:
		return s->toobig ? HTTPC_TOOBIG : HTTPC_OTHER;
	case CURLE_OUT_OF_MEMORY:
		return HTTPC_OTHER;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_INITFAILED:
		return HTTPC_TLS;
	default:
		return HTTPC_NET;
	}
}

/* A TLS failure that is about our own certificate (not loaded, or not
 * taken by the daemon), not the URL or the CA. */
static bool client_cert_trouble(const char *detail)
{
	static const char *const signs[] = {"client certificate", "private key",
	                                    "certificate required", "unknown ca",
	                                    "bad certificate"};

	if (getenv("LDAPDESK_CERT") == NULL && strstr(detail, "certificate required") == NULL)
		return false;
	for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++)
		if (strcasestr(detail, signs[i]) != NULL)
			return true;
	return false;
}

/* read: a GET, which changes nothing: asking again is always safe. */
static void fail_message(const struct httpc *h, CURLcode rc, enum httpc_fail why, bool read,
                         const struct sink *s, char *err, size_t errlen)
{
	const char *detail = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(rc);

	if (why == HTTPC_TOOBIG)
		snprintf(err, errlen, "answer from %s is larger than %zu bytes", h->url, s->cap);
	else if (why == HTTPC_SLOW && read)
		snprintf(
		    err, errlen,
		    "ldapdeskd at %s took the request but sent nothing for %ld s: it may still "
		    "be working on it; a read changes nothing: try again later, or ask for "
		    "less (LDAPDESK_TIMEOUT gives it longer)",
		    h->url, s->stall_s);
	else if (why == HTTPC_SLOW)
		snprintf(
		    err, errlen,
		    "ldapdeskd at %s took the request but sent nothing for %ld s: it may still "
		    "be working on it: see 'ldapdesk health', and check with 'ldapdesk status "
		    "USER' (or an auditor's 'ldapdesk log') before trying again",
		    h->url, s->stall_s);
	else if (why == HTTPC_LOST && read)
		snprintf(
		    err, errlen,
		    "the connection to ldapdeskd at %s broke before the answer (%s): was it "
		    "restarted? A read changes nothing: see 'ldapdesk health' and run it again",
		    h->url, detail);
	else if (why == HTTPC_LOST)
		snprintf(err, errlen,
		         "the connection to ldapdeskd at %s broke after the request was sent (%s): "
		         "it may have been carried out: check with 'ldapdesk status USER' (or an "
		         "auditor's 'ldapdesk log') before trying again",
		         h->url, detail);
	else if (why == HTTPC_TLS && client_cert_trouble(detail))
		snprintf(err, errlen,
		         "TLS failure talking to %s: %s; check the client certificate and key "
		         "(LDAPDESK_CERT and LDAPDESK_KEY: PEM files, the key unencrypted, the "
		         "certificate signed by the daemon's client_ca)",
		         h->url, detail);
	else if (why == HTTPC_TLS)
		snprintf(err, errlen,
		         "TLS failure talking to %s: %s; check --url/LDAPDESK_URL and the CA "
		         "file (--ca or LDAPDESK_CA)",
		         h->url, detail);
	else if (why == HTTPC_NET && h->sock != NULL && rc == CURLE_COULDNT_CONNECT)
		snprintf(
		    err, errlen,
		    "cannot connect to ldapdeskd's socket %s: check --url/LDAPDESK_URL and that "
		    "the daemon runs and listens there",
		    h->sock);
	/* TLS 1.3: a daemon that wants a client certificate closes right after
	 * the handshake, which curl may see only as a failed send or read. */
	else if (why == HTTPC_NET && h->sock == NULL &&
	         (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR))
		snprintf(
		    err, errlen,
		    "ldapdeskd at %s closed the connection at once (%s): if it asks for client "
		    "certificates (client_ca), give yours with LDAPDESK_CERT and LDAPDESK_KEY; "
		    "else check --url/LDAPDESK_URL and that the daemon runs",
		    h->url, detail);
	else if (why == HTTPC_NET)
		snprintf(err, errlen,
		         "cannot reach ldapdeskd at %s: %s; check --url/LDAPDESK_URL and that "
		         "the daemon runs",
		         h->url, detail);
	else
		snprintf(err, errlen, "request to %s failed: %s", h->url, detail);
}

int httpc_do(struct httpc *h, const struct httpc_req *rq, struct httpc_resp *rs, char *err,
             size_t errlen)
{
	struct sink s = {.cap = rq->cap > 0 ? rq->cap : HTTPC_MAX_BODY,
	                 .stall_s = stall_for(rq->path)};
	struct curl_slist *hdrs = make_headers(rq);
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	memset(rs, 0, sizeof *rs);
	h->errbuf[0] = '\0';
	if (hdrs != NULL && set_request(h, rq, &s, hdrs) == 0)
		rc = curl_easy_perform(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	for (struct curl_slist *l = hdrs; l != NULL; l = l->next) /* the bearer token */
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(hdrs);
	if (rc == CURLE_OK && s.buf == NULL && (s.buf = calloc(1, 1)) == NULL)
		rc = CURLE_OUT_OF_MEMORY;
	if (rc != CURLE_OK) {
		long sent = 0;

		rs->why = classify(rc, &s);
		/* Timed out, or cut off, after the request went out: the daemon
		 * had it, and may have carried it out (a crash, a restart). */
		if ((rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING ||
		     rc == CURLE_RECV_ERROR || rc == CURLE_PARTIAL_FILE) &&
		    curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
		    sent > 0)
			rs->why = rc == CURLE_OPERATION_TIMEDOUT ? HTTPC_SLOW : HTTPC_LOST;
		/* TLS 1.3 refuses a client certificate after the request went out:
		 * an alert is the handshake's failure, not a lost answer. */
		if (rs->why == HTTPC_LOST && strstr(h->errbuf, " alert ") != NULL)
			rs->why = HTTPC_TLS;
		fail_message(h, rc, rs->why, rq->method != NULL && strcmp(rq->method, "GET") == 0,
		             &s, err, errlen);
		if (s.buf != NULL)
			OPENSSL_cleanse(s.buf, s.len);
		free(s.buf);
		return -1;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &rs->status);
	rs->body = s.buf;
	rs->len = s.len;
	return 0;
}

void httpc_resp_free(struct httpc_resp *rs)
{
	/* Answers may carry a token or a one-time password. */
	if (rs->body != NULL)
		OPENSSL_cleanse(rs->body, rs->len);
	free(rs->body);
	memset(rs, 0, sizeof *rs);
}

char *httpc_escape(struct httpc *h, const char *s)
{
	char *e = curl_easy_escape(h->curl, s, 0);

	if (e == NULL)
		return NULL;
	/* curl leaves "." unescaped and then drops "." and ".." segments from
	 * the path (RFC 3986 5.2.4): such a name would reach another endpoint. */
	char *copy = strcmp(e, ".") == 0    ? strdup("%2E")
	             : strcmp(e, "..") == 0 ? strdup("%2E%2E")
	                                    : strdup(e);
	curl_free(e);
	return copy;
}
