/*
 * nest.c — see nest.h.
 *
 * Level 0 is the entry asked about, each later level the groups under
 * group_base that list one of the level before (found by one search per
 * entry). Every group asked about is asked about each level's entries, in
 * batches of 16, one search per group whose filter names them all: the
 * directory matches the group's DN and the member values by its own rules
 * (RDN order, spaces, escapes, Unicode case and width), which no DN
 * comparison here could follow in full. Without group_base, level 0 is
 * all: one search per group. Operations go out at most NEST_INFLIGHT at a
 * time (a batch at least), so a user in a thousand groups neither fills
 * the directory queue nor starves other requests. Groups listing the
 * deepest level's groups are a level too many: the walk is cut (nest.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nest.h"

#define NEST_GROUPS_MAX 64
#define NEST_WIDTH      1024 /* groups followed per level; more: refused (fail closed) */
#define NEST_SEEN       4096 /* groups met in all; more: refused */
#define NEST_INFLIGHT   32   /* directory operations of one walk out at once */

/* Why groups were left unfollowed (the first reason met is told). */
enum cut { CUT_NONE, CUT_DEEP, CUT_SIZE };

struct walk {
	struct dir *d;
	nest_fn fn;
	void *arg;
	bool first;
	char *base;          /* group_base when the walk began (NULL: parents not asked) */
	bool up;             /* base != NULL */
	enum cut cut;        /* why groups were left unfollowed */
	unsigned long needs; /* bits that must be found when cut, else refused */
	char *groups[NEST_GROUPS_MAX]; /* as given */
	size_t n_groups;
	char *level[NEST_WIDTH], *next[NEST_WIDTH];
	size_t n_level, n_next, sent; /* sent: entries of level asked about */
	char *seen[NEST_SEEN];        /* canonical DNs met (a cycle is followed once) */
	size_t n_seen;
	size_t pending; /* answers awaited */
	size_t ops;     /* directory operations out (a member check costs one per group) */
	int depth;
	unsigned long mask;
	enum dir_status worst;
	char err[512];
};

/* Frees v[0..*n) (not v itself) and empties it. */
static void free_strs(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	*n = 0;
}

static void walk_pump(struct walk *w);

static void walk_fail(struct walk *w, enum dir_status st, const char *err)
{
	if (w->worst != DIR_OK)
		return;
	w->worst = st;
	snprintf(w->err, sizeof(w->err), "%s", err != NULL ? err : "the directory did not answer");
}

/* Groups are left unfollowed; the first reason is the one told. */
static void walk_cut(struct walk *w, enum cut why)
{
	if (w->cut == CUT_NONE)
		w->cut = why;
}

static void walk_free(struct walk *w)
{
	free_strs(w->groups, &w->n_groups);
	free_strs(w->level, &w->n_level);
	free_strs(w->next, &w->n_next);
	free_strs(w->seen, &w->n_seen);
	free(w->base);
	free(w);
}

static bool walk_complete(const struct walk *w)
{
	unsigned long all = w->n_groups == 64 ? ~0UL : (1UL << w->n_groups) - 1;

	return (w->first && w->mask != 0) || w->mask == all;
}

/* A walk cut short that found none of the needed bits could have missed
 * one: an operator in no scope would be unlimited, a protected user
 * unprotected. It is refused (fail closed); what it found otherwise stands
 * (a role missed gives less). */
static void walk_answer(struct walk *w, enum dir_status st)
{
	if (st == DIR_OK && w->cut != CUT_NONE && w->needs != 0 && (w->mask & w->needs) == 0) {
		st = DIR_REFUSED;
		snprintf(
		    w->err, sizeof(w->err),
		    "%s: ldapdesk cannot tell whether a scope or protected group holds it, so it "
		    "refuses; %s",
		    w->cut == CUT_SIZE ? "the directory's size limit cut short the list of "
		                         "groups listing this entry"
		                       : "the groups listing this entry nest more than 8 levels "
		                         "deep, or number over 1,024 at one level",
		    w->cut == CUT_SIZE ? "give the service account (bind_dn) a larger size limit "
		                         "(slapd: limits dn.exact=\"<bind_dn>\" size=unlimited)"
		                       : "flatten the groups");
	}
	w->fn(w->arg, st, w->mask, st == DIR_OK ? NULL : w->err);
	walk_free(w);
}

