/*
 * limit.c — the counter table: open addressing on an FNV-1a hash of the key.
 * A slot whose window has ended is free for any key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"

#define LIMIT_SLOTS 8192

struct counter {
	char key[LIMIT_KEY_MAX];
	time_t start, end;
	int count;
};

struct limits {
	struct counter slots[LIMIT_SLOTS];
};

struct limits *limits_new(void)
{
	return calloc(1, sizeof(struct limits));
}

void limits_free(struct limits *l)
{
	free(l);
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The live counter for key, or NULL. */
static struct counter *find(struct limits *l, const char *key, time_t now)
{
	uint32_t i = fnv1a(key) % LIMIT_SLOTS;

	for (int probes = 0; probes < 64; probes++, i = (i + 1) % LIMIT_SLOTS) {
		struct counter *c = &l->slots[i];

		if (c->end > now && strncmp(c->key, key, LIMIT_KEY_MAX - 1) == 0)
			return c;
	}
	return NULL;
}

/* A free slot near key's home, or the oldest one there. */
static struct counter *claim(struct limits *l, const char *key, time_t now)
{
	uint32_t i = fnv1a(key) % LIMIT_SLOTS;
	struct counter *oldest = &l->slots[i];

	for (int probes = 0; probes < 64; probes++, i = (i + 1) % LIMIT_SLOTS) {
		struct counter *c = &l->slots[i];

		if (c->end <= now)
			return c;
		if (c->start < oldest->start)
			oldest = c;
	}
	return oldest;
}

int limits_wait(struct limits *l, const char *key, int max, int window, time_t now)
{
	struct counter *c = find(l, key, now);

	(void)window;
	if (c == NULL || c->count < max)
		return 0;
	return (int)(c->end - now);
}

void limits_count(struct limits *l, const char *key, int window, time_t now)
{
	struct counter *c = find(l, key, now);

	if (c == NULL) {
		c = claim(l, key, now);
		memset(c, 0, sizeof(*c));
		strncpy(c->key, key, LIMIT_KEY_MAX - 1);
		c->start = now;
		c->end = now + window;
	}
	c->count++;
}

void limits_clear(struct limits *l, const char *key)
{
	struct counter *c = find(l, key, time(NULL));

	if (c != NULL)
		c->end = 0;
}
