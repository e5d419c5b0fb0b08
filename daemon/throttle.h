/*
 * throttle.h — aggregation of throttled refusals. A source that keeps
 * knocking after it was throttled (429) would otherwise add an audit pair,
 * and a share of an fsync, per request: a brute force against the login
 * would fill the disk with identical records. The first refusal of a period
 * is recorded in full; the ones after it are counted here and recorded as
 * one summary per flush. Bounded: when the table is full, a key not in it
 * is counted under its kind alone (the key up to its ':'), one entry per
 * kind beside the table: its first refusal of a period recorded in full,
 * the rest summed as "from sources past the table". Recording each one in
 * full then let anyone holding the table with cap sources make the store
 * grow by a pair per request from any other.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct throttle;

/* Return: an empty table for at most cap keys, or NULL on allocation failure. */
struct throttle *throttle_new(size_t cap);
void throttle_free(struct throttle *t);

/* A throttled refusal for key, from addr (may be NULL). Return: 1 when a refusal for key (or,
 * the table full, for its kind) was recorded in this period, so this one is only counted; 0
 * when this one must be recorded in full (it opens a period). */
int throttle_note(struct throttle *t, const char *key, const char *addr, time_t now);

/* What a flush hands over for one key: count refusals between first and
 * last that were counted and not recorded. Strings valid during the call. */
struct throttle_sum {
	const char *key, *addr; /* overflow: the kind alone, addr NULL */
	unsigned long count;
	time_t first, last;
	bool overflow; /* counted for keys past the table's cap */
};
typedef void (*throttle_fn)(void *arg, const struct throttle_sum *s);

/* Calls fn for every key with counted refusals and zeroes its count; keys
 * with nothing refused for idle seconds are forgotten (their next refusal
 * opens a new period). idle 0 forgets every key (at shutdown). */
void throttle_flush(struct throttle *t, time_t now, time_t idle, throttle_fn fn, void *arg);
