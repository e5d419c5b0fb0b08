/*
 * backup.h — daily and on-demand copies of the audit database: made on a
 * thread with VACUUM INTO, checked (integrity_check + chain walk; a broken
 * chain must break where the live database's does) before they count,
 * pruned to [audit] backup_keep. No HTTP here.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "audit.h"
#include "config.h"

struct event_base;
struct backup;

/* Called on the event loop when a backup ends: ok 1 with file (full path)
 * and records (in the copy), err NULL or, for a copy kept with its chain
 * broken as the live database's, a note saying where; or ok 0 with err.
 * Strings are borrowed. */
typedef void (*backup_fn)(void *arg, int ok, const char *file, int64_t records, const char *err);

/* Creates backup_dir (0700) if missing and schedules the daily backup at
 * backup_at (local time). Copies what it needs from conf (which may then be
 * freed); backup_dir absent = "backup" beside the database. base must have
 * been created after evthread_use_pthreads(). a is used on the loop only
 * (to log each backup as a "backup" event by ldapdeskd).
 * Return: 0 and *bp (free with backup_free), or -1 with err filled. */
int backup_new(struct event_base *base, const struct config *conf, struct audit *a,
               struct backup **bp, char *err, size_t errlen);

/* SIGHUP: backup_at, backup_dir and backup_keep from conf apply from the
 * next backup on; a copy running now finishes with the old ones (nothing
 * waits for it). Return: 0, or -1 with err (the old settings stay). */
int backup_set_config(struct backup *b, const struct config *conf, char *err, size_t errlen);

/* Who asked for a backup, as its record names them (copied). */
struct backup_who {
	const char *uid, *dn, *addr;
};

/* Starts one backup now, asked for by who (NULL: the daemon's own
 * schedule, recorded as ldapdeskd); its attempt is stored first. fn (may be
 * NULL) is called on the loop when it ends. Return: 0 started, -1 if one is
 * already running, -2 if its thread cannot be started (recorded failed), -3
 * if a backup was made this second already (try again in a second), -4 if
 * the store cannot record its attempt (err says why), -5 if the store is
 * busy (an import holds its write lock; err says so); fn is not called but
 * for 0. An outcome the store is too busy to take is kept and tried again
 * every 2 s (and once more by backup_free). */
int backup_start(struct backup *b, const struct backup_who *who, backup_fn fn, void *arg, char *err,
                 size_t errlen);

/* At start-up, for a backup attempt an earlier run left pending (attempt
 * id, its detail "into FILE"): ok when FILE is there (only checked copies
 * get that name), failed otherwise; the outcome is written to a. -1 (and
 * logged) when a was too busy to take it: the caller tries again later. */
int backup_recover(struct audit *a, int64_t attempt, const char *detail);

/* {"file","at","records","ok"} of the last good backup (records null when
 * only found on disk at start-up), and "chain" when it was kept with its
 * chain broken as the live database's (where, and why it was kept), or
 * json_null(). New reference. */
json_t *backup_last(const struct backup *b);
/* The directory backups go to (backup_dir, or its default beside the database). */
const char *backup_dir(const struct backup *b);
/* Why the most recent backup failed, or NULL (none failed since the last
 * good one). Valid until the next backup ends. */
const char *backup_failing(const struct backup *b);

/* Whether a backup is being made now (the stop waits for it). */
bool backup_running(const struct backup *b);

/* The stop's deadline passed: the running backup's copy or check ends early
 * (no copy kept); it is then recorded failed and its caller answered, as it
 * ends. Nothing when none runs. */
void backup_stop(struct backup *b);

/* Waits for a running backup's thread and records it (nobody is answered:
 * the loop has ended), then frees b. NULL is a no-op. */
void backup_free(struct backup *b);
