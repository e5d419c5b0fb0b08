/*
 * hwm.h — the audit's high-water mark: the highest record id ever
 * committed, kept in a small file beside the database ("DATABASE-ids"), so
 * that a database put back from an older copy (a restore) does not give the
 * ids of the records it lost to new ones (DESIGN: ids are never reused).
 *
 * Best effort by design: written after each commit, without fsync (a crash
 * can only leave it behind the database, never ahead of it); a missing or
 * unreadable file reads as 0 (nothing known).
 */
#pragma once
#include <stdint.h>

struct hwm;

/* For the database at dbpath (copied); the file is opened on the first
 * write. Return NULL on ENOMEM. */
struct hwm *hwm_open(const char *dbpath);

/* Records id if it is above what was written; a file that cannot be
 * written is skipped (and said once in the daemon's log). */
void hwm_note(struct hwm *h, int64_t id);

/* The mark kept for dbpath, or 0 if none. */
int64_t hwm_read(const char *dbpath);

void hwm_free(struct hwm *h);
