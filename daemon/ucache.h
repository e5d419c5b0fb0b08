/*
 * ucache.h — a bounded cache of where users are: uid -> DN and department.
 *
 * Only for writes the server can check: the daemon asserts the cached
 * department (and that the account is not disabled) on the modify itself
 * (RFC 4528), and a moved or deleted entry answers noSuchObject, so a stale
 * entry is caught by the directory and read again, never acted on.
 */
#pragma once
#include <stdbool.h>
#include <time.h>

struct ucache;

/* slots entries at most, each kept ttl seconds; a uid may sit in any of the
 * 8 slots of its set (fewer if slots < 8; slots beyond a multiple of 8 stay
 * unused), and a full set forgets the entry stored longest ago. Return NULL
 * on ENOMEM. */
struct ucache *ucache_new(unsigned slots, int ttl);
void ucache_free(struct ucache *c);

/* Remembers uid (ASCII case ignored) at dn with department (NULL: none).
 * Strings are copied; on ENOMEM nothing is kept. */
void ucache_put(struct ucache *c, const char *uid, const char *dn, const char *department,
                time_t now);

/* The entry for uid if younger than ttl: *name (the uid as it was put, which
 * is the directory's spelling; skipped if name is NULL), *dn and *department
 * (may be NULL) are malloc'd copies for the caller. Return: true if found. */
bool ucache_get(struct ucache *c, const char *uid, time_t now, char **name, char **dn,
                char **department);

/* Forgets every entry at dn or below it (a move, rename or delete); with dn
 * NULL, forgets everything. */
void ucache_drop(struct ucache *c, const char *dn);
