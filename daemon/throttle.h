/*
 * throttle.h — aggregation of throttled refusals. A source that keeps
 * knocking after it was throttled (429) would otherwise add an audit pair,
 * and a share of an fsync, per request: a brute force against the login
 * would fill the disk with identical records. The first refusal of a period
 * is recorded in full; the ones after it are counted here and recorded as
 * one summary per flush. Bounded: when the table is full, refusals are
 * recorded one by one again.
 */
#pragma once
#include <stddef.h>
#include <time.h>

struct throttle;

/* Return: an empty table for at most cap keys, or NULL on allocation failure. */
struct throttle *throttle_new(size_t cap);
void throttle_free(struct throttle *t);

/* A throttled refusal for key, from addr (may be NULL). Return: 1 when a refusal for key was
 * recorded in this period, so this one is only counted; 0 when this one must be recorded in full
 * (it opens a period, or the table is full). */
int throttle_note(struct throttle *t, const char *key, const char *addr, time_t now);

/* What a flush hands over for one key: count refusals between first and
 * last that were counted and not recorded. Strings valid during the call. */
struct throttle_sum {
	const char *key, *addr;
	unsigned long count;
	time_t first, last;
};
typedef void (*throttle_fn)(void *arg, const struct throttle_sum *s);

/* Calls fn for every key with counted refusals and zeroes its count; keys
 * with nothing refused for idle seconds are forgotten (their next refusal
 * opens a new period). idle 0 forgets every key (at shutdown). */
void throttle_flush(struct throttle *t, time_t now, time_t idle, throttle_fn fn, void *arg);
