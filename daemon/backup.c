/*
 * backup.c — copies of the audit database. The copy, its check and the
 * pruning run on a thread of their own (they read the whole file); the
 * result comes back to the event loop through an activated event, where it
 * is logged as a "backup" event and handed to the caller.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "backup.h"
#include "clock.h"
#include "log.h"

/*
 * Names: audit-YYYYMMDD-HHMMSS.db for the daily (scheduled) backups and
 * audit-YYYYMMDD-HHMMSS-manual.db for those asked for (ldapdesk backup); a
 * copy kept though its chain is broken (as the live database's) ends in
 * -broken.db or -manual-broken.db. Each kind is pruned to backup_keep on its
 * own: on-demand copies, however many, never push the daily ones out, and
 * copies of a tampered database never push out the last whole ones (which
 * hold the records as they were). The directory holds at most three times
 * backup_keep.
 */
#define STEM_LEN      21 /* audit-YYYYMMDD-HHMMSS */
#define DAILY         ".db"
#define MANUAL        "-manual.db"
#define BROKEN        "-broken.db"
#define MANUAL_BROKEN "-manual-broken.db"
#define NAME_LEN      (STEM_LEN + sizeof MANUAL_BROKEN - 1) /* the longest name */
#define MAX_LISTED    4096
#define NAME_TRIES    5
#define RETRY_S       2 /* a busy store: an outcome is tried again this often */

/* What one run needs and what it found; the thread owns it while running,
 * the loop after pthread_join. */
struct backup_job {
	char src[1024], dir[1024];
	int keep;
	char file[1024 + NAME_LEN + 8];
	int64_t attempt; /* its pending attempt, stored before the copy starts */
	int64_t records;
	bool ok;
	char err[2048];
	/* A copy kept with its chain broken as the live database's is: where
	 * and why, for the log and health; "" for a whole chain. */
	char chain[512];
	char at[CLOCK_ISO_LEN];
	char operator[65];                      /* who asked: a uid, or ldapdeskd (schedule) */
	char operator_dn[512], client_addr[64]; /* "" for the schedule */
	const atomic_int *stop;                 /* the backup's: set by backup_stop */
	bool manual;                            /* asked for, not the schedule's */
};

struct backup {
	struct event_base *base;
	struct audit *a;
	char dir[1024];
	int hh, mm, keep;
	struct event *timer, *done, *retry;
	pthread_t thread;
	bool running;
	backup_fn fn;
	void *arg;
	struct backup_job job;
	atomic_int stop; /* backup_stop: the copy or its check ends early */
	json_t *last;
	char failing[2048]; /* why the last backup failed; "" once one succeeds */
	/* An outcome the store was too busy to take (an import holding the
	 * write lock): kept here and tried again (retry) rather than left
	 * pending until the next start. attempt 0: none. */
	struct {
		int64_t attempt;
		bool ok;
		char detail[sizeof(((struct backup_job *)0)->err) + 64];
	} unrecorded;
};

/* ---- on the thread ---- */

enum kind { K_NONE, K_DAILY, K_MANUAL, K_BROKEN, K_ANY };

/* Which kind of backup a file name is, K_NONE for none. */
static enum kind backup_name(const char *name)
{
	if (strlen(name) < STEM_LEN || strncmp(name, "audit-", 6) != 0 ||
	    strspn(name + 6, "0123456789") != 8 || name[14] != '-' ||
	    strspn(name + 15, "0123456789") != 6)
		return K_NONE;
	if (strcmp(name + STEM_LEN, DAILY) == 0)
		return K_DAILY;
	if (strcmp(name + STEM_LEN, BROKEN) == 0 || strcmp(name + STEM_LEN, MANUAL_BROKEN) == 0)
		return K_BROKEN;
	return strcmp(name + STEM_LEN, MANUAL) == 0 ? K_MANUAL : K_NONE;
}

