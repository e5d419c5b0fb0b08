/*
 * main.c — ldapdeskd: options, start-up, signals. Everything else lives in
 * the core library so the tests can link it.
 */
#include <errno.h>
#include <grp.h>
#include <locale.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "actions.h"
#include "api.h"
#include "audit.h"
#include "backup.h"
#include "config.h"
#include "dir.h"
#include "fds.h"
#include "http.h"
#include "seal.h"
#include "import.h"
#include "log.h"
#include "session.h"
#include "ldapdesk/wire.h"

#define LOOP_BUSY_MS 250 /* see daemon_start */

struct daemon {
	const char *path;
	/* The one in force. Requests, jobs and directory threads in flight hold
	 * the one they started under (config_ref): a reload retires the old one,
	 * freed when the last of them ends. */
	struct config *conf;
	struct event *drain_ev;
	struct event *recover_ev;
	int64_t recover_upto; /* newest attempt left pending before this start */
	int recover_left, recover_failed;
	struct timeval drain_deadline;
	bool jobs_stopped; /* at the first deadline: the running jobs were told to stop */
	bool idle_once;    /* the drain found nothing in flight at its last tick */
	struct event_base *base;
	struct audit *audit;
	struct dir *dir;
	struct sessions *sessions;
	struct actions *actions;
	struct api *api;
	struct http *http;
	struct backup *backup;
};

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ldapdeskd -c FILE [-f] [-n] [-v] | -V | -h\n"
	        "  -c, --config FILE  configuration file (INI; see conf/ldapdeskd.conf.example)\n"
	        "  -f, --foreground   stay in the foreground (the default; kept for service "
	        "files)\n"
	        "  -n, --check        check the configuration, print \"configuration OK\" and "
	        "exit\n"
	        "  -v, --verbose      debug messages\n"
	        "  -V, --version      print the version\n"
	        "  -h, --help         this help\n"
	        "Signals: SIGHUP reloads the configuration, SIGTERM stops after the requests "
	        "in flight.\n");
}

/* Stopping: no new connections; the loop ends once every request started has
 * been answered (its audit outcome written), or at the deadline. */
static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval now;
	bool late;

	(void)fd;
	(void)what;
	gettimeofday(&now, NULL);
	late = now.tv_sec > d->drain_deadline.tv_sec ||
	       (now.tv_sec == d->drain_deadline.tv_sec && now.tv_usec > d->drain_deadline.tv_usec);
	/* Jobs still running at the deadline are stopped (a write rolls
	 * back) and answered 503; they get a few seconds more to end. */
	if (late && (api_jobs(d->api) > 0 || backup_running(d->backup)) && !d->jobs_stopped) {
		struct timeval more = {5, 0};

		log_warnx("stopping %d jobs (report, verify, log, import)%s still running",
		          api_jobs(d->api), backup_running(d->backup) ? " and a backup" : "");
		api_stop_jobs(d->api);
		backup_stop(d->backup);
		d->jobs_stopped = true;
		evutil_timeradd(&now, &more, &d->drain_deadline);
		return;
	}
	/* A backup under way is waited for like a job (and stopped like one at the deadline):
	 * answered and recorded. */
	bool idle = actions_busy(d->actions) == 0 && api_jobs(d->api) == 0 &&
	            !backup_running(d->backup) && http_unsent(d->http) == 0;

	/* An answer is queued, not yet written, when its request ends: one more
	 * tick (50 ms) lets the last ones leave before the connections close. */
	if (idle && !late && !d->idle_once) {
		d->idle_once = true;
		return;
	}
	d->idle_once = idle;
	if (idle || late) {
		if (actions_busy(d->actions) != 0)
			log_warnx("stopping with %d requests unanswered", actions_busy(d->actions));
		if (http_unsent(d->http) > 0)
			log_warnx("stopping with %d replies not fully sent (slow readers)",
			          http_unsent(d->http));
		event_base_loopexit(d->base, NULL);
	}
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval every = {0, 50 * 1000}, grace;

	(void)what;
	if (d->drain_ev != NULL)
		return;
	log_info("%s: stopping after %d requests and %d jobs in flight%s",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT", actions_busy(d->actions), api_jobs(d->api),
	         backup_running(d->backup) ? ", and a backup" : "");
	http_stop_accepting(d->http);
	api_stopping(d->api);
	gettimeofday(&d->drain_deadline, NULL);
	grace.tv_sec = 2 * d->conf->timeout_ms / 1000 + 1;
	grace.tv_usec = 0;
	evutil_timeradd(&d->drain_deadline, &grace, &d->drain_deadline);
	d->drain_ev = event_new(d->base, -1, EV_PERSIST, drain_cb, d);
	event_add(d->drain_ev, &every);
}

