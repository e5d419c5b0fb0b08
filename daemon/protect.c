/*
 * protect.c — the protected-membership snapshot (see protect.h).
 *
 * Why a snapshot: every unlock, reset and grant asked the directory "is this
 * user in a protected group?" — one search per request, which in the bench
 * cost slapd and the daemon about as much CPU as the change itself. The
 * protected groups are few and small (roles, [protect]); their members are
 * read with one base search per group, at most every cache_seconds, and each
 * check is a binary search in memory. Each member value is read back from
 * the directory (resolve): only slapd knows which spellings it takes for
 * one DN.
 *
 * Freshness: a snapshot's age counts from when its reads *started*, and each
 * protect_invalidate() starts a new generation: a check waits for a snapshot
 * whose reads started in its generation or later, so a change the daemon
 * made itself is always seen by the next check. Generations (rather than
 * throwing a refresh away) keep every check to at most two refreshes even
 * when invalidations never stop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "log.h"
#include "nest.h"
#include "protect.h"

#define PROTECT_WAIT_MAX    4096   /* checks waiting for one refresh */
#define PROTECT_MEMBERS_MAX 100000 /* members held; more: search per check */
#define PROTECT_GROUPS_MAX  64
/* Directory reads per refresh (see resolve, expand); more: search per
 * check. */
#define PROTECT_RESOLVE_MAX 1024
/* Groups within groups followed this deep. */
#define PROTECT_NEST_MAX NEST_DEPTH_MAX
/* Seconds before a snapshot is tried again after one was too big. */
#define PROTECT_RETRY_S 300
#define NESTED_TOO_BIG                                                                             \
	"%s hold more members than ldapdesk reads at once (1,024) or nest deeper than 8 levels, "  \
	"and a group nested in them lies outside the entry they and [ldap] user_base share (or "   \
	"they share none), the only place it could ask which groups list a user: it cannot tell "  \
	"who %s, so it refuses; keep the nested groups under that entry, or shrink the groups "    \
	"(tried again within 5 minutes)"

struct waiter {
	TAILQ_ENTRY(waiter) entry;
	char *dn;               /* canonical */
	unsigned long long gen; /* the generation it needs */
	protect_fn fn;
	void *arg;
};
TAILQ_HEAD(waiters, waiter);

/* The read of one group's members (and, under 389 DS, unique members). */
struct gread {
	struct protect *p;
	bool required;
	char *name; /* the group as configured (a reload may change the list) */
};

struct protect {
	struct dir *d;
	const char *tag;                  /* the log's prefix (a static string) */
	char too_big_err[512];            /* NESTED_TOO_BIG, told of these groups */
	char *groups[PROTECT_GROUPS_MAX]; /* what the snapshot (and refresh) is of */
	size_t n_groups;
	size_t n_required;                      /* groups[0..n_required) must exist */
	struct gread reads[PROTECT_GROUPS_MAX]; /* the refresh's, one per group */
	size_t n_reads;
	char missing_err[512]; /* which required group is missing (see missing) */
	char **members;        /* the snapshot: canonical DNs, sorted */
	size_t n_members;
	time_t taken;                     /* monotonic seconds when its reads started */
	unsigned long long gen, snap_gen; /* current generation, the snapshot's */
	/* The refresh in flight. */
	time_t started;
	unsigned long long refresh_gen;
	size_t pending;
	enum dir_status worst;
	char err[256];
	char **fresh;
	size_t n_fresh, cap_fresh;
	size_t n_resolve; /* member values this refresh reads back */
	struct waiters waiting;
	size_t n_waiting;
	time_t too_big_at;
	char *seen[PROTECT_RESOLVE_MAX]; /* canonical DNs of the groups followed */
	size_t n_seen;
	bool valid;
	bool refreshing;
	bool too_big; /* a group has more members than we hold: search per check */
	/* A required group the last refresh did not find: every check is
	 * refused until one finds it (its name in missing_err). */
	bool missing;
	/* The last refresh met a group nested in these outside wide_base(),
	 * where check_direct cannot see it: checks that would ask upward are
	 * refused instead. */
	bool nested_outside;
	bool fresh_missing, fresh_outside; /* the refresh's missing and nested_outside */
	char *fresh_wide;                  /* the refresh's wide_base() */
};

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Frees v[0..*n) (not v itself) and empties it. */
static void free_strs(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	*n = 0;
}

