/*
 * nest.c — see nest.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nest.h"

#define NEST_GROUPS_MAX 64
#define NEST_WIDTH      1024 /* groups followed per level; more: refused (fail closed) */
#define NEST_SEEN       4096 /* groups met in all; more: refused */
#define NEST_TOO_MANY   "too many groups within the groups asked about to follow"

struct walk {
	struct dir *d;
	nest_fn fn;
	void *arg;
	bool first;
	char *groups[NEST_GROUPS_MAX];
	size_t n_groups;
	char *level[NEST_WIDTH], *next[NEST_WIDTH];
	size_t n_level, n_next;
	char *seen[NEST_SEEN]; /* canonical DNs met (a cycle is followed once) */
	size_t n_seen;
	size_t pending;
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

static void walk_step(struct walk *w);

static void walk_fail(struct walk *w, enum dir_status st, const char *err)
{
	if (w->worst != DIR_OK)
		return;
	w->worst = st;
	snprintf(w->err, sizeof(w->err), "%s", err != NULL ? err : "the directory did not answer");
}

static void walk_free(struct walk *w)
{
	free_strs(w->groups, &w->n_groups);
	free_strs(w->level, &w->n_level);
	free_strs(w->next, &w->n_next);
	free_strs(w->seen, &w->n_seen);
	free(w);
}

/* A level is answered: done, or the next level asked. A walk that found a
 * group with first answers DIR_OK even if another search of its level
 * failed: a found membership is a fact (protection then holds). */
static void walk_done(struct walk *w)
{
	bool found = w->first && w->mask != 0;

	if (--w->pending > 0)
		return;
	if (found || w->worst != DIR_OK || w->n_next == 0 || w->depth + 1 >= NEST_DEPTH_MAX) {
		w->fn(w->arg, found ? DIR_OK : w->worst, w->mask,
		      found || w->worst == DIR_OK ? NULL : w->err);
		walk_free(w);
		return;
	}
	free_strs(w->level, &w->n_level);
	memcpy(w->level, w->next, w->n_next * sizeof(w->next[0]));
	w->n_level = w->n_next;
	w->n_next = 0;
	w->depth++;
	walk_step(w);
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

/* Adds dn's canonical form to the DNs met. Return: true if it was met
 * before (or cannot be noted: the walk then fails). */
static bool walk_seen(struct walk *w, const char *dn)
{
	char *c = dir_dn_canon(dn);

	for (size_t i = 0; c != NULL && i < w->n_seen; i++)
		if (strcmp(w->seen[i], c) == 0) {
			free(c);
			return true;
		}
	if (c == NULL || w->n_seen == NEST_SEEN) {
		free(c);
		walk_fail(w, DIR_REFUSED, NEST_TOO_MANY);
		return true;
	}
	w->seen[w->n_seen++] = c;
	return false;
}

static void walk_parents_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct walk *w = arg;

	if (st != DIR_OK && st != DIR_NOT_FOUND)
		walk_fail(w, st, err);
	for (size_t i = 0; st == DIR_OK && i < n && w->worst == DIR_OK; i++) {
		if (dns[i] == NULL || walk_seen(w, dns[i]))
			continue;
		if (w->n_next == NEST_WIDTH || (w->next[w->n_next] = strdup(dns[i])) == NULL)
			walk_fail(w, DIR_REFUSED, NEST_TOO_MANY);
		else
			w->n_next++;
	}
	walk_done(w);
}

/* Asks, for each entry of this level, which groups list it directly and
 * which groups under group_base list it (the next level). */
static void walk_step(struct walk *w)
{
	const char *const *groups = (const char *const *)w->groups;

	w->pending = 1; /* held while submitting */
	for (size_t i = 0; i < w->n_level && w->worst == DIR_OK; i++) {
		if (dir_member_of(w->d, w->level[i], groups, w->n_groups, walk_member_cb, w) == 0)
			w->pending++;
		else
			walk_fail(w, DIR_UNAVAILABLE, "too many directory operations queued");
		if (!dir_can_find_groups(w->d))
			continue; /* direct members only */
		if (dir_find_groups_of(w->d, w->level[i], walk_parents_cb, w) == 0)
			w->pending++;
		else
			walk_fail(w, DIR_UNAVAILABLE, "too many directory operations queued");
	}
	walk_done(w);
}

int nest_member_of(struct dir *d, const char *dn, const char *const *groups, size_t n, bool first,
                   nest_fn fn, void *arg)
{
	struct walk *w;

	if (n == 0 || n > NEST_GROUPS_MAX || (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->d = d;
	w->fn = fn;
	w->arg = arg;
	w->first = first;
	w->worst = DIR_OK;
	for (; w->n_groups < n; w->n_groups++)
		if ((w->groups[w->n_groups] = strdup(groups[w->n_groups])) == NULL)
			break;
	if (w->n_groups < n || (w->level[0] = strdup(dn)) == NULL) {
		walk_free(w);
		return -1;
	}
	w->n_level = 1;
	(void)walk_seen(w, dn);
	walk_step(w);
	return 0;
}
