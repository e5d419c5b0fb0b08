/*
 * nest.h — "which of these groups list this entry, directly or through
 * groups nested in them?", asked upward: is the entry, or a group under
 * [ldap] group_base that lists it (and so on, up to NEST_DEPTH_MAX levels),
 * a direct member of one of the groups? Each group is asked by a base
 * search whose filter names the entries (the directory matches DNs by its
 * own rules). An entry is in few groups, so this stays a handful of
 * searches however large the groups asked about are.
 * Used for protection (protect.c) and for roles and scopes at login.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "dir.h"

/* Groups within groups followed this deep: a group up to 8 levels above
 * the entry counts (level 1 lists it directly); one at level 9 cuts the
 * walk short. */
#define NEST_DEPTH_MAX 8

/* st DIR_OK: mask has bit i set for each groups[i] that lists the entry
 * (with first, at least the first found); otherwise the walk failed (cut
 * short without a needed bit, the directory) and err says why, valid
 * during the call. */
typedef void (*nest_fn)(void *arg, enum dir_status st, unsigned long mask, const char *err);

/* Asks about dn and groups[0..n) (n <= 64; copied), following the groups
 * under base (copied; NULL: none, the entry alone is asked about) that list
 * it, and those that list them. first: stop once one
 * is found. Groups nested deeper than NEST_DEPTH_MAX, over 1,024 at one
 * level (4,096 in all), or cut from a search by the directory's size limit,
 * are not followed; when that happens and none of the bits in needs was
 * found, the answer is DIR_REFUSED (a membership missed
 * there would widen rights: a scope, a protected group), otherwise DIR_OK
 * with what was found (a role missed gives less). Without group_base only
 * direct members are seen (as dir_member_of). Return: 0, fn called once
 * (perhaps before this returns); -1 (ENOMEM), fn not called. */
int nest_member_of(struct dir *d, const char *dn, const char *base, const char *const *groups,
                   size_t n, bool first, unsigned long needs, nest_fn fn, void *arg);
