/*
 * test_conns.c — connection admission and request deadlines (conns.c) on
 * real loopback TCP connections driven by a real event loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conns.h"

/* A connected loopback pair: *ours (accepted, the daemon's side), *peer. */
static void tcp_pair(int *ours, int *peer)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	*peer = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(*peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*ours = accept(lfd, NULL, NULL);
	assert_true(*ours >= 0);
	close(lfd);
}

/* Runs base for ms milliseconds. */
static void run_for(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Whether the daemon's side shut the connection: the peer reads an end. */
static bool peer_sees_end(int peer)
{
	char buf[65536];
	ssize_t n;

	while ((n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return n == 0;
}

struct side {
	struct bufferevent *bev;
	struct conn *conn;
	int peer;
};

static void side_open(struct side *s, struct event_base *base, struct conns *t)
{
	int ours;

	tcp_pair(&ours, &s->peer);
	s->bev = bufferevent_socket_new(base, ours, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(s->bev);
	s->conn = conn_new(t, s->bev);
	assert_non_null(s->conn);
}

static void side_close(struct side *s)
{
	conn_free(s->conn);
	bufferevent_free(s->bev);
	close(s->peer);
}

/* connections_per_address counts an IPv6 host by its /64, as the login
 * throttle does: one host has the whole /64. IPv4-mapped is IPv4. */
static void v6(struct sockaddr_storage *ss, const char *text)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
}

static void test_ipv6_counts_by_its_64(void **state)
{
	struct sockaddr_storage a, b;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&b;
	unsigned char ka[16], kb[16];
	char ta[64], tb[64];

	(void)state;
	v6(&a, "2001:db8:1:2::1");
	v6(&b, "2001:db8:1:2:ffff:1:2:3");
	assert_int_equal(conns_addr_key(&a, ka, ta, sizeof(ta)), 8);
	assert_int_equal(conns_addr_key(&b, kb, tb, sizeof(tb)), 8);
	assert_memory_equal(ka, kb, 8);
	assert_string_equal(tb, "2001:db8:1:2:ffff:1:2:3"); /* the text is the whole address */
	v6(&b, "2001:db8:1:3::1");
	assert_int_equal(conns_addr_key(&b, kb, tb, sizeof(tb)), 8);
	assert_memory_not_equal(ka, kb, 8);
	v6(&b, "::ffff:192.0.2.7");
	assert_int_equal(conns_addr_key(&b, kb, tb, sizeof(tb)), 4);
	assert_string_equal(tb, "192.0.2.7");
	memset(&b, 0, sizeof(b));
	s4->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &s4->sin_addr), 1);
	assert_int_equal(conns_addr_key(&b, ka, ta, sizeof(ta)), 4);
	assert_memory_equal(ka, kb, 4);
	b.ss_family = AF_UNIX;
	assert_int_equal(conns_addr_key(&b, ka, ta, sizeof(ta)), 0);
}

static void test_over_a_limit_is_marked_not_counted(void **state)
{
	struct event_base *base = event_base_new();
	struct conns *t = conns_new(base);
	struct side a, b, c;

	(void)state;
	conns_set_limits(t, 2, 1, 60);
	side_open(&a, base, t);
	side_open(&b, base, t);
	run_for(base, 50); /* the admission checks run */
	assert_false(conn_over_limit(a.conn));
	assert_true(conn_over_limit(b.conn)); /* the same address: per-address limit 1 */
	assert_int_equal(conns_stats(t).open, 1);
	assert_int_equal(conns_stats(t).refused_per_address, 1);
	/* Left open, not shut at once: its request is to be answered 503. */
	assert_false(peer_sees_end(b.peer));
	side_close(&b);
	side_close(&a);
	assert_int_equal(conns_stats(t).open, 0);
	/* Once the one open is gone, the next is admitted. */
	side_open(&c, base, t);
	run_for(base, 50);
	assert_false(conn_over_limit(c.conn));
	side_close(&c);
	conns_close(t);
	event_base_free(base);
}

/* Refused connections wait to be answered 503, but only 64 at once: past
 * that they are shut unanswered (each holds a descriptor meanwhile), and
 * once one is gone the next refused one is kept again. */
static void test_refused_ones_kept_for_an_answer_are_bounded(void **state)
{
	struct event_base *base = event_base_new();
	struct conns *t = conns_new(base);
	struct side a, over[66];
	int kept = 0, shut = -1;

	(void)state;
	conns_set_limits(t, 1, 1, 60);
	side_open(&a, base, t);
	run_for(base, 50);
	for (int i = 0; i < 65; i++)
		side_open(&over[i], base, t);
	run_for(base, 100);
	assert_false(conn_over_limit(a.conn));
	/* Their checks run in no set order: count, and find the one shut. */
	for (int i = 0; i < 65; i++) {
		if (conn_over_limit(over[i].conn)) {
			kept++;
			assert_false(peer_sees_end(over[i].peer));
		} else {
			assert_int_equal(shut, -1);
			shut = i;
			assert_true(peer_sees_end(over[i].peer));
		}
	}
	assert_int_equal(kept, 64);
	assert_int_equal(conns_stats(t).refused_total, 65);
	side_close(&over[shut == 0 ? 1 : 0]); /* one kept connection goes */
	side_open(&over[65], base, t);
	run_for(base, 100);
	assert_true(conn_over_limit(over[65].conn)); /* its place is taken again */
	assert_false(peer_sees_end(over[65].peer));
	for (int i = 0; i < 66; i++)
		if (i != (shut == 0 ? 1 : 0))
			side_close(&over[i]);
	side_close(&a);
	conns_close(t);
	event_base_free(base);
}

static void test_a_request_not_whole_in_time_is_cut(void **state)
{
	struct event_base *base = event_base_new();
	struct conns *t = conns_new(base);
	struct side a;

	(void)state;
	conns_set_limits(t, 10, 10, 1);
	side_open(&a, base, t);
	run_for(base, 50);
	conn_request_arrived(a.conn); /* the first request came whole: no deadline */
	run_for(base, 1300);
	assert_false(peer_sees_end(a.peer));
	conn_request_begins(a.conn); /* the next one starts, and never ends */
	run_for(base, 1300);
	assert_true(peer_sees_end(a.peer));
	assert_int_equal(conns_stats(t).cut_deadline, 1);
	side_close(&a);
	conns_close(t);
	event_base_free(base);
}

/* A request pipelined behind a reply the client reads slowly is parsed only
 * once the reply is written: its deadline must not cut the reply. */
static void test_no_cut_while_a_reply_is_being_written(void **state)
{
	struct event_base *base = event_base_new();
	struct conns *t = conns_new(base);
	size_t big = 16 * 1024 * 1024;
	char *reply = calloc(1, big);
	struct side a;

	(void)state;
	assert_non_null(reply);
	conns_set_limits(t, 10, 10, 1);
	side_open(&a, base, t);
	run_for(base, 50);
	conn_request_arrived(a.conn);
	/* More than the kernel's buffers hold while the peer reads nothing. */
	assert_int_equal(bufferevent_write(a.bev, reply, big), 0);
	conn_request_begins(a.conn);
	run_for(base, 2500);
	assert_true(evbuffer_get_length(bufferevent_get_output(a.bev)) > 0);
	assert_int_equal(conns_stats(t).cut_deadline, 0);
	/* The peer reads it all; then the pipelined request has its time. */
	for (int i = 0; i < 2000 && evbuffer_get_length(bufferevent_get_output(a.bev)) > 0; i++) {
		char buf[65536];

		while (recv(a.peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		run_for(base, 5);
	}
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(a.bev)), 0);
	assert_int_equal(conns_stats(t).cut_deadline, 0);
	run_for(base, 2300);
	assert_int_equal(conns_stats(t).cut_deadline, 1);
	free(reply);
	side_close(&a);
	conns_close(t);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv6_counts_by_its_64),
	    cmocka_unit_test(test_over_a_limit_is_marked_not_counted),
	    cmocka_unit_test(test_refused_ones_kept_for_an_answer_are_bounded),
	    cmocka_unit_test(test_a_request_not_whole_in_time_is_cut),
	    cmocka_unit_test(test_no_cut_while_a_reply_is_being_written),
	};

	signal(SIGPIPE, SIG_IGN); /* as the daemon: a write to a shut socket is EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
