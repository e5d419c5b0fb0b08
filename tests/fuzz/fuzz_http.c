/*
 * fuzz_http.c — the HTTP front's input checks (daemon/http.c: the watcher
 * that refuses bad heads and bodies in JSON, marks refused POST bodies,
 * rewrites heads cut short) on a real evhttp server: each input is sent on a
 * new unix-socket connection, in two pieces (where: its first byte),
 * and the loop runs until the server has answered and closed or 200 turns
 * have passed. The handler answers every request that reaches it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "config.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct http *front;
static struct sockaddr_un sun;

static void handler(void *arg, struct evhttp_request *req)
{
	int code;
	const char *error, *message;

	(void)arg;
	/* As the API does with a body the front refused. */
	if (http_body_refusal(req, &code, &error, &message))
		http_reply_error(req, code, error, message);
	else
		http_reply_json(req, 200, json_object());
}

static void start(void)
{
	static struct config conf;
	static char listen[sizeof(sun.sun_path) + 8];
	const char *tmp = getenv("TMPDIR");
	char err[256];

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/fuzz-http-%d.sock",
	         tmp != NULL ? tmp : "/tmp", (int)getpid());
	sun.sun_family = AF_UNIX;
	snprintf(listen, sizeof(listen), "unix:%s", sun.sun_path);
	conf.path = "fuzz";
	conf.listen[0] = listen;
	conf.n_listen = 1;
	conf.connections = 64;
	conf.connections_per_addr = 64;
	conf.request_seconds = 5;
	base = event_base_new();
	if (base == NULL || http_new(base, &conf, handler, NULL, &front, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_http: %s\n", err);
		abort();
	}
}

/* Writes what the socket takes now; the rest is dropped (a client that
 * stopped sending). */
static void send_some(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Runs the loop until the server closes fd (read gives 0) or turns end. */
static void drain(int fd, int turns)
{
	char buf[65536];

	for (int i = 0; i < turns; i++) {
		ssize_t r;

		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			;
		if (r == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut;
	int fd;

	/* The first byte says where the request is cut in two; the rest is it. */
	if (size == 0)
		return 0;
	cut = data[0] % size;
	data++, size--;
	if (base == NULL)
		start();
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	event_base_loop(base, EVLOOP_NONBLOCK); /* accepted */
	send_some(fd, data, cut);
	drain(fd, 2);
	send_some(fd, data + cut, size - cut);
	shutdown(fd, SHUT_WR);
	drain(fd, 200);
	close(fd);
	event_base_loop(base, EVLOOP_NONBLOCK); /* the close seen */
	return 0;
}
