/*
 * test_backup.c — unit tests of daemon/backup.c: real audit database, real
 * event_base with pthreads, real files in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "audit.h"
#include "backup.h"
#include "config.h"

struct fixture {
	char dir[64], path[128], bdir[128], err[256];
	struct config conf;
	struct audit *a;
	struct event_base *base;
	struct backup *b;
	/* what the last completion said */
	int calls, ok;
	int64_t records;
	char file[1200], why[512];
};

/* Who asks for the backups here (their record names them). */
static const struct backup_who adm1 = {"adm1", "uid=adm1,ou=ops,dc=example,dc=org", "127.0.0.1"};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	struct audit_event ev = {.operator= "hd1", .action = "unlock", .target = "alice"};

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_backup.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof fx->path, "%s/audit.db", fx->dir);
	snprintf(fx->bdir, sizeof fx->bdir, "%s/bk", fx->dir);
	if (audit_open(fx->path, &fx->a, fx->err, sizeof fx->err) == -1)
		return -1;
	for (int i = 0; i < 5; i++)
		if (audit_record(fx->a, &ev, "ok", "unlocked", NULL, fx->err, sizeof fx->err) == -1)
			return -1;
	fx->conf.backup_dir = fx->bdir;
	fx->conf.backup_keep = 2;
	fx->conf.backup_at = "03:00";
	fx->base = event_base_new();
	if (fx->base == NULL ||
	    backup_new(fx->base, &fx->conf, fx->a, &fx->b, fx->err, sizeof fx->err) == -1)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[160];

	backup_free(fx->b);
	event_base_free(fx->base);
	audit_close(fx->a);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static void done(void *arg, int ok, const char *file, int64_t records, const char *err)
{
	struct fixture *fx = arg;

	fx->calls++;
	fx->ok = ok;
	fx->records = records;
	snprintf(fx->file, sizeof fx->file, "%s", file ? file : "");
	snprintf(fx->why, sizeof fx->why, "%s", err ? err : "");
	event_base_loopbreak(fx->base);
}

/* Runs one backup asked for by who (NULL: the daily one, the schedule's)
 * to its end on the loop (at most 30 s). */
static void run_as(struct fixture *fx, const struct backup_who *who)
{
	struct timeval limit = {.tv_sec = 30};
	int before = fx->calls, rc;

	/* One backup per second (the name has the time): the next waits. */
	while ((rc = backup_start(fx->b, who, done, fx, fx->err, sizeof fx->err)) == -3)
		usleep(100 * 1000);
	assert_int_equal(rc, 0);
	event_base_loopexit(fx->base, &limit);
	event_base_dispatch(fx->base);
	assert_int_equal(fx->calls, before + 1);
}

/* One backup asked for by an admin (ldapdesk backup). */
static void run_one(struct fixture *fx)
{
	run_as(fx, &adm1);
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	size_t sl = strlen(suffix);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] != '.' && l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* A copy cut short by a crash left FILE.tmp (and its journal): the next
 * start removes them, and nothing else of the directory. */
static void a_start_removes_copies_cut_short(void **state)
{
	struct fixture *fx = *state;
	const char *names[] = {"audit-20261127-220748.db.tmp",
	                       "audit-20261127-220748.db.tmp-journal",
	                       "audit-20261127-220749-manual.db.tmp",
	                       "audit-20261127-220749-manual.db.tmp-journal",
	                       "audit-20261127-220748.db",
	                       "notes.tmp",
	                       "audit-2026.db.tmp",
	                       "audit-20261127-220748-other.db.tmp"};
	char path[300];

	backup_free(fx->b);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		FILE *fp;

		snprintf(path, sizeof path, "%s/%s", fx->bdir, names[i]);
		assert_non_null(fp = fopen(path, "w"));
		fclose(fp);
	}
	assert_int_equal(backup_new(fx->base, &fx->conf, fx->a, &fx->b, fx->err, sizeof fx->err),
	                 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", fx->bdir, names[i]);
		assert_int_equal(access(path, F_OK) == 0, i >= 4); /* the first four are gone */
	}
}

