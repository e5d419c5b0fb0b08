/*
 * limit.c — the counter table: open addressing on an FNV-1a hash of the key,
 * seeded at random per process so that nobody can choose keys that crowd a
 * victim's counter. A slot whose window has ended is free for any key; when
 * none is, the live counter with the fewest counts gives way (a flood of
 * one-failure keys cannot push out a counter that is about to throttle).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ldapdesk/ascii.h"
#include "limit.h"

#define LIMIT_SLOTS 8192

struct counter {
	char key[LIMIT_KEY_MAX];
	time_t start, end;
	int count;
	int pending;     /* limits_reserve's, not yet settled */
	uint64_t serial; /* which window this is: limits_reserve's token */
};

struct limits {
	uint32_t seed;
	uint64_t serial; /* the last window opened */
	struct counter slots[LIMIT_SLOTS];
};

struct limits *limits_new(void)
{
	struct limits *l = calloc(1, sizeof(struct limits));

	if (l != NULL && RAND_bytes((unsigned char *)&l->seed, sizeof(l->seed)) != 1) {
		free(l);
		return NULL;
	}
	return l;
}

void limits_free(struct limits *l)
{
	free(l);
}

static uint32_t fnv1a(const struct limits *l, const char *s)
{
	return ascii_fnv1a(s, 2166136261u ^ l->seed, false);
}

/* The live counter for key, or NULL. */
static struct counter *find(struct limits *l, const char *key, time_t now)
{
	uint32_t i = fnv1a(l, key) % LIMIT_SLOTS;

	for (int probes = 0; probes < 64; probes++, i = (i + 1) % LIMIT_SLOTS) {
		struct counter *c = &l->slots[i];

		if (c->end > now && strncmp(c->key, key, LIMIT_KEY_MAX - 1) == 0)
			return c;
	}
	return NULL;
}

/* A free slot near key's home, or the one there with the fewest counts
 * (the oldest of those). */
static struct counter *claim(struct limits *l, const char *key, time_t now)
{
	uint32_t i = fnv1a(l, key) % LIMIT_SLOTS;
	struct counter *least = &l->slots[i];

	for (int probes = 0; probes < 64; probes++, i = (i + 1) % LIMIT_SLOTS) {
		struct counter *c = &l->slots[i];

		if (c->end <= now)
			return c;
		if (c->count < least->count ||
		    (c->count == least->count && c->start < least->start))
			least = c;
	}
	return least;
}

int limits_wait(struct limits *l, const char *key, int max, int window, time_t now)
{
	struct counter *c = find(l, key, now);

	(void)window;
	if (c == NULL || c->count < max)
		return 0;
	return (int)(c->end - now);
}

/* key's live counter, opened (a window of window seconds) if none runs. */
static struct counter *live(struct limits *l, const char *key, int window, time_t now)
{
	struct counter *c = find(l, key, now);

	if (c == NULL) {
		c = claim(l, key, now);
		memset(c, 0, sizeof(*c));
		strncpy(c->key, key, LIMIT_KEY_MAX - 1);
		c->start = now;
		c->end = now + window;
		c->serial = ++l->serial;
	}
	return c;
}

void limits_count(struct limits *l, const char *key, int window, time_t now)
{
	live(l, key, window, now)->count++;
}

uint64_t limits_reserve(struct limits *l, const char *key, int window, time_t now)
{
	struct counter *c = live(l, key, window, now);

	c->pending++;
	return c->serial;
}

void limits_settle(struct limits *l, const char *key, uint64_t token, bool counts, int window,
                   time_t now)
{
	struct counter *c = find(l, key, now);

	if (c != NULL && c->serial == token && c->pending > 0)
		c->pending--;
	else
		c = NULL; /* its window ended or was cleared: counted in the one running */
	if (counts)
		(c != NULL ? c : live(l, key, window, now))->count++;
}

int limits_load(struct limits *l, const char *key, time_t now)
{
	struct counter *c = find(l, key, now);

	return c != NULL ? c->count + c->pending : 0;
}

void limits_clear(struct limits *l, const char *key)
{
	struct counter *c = find(l, key, time(NULL));

	if (c != NULL)
		c->end = 0;
}

void limits_source(const char *addr, char *buf, size_t len)
{
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];

	if (addr != NULL && inet_pton(AF_INET6, addr, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
		memset(a6.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) != NULL) {
			snprintf(buf, len, "%s/64", text);
			return;
		}
	}
	snprintf(buf, len, "%s", addr != NULL ? addr : "-");
}