/* What a reload cannot change without a restart, named so the log says so. */
static bool same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * Keys read once at start (listeners, the session store, the time zone, the
 * user, the pool, the audit writer) keep their running values in the new
 * configuration, so nothing reads a value the daemon does not use. Each is
 * named. (The TLS files are read again: reload_tls.)
 */
static int keep_listen(const struct config *old, struct config *new)
{
	char *copy[CONFIG_MAX_LIST] = {NULL};

	for (size_t i = 0; i < old->n_listen; i++)
		if ((copy[i] = strdup(old->listen[i])) == NULL) {
			while (i > 0)
				free(copy[--i]);
			log_warnx("reload: out of memory");
			return -1;
		}
	for (size_t i = 0; i < new->n_listen; i++)
		free(new->listen[i]);
	memcpy(new->listen, copy, old->n_listen * sizeof(copy[0]));
	new->n_listen = old->n_listen;
	return 0;
}

static void reload_keep(const struct config *old, struct config *new)
{
	static const struct {
		const char *name;
		size_t off;
	} texts[] =
	    {
	        {"[server] key_file", offsetof(struct config, key_file)},
	        {"[server] timezone", offsetof(struct config, timezone)},
	        {"[server] user", offsetof(struct config, user)},
	        {"[audit] database", offsetof(struct config, database)},
	    },
	  ints[] = {
	      {"[server] session_idle", offsetof(struct config, session_idle)},
	      {"[ldap] pool_size", offsetof(struct config, pool_size)},
	      {"[audit] commit_delay_ms", offsetof(struct config, commit_delay_ms)},
	  };
	bool listen = old->n_listen != new->n_listen;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *const *o = (char *const *)(const void *)((const char *)old + texts[i].off);
		char **n = (char **)(void *)((char *)new + texts[i].off);

		if (same_text(*o, *n))
			continue;
		log_warnx("reload: %s changed: it takes effect at the next restart", texts[i].name);
		free(*n);
		*n = *o != NULL ? strdup(*o) : NULL;
	}
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		const int *o = (const int *)(const void *)((const char *)old + ints[i].off);
		int *n = (int *)(void *)((char *)new + ints[i].off);

		if (*o != *n) {
			log_warnx("reload: %s changed: it takes effect at the next restart",
			          ints[i].name);
			*n = *o;
		}
	}
	for (size_t i = 0; !listen && i < old->n_listen; i++)
		listen = strcmp(old->listen[i], new->listen[i]) != 0;
	/* Kept too, so that a later reload compares with what is bound. */
	if (listen && keep_listen(old, new) == 0)
		log_warnx("reload: [server] listen changed: it takes effect at the next restart");
}

/* The TLS certificate, key and client CA are read again at each reload (a
 * renewed certificate needs no restart). Return: 0 with *tls to install (or
 * NULL with the running files kept in new, when this user cannot read them),
 * -1 when they are wrong (logged: the reload fails whole). */
static int reload_tls(const struct config *old, struct config *new, struct http_tls **tls)
{
	char err[512];
	char **keep[] = {&new->tls_cert, &new->tls_key, &new->client_ca};
	char *const was[] = {old->tls_cert, old->tls_key, old->client_ca};
	int rc = http_tls_load(new, tls, err, sizeof(err));

	if (rc == -1) {
		log_warnx("reload failed, keeping the running configuration: %s", err);
		return -1;
	}
	if (rc == 1) {
		log_warnx("reload: %s", err);
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
			free(*keep[i]);
			*keep[i] = was[i] != NULL ? strdup(was[i]) : NULL;
		}
	}
	return 0;
}

/* Without group_base nested groups cannot be followed: an operator whose
 * only scope comes through a group nested in a [scope.*] group is refused
 * (the scope guard finds it in one). Allowed (flat groups), never silently. */
