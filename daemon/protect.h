/*
 * protect.h — "is this entry a member of a protected group?", answered from a
 * short-lived snapshot of the protected groups' members instead of one
 * directory search per request.
 *
 * A snapshot is at most `[ldap] cache_seconds` old (taken when its reads
 * started), and never older than the daemon's own last change to a group:
 * protect_invalidate() makes the next check wait for a fresh one. With
 * cache_seconds 0 each check waits for a snapshot of its own. When the
 * groups have too many members to hold (or nest deeper than 8 levels), every
 * check searches the directory upward, through the groups that list the
 * user under the entry user_base, group_base and the groups share (the
 * suffix, as a rule), or is refused when they share none. A [protect] group
 * that does not exist refuses every check until it does (a typo must not
 * protect nobody).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "dir.h"

struct protect;

/* st DIR_OK: member tells; otherwise the check failed (fail closed: the
 * caller refuses). err is for people, valid during the call. */
typedef void (*protect_fn)(void *arg, enum dir_status st, bool member, const char *err);

/* d must outlive the result. tag prefixes its log lines ("protection"); what
 * names its groups and who whom they mark, in refusals ("the protected and
 * role groups", "is protected"): static strings. Return NULL on ENOMEM. */
struct protect *protect_new(struct dir *d, const char *tag, const char *what, const char *who);

/* Answers every waiting check with DIR_UNAVAILABLE, then frees p. NULL is a
 * no-op. */
void protect_free(struct protect *p);

/* Is the entry dn a member of one of groups[0..n) (n <= 64)? The first
 * `required` groups must exist ([protect]: DIR_REFUSED while one does not);
 * the others (roles) may not. ttl is the snapshot's lifetime in seconds (0:
 * a snapshot taken for this check). groups are copied; a different list
 * than the snapshot's starts a new one. fn may be called before this
 * returns. Return: 0 (fn called once), or -1 (too many waiting, required >
 * n, or ENOMEM; fn not called). */
int protect_check(struct protect *p, const char *dn, const char *const *groups, size_t n,
                  size_t required, int ttl, protect_fn fn, void *arg);

/* A group may have changed (the daemon changed one): checks from now on
 * wait for a snapshot whose reads start after this call. */
void protect_invalidate(struct protect *p);
