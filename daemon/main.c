/*
 * main.c — ldapdeskd: options, start-up, signals. Everything else lives in
 * the core library so the tests can link it.
 */
#include <errno.h>
#include <grp.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "actions.h"
#include "api.h"
#include "audit.h"
#include "config.h"
#include "dir.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "ldapdesk/wire.h"

struct daemon {
	struct config *conf;
	struct event_base *base;
	struct audit *audit;
	struct dir *dir;
	struct sessions *sessions;
	struct actions *actions;
	struct api *api;
	struct http *http;
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: ldapdeskd -c FILE [-f] [-n] [-v]\n"
	            "  -c FILE  configuration file (INI; see conf/ldapdeskd.conf.example)\n"
	            "  -f       stay in the foreground (the default; kept for service files)\n"
	            "  -n       check the configuration, print \"configuration OK\" and exit\n"
	            "  -v       verbose: debug messages\n"
	            "  -V       print the version\n");
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopexit(d->base, NULL);
}

static void drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		fatalx("[server] user: no such user %s", user);
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
}

/* Attempts left pending by a crash: the outcome cannot be known without
 * reading the directory, so they are closed as failed with a note saying so. */
static int recover_row(void *arg, json_t *row)
{
	struct daemon *d = arg;
	char err[256];
	json_int_t id = json_integer_value(json_object_get(row, "id"));

	if (audit_finish(d->audit, id, "failed",
	                 "recovered at start-up: the daemon stopped before the outcome was "
	                 "recorded; check the directory",
	                 err, sizeof(err)) == -1)
		log_warnx("audit: cannot close pending attempt %lld: %s", (long long)id, err);
	else
		log_warnx("audit: closed attempt %lld left pending by an earlier stop",
		          (long long)id);
	return 0;
}

static void daemon_start(struct daemon *d)
{
	char err[512];

	evthread_use_pthreads();
	d->base = event_base_new();
	if (d->base == NULL)
		fatalx("cannot create the event loop");
	if (audit_open(d->conf->database, &d->audit, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (audit_pending(d->audit, recover_row, d, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (dir_new(d->base, d->conf, &d->dir, err, sizeof(err)) == -1)
		fatalx("%s", err);
	d->sessions = session_store_new();
	d->actions = actions_new(d->conf, d->dir, d->audit, d->sessions);
	d->api = api_new(d->conf, d->actions, d->sessions, d->audit, d->dir);
	if (d->sessions == NULL || d->actions == NULL || d->api == NULL)
		fatalx("out of memory");
	if (http_new(d->base, d->conf, api_handle, d->api, &d->http, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (d->conf->user != NULL)
		drop_privileges(d->conf->user);
}

static void daemon_stop(struct daemon *d)
{
	http_free(d->http);
	dir_free(d->dir);
	api_free(d->api);
	actions_free(d->actions);
	session_store_free(d->sessions);
	audit_close(d->audit);
	event_base_free(d->base);
	config_free(d->conf);
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	const char *path = NULL;
	bool check = false, verbose = false;
	struct event *sigterm, *sigint;
	char err[512];
	int ch;

	while ((ch = getopt(argc, argv, "c:fnvVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			break;
		case 'n':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("ldapdeskd %s\n", LDAPDESK_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	setlocale(LC_ALL, "C.UTF-8");
	log_init(verbose);
	if (config_load(path, &d.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "ldapdeskd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		config_free(d.conf);
		return 0;
	}
	if (d.conf->timezone != NULL)
		setenv("TZ", d.conf->timezone, 1);
	tzset();
	signal(SIGPIPE, SIG_IGN);
	daemon_start(&d);
	sigterm = evsignal_new(d.base, SIGTERM, signal_cb, &d);
	sigint = evsignal_new(d.base, SIGINT, signal_cb, &d);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("ldapdeskd %s started", LDAPDESK_VERSION);
	event_base_dispatch(d.base);
	event_free(sigterm);
	event_free(sigint);
	daemon_stop(&d);
	return 0;
}