static void backup_creates_a_checked_copy_in_a_private_dir(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	struct stat st;
	const char *base;
	json_t *last;

	assert_true(json_is_null(last = backup_last(fx->b)));
	json_decref(last);
	run_one(fx);
	assert_true(fx->ok);
	/* 5 attempts, 5 outcomes, and the backup's own attempt, stored first */
	assert_int_equal(fx->records, 11);
	assert_int_equal(stat(fx->bdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	base = strrchr(fx->file, '/') + 1;
	/* Asked for: named apart from the daily ones, rotated on its own. */
	assert_int_equal(strlen(base), strlen("audit-20260105-093000-manual.db"));
	assert_int_equal(strncmp(base, "audit-", 6), 0);
	assert_string_equal(base + strlen("audit-20260105-093000"), "-manual.db");
	assert_int_equal(audit_check_file(fx->file, &v, NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(v.records, 11);
	last = backup_last(fx->b);
	assert_string_equal(json_string_value(json_object_get(last, "file")), fx->file);
	assert_int_equal(json_integer_value(json_object_get(last, "records")), 11);
	assert_true(json_is_true(json_object_get(last, "ok")));
	json_decref(last);
}

static void second_start_while_running_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct timeval limit = {.tv_sec = 30};

	assert_int_equal(backup_start(fx->b, &adm1, done, fx, fx->err, sizeof fx->err), 0);
	assert_int_equal(backup_start(fx->b, &adm1, done, fx, fx->err, sizeof fx->err), -1);
	event_base_loopexit(fx->base, &limit);
	event_base_dispatch(fx->base);
	assert_int_equal(fx->calls, 1);
	assert_true(fx->ok);
}

static int count_row(void *arg, json_t *row)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static void old_backups_are_pruned_to_backup_keep(void **state)
{
	struct fixture *fx = *state;
	struct audit_filter f = {.action = "backup", .result = "ok"};
	int n = 0;

	for (int i = 0; i < 3; i++) {
		run_one(fx);
		assert_true(fx->ok);
	}
	assert_int_equal(count_files(fx->bdir, ".db"), 2);
	assert_int_equal(count_files(fx->bdir, ".tmp"), 0);
	assert_int_equal(access(fx->file, F_OK), 0); /* the newest is kept */
	assert_int_equal(audit_query(fx->a, &f, count_row, &n, NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 3); /* each backup is itself an audit event */
}

/* Issue 4.6: daily backups, backup_keep of them. With backup_keep = 2, three
 * ldapdesk backup runs deleted the daily one: on-demand copies now rotate on
 * their own, each kind to backup_keep. */
static void on_demand_backups_leave_the_daily_ones_alone(void **state)
{
	struct fixture *fx = *state;
	char daily[1200];
	json_t *last;

	run_as(fx, NULL); /* the schedule's */
	assert_true(fx->ok);
	snprintf(daily, sizeof daily, "%s", fx->file);
	/* The daily name, as before: audit-YYYYMMDD-HHMMSS.db */
	assert_int_equal(strlen(strrchr(daily, '/') + 1), strlen("audit-20260105-030000.db"));
	for (int i = 0; i < 3; i++) {
		run_one(fx);
		assert_true(fx->ok);
	}
	assert_int_equal(access(daily, F_OK), 0); /* the daily one is kept */
	assert_int_equal(count_files(fx->bdir, "-manual.db"), 2);
	assert_int_equal(count_files(fx->bdir, ".db"), 3);
	/* Health shows the newest of either kind. */
	last = backup_last(fx->b);
	assert_string_equal(json_string_value(json_object_get(last, "file")), fx->file);
	json_decref(last);
	/* Daily ones rotate among themselves: the third pushes the first out,
	 * and the on-demand copies stay. */
	run_as(fx, NULL);
	run_as(fx, NULL);
	assert_true(fx->ok);
	assert_int_equal(access(daily, F_OK), -1);
	assert_int_equal(count_files(fx->bdir, "-manual.db"), 2);
	assert_int_equal(count_files(fx->bdir, ".db"), 4);
}

/* A directory named like a backup is no backup: not the "newest", which
 * would fail its check at every start. */
static void a_directory_named_like_a_backup_is_not_one(void **state)
{
	struct fixture *fx = *state;
	char path[300];
	json_t *last;

	backup_free(fx->b);
	snprintf(path, sizeof path, "%s/audit-20991231-000000.db", fx->bdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(backup_new(fx->base, &fx->conf, fx->a, &fx->b, fx->err, sizeof fx->err),
	                 0);
	assert_true(json_is_null(last = backup_last(fx->b)));
	json_decref(last);
	assert_null(backup_failing(fx->b));
	run_one(fx);
	assert_true(fx->ok);
	last = backup_last(fx->b);
	assert_string_not_equal(json_string_value(json_object_get(last, "file")), path);
	json_decref(last);
}

struct found {
	int n;
	char result[16], detail[600];
	json_int_t want; /* this attempt's row is also kept in want_result */
	char want_result[16];
};

static int last_backup_row(void *arg, json_t *row)
{
	struct found *f = arg;
	const char *r = json_string_value(json_object_get(row, "result"));
	const char *d = json_string_value(json_object_get(row, "detail"));

	f->n++;
	snprintf(f->result, sizeof f->result, "%s", r != NULL ? r : "");
	snprintf(f->detail, sizeof f->detail, "%s", d != NULL ? d : "");
	if (f->want != 0 && json_integer_value(json_object_get(row, "id")) == f->want)
		snprintf(f->want_result, sizeof f->want_result, "%s", r != NULL ? r : "");
	return 0;
}

/* A backup's attempt is stored before the copy, naming the file; one a
 * killed daemon left pending is resolved at the next start by that file. */
static void a_pending_backup_is_resolved_by_its_file(void **state)
{
	struct fixture *fx = *state;
	struct audit_filter f = {.action = "backup"};
	struct audit_event ev = {.operator= "adm1", .action = "backup", .detail = NULL};
	struct found got = {0};
	char detail[1300];
	int64_t made, lost;

	run_one(fx);
	assert_true(fx->ok);
	snprintf(detail, sizeof detail, "into %s", fx->file);
	ev.detail = detail;
	assert_int_equal(audit_begin(fx->a, &ev, &made, fx->err, sizeof fx->err), 0);
	snprintf(detail, sizeof detail, "into %s/audit-20200101-000000.db", fx->bdir);
	assert_int_equal(audit_begin(fx->a, &ev, &lost, fx->err, sizeof fx->err), 0);
	backup_recover(fx->a, made, "into dummy"); /* no such file: failed */
	backup_recover(fx->a, lost, detail);
	got.want = made;
	assert_int_equal(
	    audit_query(fx->a, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.want_result, "failed");
	assert_string_equal(got.result, "failed");
	assert_non_null(strstr(got.detail, "the daemon stopped before the backup into "));
	assert_non_null(strstr(got.detail, "audit-20200101-000000.db was finished"));

	/* The file its attempt names is there: ok, with its records. */
	assert_int_equal(
	    audit_begin(
	        fx->a,
	        &(struct audit_event){.operator= "ldapdeskd", .action = "backup", .detail = NULL},
	        &made, fx->err, sizeof fx->err),
	    0);
	snprintf(detail, sizeof detail, "into %s", fx->file);
	backup_recover(fx->a, made, detail);
	got.n = 0;
	assert_int_equal(
	    audit_query(fx->a, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err), 0);
	assert_string_equal(got.result, "ok");
	assert_non_null(
	    strstr(got.detail, ": 11 records, checked (found after the daemon stopped"));
}

/* Another connection holding the write lock (an import storing its rows). */
static sqlite3 *hold_write_lock(const struct fixture *fx)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void release_write_lock(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* An outcome the store is too busy to take is kept and written once the
 * lock is free; it used to stay pending until the next start. */
static void a_busy_store_delays_the_outcome_without_losing_it(void **state)
{
	struct fixture *fx = *state;
	struct audit_filter f = {.action = "backup"};
	struct found got = {0};
	struct timeval limit = {.tv_sec = 30}, wait = {.tv_sec = 5};
	sqlite3 *other;

	audit_set_busy_timeout(fx->a, 50);
	assert_int_equal(backup_start(fx->b, &adm1, done, fx, fx->err, sizeof fx->err), 0);
	other = hold_write_lock(fx);
	event_base_loopexit(fx->base, &limit);
	event_base_dispatch(fx->base);
	assert_int_equal(fx->calls, 1);
	assert_true(fx->ok);
	/* Still busy: the next backup is refused as busy, not as broken. */
	assert_int_equal(backup_start(fx->b, &adm1, done, fx, fx->err, sizeof fx->err), -5);
	assert_non_null(strstr(fx->err, "busy"));
	assert_int_equal(
	    audit_query(fx->a, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(got.n, 1);
	assert_string_not_equal(got.result, "ok");

	release_write_lock(other);
	event_base_loopexit(fx->base, &wait);
	event_base_dispatch(fx->base);
	got.n = 0;
	assert_int_equal(
	    audit_query(fx->a, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.result, "ok");
	assert_non_null(strstr(got.detail, "records, checked"));
}

/* Start-up recovery of a backup's attempt says when it could not write the
 * outcome, so that its pass is tried again. */
static void a_recovery_the_store_cannot_take_is_reported(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "adm1", .action = "backup", .detail = "into nowhere"};
	int64_t id;
	sqlite3 *other;

	audit_set_busy_timeout(fx->a, 50);
	assert_int_equal(audit_begin(fx->a, &ev, &id, fx->err, sizeof fx->err), 0);
	other = hold_write_lock(fx);
	assert_int_equal(backup_recover(fx->a, id, "into nowhere"), -1);
	assert_true(audit_busy(fx->a));
	release_write_lock(other);
	assert_int_equal(backup_recover(fx->a, id, "into nowhere"), 0);
	assert_false(audit_busy(fx->a));
}

struct pending_one {
	int n;
	int64_t id;
	char detail[1300];
};

static int pending_row(void *arg, json_t *row)
{
	struct pending_one *p = arg;
	const char *d = json_string_value(json_object_get(row, "detail"));

	p->n++;
	p->id = json_integer_value(json_object_get(row, "id"));
	snprintf(p->detail, sizeof p->detail, "%s", d != NULL ? d : "");
	return 0;
}

/* A copy restored elsewhere (its file gone from backup_dir) holds its own
 * backup's attempt, pending: the next start must say the backup was made,
 * not that the daemon stopped before it was finished. */
static void a_copy_restored_elsewhere_says_its_backup_was_made(void **state)
{
	struct fixture *fx = *state;
	struct audit_filter f = {.action = "backup"};
	struct pending_one p = {0};
	struct found got = {0};
	struct audit *r = NULL;
	char restored[160], cmd[1500];

	run_one(fx);
	assert_true(fx->ok);
	snprintf(restored, sizeof restored, "%s/restored.db", fx->dir);
	snprintf(cmd, sizeof cmd, "mv '%s' '%s'", fx->file, restored);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(audit_open(restored, &r, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_pending(r, pending_row, &p, fx->err, sizeof fx->err), 0);
	assert_int_equal(p.n, 1); /* the copy holds its backup's attempt, pending */
	assert_int_equal(audit_copy_of(r), p.id);
	assert_int_equal(backup_recover(r, p.id, p.detail), 0);
	assert_int_equal(audit_query(r, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err),
	                 0);
	assert_string_equal(got.result, "ok");
	assert_non_null(strstr(got.detail, "this database was restored from it"));
	audit_close(r);
	/* The live database is no copy: its own pending backups read by file. */
	assert_int_equal(audit_copy_of(fx->a), 0);
}

/* At the stop's deadline a backup still copying or checking is stopped: no
 * copy is kept, it is recorded failed, and its caller hears why. */
static void a_backup_stopped_at_the_deadline_keeps_no_copy(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "hd1", .action = "unlock", .target = "bob"};
	struct audit_filter f = {.action = "backup"};
	struct found got = {0};
	struct timeval limit = {.tv_sec = 30};

	/* Enough records that the copy and its chain check take far longer
	 * than the few instructions between start and stop below. */
	assert_int_equal(audit_batch_begin(fx->a, fx->err, sizeof fx->err), 0);
	for (int i = 0; i < 6000; i++)
		assert_int_equal(audit_batch_add(fx->a, &ev, "ok", "unlocked", NULL, NULL, fx->err,
		                                 sizeof fx->err),
		                 0);
	assert_int_equal(audit_batch_commit(fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(backup_start(fx->b, &adm1, done, fx, fx->err, sizeof fx->err), 0);
	backup_stop(fx->b);
	event_base_loopexit(fx->base, &limit);
	event_base_dispatch(fx->base);
	assert_int_equal(fx->calls, 1);
	assert_false(fx->ok);
	assert_non_null(strstr(fx->why, "ldapdeskd is stopping: the backup was stopped"));
	assert_int_equal(count_files(fx->bdir, ".db"), 0);
	assert_int_equal(count_files(fx->bdir, ".tmp"), 0);
	assert_int_equal(
	    audit_query(fx->a, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err), 0);
	assert_string_equal(got.result, "failed");
	/* The next backup is not stopped by the last one's flag. */
	run_one(fx);
	assert_true(fx->ok);
}

/* Record 3 edited behind the daemon's back (its trigger dropped). */
static void edit_record_3(struct fixture *fx)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DROP TRIGGER records_no_update;"
	                              "UPDATE records SET target = 'mallory' WHERE id = 3",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
}

/* A record edited behind the daemon's back: every backup was refused from
 * then on ("chain broken"), and health said failing for good. The copy is
 * kept (it breaks where the live database does: it is faithful), and says
 * where its chain breaks, in the answer, the log, and health, after a
 * restart too. */
static void a_copy_broken_as_the_live_database_is_kept_and_says_so(void **state)
{
	struct fixture *fx = *state;
	struct audit_filter f = {.action = "backup"};
	struct found got = {0};
	json_t *last;
	const char *chain;

	edit_record_3(fx);
	for (int i = 0; i < 2; i++) { /* not only once: every backup from then on */
		run_one(fx);
		assert_true(fx->ok);
		assert_int_equal(fx->records, 11 + 2 * i);
		assert_int_equal(access(fx->file, F_OK), 0);
		assert_non_null(
		    strstr(fx->why, "chain broken at record 3, as in the live database"));
		assert_non_null(strstr(fx->why, "kept as evidence"));
	}
	assert_null(backup_failing(fx->b));
	assert_int_equal(count_files(fx->bdir, ".tmp"), 0);
	last = backup_last(fx->b);
	assert_true(json_is_true(json_object_get(last, "ok")));
	chain = json_string_value(json_object_get(last, "chain"));
	assert_non_null(chain);
	assert_non_null(strstr(chain, "chain broken at record 3, as in the live database"));
	json_decref(last);
	assert_int_equal(
	    audit_query(fx->a, &f, last_backup_row, &got, NULL, fx->err, sizeof fx->err), 0);
	assert_string_equal(got.result, "ok");
	assert_non_null(strstr(got.detail, "records, checked; chain broken at record 3"));
	/* After a restart: the newest backup found on disk still says so. */
	backup_free(fx->b);
	assert_int_equal(backup_new(fx->base, &fx->conf, fx->a, &fx->b, fx->err, sizeof fx->err),
	                 0);
	assert_null(backup_failing(fx->b));
	last = backup_last(fx->b);
	assert_true(json_is_true(json_object_get(last, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(last, "chain")), "record 3"));
	json_decref(last);
}

/* Copies of a tampered database are kept, but must not push out the last
 * whole copies, which hold the edited records as they were: named
 * -broken.db, they are pruned apart (backup_keep 2 here). */
static void broken_copies_leave_the_whole_ones(void **state)
{
	struct fixture *fx = *state;

	for (int i = 0; i < 2; i++) {
		run_one(fx);
		assert_true(fx->ok);
	}
	assert_int_equal(count_files(fx->bdir, "-manual.db"), 2);
	edit_record_3(fx);
	for (int i = 0; i < 3; i++) {
		run_one(fx);
		assert_true(fx->ok);
		assert_non_null(strstr(fx->file, "-manual-broken.db"));
	}
	assert_int_equal(count_files(fx->bdir, "-manual-broken.db"), 2);
	assert_int_equal(count_files(fx->bdir, "-manual.db"), 2); /* the whole ones stay */
}

/* A whole chain: the answer carries no note and health no "chain". */
static void a_whole_chain_has_no_chain_note(void **state)
{
	struct fixture *fx = *state;
	json_t *last;

	run_one(fx);
	assert_true(fx->ok);
	assert_string_equal(fx->why, "");
	last = backup_last(fx->b);
	assert_null(json_object_get(last, "chain"));
	json_decref(last);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(backup_creates_a_checked_copy_in_a_private_dir),
	    T(second_start_while_running_is_refused),
	    T(old_backups_are_pruned_to_backup_keep),
	    T(on_demand_backups_leave_the_daily_ones_alone),
	    T(a_copy_broken_as_the_live_database_is_kept_and_says_so),
	    T(a_whole_chain_has_no_chain_note),
	    T(broken_copies_leave_the_whole_ones),
	    T(a_start_removes_copies_cut_short),
	    T(a_pending_backup_is_resolved_by_its_file),
	    T(a_directory_named_like_a_backup_is_not_one),
	    T(a_busy_store_delays_the_outcome_without_losing_it),
	    T(a_recovery_the_store_cannot_take_is_reported),
	    T(a_copy_restored_elsewhere_says_its_backup_was_made),
	    T(a_backup_stopped_at_the_deadline_keeps_no_copy),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
