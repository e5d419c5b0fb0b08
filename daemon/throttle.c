/*
 * throttle.c — aggregation of throttled refusals (see throttle.h).
 */
#include "throttle.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"

struct throttle_entry {
	char key[LIMIT_KEY_MAX];
	char addr[64];
	unsigned long count; /* counted since the last flush, not recorded */
	time_t first;        /* first counted since the last flush */
	time_t last;         /* latest refusal, recorded or counted */
};

struct throttle {
	size_t n, cap;
	struct throttle_entry *e;
};

struct throttle *throttle_new(size_t cap)
{
	struct throttle *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->e = calloc(cap, sizeof(*t->e))) == NULL) {
		free(t);
		return NULL;
	}
	t->cap = cap;
	return t;
}

void throttle_free(struct throttle *t)
{
	if (t != NULL)
		free(t->e);
	free(t);
}

static struct throttle_entry *find(struct throttle *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].key, key) == 0)
			return &t->e[i];
	return NULL;
}

int throttle_note(struct throttle *t, const char *key, const char *addr, time_t now)
{
	struct throttle_entry *e = find(t, key);

	if (e != NULL) {
		if (e->count++ == 0)
			e->first = now;
		e->last = now;
		return 1;
	}
	if (t->n == t->cap || strlen(key) >= sizeof(e->key))
		return 0;
	e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->addr, sizeof(e->addr), "%s", addr != NULL ? addr : "");
	e->last = now;
	return 0;
}

void throttle_flush(struct throttle *t, time_t now, time_t idle, throttle_fn fn, void *arg)
{
	for (size_t i = 0; i < t->n;) {
		struct throttle_entry *e = &t->e[i];

		if (e->count > 0) {
			struct throttle_sum s = {e->key, e->addr[0] != '\0' ? e->addr : NULL,
			                         e->count, e->first, e->last};

			fn(arg, &s);
			e->count = 0;
		}
		if (idle == 0 || now - e->last >= idle)
			*e = t->e[--t->n]; /* i now holds the one moved in: look at it next */
		else
			i++;
	}
}