/* Adds dn's canonical form to set[0..*n) (room for cap) unless it is
 * there. Return: 1 added, 0 there already, -1 full (or no memory). */
static int dn_note(char **set, size_t *n, size_t cap, const char *dn)
{
	char *c = dir_dn_canon(dn);

	for (size_t i = 0; c != NULL && i < *n; i++)
		if (strcmp(set[i], c) == 0) {
			free(c);
			return 0;
		}
	if (c == NULL || *n == cap) {
		free(c);
		return -1;
	}
	set[(*n)++] = c;
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_member(const struct protect *p, const char *canon)
{
	return p->n_members > 0 &&
	       bsearch(&canon, p->members, p->n_members, sizeof(char *), cmp_str) != NULL;
}

struct protect *protect_new(struct dir *d, const char *tag, const char *what, const char *who)
{
	struct protect *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->d = d;
	p->tag = tag;
	snprintf(p->too_big_err, sizeof(p->too_big_err), NESTED_TOO_BIG, what, who);
	TAILQ_INIT(&p->waiting);
	return p;
}

static int check_direct(struct protect *p, const char *dn, protect_fn fn, void *arg);

/* Answers the waiting checks of generation gen or older: with the snapshot,
 * or with st/err. They are taken off the list first: a callback may start
 * new checks. */
static void answer_upto(struct protect *p, unsigned long long gen, enum dir_status st,
                        const char *err)
{
	struct waiters list = TAILQ_HEAD_INITIALIZER(list);
	struct waiter *w, *next;

	for (w = TAILQ_FIRST(&p->waiting); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->gen > gen)
			continue;
		TAILQ_REMOVE(&p->waiting, w, entry);
		p->n_waiting--;
		TAILQ_INSERT_TAIL(&list, w, entry);
	}
	while ((w = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, w, entry);
		/* Too many members to hold: these ask the directory themselves,
		 * upward (check_direct). */
		if (p->missing)
			w->fn(w->arg, DIR_REFUSED, false, p->missing_err);
		else if (st != DIR_OK && p->too_big && check_direct(p, w->dn, w->fn, w->arg) == 0)
			;
		else
			w->fn(w->arg, st, st == DIR_OK && is_member(p, w->dn), err);
		free(w->dn);
		free(w);
	}
}

void protect_free(struct protect *p)
{
	if (p == NULL)
		return;
	p->valid = false;
	p->too_big = false;
	answer_upto(p, p->gen, DIR_UNAVAILABLE, "the daemon is stopping");
	free_list(p->members, p->n_members);
	free_list(p->fresh, p->n_fresh);
	free_strs(p->seen, &p->n_seen);
	for (size_t i = 0; i < p->n_groups; i++)
		free(p->groups[i]);
	for (size_t i = 0; i < p->n_reads; i++)
		free(p->reads[i].name);
	free(p->fresh_wide);
	free(p);
}

void protect_invalidate(struct protect *p)
{
	p->gen++;
}

static void refresh_start(struct protect *p);
static char *wide_base(const struct protect *p);

/* Installs the finished refresh, answers the checks it serves, and starts
 * another if newer ones wait. */
static void refresh_done(struct protect *p)
{
	p->refreshing = false;
	if (p->fresh_missing != p->missing && !p->fresh_missing)
		log_info("%s: every required group exists again", p->tag);
	p->missing = p->fresh_missing;
	/* From what this refresh read: its reads go in the same order each
	 * time, so a too-big one meets the same groups again. */
	p->nested_outside = p->fresh_outside;
	free(p->fresh_wide);
	p->fresh_wide = NULL;
	if (p->worst == DIR_OK) {
		if (p->n_fresh > 1)
			qsort(p->fresh, p->n_fresh, sizeof(char *), cmp_str);
		free_list(p->members, p->n_members);
		p->members = p->fresh;
		p->n_members = p->n_fresh;
		p->valid = true;
		p->taken = p->started;
		p->snap_gen = p->refresh_gen;
	} else {
		free_list(p->fresh, p->n_fresh);
	}
	p->fresh = NULL;
	p->n_fresh = p->cap_fresh = 0;
	free_strs(p->seen, &p->n_seen);
	for (size_t i = 0; i < p->n_reads; i++)
		free(p->reads[i].name);
	p->n_reads = 0;
	answer_upto(p, p->refresh_gen, p->worst, p->worst == DIR_OK ? NULL : p->err);
	if (!TAILQ_EMPTY(&p->waiting) && !p->refreshing)
		refresh_start(p);
}