/* By time (the stem), whatever the kind. */
static int name_cmp(const void *x, const void *y)
{
	const char *a = *(char *const *)x, *b = *(char *const *)y;
	int by_time = strncmp(a, b, STEM_LEN);

	return by_time != 0 ? by_time : strcmp(a, b);
}

/* Names of the good backups of kind (K_ANY: both) in dir, oldest first
 * (the name is the time). Return: count (at most MAX_LISTED), -1 if dir
 * cannot be read. */
static int list_backups(const char *dir, enum kind kind, char **names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	/* Only the files the daemon makes: a directory or a link named like a
	 * backup would read as a broken backup, for good. */
	while ((e = readdir(d)) != NULL && n < MAX_LISTED) {
		struct stat st;

		enum kind k = backup_name(e->d_name);

		if (k != K_NONE && (kind == K_ANY || k == kind) &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && (names[n] = strdup(e->d_name)) != NULL)
			n++;
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof *names, name_cmp);
	return n;
}

/* A copy cut short by a crash (kill -9, power) left FILE.tmp, and maybe its
 * journal, as big as the store: nothing else ever removes them. Run at
 * start-up, when no copy is being made. */
static void remove_stale_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char name[NAME_LEN + 1], path[PATH_MAX + 300];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		/* NAME.tmp or NAME.tmp-journal, NAME a backup's (either kind). */
		if (n > 8 && strcmp(e->d_name + n - 8, "-journal") == 0)
			n -= 8;
		if (n < 4 || n - 4 > NAME_LEN || strncmp(e->d_name + n - 4, ".tmp", 4) != 0)
			continue;
		memcpy(name, e->d_name, n - 4);
		name[n - 4] = '\0';
		if (backup_name(name) == K_NONE)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (unlink(path) == 0)
			log_warnx("backup: removed %s, left by a copy cut short", path);
	}
	closedir(d);
}

/* Keeps the newest keep backups of kind; older ones are deleted. */
static void prune(const char *dir, enum kind kind, int keep)
{
	char **names = calloc(MAX_LISTED, sizeof *names);
	char path[PATH_MAX + NAME_LEN + 2];
	int n = names ? list_backups(dir, kind, names) : -1;

	for (int i = 0; i < n; i++) {
		if (i < n - keep) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			unlink(path);
		}
		free(names[i]);
	}
	free(names);
}

static void sync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Made at start-up (and by a reload): gone since, SQLite would only say it
 * cannot open the copy. */
static int dir_usable(struct backup_job *j)
{
	struct stat st;
	int found = stat(j->dir, &st);

	if (found == 0 && S_ISDIR(st.st_mode))
		return 0;
	snprintf(j->err, sizeof j->err,
	         "[audit] backup_dir %.1100s %s: make it (owned by the daemon's user) or "
	         "reload ldapdeskd to make it",
	         j->dir,
	         found == -1 && errno == ENOENT ? "does not exist" : "is not a usable directory");
	return -1;
}

/* audit_check_file's -1 for a file that passed integrity_check and whose
 * walk ran to its end, finding the chain broken ("FILE: chain broken: ..."),
 * rather than one it could not read or check. */
static bool only_chain_broken(const char *path, const struct audit_verify *v, const char *err)
{
	size_t n = strlen(path);

	return !v->ok && v->first_bad != 0 && strncmp(err, path, n) == 0 &&
	       strncmp(err + n, ": chain broken: ", 16) == 0;
}

/*
 * The copy's chain is broken. Refused, as it was, no backup is kept from
 * then on, while the tampered database goes on taking records: the copy
 * keeps the evidence and all written since. It is kept when it is faithful,
 * its chain breaking where the live database's does (walked after the copy,
 * with the same check). One that breaks where the live chain does not, or
 * earlier, was changed on its way and is refused. A live chain that breaks
 * earlier than the copy was changed after the copy was made: the copy holds
 * those records as they were, and is kept.
 * Return: 0 kept (j->chain says where it breaks), -1 refused (j->err).
 */
