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

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conns.h"
#include "log.h"

#define CONNS_BUCKETS 256
/* A refused or cut connection is logged at most once per this many seconds
 * per reason, with the count of those not logged: a flood cannot fill the
 * journal. */
#define CONNS_QUIET_S 10

enum { NOTE_TOTAL, NOTE_PER_ADDRESS, NOTE_DEADLINE, NOTE_KINDS };

/* The connections open from one address. */
struct peer {
	struct peer *next;
	unsigned char key[16]; /* IPv4 in the first 4 bytes, else IPv6 */
	unsigned char len;
	int open;
};

struct conns {
	struct event_base *base;
	unsigned refs; /* the owner's, and one per connection */
	int max, per_addr, seconds;
	int open;
	struct peer *buckets[CONNS_BUCKETS];
	struct conns_stats stats;
	struct {
		time_t last;
		unsigned long long held; /* not logged since last */
	} quiet[NOTE_KINDS];
};

struct conn {
	struct conns *t;
	struct bufferevent *bev; /* not ours: its SSL owns this struct */
	struct event *timer;     /* the admission check, then the deadline */
	struct peer *peer;       /* NULL until admitted */
	bool admitted, armed;
	char addr[INET6_ADDRSTRLEN];
};

struct conns *conns_new(struct event_base *base)
{
	struct conns *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
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

void conns_unref(struct conns *t)
{
	if (t != NULL && --t->refs == 0)
		free(t);
}

struct conns_stats conns_stats(const struct conns *t)
{
	struct conns_stats s = t->stats;

	s.open = (unsigned long long)t->open;
	return s;
}

/* Logs one refused or cut connection, or counts it quietly (CONNS_QUIET_S). */
static void note(struct conns *t, int kind, const char *what, const char *addr)
{
	time_t now = time(NULL);

	if (t->quiet[kind].last != 0 && now - t->quiet[kind].last < CONNS_QUIET_S) {
		t->quiet[kind].held++;
		return;
	}
	if (t->quiet[kind].held > 0)
		log_warnx("%s %s (%llu more since the last such message)", what, addr,
		          t->quiet[kind].held);
	else
		log_warnx("%s %s", what, addr);
	t->quiet[kind].last = now;
	t->quiet[kind].held = 0;
}

/* The address of fd's peer as a key (IPv4-mapped IPv6 as IPv4) and as text.
 * Return: the key's length, 0 when there is none (not IP). */
static size_t peer_key(int fd, unsigned char key[16], char *text, size_t textlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(key, &s6->sin6_addr.s6_addr[12], 4);
		inet_ntop(AF_INET, key, text, (socklen_t)textlen);
		return 4;
	}
	if (ss.ss_family == AF_INET6) {
		memcpy(key, &s6->sin6_addr, 16);
		inet_ntop(AF_INET6, key, text, (socklen_t)textlen);
		return 16;
	}
	if (ss.ss_family == AF_INET) {
		memcpy(key, &s4->sin_addr, 4);
		inet_ntop(AF_INET, key, text, (socklen_t)textlen);
		return 4;
	}
	return 0;
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
		     "client holding them) from",
		     c->addr);
		return false;
	}
	if (*p != NULL && (*p)->open >= t->per_addr) {
		t->stats.refused_per_address++;
		note(t, NOTE_PER_ADDRESS,
		     "refused a connection ([limits] connections_per_address reached) from",
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

static void arm(struct conn *c)
{
	struct timeval tv = {c->t->seconds, 0};

	evtimer_add(c->timer, &tv);
	c->armed = true;
}

/* First run: the descriptor is set; the peer is checked against the limits
 * and the first request's deadline starts. Later runs: the deadline. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	unsigned char key[16];
	size_t len;

	(void)fd, (void)what;
	if (c->admitted) {
		c->t->stats.cut_deadline++;
		note(c->t, NOTE_DEADLINE,
		     "closed a connection that sent no whole request within "
		     "[limits] request_seconds, from",
		     c->addr);
		c->armed = false;
		shut(c);
		return;
	}
	len = peer_key(bufferevent_getfd(c->bev), key, c->addr, sizeof(c->addr));
	if (len == 0 || !admit(c, key, len)) {
		shut(c);
		return;
	}
	arm(c);
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
		arm(c);
}

void conn_request_arrived(struct conn *c)
{
	if (c != NULL && c->admitted && c->armed) {
		evtimer_del(c->timer);
		c->armed = false;
	}
}