static void refresh_fail(struct protect *p, enum dir_status st, const char *err)
{
	if (p->worst != DIR_OK)
		return;
	p->worst = st;
	snprintf(p->err, sizeof(p->err), "%s", err);
}

static int fresh_add(struct protect *p, const char *dn)
{
	char *c, **grown;

	if (p->n_fresh == p->cap_fresh) {
		size_t cap = p->cap_fresh == 0 ? 64 : p->cap_fresh * 2;

		if (cap > PROTECT_MEMBERS_MAX ||
		    (grown = realloc(p->fresh, cap * sizeof(*grown))) == NULL)
			return -1;
		p->fresh = grown;
		p->cap_fresh = cap;
	}
	/* A value that is not a DN names nobody. */
	if ((c = dir_dn_canon(dn)) != NULL)
		p->fresh[p->n_fresh++] = c;
	return 0;
}

/* One read of a refresh and how deep in nested groups it is. */
struct nest {
	struct protect *p;
	int depth;
};

static void resolve(struct protect *p, const char *value, int depth);

/* Checks cannot be answered from a snapshot (too many to hold or read, or
 * nested too deep): they ask the directory (check_direct) for a while. */
static void mark_too_big(struct protect *p, const char *why)
{
	if (!p->too_big)
		log_warnx("%s: %s: each check asks the directory, upward through the groups that "
		          "list the user (tried again in 5 minutes)",
		          p->tag, why);
	p->too_big = true;
	p->too_big_at = now_mono();
	refresh_fail(p, DIR_REFUSED, why);
}

/* Member values (of a group at depth) are members too: each is held and
 * read back, as far as the refresh may go. */
static void add_values(struct protect *p, char *const *vals, size_t n, int depth)
{
	for (size_t i = 0; i < n && p->worst == DIR_OK; i++) {
		if (vals[i] == NULL)
			continue;
		if (fresh_add(p, vals[i]) == -1)
			mark_too_big(p, "too many members to hold");
		else
			resolve(p, vals[i], depth + 1);
	}
}

/* A member read back: dns[0] is its DN as the directory holds it, dns[1..n)
 * its own members when it is a group (a role group listing a team, as
 * Active Directory's admin groups are built): those are members too, as
 * slapd and AD count them, up to PROTECT_NEST_MAX deep. */
static void resolved_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct nest *nt = arg;
	struct protect *p = nt->p;

	/* A value that names no entry names nobody. One the directory could not
	 * look up may name anyone: no snapshot (fail closed), and when it refused
	 * (not just failed) the checks ask it themselves, by its own matching. */
	if (st == DIR_NOT_FOUND)
		;
	else if (st == DIR_UNAVAILABLE || st == DIR_UNKNOWN)
		refresh_fail(p, st, err != NULL ? err : "a member could not be read");
	else if (st != DIR_OK || n < 1 || (p->worst == DIR_OK && fresh_add(p, dns[0]) == -1))
		mark_too_big(p, "a member could not be read back");
	else if (n > 1 && dn_note(p->seen, &p->n_seen, PROTECT_RESOLVE_MAX, dns[0]) == 1) {
		/* A group, followed once per refresh (a cycle ends here); one
		 * at the deepest level followed has members a level too deep,
		 * who would go unprotected: each check asks upward instead,
		 * which refuses those it cannot read whole. */
		if (p->fresh_wide == NULL || !dir_dn_under(dns[0], p->fresh_wide))
			p->fresh_outside = true;
		if (nt->depth < PROTECT_NEST_MAX)
			add_values(p, dns + 1, n - 1, nt->depth);
		else
			mark_too_big(p, "the groups nest more than 8 levels deep");
	}
	free(nt);
	if (--p->pending == 0)
		refresh_done(p);
}