static int broken_as_live(struct backup_job *j, const char *tmp, const struct audit_verify *copy)
{
	struct audit_verify live;
	char why[sizeof j->err];
	long long at = (long long)copy->first_bad;

	if (audit_check_file(j->src, &live, j->stop, why, sizeof why) == 0) {
		snprintf(j->err, sizeof j->err,
		         "%.1100s: chain broken at record %lld, but the live database's chain is "
		         "whole: the copy is not faithful and was not kept; make another (ldapdesk "
		         "backup)",
		         tmp, at);
		return -1;
	}
	if (!only_chain_broken(j->src, &live, why)) {
		snprintf(
		    j->err, sizeof j->err,
		    "the copy's chain is broken at record %lld and the live database could not "
		    "be checked to compare (%.1500s): no copy was kept",
		    at, why);
		return -1;
	}
	if (live.first_bad > copy->first_bad) {
		snprintf(j->err, sizeof j->err,
		         "%.1100s: chain broken at record %lld, earlier than the live database's "
		         "(record %lld): the copy is not faithful and was not kept; make another "
		         "(ldapdesk backup)",
		         tmp, at, (long long)live.first_bad);
		return -1;
	}
	if (live.first_bad == copy->first_bad)
		snprintf(j->chain, sizeof j->chain,
		         "chain broken at record %lld, as in the live database (%.300s): the copy "
		         "is kept as evidence; see ldapdesk verify",
		         at, copy->reason);
	else
		snprintf(j->chain, sizeof j->chain,
		         "chain broken at record %lld (%.200s); the live database's breaks "
		         "earlier, at record %lld, changed since this copy was made: the copy "
		         "is kept, holding it as it was; see ldapdesk verify",
		         at, copy->reason, (long long)live.first_bad);
	return 0;
}

/* Copies src to tmp and checks the copy. Return 0/-1 (j->err set). */
static int copy_checked(struct backup_job *j, const char *tmp, struct audit_verify *v)
{
	/* Marked as this backup's copy before it is checked: restored anywhere,
	 * the copy still holds this backup's pending attempt, and the mark tells
	 * the next start that the backup was made (backup_recover). */
	if (audit_copy(j->src, tmp, j->stop, j->err, sizeof j->err) == -1 ||
	    audit_mark_copy(tmp, j->attempt, j->err, sizeof j->err) == -1)
		return -1;
	/* As private as the database: the umask (022 outside the systemd
	 * unit) would leave the copy readable to everyone. */
	if (chmod(tmp, 0600) == -1) {
		snprintf(j->err, sizeof j->err, "%.1100s: chmod: %.200s", tmp, strerror(errno));
		return -1;
	}
	sync_path(tmp, O_RDONLY);
	if (audit_check_file(tmp, v, j->stop, j->err, sizeof j->err) == 0)
		return 0;
	return only_chain_broken(tmp, v, j->err) ? broken_as_live(j, tmp, v) : -1;
}

/* The name file (a backup's, daily or manual) has when it is kept as
 * evidence, its chain broken as the live database's (see Names), into out.
 * Return 0, or -1 if file is no such name or out is too short. */
static int broken_name(const char *file, char *out, size_t len)
{
	size_t n = strlen(file), m = strlen(MANUAL), d = strlen(DAILY);
	bool manual = n >= m && strcmp(file + n - m, MANUAL) == 0;
	size_t cut = n - (manual ? m : d);
	int w;

	if (!manual && (n < d || strcmp(file + cut, DAILY) != 0))
		return -1;
	w = snprintf(out, len, "%.*s%s", (int)cut, file, manual ? MANUAL_BROKEN : BROKEN);
	return w > 0 && (size_t)w < len ? 0 : -1;
}

/* Copy to FILE.tmp, check it, then rename: only checked copies ever carry
 * a backup's name, so every such file counts as good when pruning. */
