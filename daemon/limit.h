/*
 * limit.h — fixed-window counters for abuse limits (failed logins per
 * operator and per address, resets per user). Keyed by a string, bounded;
 * when full, the counter with the fewest counts is forgotten first.
 */
#pragma once
#include <stddef.h>
#include <time.h>

#define LIMIT_KEY_MAX 128

struct limits;

/* Return: an empty table, or NULL on allocation failure. */
struct limits *limits_new(void);
void limits_free(struct limits *l);

/* Seconds until key is below max events in its window of window seconds;
 * 0 when it may act now. Counts nothing. */
int limits_wait(struct limits *l, const char *key, int max, int window, time_t now);

/* Counts one event for key (starting a window of window seconds if none runs). */
void limits_count(struct limits *l, const char *key, int window, time_t now);

/* Forgets key's count (e.g. after a successful login). */
void limits_clear(struct limits *l, const char *key);

/* Takes back one event counted for key in its running window, if any. */
void limits_uncount(struct limits *l, const char *key);

/* The part of a client address that counts as one source, into buf: an
 * IPv4 address whole, an IPv6 address's /64 (one host gets a whole /64 to
 * pick addresses from), anything else (unix) as it is. */
void limits_source(const char *addr, char *buf, size_t len);
