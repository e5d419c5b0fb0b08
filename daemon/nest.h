/*
 * nest.h — "which of these groups list this entry, directly or through
 * groups nested in them?", asked upward: is the entry, or a group under
 * [ldap] group_base that lists it (and so on, up to NEST_DEPTH_MAX levels),
 * a direct member of one of the groups? An entry is in few groups, so this
 * stays a handful of searches however large the groups asked about are.
 * Used for protection (protect.c) and for roles and scopes at login.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "dir.h"

/* Groups within groups followed this deep. */
#define NEST_DEPTH_MAX 8

/* st DIR_OK: mask has bit i set for each groups[i] that lists the entry
 * (with first, at least the first found); otherwise the walk failed (too
 * many groups to follow, the directory) and err says why, valid during the
 * call. */
typedef void (*nest_fn)(void *arg, enum dir_status st, unsigned long mask, const char *err);

/* Asks about dn and groups[0..n) (n <= 64; copied). first: stop at the
 * first level where one is found. Without group_base only direct members are
 * seen (as dir_member_of). Return: 0, fn called once (perhaps before this
 * returns); -1 (queue full or ENOMEM), fn not called. */
int nest_member_of(struct dir *d, const char *dn, const char *const *groups, size_t n, bool first,
                   nest_fn fn, void *arg);
