/*
 * conns.c — see conns.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conns.h"
#include "log.h"

#define CONNS_BUCKETS 256
/* A refused or cut connection is logged at most once per this many seconds
 * per reason, with the count of those not logged: a flood cannot fill the
 * journal. */
#define CONNS_QUIET_S 10
/* A connection over a limit gets this long to send its first request, which
 * is answered 503 (a client then says why, instead of a failed handshake);
 * one that sends none is shut. */
#define CONNS_OVER_S 5
/* At most this many of them wait for that at once; more are shut at once,
 * unanswered: each holds a descriptor meanwhile, and a flood must not spend
 * the spare ones (FDS_SPARE) the directory pool, binds and the audit need. */
#define CONNS_OVER_MAX 64

enum { NOTE_TOTAL, NOTE_PER_ADDRESS, NOTE_DEADLINE, NOTE_KINDS };

/* The connections open from one address. */
struct peer {
	struct peer *next;
	unsigned char key[16]; /* IPv4 in the first 4 bytes, else IPv6's /64 in 8 */
	unsigned char len;
	int open;
};

struct conns {
	struct event_base *base;
	unsigned refs; /* the owner's, and one per connection */
	int max, per_addr, seconds;
	int open;
	int over; /* connections refused at a limit, waiting to be answered 503 */
	struct peer *buckets[CONNS_BUCKETS];
	struct conns_stats stats;
	struct {
		time_t last;
		unsigned long long held; /* not logged since last */
		const char *what;        /* the message they share */
	} quiet[NOTE_KINDS];
	struct event *flush; /* logs what was held, CONNS_QUIET_S after */
};

struct conn {
	struct conns *t;
	struct bufferevent *bev; /* not ours: its SSL owns this struct */
	struct event *timer;     /* the admission check, then the deadline */
	struct peer *peer;       /* NULL until admitted */
	bool admitted, armed;
	bool over; /* refused at a limit: its request is answered 503 */
	char addr[INET6_ADDRSTRLEN];
};

static void flush_cb(evutil_socket_t fd, short what, void *arg);

struct conns *conns_new(struct event_base *base)
{
	struct conns *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if ((t->flush = evtimer_new(base, flush_cb, t)) == NULL) {
		free(t);
		return NULL;
	}
	t->base = base;
	t->refs = 1;
	t->max = 1024;
	t->per_addr = 256;
	t->seconds = 60;
	return t;
}

void conns_set_limits(struct conns *t, int max, int per_addr, int seconds)
{
	t->max = max;
	t->per_addr = per_addr;
	t->seconds = seconds;
}

/* Logs what was held back: "N more" per reason. */
static void flush_held(struct conns *t)
{
	for (int k = 0; k < NOTE_KINDS; k++)
		if (t->quiet[k].held > 0) {
			log_warnx("%s: %llu more in the last %d s (ldapdesk_connections_* in GET "
			          "/metrics)",
			          t->quiet[k].what, t->quiet[k].held, CONNS_QUIET_S);
			t->quiet[k].held = 0;
		}
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	flush_held(arg);
}

void conns_close(struct conns *t)
{
	if (t == NULL)
		return;
	flush_held(t);
	event_free(t->flush);
	t->flush = NULL;
	conns_unref(t);
}

void conns_unref(struct conns *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	if (t->flush != NULL)
		event_free(t->flush);
	free(t);
}

struct conns_stats conns_stats(const struct conns *t)
{
	struct conns_stats s = t->stats;

	s.open = (unsigned long long)t->open;
	return s;
}

/* Logs one refused or cut connection, or counts it quietly: the first of
 * each CONNS_QUIET_S is logged, and the count of the others when the period
 * ends (and at stop), so a flood cannot fill the journal and is still told. */
static void note(struct conns *t, int kind, const char *what, const char *addr)
{
	struct timeval tv = {CONNS_QUIET_S, 0};
	time_t now = time(NULL);

	t->quiet[kind].what = what;
	if (t->quiet[kind].last != 0 && now - t->quiet[kind].last < CONNS_QUIET_S) {
		if (t->quiet[kind].held++ == 0 && t->flush != NULL &&
		    !evtimer_pending(t->flush, NULL))
			evtimer_add(t->flush, &tv);
		return;
	}
	log_warnx("%s, from %s", what, addr);
	t->quiet[kind].last = now;
}

size_t conns_addr_key(const struct sockaddr_storage *ss, unsigned char key[16], char *text,
                      size_t textlen)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(key, &s6->sin6_addr.s6_addr[12], 4);
		inet_ntop(AF_INET, key, text, (socklen_t)textlen);
		return 4;
	}
	/* An IPv6 host is given a /64 (RFC 7421): keyed by its full address,
	 * one host would have 2^64 addresses of 256 connections each. As the
	 * login throttle (limits_source). The text stays the full address. */
	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, text, (socklen_t)textlen);
		memcpy(key, &s6->sin6_addr, 8);
		return 8;
	}
	if (ss->ss_family == AF_INET) {
		memcpy(key, &s4->sin_addr, 4);
		inet_ntop(AF_INET, key, text, (socklen_t)textlen);
		return 4;
	}
	return 0;
}

