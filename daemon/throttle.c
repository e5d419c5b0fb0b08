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

/* Kinds of key (anon-addr, login-user, login-addr, refused-op), with room. */
#define THROTTLE_KINDS 8

struct throttle {
	size_t n, cap;
	struct throttle_entry *e;
	/* Keys past cap, counted by kind (throttle.h). */
	size_t n_over;
	struct throttle_entry over[THROTTLE_KINDS];
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

static struct throttle_entry *find(struct throttle_entry *e, size_t n, const char *key, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(e[i].key, key, len) == 0 && e[i].key[len] == '\0')
			return &e[i];
	return NULL;
}

static int counted(struct throttle_entry *e, time_t now)
{
	if (e->count++ == 0)
		e->first = now;
	e->last = now;
	return 1;
}

static int opened(struct throttle_entry *e, const char *key, size_t len, const char *addr,
                  time_t now)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, len);
	snprintf(e->addr, sizeof(e->addr), "%s", addr != NULL ? addr : "");
	e->last = now;
	return 0;
}

int throttle_note(struct throttle *t, const char *key, const char *addr, time_t now)
{
	size_t len = strlen(key), kind = strcspn(key, ":");
	struct throttle_entry *e;

	/* A key too long for an entry (none is) is counted by its kind. */
	if (len < sizeof(e->key)) {
		if ((e = find(t->e, t->n, key, len)) != NULL)
			return counted(e, now);
		if (t->n < t->cap)
			return opened(&t->e[t->n++], key, len, addr, now);
	}
	if ((e = find(t->over, t->n_over, key, kind)) != NULL)
		return counted(e, now);
	if (t->n_over == THROTTLE_KINDS || kind >= sizeof(e->key))
		return 0; /* a kind unheard of: recorded in full */
	return opened(&t->over[t->n_over++], key, kind, NULL, now);
}

static void flush_entries(struct throttle_entry *es, size_t *n, bool overflow, time_t now,
                          time_t idle, throttle_fn fn, void *arg)
{
	for (size_t i = 0; i < *n;) {
		struct throttle_entry *e = &es[i];

		if (e->count > 0) {
			struct throttle_sum s = {e->key,   e->addr[0] != '\0' ? e->addr : NULL,
			                         e->count, e->first,
			                         e->last,  overflow};

			fn(arg, &s);
			e->count = 0;
		}
		if (idle == 0 || now - e->last >= idle)
			*e = es[--*n]; /* i now holds the one moved in: look at it next */
		else
			i++;
	}
}

void throttle_flush(struct throttle *t, time_t now, time_t idle, throttle_fn fn, void *arg)
{
	flush_entries(t->e, &t->n, false, now, idle, fn, arg);
	flush_entries(t->over, &t->n_over, true, now, idle, fn, arg);
}