/* Nothing is out any more: the level is answered (or the walk stopped).
 * The walk answers, or the next level goes out. A walk that found what it
 * needs answers DIR_OK even if another search failed: a found membership
 * is a fact (protection then holds, a role is given). */
static void walk_level_end(struct walk *w)
{
	while (w->pending == 0) {
		if (walk_complete(w) || w->worst != DIR_OK || w->n_next == 0) {
			walk_answer(w, walk_complete(w) ? DIR_OK : w->worst);
			return;
		}
		free_strs(w->level, &w->n_level);
		memcpy(w->level, w->next, w->n_next * sizeof(w->next[0]));
		w->n_level = w->n_next;
		w->n_next = 0;
		w->sent = 0;
		w->depth++;
		walk_pump(w);
	}
}

/* An answer costing ops operations is in: more go out, or, the last one
 * out, the level ends. */
static void walk_done(struct walk *w, size_t ops)
{
	w->pending--;
	w->ops -= ops;
	walk_pump(w);
	if (w->pending == 0)
		walk_level_end(w);
}

/* Which groups list one of the level's entries: their bits. Past the
 * deepest level followed they are not counted but cut the walk, as a
 * parent there does. */
static void walk_member_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct walk *w = arg;

	if (st != DIR_OK && st != DIR_PARTIAL)
		walk_fail(w, st, err);
	else if (st == DIR_PARTIAL)
		walk_cut(w, CUT_SIZE);
	if (st != DIR_OK && st != DIR_PARTIAL)
		mask = 0;
	/* A group already found at a shallower level adds nothing there. */
	if (w->depth == NEST_DEPTH_MAX && (mask & ~w->mask) != 0)
		walk_cut(w, CUT_DEEP);
	else
		w->mask |= mask;
	walk_done(w, w->n_groups);
}

/* Adds canonical c to the DNs met (taking it). Return: true if it was met
 * before (or cannot be noted: the walk then fails). */
static bool walk_seen(struct walk *w, char *c)
{
	for (size_t i = 0; c != NULL && i < w->n_seen; i++)
		if (strcmp(w->seen[i], c) == 0) {
			free(c);
			return true;
		}
	if (c == NULL) {
		walk_fail(w, DIR_UNAVAILABLE, "out of memory");
		return true;
	}
	if (w->n_seen == NEST_SEEN) {
		free(c);
		walk_cut(w, CUT_DEEP);
		return true;
	}
	w->seen[w->n_seen++] = c;
	return false;
}

/* One parent of an entry of this level, followed at the next level unless
 * met before (whether it is a group asked about, the member searches
 * tell). A parent of the deepest level's groups is a level too many: not
 * followed, and the walk is cut (unless it was met before: a cycle). */
static void walk_parent(struct walk *w, const char *dn)
{
	char *c = dir_dn_canon(dn);

	if (walk_seen(w, c))
		return;
	if (w->depth == NEST_DEPTH_MAX || w->n_next == NEST_WIDTH)
		walk_cut(w, CUT_DEEP);
	else if ((w->next[w->n_next] = strdup(dn)) == NULL)
		walk_fail(w, DIR_UNAVAILABLE, "out of memory");
	else
		w->n_next++;
}

/* The groups under group_base that list an entry. Cut short by a size
 * limit, those that came are parents all the same; the rest are unknown.
 * A subtree search finds nothing without failing unless its base is
 * missing: a group_base mistyped or renamed is no "no parents" (scopes and
 * protection through nested groups would silently vanish) but a refusal. */