static void run_job(struct backup_job *j)
{
	char tmp[sizeof j->file + 8];
	struct audit_verify v;

	j->ok = false;
	if (dir_usable(j) == -1)
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", j->file);
	unlink(tmp);
	if (copy_checked(j, tmp, &v) == -1) {
		char journal[sizeof tmp + 8];

		/* A copy cut short by a full disk leaves its journal too. */
		snprintf(journal, sizeof journal, "%s-journal", tmp);
		unlink(tmp);
		unlink(journal);
		/* Stopped by backup_stop (SQLite: "interrupted"), not failed on
		 * its own: a real failure keeps its reason. */
		if (atomic_load(j->stop) && strstr(j->err, "interrupt") != NULL)
			snprintf(
			    j->err, sizeof j->err,
			    "ldapdeskd is stopping: the backup was stopped at the stop's deadline "
			    "before it finished, and no copy was kept; make one once the daemon is "
			    "back (ldapdesk backup)");
		return;
	}
	if (j->chain[0] != '\0') {
		char kept[sizeof j->file];

		if (broken_name(j->file, kept, sizeof kept) == 0)
			memcpy(j->file, kept, sizeof j->file);
	}
	if (rename(tmp, j->file) == -1) {
		snprintf(j->err, sizeof j->err, "%.1100s: rename: %.200s", j->file,
		         strerror(errno));
		unlink(tmp);
		return;
	}
	sync_path(j->dir, O_RDONLY | O_DIRECTORY);
	j->records = v.records;
	j->ok = true;
	clock_utc(time(NULL), j->at, sizeof j->at);
	prune(j->dir, j->chain[0] != '\0' ? K_BROKEN : j->manual ? K_MANUAL : K_DAILY, j->keep);
}

static void *thread_main(void *arg)
{
	struct backup *b = arg;

	run_job(&b->job);
	event_active(b->done, 0, 0); /* safe across threads: evthread_use_pthreads */
	return NULL;
}

/* ---- on the loop ---- */

/* Writes the kept outcome; 0 when done (or none kept), -1 while the store
 * is busy (err says so). Any other failure drops it: it stays pending, and
 * the next start reads the file its attempt names (backup_recover). */
static int flush_unrecorded(struct backup *b, char *err, size_t errlen)
{
	if (b->unrecorded.attempt == 0)
		return 0;
	if (audit_finish(b->a, b->unrecorded.attempt, b->unrecorded.ok ? "ok" : "failed",
	                 b->unrecorded.detail, err, errlen) == -1) {
		if (audit_busy(b->a))
			return -1;
		log_warnx("backup: its outcome could not be recorded (the next start will): %s",
		          err);
	}
	b->unrecorded.attempt = 0;
	return 0;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct backup *b = arg;
	struct timeval again = {RETRY_S, 0};
	char err[256];

	(void)fd;
	(void)what;
	if (flush_unrecorded(b, err, sizeof err) == -1)
		evtimer_add(b->retry, &again);
}

/* The kept outcome's record will bear the time the store took it: its
 * detail says when the backup ended. */
static void note_late(struct backup *b)
{
	size_t n = strlen(b->unrecorded.detail);
	char at[CLOCK_ISO_LEN];

	clock_utc(time(NULL), at, sizeof at);
	snprintf(b->unrecorded.detail + n, sizeof b->unrecorded.detail - n,
	         " (ended %s; recorded late: the audit database was busy)", at);
}

static void log_backup(struct backup *b)
{
	const struct backup_job *j = &b->job;
	struct timeval again = {RETRY_S, 0};
	char err[256];

	b->unrecorded.attempt = j->attempt;
	b->unrecorded.ok = j->ok;
	if (j->ok)
		snprintf(b->unrecorded.detail, sizeof b->unrecorded.detail,
		         "%s: %lld records, checked%s%s", j->file, (long long)j->records,
		         j->chain[0] != '\0' ? "; " : "", j->chain);
	else
		snprintf(b->unrecorded.detail, sizeof b->unrecorded.detail, "%s", j->err);
	if (flush_unrecorded(b, err, sizeof err) == 0)
		return;
	note_late(b);
	log_warnx("backup: the audit database is busy: its outcome is recorded once it is "
	          "free (tried every %d s)",
	          RETRY_S);
	if (b->retry != NULL)
		evtimer_add(b->retry, &again);
}