static void warn_flat_scopes(const struct config *c, const char *path)
{
	if (c->n_scopes == 0 || c->group_base != NULL)
		return;
	log_warnx("%s: [scope.*] without [ldap] group_base: only direct members of a scope group "
	          "are scoped; an operator in a group nested in one cannot log in (its scope "
	          "cannot be told: set group_base, or keep scope groups flat)",
	          path);
}

/* Descriptors for [limits] connections and FDS_SPARE more (the directory's
 * connections, the audit store, jobs, backups): the soft limit is raised
 * towards the hard one as far as needed, and the log says when it falls
 * short (then the listeners pause on EMFILE before the limit is reached). */
static void room_for_connections(const struct config *conf)
{
	long want = (long)conf->connections + FDS_SPARE, got = fds_raise(want);

	if (got >= 0 && got < want)
		log_warnx("[limits] connections = %d needs about %ld file descriptors, and "
		          "ldapdeskd may open %ld: raise LimitNOFILE in the systemd unit (ulimit "
		          "-n), or lower connections",
		          conf->connections, want, got);
}

/* SIGHUP: parse into a new object and swap it in only if it is whole. */
static void reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config *conf, *old = d->conf;
	struct http_tls *tls = NULL;
	char err[512];

	(void)sig;
	(void)what;
	if (config_reload(d->path, d->conf, &conf, err, sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if (conf->password_kept)
		log_warnx(
		    "reload: [ldap] bind_password_file %s cannot be read as the user ldapdeskd "
		    "runs as: the password read at start stays (make the file that user's, "
		    "mode 0600, for a reload to read a new one; or restart)",
		    conf->bind_password_file);
	if (dir_config_check(conf, err, sizeof(err)) == -1 ||
	    actions_config_check(conf, err, sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the running configuration: %s", err);
		config_free(conf);
		return;
	}
	/* The backup schedule follows [audit] backup_at / backup_dir /
	 * backup_keep, checked (and the directory made) first: a reload is taken
	 * whole or not at all. A backup running now goes on. */
	if (reload_tls(d->conf, conf, &tls) == -1) {
		config_free(conf);
		return;
	}
	if (d->backup != NULL && backup_set_config(d->backup, conf, err, sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the running configuration: %s", err);
		http_tls_discard(tls);
		config_free(conf);
		return;
	}
	if (http_tls_install(d->http, tls))
		log_info("reload: the TLS certificate changed (%s): new connections get it, open "
		         "ones keep theirs",
		         conf->tls_cert);
	reload_keep(d->conf, conf);
	if (dir_link_changed(d->conf, conf)) {
		log_info("reload: the [ldap] connection settings changed: each service connection "
		         "is made again once its requests in flight are answered");
	}
	warn_flat_scopes(conf, d->path);
	d->conf = conf;
	dir_set_config(d->dir, conf);
	actions_set_config(d->actions, conf);
	api_set_config(d->api, conf);
	room_for_connections(conf);
	http_set_limits(d->http, conf);
	config_retire(old);
	log_info("configuration reloaded from %s", d->path);
}

/* Files the daemon writes after start-up, as the user it runs as: found
 * unwritable only then, the sessions would silently end at a restart and a
 * restore would give ids again. Start-up says so instead. */
static void can_write_later(const struct config *conf)
{
	const char *const files[][2] = {{conf->database, "-ids"}, {conf->key_file, ".sessions"}};
	char path[4096];
	int fd;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", files[i][0], files[i][1]);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
			fatal("%s: the daemon's user must be able to write it (and its directory)",
			      path);
		close(fd);
	}
}

/* Hands path to pw, made first if create. As root, in a directory the
 * daemon's user may write: a symbolic link planted there (to /etc/...) is
 * never followed, nor anything but a file or directory given away. */
static void give_file(const char *path, bool create, const struct passwd *pw, const char *user)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	struct stat st;

	if (fd == -1 && errno == ENOENT)
		return;
	if (fd == -1)
		fatal("%s: cannot open it to give it to %s (a symbolic link is refused)", path,
		      user);
	if (fstat(fd, &st) == -1 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) ||
	    fchown(fd, pw->pw_uid, pw->pw_gid) == -1)
		fatal("cannot give %s to %s (a regular file or directory is expected)", path, user);
	close(fd);
}