/* dir_dn_canon folds ASCII case only; slapd also folds Unicode case and
 * width, either way round (a member "uid=ｆｒａｎｋ,…" is frank; a member
 * "uid=gina,…" is an entry named "uid=ｇｉｎａ,…"). Each value is therefore
 * read back from the directory, which names the entry as it holds it, as a
 * user's own DN is always taken from its entry — with its own members, in
 * the same read, should it be a group. */
static void resolve(struct protect *p, const char *value, int depth)
{
	struct nest *nt;

	if (p->n_resolve >= PROTECT_RESOLVE_MAX) {
		mark_too_big(p, "too many members to read back");
		return;
	}
	if ((nt = malloc(sizeof(*nt))) == NULL) {
		refresh_fail(p, DIR_UNAVAILABLE, "out of memory");
		return;
	}
	*nt = (struct nest){.p = p, .depth = depth};
	if (dir_read_members(p->d, value, resolved_cb, nt) == 0) {
		p->n_resolve++;
		p->pending++;
	} else {
		free(nt);
		refresh_fail(p, DIR_UNAVAILABLE, "too many directory operations queued");
	}
}

/* A required group ([protect]) that does not exist: mistyped or deleted, it
 * would silently protect nobody. A role group that does not exist has no
 * members, who could be protected for holding it. */
static void group_missing(struct protect *p, const struct gread *g)
{
	if (!g->required || p->fresh_missing)
		return;
	p->fresh_missing = true;
	snprintf(p->missing_err, sizeof(p->missing_err),
	         "the [protect] group %.200s does not exist in the directory, so ldapdesk cannot "
	         "tell whom it protects and refuses; create the group, or correct [protect] "
	         "groups in ldapdeskd's configuration and reload",
	         g->name != NULL ? g->name : "(out of memory)");
	if (!p->missing)
		log_warnx("%s: %s", p->tag, p->missing_err);
}

static void values_cb(void *arg, enum dir_status st, char **vals, size_t n, const char *err)
{
	struct gread *g = arg;
	struct protect *p = g->p;

	if (st == DIR_NOT_FOUND)
		group_missing(p, g);
	else if (st != DIR_OK)
		refresh_fail(p, st, err);
	if (st == DIR_OK)
		add_values(p, vals, n, 0);
	if (--p->pending == 0)
		refresh_done(p);
}

static void refresh_start(struct protect *p)
{
	p->refreshing = true;
	p->refresh_gen = p->gen;
	p->started = now_mono();
	p->worst = DIR_OK;
	p->err[0] = '\0';
	p->n_resolve = 0;
	p->fresh_missing = p->fresh_outside = false;
	free(p->fresh_wide);
	p->fresh_wide = wide_base(p);
	p->pending = 1; /* held while submitting, so no callback finishes early */
	for (size_t i = 0; i < p->n_groups; i++) {
		p->reads[i] = (struct gread){
		    .p = p, .required = i < p->n_required, .name = strdup(p->groups[i])};
		p->n_reads = i + 1;
		/* 389 DS: a groupOfUniqueNames lists its members in uniqueMember. */
		for (int a = 0; a < (dir_unique_members(p->d) ? 2 : 1); a++) {
			if (dir_read_values(p->d, p->groups[i], a == 0 ? "member" : "uniqueMember",
			                    values_cb, &p->reads[i]) == 0)
				p->pending++;
			else
				refresh_fail(p, DIR_UNAVAILABLE,
				             "too many directory operations queued");
		}
	}
	if (--p->pending == 0)
		refresh_done(p);
}

/* Makes groups the snapshot's list; a different list invalidates it. */
static int set_groups(struct protect *p, const char *const *groups, size_t n, size_t required)
{
	bool same = n == p->n_groups && required == p->n_required;

	for (size_t i = 0; same && i < n; i++)
		same = strcmp(groups[i], p->groups[i]) == 0;
	if (same)
		return 0;
	for (size_t i = 0; i < p->n_groups; i++)
		free(p->groups[i]);
	p->n_groups = 0;
	for (size_t i = 0; i < n; i++) {
		if ((p->groups[i] = strdup(groups[i])) == NULL)
			return -1;
		p->n_groups = i + 1;
	}
	p->n_required = required;
	/* What the old list's refreshes found says nothing of the new one. */
	p->too_big = p->missing = p->nested_outside = false;
	protect_invalidate(p);
	return 0;
}