/* The end of a run, on the loop (or at the stop, with the loop ended): its
 * thread joined, its record written; fn is called when answer is set. */
static void finish(struct backup *b, bool answer)
{
	const struct backup_job *j = &b->job;
	backup_fn fn = answer ? b->fn : NULL;

	pthread_join(b->thread, NULL);
	b->running = false;
	if (j->ok) {
		json_decref(b->last);
		b->last = json_pack("{s:s, s:s, s:I, s:b, s:s*}", "file", j->file, "at", j->at,
		                    "records", (json_int_t)j->records, "ok", 1, "chain",
		                    j->chain[0] != '\0' ? j->chain : NULL);
		b->failing[0] = '\0';
		/* Kept, but an operator must hear that the log it copies is broken. */
		if (j->chain[0] != '\0')
			log_warnx("backup %s: %s", j->file, j->chain);
	} else {
		/* A nightly failure has nobody waiting for it: say it where
		 * operators look (the log, GET /v1/health). */
		snprintf(b->failing, sizeof b->failing, "%s", j->err);
		log_warnx("backup into %s failed: %s", b->dir, j->err);
	}
	log_backup(b);
	b->fn = NULL;
	if (fn)
		fn(b->arg, j->ok, j->ok ? j->file : NULL, j->records,
		   j->ok ? (j->chain[0] != '\0' ? j->chain : NULL) : j->err);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, true);
}

bool backup_running(const struct backup *b)
{
	return b != NULL && b->running;
}

void backup_stop(struct backup *b)
{
	if (backup_running(b))
		atomic_store(&b->stop, 1);
}

/* The name the copy will have, picked on the loop so that its attempt can
 * name it: this second's, or (backups asked for one after the other) one of
 * the next seconds' not taken yet. -1 when those are all taken. */
static int name_now(struct backup_job *j)
{
	time_t now = time(NULL);

	for (int i = 0; i < NAME_TRIES; i++) {
		time_t t = now + i;
		struct tm tm;
		char stem[STEM_LEN + 1];

		localtime_r(&t, &tm);
		strftime(stem, sizeof stem, "audit-%Y%m%d-%H%M%S", &tm);
		char kept[sizeof j->file];

		snprintf(j->file, sizeof j->file, "%s/%s%s", j->dir, stem,
		         j->manual ? MANUAL : DAILY);
		/* Free under both names it may end with. */
		if (access(j->file, F_OK) != 0 &&
		    (broken_name(j->file, kept, sizeof kept) == -1 || access(kept, F_OK) != 0))
			return 0;
	}
	return -1;
}

/*
 * Its attempt is stored before the copy starts, naming the file: a daemon
 * killed during the copy leaves it pending, and the next start says what
 * became of it (backup_recover). A copy includes that pending attempt; once
 * restored, the file it names is the copy itself, so it reads as made.
 */
static int store_attempt(struct backup *b, char *err, size_t errlen)
{
	struct backup_job *j = &b->job;
	char detail[sizeof j->file + 8];
	struct audit_event ev = {.operator= j->operator,
	                         .operator_dn = j->operator_dn[0] ? j->operator_dn : NULL,
	                         .client_addr = j->client_addr[0] ? j->client_addr : NULL,
	                         .action = "backup",
	                         .detail = detail};

	snprintf(detail, sizeof detail, "into %s", j->file);
	return audit_begin(b->a, &ev, &j->attempt, err, errlen);
}

