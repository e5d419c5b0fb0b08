/*
 * conns.h — admission of the TCP (TLS) connections of the HTTP front:
 * at most [limits] connections open, at most connections_per_address from
 * one address, and each request must arrive whole (head and body) within
 * request_seconds of its first byte (of the connection's accept, for the
 * first). A connection past its deadline is shut down: evhttp then reads an
 * end of file and frees it as any closed connection. One over a limit is
 * answered 503 and closed.
 *
 * Why here and not in evhttp: libevent 2.1 has no hook at accept and no
 * limit on connections; its read timeout restarts on every byte, so a client
 * sending one byte every 29 s (slow loris) held a connection, and its
 * descriptor, for ever.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct sockaddr_storage;
struct bufferevent;
struct conns;
struct conn;

struct conns_stats {
	unsigned long long open;                /* connections admitted and not yet closed */
	unsigned long long refused_total;       /* refused: [limits] connections reached */
	unsigned long long refused_per_address; /* refused: connections_per_address reached */
	unsigned long long cut_deadline;        /* shut: no whole request within the deadline */
};

/* The key connections_per_address counts by, of the address ss (its length:
 * IPv4 and IPv4-mapped 4 bytes, IPv6 its /64 in 8; 0 not IP), and the full
 * address as text into text. */
size_t conns_addr_key(const struct sockaddr_storage *ss, unsigned char key[16], char *text,
                      size_t textlen);

/* A table for one HTTP front, on base. Return: NULL out of memory. */
struct conns *conns_new(struct event_base *base);

/* Sets the limits (at start and on reload; open connections are kept).
 * max and per_addr >= 1, seconds >= 1. */
void conns_set_limits(struct conns *t, int max, int per_addr, int seconds);

/* The owner is done with t (the front is freed): what the log held back is
 * written, and the owner's reference dropped. NULL: nothing. */
void conns_close(struct conns *t);

/* Drops a reference: the table is freed once its last connection is
 * (finalizers of freed bufferevents may run after the front is gone). */
void conns_unref(struct conns *t);

/* Counters for GET /metrics. */
struct conns_stats conns_stats(const struct conns *t);

/* A new connection on bev, whose descriptor evhttp sets right after this
 * call: its address is checked on the loop's next turn and its first
 * request's deadline starts then. One over a limit is not counted: its first
 * request is to be answered 503 (conn_over_limit), and it is shut if none
 * comes within 5 s.
 * Return: NULL out of memory (the caller refuses the connection). The
 * caller frees it with conn_free when bev's SSL is freed. */
struct conn *conn_new(struct conns *t, struct bufferevent *bev);

/* True when c was refused at a limit: answer its request 503 and close. */
bool conn_over_limit(const struct conn *c);

/* Leaves the table and frees c. NULL: nothing. */
void conn_free(struct conn *c);

/* A request's first bytes arrived: its deadline starts (unless running). */
void conn_request_begins(struct conn *c);

/* The request arrived whole, or is trusted to take longer (an admin's
 * import, whose body may be 32 MiB): no deadline until the next begins.
 * The read timeout of evhttp still bounds each pause. NULL: nothing. */
void conn_request_arrived(struct conn *c);