static void walk_parents_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct walk *w = arg;

	if (st == DIR_PARTIAL)
		walk_cut(w, CUT_SIZE);
	else if (st == DIR_NOT_FOUND) /* slapd says so too when bind_dn may not see it */
		walk_fail(w, DIR_REFUSED,
		          "the entry searched for nested groups ([ldap] group_base; for a check "
		          "of many protected members, the entry it and user_base share) does not "
		          "exist in the directory (or the service account, bind_dn, may not read "
		          "it), so nested groups cannot be read: correct group_base in ldapdeskd's "
		          "configuration, or let bind_dn read it");
	else if (st != DIR_OK)
		walk_fail(w, st, err);
	for (size_t i = 0; (st == DIR_OK || st == DIR_PARTIAL) && i < n && w->worst == DIR_OK; i++)
		if (dns[i] != NULL)
			walk_parent(w, dns[i]);
	walk_done(w, 1);
}

/* Asks about entries e[0..k) of the level: which groups list any of them
 * directly, in one search per group, and each one's parents under
 * group_base. */
static void walk_ask(struct walk *w, char *const *e, size_t k)
{
	size_t n = w->n_groups;

	if (dir_member_of_any(w->d, (const char *const *)e, k, (const char *const *)w->groups, n,
	                      walk_member_cb, w) == -1) {
		walk_fail(w, DIR_UNAVAILABLE, "too many directory operations queued");
		return;
	}
	w->pending++;
	w->ops += n;
	for (size_t i = 0; w->up && i < k; i++) {
		if (dir_find_groups_under(w->d, w->base, e[i], walk_parents_cb, w) == -1) {
			walk_fail(w, DIR_UNAVAILABLE, "too many directory operations queued");
			return;
		}
		w->pending++;
		w->ops++;
	}
}

/* Sends the level's next searches while fewer than NEST_INFLIGHT
 * operations are out (a batch at least, whatever it costs); answers never
 * come before a search is submitted: no re-entry. */
static void walk_pump(struct walk *w)
{
	size_t asked = w->n_groups;

	while (w->sent < w->n_level && w->worst == DIR_OK && !walk_complete(w)) {
		size_t room = w->ops + asked < NEST_INFLIGHT ? NEST_INFLIGHT - w->ops - asked : 0;
		size_t k = w->n_level - w->sent;

		/* Without group_base only the entry itself is asked about. With
		 * nothing out, a whole batch goes whatever it costs. */
		k = !w->up ? 1 : k < DIR_MEMBER_ANY_MAX ? k : DIR_MEMBER_ANY_MAX;
		if (w->ops > 0)
			k = k < room ? k : room;
		if (k == 0)
			return;
		walk_ask(w, &w->level[w->sent], k);
		w->sent += k;
	}
}

static int walk_groups(struct walk *w, const char *const *groups, size_t n)
{
	for (; w->n_groups < n; w->n_groups++)
		if ((w->groups[w->n_groups] = strdup(groups[w->n_groups])) == NULL)
			return -1;
	return 0;
}

int nest_member_of(struct dir *d, const char *dn, const char *base, const char *const *groups,
                   size_t n, bool first, unsigned long needs, nest_fn fn, void *arg)
{
	struct walk *w;

	if (n == 0 || n > NEST_GROUPS_MAX || (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->d = d;
	w->fn = fn;
	w->arg = arg;
	w->first = first;
	w->needs = needs;
	w->worst = DIR_OK;
	/* Kept for the whole walk: its levels are parents under one base (a
	 * reload may free the configuration's copy half-way). */
	if (base != NULL && (w->base = strdup(base)) == NULL) {
		free(w);
		return -1;
	}
	w->up = w->base != NULL;
	if (walk_groups(w, groups, n) == -1 || (w->level[0] = strdup(dn)) == NULL) {
		walk_free(w);
		return -1;
	}
	w->n_level = 1;
	(void)walk_seen(w, dir_dn_canon(dn));
	walk_pump(w);
	if (w->pending == 0) /* nothing could be sent: answered now */
		walk_level_end(w);
	return 0;
}