static void drop_privileges(const struct config *conf, const char *backup_dir)
{
	const char *user = conf->user;
	struct passwd *pw = getpwnam(user);
	const char *const files[][2] = {{conf->database, ""},
	                                {conf->database, "-wal"},
	                                {conf->database, "-shm"},
	                                {conf->database, "-ids"},
	                                {conf->key_file, ""},
	                                {conf->key_file, ".sessions"},
	                                /* created 0700 as root by backup_new */
	                                {backup_dir, ""}};
	char path[4096];

	if (pw == NULL)
		fatalx("[server] user: no such user %s", user);
	/* Started as that user already (systemd's User=): nothing to give away. */
	else if (geteuid() == pw->pw_uid)
		return;
	/* The audit and key files were opened as root; the daemon goes on writing them.
	 * The id mark and the saved sessions are made now if missing: the directory
	 * may be root's, where the daemon could not create them later. */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", files[i][0], files[i][1]);
		give_file(path,
		          strcmp(files[i][1], "-ids") == 0 || strcmp(files[i][1], ".sessions") == 0,
		          pw, user);
	}
	/* Unix sockets: the daemon's group may connect (0660), as the service file
	 * says. lchown: a link planted there is not followed. */
	for (size_t i = 0; i < conf->n_listen; i++)
		if (strncmp(conf->listen[i], "unix:", 5) == 0 &&
		    lchown(conf->listen[i] + 5, pw->pw_uid, pw->pw_gid) == -1)
			fatal("cannot give %s to %s", conf->listen[i] + 5, user);
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
}

/*
 * Attempts left pending by an earlier stop are resolved by reading the
 * directory (actions.c). Only those older than this start are touched: newer
 * pending attempts belong to requests in flight. A pass that could not read
 * the directory is retried.
 */
static int pending_max(void *arg, json_t *row)
{
	struct daemon *d = arg;
	int64_t id = json_integer_value(json_object_get(row, "id"));

	if (id > d->recover_upto)
		d->recover_upto = id;
	return 0;
}

/* Backups and imports touch no user: what became of one cut off by the stop
 * is read from its file, or known (an import's rows commit with its outcome). */
static bool own_attempt(const json_t *row)
{
	const char *action = json_string_value(json_object_get(row, "action"));

	return action != NULL && (strcmp(action, "backup") == 0 || strcmp(action, "import") == 0);
}

static int recover_row(void *arg, json_t *row)
{
	struct daemon *d = arg;

	if (json_integer_value(json_object_get(row, "id")) > d->recover_upto)
		return -1;
	if (own_attempt(row)) {
		int64_t id = json_integer_value(json_object_get(row, "id"));
		const char *action = json_string_value(json_object_get(row, "action"));

		int rc = strcmp(action, "backup") == 0
		             ? backup_recover(d->audit, id,
		                              json_string_value(json_object_get(row, "detail")))
		             : import_recover(d->audit, id);

		/* Not written (an import holding the write lock): the next pass. */
		if (rc == -1)
			d->recover_left++;
		return 0;
	}
	d->recover_left++;
	act_recover(d->actions, row, &d->recover_failed, ACT_RECOVERED_AT_START);
	return 0;
}

/* Holds each user a pending attempt names, until recovery resolves it. */
static int hold_row(void *arg, json_t *row)
{
	struct daemon *d = arg;

	if (json_integer_value(json_object_get(row, "id")) > d->recover_upto)
		return -1;
	if (own_attempt(row)) /* holds no user, and is not released by actions.c */
		return 0;
	actions_hold(d->actions, json_string_value(json_object_get(row, "target")));
	return 0;
}

static void recover_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval again = {30, 0};
	char err[256];

	(void)fd;
	(void)what;
	d->recover_left = 0;
	if (audit_pending(d->audit, recover_row, d, err, sizeof(err)) == -1)
		log_warnx("recovery: %s", err);
	if (d->recover_left > 0)
		evtimer_add(d->recover_ev, &again);
}

/* The audit's seal key, derived from the session key (seal.h): only a
 * process that reads the key file can seal records verify accepts. */