/* fd's peer as conns_addr_key gives it; 0 when it has none. */
static size_t peer_key(int fd, unsigned char key[16], char *text, size_t textlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	return conns_addr_key(&ss, key, text, textlen);
}

static struct peer **peer_slot(struct conns *t, const unsigned char *key, size_t len)
{
	uint32_t hash = 2166136261u; /* FNV-1a */
	struct peer **p;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ key[i]) * 16777619u;
	for (p = &t->buckets[hash % CONNS_BUCKETS]; *p != NULL; p = &(*p)->next)
		if ((*p)->len == len && memcmp((*p)->key, key, len) == 0)
			break;
	return p;
}

/* Counts c in as from its peer's address. Return: false (not counted) when
 * a limit is reached or out of memory. */
static bool admit(struct conn *c, const unsigned char *key, size_t len)
{
	struct conns *t = c->t;
	struct peer **p = peer_slot(t, key, len);

	if (t->open >= t->max) {
		t->stats.refused_total++;
		note(t, NOTE_TOTAL,
		     "refused a connection ([limits] connections reached: raise it, or find the "
		     "clients holding them)",
		     c->addr);
		return false;
	}
	if (*p != NULL && (*p)->open >= t->per_addr) {
		t->stats.refused_per_address++;
		note(t, NOTE_PER_ADDRESS,
		     "refused a connection ([limits] connections_per_address reached: raise it if "
		     "clients share one address (NAT, a proxy), or find the client holding them)",
		     c->addr);
		return false;
	}
	if (*p == NULL) {
		if ((*p = calloc(1, sizeof(**p))) == NULL)
			return false;
		memcpy((*p)->key, key, len);
		(*p)->len = (unsigned char)len;
	}
	(*p)->open++;
	t->open++;
	c->peer = *p;
	c->admitted = true;
	return true;
}

static void leave(struct conn *c)
{
	struct conns *t = c->t;
	struct peer **p;

	if (c->over)
		t->over--;
	if (!c->admitted)
		return;
	t->open--;
	if (--c->peer->open > 0)
		return;
	p = peer_slot(t, c->peer->key, c->peer->len);
	*p = c->peer->next;
	free(c->peer);
}

static void shut(struct conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void arm(struct conn *c, int seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(c->timer, &tv);
	c->armed = true;
}

/* The deadline passed. A reply still being written holds the next request
 * back (evhttp parses it only then): the write timeout bounds that, and the
 * request gets its time again. */
static void deadline(struct conn *c)
{
	c->armed = false;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		arm(c, c->t->seconds);
		return;
	}
	if (c->over) {
		shut(c);
		return;
	}
	c->t->stats.cut_deadline++;
	note(c->t, NOTE_DEADLINE,
	     "closed a connection that sent no whole request within [limits] request_seconds",
	     c->addr);
	shut(c);
}

/* First run: the descriptor is set; the peer is checked against the limits
 * and the first request's deadline starts. Later runs: the deadline. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	unsigned char key[16];
	size_t len;

	(void)fd, (void)what;
	if (c->admitted || c->over) {
		deadline(c);
		return;
	}
	len = peer_key(bufferevent_getfd(c->bev), key, c->addr, sizeof(c->addr));
	if (len == 0) {
		shut(c);
		return;
	}
	if (!admit(c, key, len)) {
		if (c->t->over >= CONNS_OVER_MAX) {
			shut(c);
			return;
		}
		c->over = true;
		c->t->over++;
		arm(c, CONNS_OVER_S < c->t->seconds ? CONNS_OVER_S : c->t->seconds);
		return;
	}
	arm(c, c->t->seconds);
}

struct conn *conn_new(struct conns *t, struct bufferevent *bev)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct timeval now = {0, 0};

	if (c == NULL)
		return NULL;
	c->t = t;
	c->bev = bev;
	strcpy(c->addr, "?");
	if ((c->timer = evtimer_new(t->base, timer_cb, c)) == NULL ||
	    evtimer_add(c->timer, &now) == -1) {
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return NULL;
	}
	t->refs++;
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	event_free(c->timer);
	leave(c);
	conns_unref(c->t);
	free(c);
}

void conn_request_begins(struct conn *c)
{
	if (c != NULL && c->admitted && !c->armed)
		arm(c, c->t->seconds);
}

bool conn_over_limit(const struct conn *c)
{
	return c != NULL && c->over;
}

void conn_request_arrived(struct conn *c)
{
	if (c != NULL && c->admitted && c->armed) {
		evtimer_del(c->timer);
		c->armed = false;
	}
}