int backup_start(struct backup *b, const struct backup_who *who, backup_fn fn, void *arg, char *err,
                 size_t errlen)
{
	if (b->running)
		return -1;
	/* The last outcome first: the store still busy, this attempt would be too. */
	if (flush_unrecorded(b, err, errlen) == -1)
		return -5;
	memset(&b->job, 0, sizeof b->job);
	snprintf(b->job.operator, sizeof b->job.operator, "%s",
	         who != NULL ? who->uid : "ldapdeskd");
	b->job.manual = who != NULL;
	if (who != NULL) {
		snprintf(b->job.operator_dn, sizeof b->job.operator_dn, "%s", who->dn);
		snprintf(b->job.client_addr, sizeof b->job.client_addr, "%s", who->addr);
	}
	snprintf(b->job.src, sizeof b->job.src, "%s", audit_path(b->a));
	snprintf(b->job.dir, sizeof b->job.dir, "%s", b->dir);
	b->job.keep = b->keep;
	atomic_store(&b->stop, 0);
	b->job.stop = &b->stop;
	if (name_now(&b->job) == -1)
		return -3;
	if (store_attempt(b, err, errlen) == -1)
		return audit_busy(b->a) ? -5 : -4;
	b->fn = fn;
	b->arg = arg;
	if (pthread_create(&b->thread, NULL, thread_main, b) != 0) {
		char e[256];

		if (audit_finish(b->a, b->job.attempt, "failed",
		                 "no thread could be started for the backup (out of resources)", e,
		                 sizeof e) == -1)
			log_warnx("backup: its outcome could not be recorded: %s", e);
		return -2;
	}
	b->running = true;
	return 0;
}

int backup_recover(struct audit *a, int64_t attempt, const char *detail)
{
	const char *file = detail != NULL && strncmp(detail, "into ", 5) == 0 ? detail + 5 : NULL;
	char out[PATH_MAX + 200], err[PATH_MAX + 200];
	long long n = -1;
	struct stat st;
	/* A regular file only: opening a FIFO named there would hang the start. */
	bool restored = attempt == audit_copy_of(a);
	char kept[PATH_MAX + 32];
	bool made;

	/* Kept as evidence (its chain broken), the copy has the other name. */
	if (file != NULL && stat(file, &st) == -1 && broken_name(file, kept, sizeof kept) == 0 &&
	    stat(kept, &st) == 0)
		file = kept;
	made = restored || (file != NULL && stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
	                    audit_count_file(file, &n, err, sizeof err) == 0);

	/* This database is that backup's copy, restored (wherever the file
	 * went since): the backup was made. */
	if (restored)
		snprintf(out, sizeof out,
		         "%.1500s: checked; this database was restored from it (its copy holds "
		         "the backup's attempt, not its outcome)",
		         file != NULL ? file : "the copy");
	/* Only a checked copy is ever renamed to the name its attempt gives. */
	else if (made)
		snprintf(
		    out, sizeof out,
		    "%.1500s: %lld records, checked (found after the daemon stopped during it)",
		    file, n);
	else
		snprintf(
		    out, sizeof out,
		    "the daemon stopped before the backup%s%.1500s was finished: no checked copy "
		    "of it was made",
		    file != NULL ? " into " : "", file != NULL ? file : "");
	if (audit_finish(a, attempt, made ? "ok" : "failed", out, err, sizeof err) == -1) {
		log_warnx("recovery: backup %lld: %s", (long long)attempt, err);
		return audit_busy(a) ? -1 : 0; /* only a busy store is worth another try */
	}
	return 0;
}

/* Seconds until the next hh:mm local (mktime handles month ends and DST). */
static long next_delay(const struct backup *b)
{
	time_t now = time(NULL), t;
	struct tm tm;

	localtime_r(&now, &tm);
	tm.tm_hour = b->hh;
	tm.tm_min = b->mm;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t <= now) {
		tm.tm_mday += 1;
		tm.tm_hour = b->hh;
		tm.tm_min = b->mm;
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	return t > now ? (long)(t - now) : 60;
}