/* ---- without a snapshot: the directory asked per check ---- */

struct direct {
	protect_fn fn;
	void *arg;
};

static void direct_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct direct *dc = arg;

	dc->fn(dc->arg, st, st == DIR_OK && mask != 0, err);
	free(dc);
}

/* Where check_direct looks for the groups that list a user: the deepest
 * entry [ldap] user_base, group_base and every group asked about lie under
 * (the directory's suffix, as a rule). Not group_base alone: a group nested
 * in a protected one outside it would go unseen, and the snapshot, which
 * reads down wherever members lie, would have seen it. Return: malloc'd,
 * or NULL (none in common, or ENOMEM). */
static char *wide_base(const struct protect *p)
{
	const char *base = dir_group_base(p->d);
	char *wide = dir_dn_canon(dir_user_base(p->d)), *next;

	for (size_t i = 0; wide != NULL && i <= p->n_groups; i++) {
		const char *other = i < p->n_groups ? p->groups[i] : base;

		if (other == NULL)
			continue;
		next = dir_dn_ancestor(wide, other);
		free(wide);
		wide = next;
	}
	return wide;
}

/* Asks the directory, up through the groups under wide_base that list the
 * user (nest.h); with no such base, refuses (fn called). Return: 0 (fn
 * called once), -1 (ENOMEM; fn not called). */
static int check_direct(struct protect *p, const char *dn, protect_fn fn, void *arg)
{
	struct direct *dc;
	char *base = wide_base(p);
	int rc = -1;

	if (base == NULL || p->nested_outside) {
		free(base);
		fn(arg, DIR_REFUSED, false, p->too_big_err);
		return 0;
	}
	if ((dc = malloc(sizeof(*dc))) != NULL) {
		dc->fn = fn;
		dc->arg = arg;
		/* Any protected group missed would leave the user unprotected. */
		rc = nest_member_of(p->d, dn, base, (const char *const *)p->groups, p->n_groups,
		                    true, p->n_groups == 64 ? ~0UL : (1UL << p->n_groups) - 1,
		                    direct_cb, dc);
		if (rc == -1)
			free(dc);
	}
	free(base);
	return rc;
}

int protect_check(struct protect *p, const char *dn, const char *const *groups, size_t n,
                  size_t required, int ttl, protect_fn fn, void *arg)
{
	struct waiter *w;

	if (n == 0) {
		fn(arg, DIR_OK, false, NULL);
		return 0;
	}
	if (n > PROTECT_GROUPS_MAX || required > n || set_groups(p, groups, n, required) == -1)
		return -1;
	if (p->too_big && now_mono() - p->too_big_at >= PROTECT_RETRY_S)
		p->too_big = false; /* the groups may have shrunk: a snapshot again */
	/* Too big: asked upward, unless a required group was missing, which
	 * only a refresh can tell has been made since, or a refresh runs: it
	 * may meet a group outside wide_base, where asking upward is blind. */
	if (p->too_big && !p->missing && !p->refreshing)
		return check_direct(p, dn, fn, arg);
	/* cache_seconds 0: each check waits for a snapshot of its own. */
	if (ttl <= 0 || p->missing)
		protect_invalidate(p);
	if (p->valid && p->snap_gen == p->gen && now_mono() - p->taken < ttl) {
		char *c;

		if (p->missing) {
			fn(arg, DIR_REFUSED, false, p->missing_err);
			return 0;
		}
		c = dir_dn_canon(dn);
		if (c == NULL)
			return -1;
		fn(arg, DIR_OK, is_member(p, c), NULL);
		free(c);
		return 0;
	}
	if (p->n_waiting >= PROTECT_WAIT_MAX || (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	if ((w->dn = dir_dn_canon(dn)) == NULL) {
		free(w);
		return -1;
	}
	w->fn = fn;
	w->arg = arg;
	w->gen = p->gen;
	TAILQ_INSERT_TAIL(&p->waiting, w, entry);
	p->n_waiting++;
	if (!p->refreshing)
		refresh_start(p);
	return 0;
}
