/*
 * nest.c — see nest.h.
 *
 * Level 0 is the entry asked about: which groups list it directly (one
 * search), and which groups under group_base list it (the next level).
 * Each later level is groups: a group asked about that lies under
 * group_base is seen when it turns up as a parent, so only the groups
 * outside group_base (if any) are asked about per entry. Searches go out at
 * most NEST_INFLIGHT at a time, so a user in a thousand groups neither
 * fills the directory queue nor starves other requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nest.h"

#define NEST_GROUPS_MAX 64
#define NEST_WIDTH      1024 /* groups followed per level; more: refused (fail closed) */
#define NEST_SEEN       4096 /* groups met in all; more: refused */
#define NEST_INFLIGHT   32   /* searches of one walk out at once */
#define NEST_CUT                                                                                   \
	"the groups listing this entry nest more than 8 levels deep, or number over 1,024 at one " \
	"level: ldapdesk cannot tell whether a scope or protected group holds it, so it "          \
	"refuses; flatten the groups"

struct walk {
	struct dir *d;
	nest_fn fn;
	void *arg;
	bool first;
	bool cut;                      /* groups left unfollowed (too deep, too many) */
	unsigned long needs;           /* bits that must be found when cut, else refused */
	char *groups[NEST_GROUPS_MAX]; /* as given */
	char *canon[NEST_GROUPS_MAX];  /* canonical, to compare with parents */
	size_t n_groups;
	char *outside[NEST_GROUPS_MAX]; /* those not under group_base */
	size_t n_outside;
	char *level[NEST_WIDTH], *next[NEST_WIDTH];
	size_t n_level, n_next, sent; /* sent: entries of level asked about */
	char *seen[NEST_SEEN];        /* canonical DNs met (a cycle is followed once) */
	size_t n_seen;
	size_t pending; /* searches out */
	int depth;
	unsigned long mask;
	enum dir_status worst;
	char err[256];
};

/* Frees v[0..*n) (not v itself) and empties it. */
static void free_strs(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	*n = 0;
}

static void walk_pump(struct walk *w);
static void walk_done(struct walk *w);

static void walk_fail(struct walk *w, enum dir_status st, const char *err)
{
	if (w->worst != DIR_OK)
		return;
	w->worst = st;
	snprintf(w->err, sizeof(w->err), "%s", err != NULL ? err : "the directory did not answer");
}

static void walk_free(struct walk *w)
{
	size_t n = w->n_groups;

	free_strs(w->groups, &w->n_groups);
	free_strs(w->canon, &n);
	w->n_outside = 0; /* pointers into groups */
	free_strs(w->level, &w->n_level);
	free_strs(w->next, &w->n_next);
	free_strs(w->seen, &w->n_seen);
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
	if (st == DIR_OK && w->cut && w->needs != 0 && (w->mask & w->needs) == 0) {
		st = DIR_REFUSED;
		snprintf(w->err, sizeof(w->err), "%s", NEST_CUT);
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
		/* Groups past the deepest level read are not followed. */
		if (w->n_next > 0 && w->depth + 1 >= NEST_DEPTH_MAX && !walk_complete(w)) {
			w->cut = true;
			free_strs(w->next, &w->n_next);
		}
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

/* A search is answered: more go out, or, the last one out, the level ends. */
static void walk_done(struct walk *w)
{
	w->pending--;
	walk_pump(w);
	if (w->pending == 0)
		walk_level_end(w);
}

static void walk_member_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct walk *w = arg;

	if (st != DIR_OK)
		walk_fail(w, st, err);
	else
		w->mask |= mask;
	walk_done(w);
}

/* An answer about the groups outside group_base: their bits in w->groups. */
static void walk_outside_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct walk *w = arg;

	for (size_t i = 0; st == DIR_OK && i < w->n_outside; i++)
		if (mask & (1UL << i))
			for (size_t g = 0; g < w->n_groups; g++)
				if (w->groups[g] == w->outside[i])
					w->mask |= 1UL << g;
	walk_member_cb(arg, st, 0, err);
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
		w->cut = true;
		return true;
	}
	w->seen[w->n_seen++] = c;
	return false;
}

/* One parent of an entry of this level: a group asked about lists it (its
 * bit), and it is followed at the next level unless met before. */
static void walk_parent(struct walk *w, const char *dn)
{
	char *c = dir_dn_canon(dn);

	for (size_t g = 0; c != NULL && g < w->n_groups; g++)
		if (strcmp(c, w->canon[g]) == 0)
			w->mask |= 1UL << g;
	if (walk_seen(w, c))
		return;
	if (w->n_next == NEST_WIDTH)
		w->cut = true;
	else if ((w->next[w->n_next] = strdup(dn)) == NULL)
		walk_fail(w, DIR_UNAVAILABLE, "out of memory");
	else
		w->n_next++;
}

static void walk_parents_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct walk *w = arg;

	if (st != DIR_OK && st != DIR_NOT_FOUND)
		walk_fail(w, st, err);
	for (size_t i = 0; st == DIR_OK && i < n && w->worst == DIR_OK; i++)
		if (dns[i] != NULL)
			walk_parent(w, dns[i]);
	walk_done(w);
}

/* Asks about one entry of the level: its direct groups (level 0: all of
 * them; later: those outside group_base), and its parents under group_base. */
static void walk_ask(struct walk *w, const char *e)
{
	int rc = 0;

	if (w->depth == 0)
		rc = dir_member_of(w->d, e, (const char *const *)w->groups, w->n_groups,
		                   walk_member_cb, w);
	else if (w->n_outside > 0)
		rc = dir_member_of(w->d, e, (const char *const *)w->outside, w->n_outside,
		                   walk_outside_cb, w);
	else
		rc = 1; /* nothing to ask */
	if (rc == 0)
		w->pending++;
	else if (rc == -1)
		walk_fail(w, DIR_UNAVAILABLE, "too many directory operations queued");
	if (!dir_can_find_groups(w->d))
		return; /* direct members only */
	if (dir_find_groups_of(w->d, e, walk_parents_cb, w) == 0)
		w->pending++;
	else
		walk_fail(w, DIR_UNAVAILABLE, "too many directory operations queued");
}

/* Sends the level's next searches, up to NEST_INFLIGHT out (answers
 * never come before a search is submitted: no re-entry). */
static void walk_pump(struct walk *w)
{
	while (w->sent < w->n_level && w->pending < NEST_INFLIGHT && w->worst == DIR_OK &&
	       !walk_complete(w))
		walk_ask(w, w->level[w->sent++]);
}

static int walk_groups(struct walk *w, const char *const *groups, size_t n)
{
	for (; w->n_groups < n; w->n_groups++) {
		size_t i = w->n_groups;

		if ((w->groups[i] = strdup(groups[i])) == NULL)
			return -1;
		if ((w->canon[i] = dir_dn_canon(groups[i])) == NULL) {
			free(w->groups[i]);
			return -1;
		}
		if (!dir_in_group_base(w->d, groups[i]))
			w->outside[w->n_outside++] = w->groups[i];
	}
	return 0;
}

int nest_member_of(struct dir *d, const char *dn, const char *const *groups, size_t n, bool first,
                   unsigned long needs, nest_fn fn, void *arg)
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