static void schedule(struct backup *b)
{
	struct timeval tv = {.tv_sec = next_delay(b)};

	evtimer_add(b->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct backup *b = arg;

	struct timeval second = {1, 0};
	char err[256];
	int rc;

	(void)fd;
	(void)what;
	rc = backup_start(b, NULL, NULL, NULL, err, sizeof err); /* skipped if one runs */
	if (rc == -3) { /* one made this very second (by hand): the next second */
		evtimer_add(b->timer, &second);
		return;
	}
	/* The store busy (an import's transaction) or no thread: tried again
	 * every 10 s, and said where operators look, rather than skipped for
	 * the day. */
	if (rc == -5 || rc == -4 || rc == -2) {
		struct timeval again = {10, 0};

		snprintf(b->failing, sizeof b->failing,
		         "the scheduled backup could not start (%.200s): trying again every 10 s",
		         rc != -2 ? err : "no thread could be started");
		log_warnx("%s", b->failing);
		evtimer_add(b->timer, &again);
		return;
	}
	schedule(b);
}

/* ---- set-up ---- */

static int make_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the backup directory: %s", dir,
		         strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	return 0;
}

static void default_dir(const char *db, char *dir, size_t len)
{
	const char *slash = strrchr(db, '/');

	if (slash == NULL)
		snprintf(dir, len, "backup");
	else
		snprintf(dir, len, "%.*s/backup", (int)(slash - db), db);
}

/* The records count the audit logged when path was made (its outcome's
 * detail "PATH: N records, checked", then "; chain broken at ..." for a copy
 * kept so: copied to chain, else chain ""), or -1 when it logged none. */
static long long logged_records(struct backup *b, const char *path, char *chain, size_t len)
{
	char detail[PATH_MAX + 600], err[256], *end;
	const char *note;
	size_t n = strlen(path);
	long long records;

	chain[0] = '\0';
	if (audit_last_backup(b->a, detail, sizeof detail, err, sizeof err) != 1 ||
	    strncmp(detail, path, n) != 0 || strncmp(detail + n, ": ", 2) != 0)
		return -1;
	records = strtoll(detail + n + 2, &end, 10);
	if (strncmp(end, " records", 8) != 0)
		return -1;
	if ((note = strstr(end, "; chain broken at record ")) != NULL)
		snprintf(chain, len, "%s", note + 2);
	return records;
}

/*
 * The newest backup on disk counts as good at start if it still opens with
 * the records the audit logged when it was made and checked (or, made before
 * a restore and so not in this log, as an audit database). A full check
 * (integrity, chain) would read the whole file before the daemon answers
 * anything; the next backup makes one. Return: its records, or -1 with why.
 */
static long long still_good(struct backup *b, const char *path, char *chain, size_t chainlen,
                            char *why, size_t len)
{
	long long logged = logged_records(b, path, chain, chainlen), now = -1;
	char err[1800];

	if (audit_count_file(path, &now, err, sizeof err) == 0 && (logged < 0 || now == logged))
		return now;
	if (now >= 0)
		snprintf(err, sizeof err, "%.1500s: %lld records, %lld when it was made", path, now,
		         logged);
	snprintf(why, len, "%.1790s: make a new backup (ldapdesk backup)", err);
	return -1;
}

/* The newest backup already on disk, so health has an answer before the
 * first run. */
