/*
 * limit.h — fixed-window counters for abuse limits (failed logins per
 * operator and per address, resets per user). Keyed by a string, bounded;
 * when full, the counter with the fewest counts is forgotten first.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* An event whose outcome is not known yet (a login at the directory):
 * pending in key's window until limits_settle, not counted by limits_wait.
 * Return: a token naming the window. */
uint64_t limits_reserve(struct limits *l, const char *key, int window, time_t now);

/* Settles a reservation: counted (counts) or dropped. One whose window has
 * ended or was cleared meanwhile is counted in the window running now. */
void limits_settle(struct limits *l, const char *key, uint64_t token, bool counts, int window,
                   time_t now);

/* key's events counted and pending in its running window. */
int limits_load(struct limits *l, const char *key, time_t now);

/* The part of a client address that counts as one source, into buf: an
 * IPv4 address whole, an IPv6 address's /64 (one host gets a whole /64 to
 * pick addresses from), anything else (unix) as it is. */
void limits_source(const char *addr, char *buf, size_t len);