static void seal_start(struct daemon *d)
{
	unsigned char key[32];
	int rc = session_derive(d->sessions, SEAL_LABEL, key);

	if (rc == 0)
		rc = audit_seal(d->audit, key);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == -1)
		fatalx("cannot derive the audit's seal key (OpenSSL)");
}

/* One daemon per audit database: a second would recover the first's
 * requests in flight as if it had stopped, and take its unix sockets. The
 * lock (flock, which SQLite's fcntl locks do not touch) lasts as long as the
 * process; the descriptor is left open on purpose. */
static void lock_database(const struct config *conf)
{
	const char *database = conf->database;
	char at[CONFIG_AT_MAX];
	/* Made here if new: an empty file is a new database to SQLite. */
	int fd = open(database, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd == -1)
		fatal("%s%s: cannot create or open it (the daemon's user must be able to write it "
		      "and its directory)",
		      config_at(conf, "audit", "database", at, sizeof(at)), database);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			fatalx(
			    "%s is in use by another ldapdeskd: stop that one first (two daemons "
			    "on one audit database would both write and recover)",
			    database);
		fatal("%s: cannot lock", database);
	}
}

static void daemon_start(struct daemon *d)
{
	struct event_config *cfg;
	char err[512], at[CONFIG_AT_MAX];
	int64_t lost_from, lost_to;

	evthread_use_pthreads();
	/* The changelist folds the add/delete pairs a request makes on one fd
	 * within a loop turn into one epoll_ctl (4 per request without it). */
	cfg = event_config_new();
	if (cfg != NULL)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	d->base = cfg != NULL ? event_base_new_with_config(cfg) : NULL;
	if (cfg != NULL)
		event_config_free(cfg);
	if (d->base == NULL)
		fatalx("cannot create the event loop");
	/* Before SQLite touches it: a second daemon stops here, saying why, not
	 * later behind the first one's write lock. */
	lock_database(d->conf);
	if (audit_open(d->conf->database, &d->audit, err, sizeof(err)) == -1)
		fatalx("%s%s", config_at(d->conf, "audit", "database", at, sizeof(at)), err);
	/* The loop's own connection writes rarely (logout, four-eyes requests,
	 * expiry, recovery) and must not stall the loop for seconds behind an
	 * import's write lock: such a write fails fast and says so instead. */
	audit_set_busy_timeout(d->audit, LOOP_BUSY_MS);
	/* Before the first record this start writes: every one is sealed. */
	d->sessions = session_store_new(d->conf->key_file, d->conf->session_idle, err, sizeof(err));
	if (d->sessions == NULL)
		fatalx("%s%s", config_at(d->conf, "server", "key_file", at, sizeof(at)), err);
	seal_start(d);
	if (audit_ids_restore(d->audit, d->conf->database, &lost_from, &lost_to, err,
	                      sizeof(err)) == -1)
		fatalx("%s", err);
	if (lost_from != 0)
		log_warnx("audit: records %lld to %lld are missing from %s (restored from an older "
		          "copy?); their ids will not be given again, and the audit log says so",
		          (long long)lost_from, (long long)lost_to, d->conf->database);
	/* After the restore's declaration (it must follow the gap it names).
	 * One that cannot be written (a full disk) does not stop the start:
	 * the records are sealed all the same, and the next start declares. */
	if (audit_seal_declare(d->audit, err, sizeof(err)) == -1)
		log_warnx("audit: cannot declare the seal key yet (%s): seals are checked from "
		          "the start that can",
		          err);
	/* From its tail now on, every record is this daemon's: the writer's and
	 * the jobs' connections share the guard (audit.h). */
	if (audit_guard_start(d->audit, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (audit_pending(d->audit, pending_max, d, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (dir_new(d->base, d->conf, &d->dir, err, sizeof(err)) == -1)
		fatalx("%s", err);
	d->actions = actions_new(d->conf, d->dir, d->audit, d->sessions);
	d->api = api_new(d->conf, d->actions, d->sessions, d->audit, d->dir);
	if (d->sessions == NULL || d->actions == NULL || d->api == NULL)
		fatalx("out of memory");
	/* Before the first request: one on a user recovery must still read
	 * back would change what it reads (the listeners open below). */
	if (d->recover_upto > 0 && audit_pending(d->audit, hold_row, d, err, sizeof(err)) == -1)
		fatalx("%s", err);
	room_for_connections(d->conf);
	if (http_new(d->base, d->conf, api_handle, d->api, &d->http, err, sizeof(err)) == -1)
		fatalx("%s", err);
	http_set_gate(d->http, api_import_gate, d->api);
	http_set_allow(d->http, api_allow, d->api);
	api_set_http(d->api, d->http);
	if (backup_new(d->base, d->conf, d->audit, &d->backup, err, sizeof(err)) == -1)
		fatalx("%s%s", config_at(d->conf, "audit", "backup_dir", at, sizeof(at)), err);
	api_set_backup(d->api, d->backup);
	if (actions_expiry_start(d->actions, d->base, 10) == -1)
		fatalx("cannot start the grant expiry timer");
	if (actions_writer_start(d->actions, d->base, d->conf->database, d->conf->commit_delay_ms,
	                         err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (d->conf->user != NULL)
		drop_privileges(d->conf, backup_dir(d->backup));
	can_write_later(d->conf);
	/* Started: the saved sessions are in the table, and the file goes empty
	 * (a refused start above kept it for the next try). */
	if (session_store_started(d->sessions, err, sizeof(err)) == -1)
		fatalx("%s", err);
	dir_start(d->dir); /* the first network traffic: after the privilege drop */
	if (d->recover_upto > 0) {
		struct timeval soon = {1, 0};

		log_warnx("recovery: attempts up to %lld were left pending by an earlier stop; "
		          "reading the directory to resolve them",
		          (long long)d->recover_upto);
		d->recover_ev = evtimer_new(d->base, recover_cb, d);
		evtimer_add(d->recover_ev, &soon);
	}
}

static void daemon_stop(struct daemon *d)
{
	char err[512];

	/* Every request still waiting gets its outcome written and its reply
	 * queued while its HTTP connection and the API that counts it still
	 * exist: first what the audit writer holds, then the directory work that
	 * dir_free fails. (The loop does not run again, so a queued reply may not
	 * reach its client; the record is what counts.) */
	actions_drain(d->actions, false);
	dir_free(d->dir);
	actions_drain(d->actions, true);
	http_free(d->http);
	backup_free(d->backup);
	api_free(d->api);
	actions_free(d->actions);
	if (session_store_save(d->sessions, err, sizeof(err)) == -1)
		log_warnx("session: cannot save the sessions for the next start (operators will "
		          "log in again): %s",
		          err);
	session_store_free(d->sessions);
	audit_close(d->audit);
	if (d->drain_ev != NULL)
		event_free(d->drain_ev);
	if (d->recover_ev != NULL)
		event_free(d->recover_ev);
	event_base_free(d->base);
	config_retire(d->conf);
}

/* A core file would hold the bind password, the session key and passwords
 * in flight. Non-dumpable also keeps other processes of the same user from
 * reading its memory; not under the sanitizers, whose leak check stops the
 * process's threads with ptrace, which a non-dumpable process refuses. */
static void no_core_dumps(void)
{
	struct rlimit none = {0, 0};

	if (setrlimit(RLIMIT_CORE, &none) == -1)
		log_warn("cannot turn core dumps off");
#if !defined(__SANITIZE_ADDRESS__)
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("cannot make the process non-dumpable");
#endif
}

/* -n checks the file, not the machine: a port in use is a warning, since
 * the daemon being checked before a reload holds its own. */
static void warn_port_taken(const char *addr)
{
	fprintf(stderr,
	        "ldapdeskd: warning: listen %s is in use now: if that is not this ldapdeskd "
	        "(before a reload), it would not start: stop what holds it or change listen\n",
	        addr);
}

/* -n as the user the daemon will run as (not root, which gives its files
 * away at start): the directories the audit store and the session key live
 * in take files made after start-up (-wal, -ids, .sessions). Found here,
 * not when the daemon first writes there. */
static int check_writable(const struct config *conf, char *err, size_t errlen)
{
	const struct {
		const char *section, *key, *file;
	} p[] = {{"audit", "database", conf->database}, {"server", "key_file", conf->key_file}};
	char dir[4096];
	char *slash;

	if (geteuid() == 0)
		return 0;
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		if (p[i].file == NULL)
			continue;
		snprintf(dir, sizeof(dir), "%s", p[i].file);
		if ((slash = strrchr(dir, '/')) == NULL)
			continue;
		*(slash == dir ? slash + 1 : slash) = '\0';
		if ((access(dir, W_OK | X_OK) == -1 && errno != ENOENT) ||
		    (access(p[i].file, W_OK) == -1 && errno != ENOENT)) {
			size_t k = strlen(config_at(conf, p[i].section, p[i].key, err, errlen));

			snprintf(
			    err + k, errlen - k,
			    "uid %u cannot write %s or its directory %s, where the daemon makes "
			    "files after start-up: give that user the directory, or start "
			    "ldapdeskd as root with [server] user",
			    (unsigned)geteuid(), p[i].file, dir);
			return -1;
		}
	}
	return 0;
}

/* jansson's strings hold what requests carry (a login's password) and what
 * replies do (one-time passwords, session tokens): wiped when freed. */
static void json_free_wiped(void *p)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, malloc_usable_size(p));
		free(p);
	}
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	const char *path = NULL;
	bool check = false, verbose = false;
	struct event *sigs[3];
	const int signos[3] = {SIGTERM, SIGINT, SIGHUP};
	char err[512];
	int ch;

	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {"foreground", no_argument, NULL, 'f'},
	                                         {"check", no_argument, NULL, 'n'},
	                                         {"verbose", no_argument, NULL, 'v'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};

	while ((ch = getopt_long(argc, argv, "c:fnvVh", longopts, NULL)) != -1) {
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
	json_set_alloc_funcs(malloc, json_free_wiped);
	if (audit_library_init() == -1)
		log_warnx("SQLite was set up before main: its memory statistics stay on");
	no_core_dumps();
	d.path = path;
	if (config_load(path, &d.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "ldapdeskd: %s\n", err);
		return 1;
	}
	if (dir_config_check(d.conf, err, sizeof(err)) == -1 ||
	    actions_config_check(d.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "ldapdeskd: %s\n", err);
		config_free(d.conf);
		return 1;
	}
	if (check && audit_check_header(d.conf->database, err, sizeof(err)) == -1) {
		fprintf(stderr, "ldapdeskd: %s:%d: [audit] database: %s\n", path,
		        config_line(d.conf, "audit", "database"), err);
		config_free(d.conf);
		return 1;
	}
	if (check && (http_check_tls(d.conf, err, sizeof(err)) == -1 ||
	              check_writable(d.conf, err, sizeof(err)) == -1)) {
		fprintf(stderr, "ldapdeskd: %s\n", err);
		config_free(d.conf);
		return 1;
	}
	warn_flat_scopes(d.conf, path);
	if (check) {
		http_ports_taken(d.conf, warn_port_taken);
		printf("configuration OK\n");
		config_free(d.conf);
		return 0;
	}
	if (d.conf->timezone != NULL)
		setenv("TZ", d.conf->timezone, 1);
	tzset();
	/* Everything the daemon creates is its own: the audit database, backups
	 * and their temporary files, the session files (a unix socket is made
	 * 0660 on purpose). Outside the systemd unit the umask is often 022. */
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	daemon_start(&d);
	/* libevent saves the disposition it replaces and restores it when the
	 * signal event is freed. Ignoring the signals first makes that restored
	 * disposition "ignore": a second SIGTERM during teardown then cannot kill
	 * the daemon through another thread (the writer, a set-up thread), where
	 * the main thread's signal mask does not apply. */
	for (size_t i = 0; i < 3; i++) {
		signal(signos[i], SIG_IGN);
		sigs[i] =
		    evsignal_new(d.base, signos[i], signos[i] == SIGHUP ? reload_cb : stop_cb, &d);
		evsignal_add(sigs[i], NULL);
	}
	log_info("ldapdeskd %s started", LDAPDESK_VERSION);
	event_base_dispatch(d.base);
	/* Stopping already: a second SIGTERM must not cut the teardown short.
	 * Freeing the signal events restores "ignore" (above) in every thread. */
	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	daemon_stop(&d);
	return 0;
}