static void find_last(struct backup *b)
{
	char **names = calloc(MAX_LISTED, sizeof *names);
	char path[PATH_MAX + NAME_LEN + 2], at[CLOCK_ISO_LEN];
	char chain[sizeof b->job.chain];
	int n = names ? list_backups(b->dir, K_ANY, names) : -1;
	struct stat st;

	if (n > 0) {
		snprintf(path, sizeof path, "%s/%s", b->dir, names[n - 1]);
		if (stat(path, &st) == 0) {
			long long records =
			    still_good(b, path, chain, sizeof chain, b->failing, sizeof b->failing);

			clock_utc(st.st_mtime, at, sizeof at);
			/* A copy kept with a broken chain says so after a restart too. */
			b->last =
			    json_pack("{s:s, s:s, s:o, s:b, s:s*}", "file", path, "at", at,
			              "records", records >= 0 ? json_integer(records) : json_null(),
			              "ok", records >= 0, "chain", chain[0] != '\0' ? chain : NULL);
			/* Said where operators look, as a failed run is (health). */
			if (records < 0)
				log_warnx("the newest backup fails its check: %s", b->failing);
		}
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* backup_at, backup_dir and backup_keep from conf into b. Return 0, or -1 with err. */
static int settings(struct backup *b, const struct config *conf, char *err, size_t errlen)
{
	const char *at = conf->backup_at ? conf->backup_at : "03:00";

	b->keep = conf->backup_keep > 0 ? conf->backup_keep : 7;
	if (conf->backup_dir)
		snprintf(b->dir, sizeof b->dir, "%s", conf->backup_dir);
	else
		default_dir(audit_path(b->a), b->dir, sizeof b->dir);
	if (sscanf(at, "%2d:%2d", &b->hh, &b->mm) != 2 || b->hh > 23 || b->mm > 59) {
		snprintf(err, errlen, "backup: backup_at must be HH:MM, not \"%s\"", at);
		return -1;
	}
	return 0;
}

int backup_new(struct event_base *base, const struct config *conf, struct audit *a,
               struct backup **bp, char *err, size_t errlen)
{
	struct backup *b = calloc(1, sizeof *b);

	if (b == NULL) {
		snprintf(err, errlen, "backup: out of memory");
		return -1;
	}
	*b = (struct backup){.base = base, .a = a};
	if (settings(b, conf, err, errlen) == -1) {
		free(b);
		return -1;
	}
	b->timer = evtimer_new(base, timer_cb, b);
	b->done = event_new(base, -1, 0, done_cb, b);
	b->retry = evtimer_new(base, retry_cb, b);
	if (b->timer == NULL || b->done == NULL || b->retry == NULL ||
	    make_dir(b->dir, err, errlen) == -1) {
		if (b->timer == NULL || b->done == NULL || b->retry == NULL)
			snprintf(err, errlen, "backup: cannot create events");
		backup_free(b);
		return -1;
	}
	remove_stale_temps(b->dir);
	find_last(b);
	schedule(b);
	*bp = b;
	return 0;
}

int backup_set_config(struct backup *b, const struct config *conf, char *err, size_t errlen)
{
	struct backup next = *b;

	if (settings(&next, conf, err, errlen) == -1 || make_dir(next.dir, err, errlen) == -1)
		return -1;
	snprintf(b->dir, sizeof b->dir, "%s", next.dir);
	b->hh = next.hh;
	b->mm = next.mm;
	b->keep = next.keep;
	evtimer_del(b->timer);
	schedule(b);
	return 0;
}

const char *backup_dir(const struct backup *b)
{
	return b->dir;
}

const char *backup_failing(const struct backup *b)
{
	return b->failing[0] != '\0' ? b->failing : NULL;
}

json_t *backup_last(const struct backup *b)
{
	return b->last ? json_incref(b->last) : json_null();
}

void backup_free(struct backup *b)
{
	char err[256];

	if (b == NULL)
		return;
	/* Still running when the loop ended (the stop's deadline passed): it
	 * is waited for and recorded all the same; its caller is gone. */
	if (b->running)
		finish(b, false);
	/* The loop has ended: one last try, then it is left to the next start. */
	if (flush_unrecorded(b, err, sizeof err) == -1)
		log_warnx("backup: the audit database was still busy at the stop: its outcome is "
		          "recorded at the next start");
	if (b->retry)
		event_free(b->retry);
	if (b->timer)
		event_free(b->timer);
	if (b->done)
		event_free(b->done);
	json_decref(b->last);
	free(b);
}
