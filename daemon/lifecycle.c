/*
 * lifecycle.c — account lifecycle for administrators: create, move, disable,
 * enable, delete. Runs inside the same request machinery as actions.c (the
 * attempt is stored before any of this starts), so every step's outcome is
 * one audit record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include <openssl/crypto.h>
#include <ldap.h>

#include "act_internal.h"
#include "audit.h"
#include "config.h"
#include "dir.h"
#include "log.h"
#include "passgen.h"
#include "ldapdesk/wire.h"

/* RFC 4514 escaping of one DN attribute value. Return: malloc'd, or NULL. */
static char *dn_escape(const char *v)
{
	size_t n = strlen(v);
	char *out = malloc(3 * n + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		bool edge = (i == 0 && (ch == ' ' || ch == '#')) || (i == n - 1 && ch == ' ');

		if (edge || strchr("\"+,;<>\\=", ch) != NULL)
			*o++ = '\\';
		*o++ = (char)ch;
	}
	*o = '\0';
	return out;
}

/* The DN a user uid of department gets: [lifecycle] user_dn with {uid},
 * {department}, {user_attr} and {user_base} filled in (values escaped). */
char *lifecycle_user_dn(const struct config *c, const char *uid, const char *dept)
{
	const char *tmpl =
	    c->user_dn != NULL ? c->user_dn : "{user_attr}={uid},ou={department},{user_base}";
	char *euid = dn_escape(uid), *edept = dn_escape(dept), *out = NULL;
	size_t cap = strlen(tmpl) + strlen(euid != NULL ? euid : "") +
	             strlen(edept != NULL ? edept : "") + strlen(c->user_base) + 64,
	       o = 0;

	if (euid != NULL && edept != NULL && (out = malloc(cap)) != NULL) {
		for (const char *p = tmpl; *p != '\0' && o + 1 < cap;) {
			const char *sub = NULL;
			size_t skip = 1;

			if (strncmp(p, "{uid}", 5) == 0)
				sub = euid, skip = 5;
			else if (strncmp(p, "{department}", 12) == 0)
				sub = edept, skip = 12;
			else if (strncmp(p, "{user_attr}", 11) == 0)
				sub = c->user_attr, skip = 11;
			else if (strncmp(p, "{user_base}", 11) == 0)
				sub = c->user_base, skip = 11;
			if (sub != NULL)
				o += (size_t)snprintf(out + o, cap - o, "%s", sub);
			else
				out[o++] = *p;
			p += skip;
		}
		out[o < cap ? o : cap - 1] = '\0';
	}
	free(euid);
	free(edept);
	return out;
}

/* The first "{...}" of tmpl that is none of the placeholders, into buf; ""
 * when there is none. A typo ({dept}) would be taken as literal text. */
static void unknown_placeholder(const char *tmpl, char *buf, size_t len)
{
	static const char *const known[] = {"{uid}", "{department}", "{user_attr}", "{user_base}"};

	buf[0] = '\0';
	for (const char *p = strchr(tmpl, '{'); p != NULL; p = strchr(p + 1, '{')) {
		const char *end = strchr(p, '}');
		bool is_known = false;

		if (end == NULL)
			return;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			is_known |= strncmp(p, known[i], strlen(known[i])) == 0;
		if (!is_known) {
			snprintf(buf, len, "%.*s", (int)(end - p + 1), p);
			return;
		}
	}
}

int actions_config_check(const struct config *c, char *err, size_t errlen)
{
	char *dn = NULL, *canon = NULL, unknown[64];
	bool ok;

	if (c->user_dn == NULL)
		return 0;
	unknown_placeholder(c->user_dn, unknown, sizeof(unknown));
	if (unknown[0] != '\0') {
		snprintf(err, errlen,
		         "%s:%d: [lifecycle] user_dn: unknown placeholder %s: use {uid}, "
		         "{department}, {user_attr} and {user_base}",
		         c->path, config_line(c, "lifecycle", "user_dn"), unknown);
		return -1;
	}
	/* Filled in as a create would, with a department that needs escaping. */
	ok = strstr(c->user_dn, "{uid}") != NULL &&
	     (dn = lifecycle_user_dn(c, "sample", "办公室(外事办公室), 董事会")) != NULL &&
	     (canon = dir_dn_canon(dn)) != NULL && dir_dn_under(dn, c->user_base);
	free(dn);
	free(canon);
	if (ok)
		return 0;
	snprintf(err, errlen,
	         "%s:%d: [lifecycle] user_dn: \"%s\" must name {uid} and give a DN under [ldap] "
	         "user_base (e.g. {user_attr}={uid},ou={department},{user_base})",
	         c->path, config_line(c, "lifecycle", "user_dn"), c->user_dn);
	return -1;
}

static bool padded(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

int lifecycle_validate(struct act *x)
{
	/* A new entry and its place in the tree are written as inetOrgPerson
	 * with ou (OpenLDAP, 389 DS); an AD account needs objectClass user, a
	 * cn RDN and userAccountControl, which this does not write. */
	if ((x->kind == ACT_CREATE || x->kind == ACT_MOVE) && x->conf->flavor == FLAVOR_AD) {
		act_refuse(x, ACT_NOT_IMPLEMENTED, "not_implemented", "failed",
		           "user %s is not supported with flavor = ad: create and move accounts "
		           "with Active Directory's own tools",
		           x->kind == ACT_CREATE ? "create" : "move");
		return -1;
	}
	if (x->kind == ACT_CREATE &&
	    (x->target == NULL || !dir_valid_uid(x->target) || x->name == NULL ||
	     x->name[0] == '\0' || x->department == NULL || x->department[0] == '\0')) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "create needs a uid (letters, digits, . - _ @), --name and --dept");
		return -1;
	}
	if (x->kind == ACT_MOVE && (x->department == NULL || x->department[0] == '\0')) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "move needs the new department (--dept)");
		return -1;
	}
	if (x->kind == ACT_DISABLE && (x->reason == NULL || x->reason[0] == '\0')) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "disable needs a reason (--reason TEXT)");
		return -1;
	}
	/* The DN's OU ignores spaces at its ends, the attribute keeps them: the
	 * user would land in 信息中心 as " 信息中心", outside its scopes. */
	if ((x->kind == ACT_CREATE || x->kind == ACT_MOVE) && padded(x->department)) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "the department \"%s\" starts or ends with a space: give it without",
		           x->department);
		return -1;
	}
	/* Where the entry will be, recorded with the attempt. */
	if ((x->kind == ACT_CREATE || x->kind == ACT_MOVE) &&
	    (x->new_dn = lifecycle_user_dn(x->conf, x->target, x->department)) == NULL) {
		act_refuse(x, ACT_UNAVAILABLE, "no_memory", "failed", "out of memory");
		return -1;
	}
	return 0;
}

/* ---- create ------------------------------------------------------------------------- */

static void create_password_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	char detail[700];

	if (st == DIR_PARTIAL) { /* as for a reset: the password is set, so it is shown */
		snprintf(detail, sizeof(detail),
		         "created; one-time password set, must-change not confirmed: %s",
		         err != NULL ? err : "");
		act_outcome(x, DIR_OK, NULL, detail);
		return;
	}
	if (st != DIR_OK) {
		OPENSSL_cleanse(x->reply.password, sizeof(x->reply.password));
		act_outcome(x, st, err != NULL ? err : "created, but the password could not be set",
		            NULL);
		return;
	}
	act_outcome(x, DIR_OK, NULL, "created; one-time password set, must change at first login");
}

/* noSuchObject on an add or a rename into the department: its OU is not in
 * the tree. A 404 that names it, not "no such user" nor a 502. */
static void no_department(struct act *x)
{
	act_refuse(x, ACT_NOT_FOUND, "no_such_department", "failed",
	           "no such department: %s has no place under %s (check --dept, or create the "
	           "department's OU first)",
	           x->department, x->conf->user_base);
}

/* The parent of dn by libldap's parser (escapes, multi-valued RDNs); NULL
 * when out of memory or dn does not parse. Caller frees. */
static char *parent_dn(const char *dn)
{
	LDAPDN parts = NULL;
	char *str = NULL, *out = NULL;

	if (ldap_str2dn(dn, &parts, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || parts == NULL ||
	    parts[0] == NULL) {
		ldap_dnfree(parts);
		return NULL;
	}
	if (ldap_dn2str(&parts[1], &str, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS)
		out = strdup(str != NULL ? str : "");
	ldap_memfree(str);
	ldap_dnfree(parts);
	return out;
}

static void dept_read_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct act *x = arg;

	(void)dns; /* the values are the directory module's */
	(void)n;
	if (st == DIR_NOT_FOUND)
		no_department(x);
	else if (st != DIR_OK)
		act_dir_refuse(x, st, err);
	else
		x->dept_next(x);
}

/* One base search more per create or move (both rare): without it the
 * missing department showed only at the add or rename, after the 403s and
 * 409s that DESIGN puts behind the 404s. */
void lifecycle_dept_check(struct act *x, void (*next)(struct act *))
{
	char *parent = parent_dn(x->new_dn);
	int rc;

	if (parent == NULL) {
		/* -n checked the template with a sample: a parse failure is rare. */
		act_refuse(x, ACT_UNAVAILABLE, "no_memory", "failed",
		           "cannot work out the department's entry of %s: out of memory, or a DN "
		           "that does not parse (check [lifecycle] user_dn)",
		           x->new_dn);
		return;
	}
	x->dept_next = next;
	rc = dir_read_values(x->A->dir, parent, "objectClass", dept_read_cb, x);
	free(parent);
	if (rc == -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

static void create_added(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;

	if (st == DIR_NOT_FOUND) {
		no_department(x);
		return;
	}
	if (st != DIR_OK) {
		act_outcome(x, st, err, NULL);
		return;
	}
	/* The default policy's minimum: a new entry is under it. */
	if (passgen_make_n(x->reply.password, sizeof(x->reply.password),
	                   passgen_length(dir_password_min(x->A->dir))) == -1 ||
	    dir_set_password(x->A->dir, x->new_dn, x->reply.password, create_password_done, x) ==
	        -1)
		act_outcome(x, DIR_UNAVAILABLE, "created, but the password could not be set", NULL);
}

static int create_run(struct act *x)
{
	const struct config *c = x->conf;
	const char *pairs[] = {"objectClass",
	                       "inetOrgPerson",
	                       c->user_attr,
	                       x->target,
	                       "cn",
	                       x->name,
	                       "sn",
	                       x->name,
	                       "ou",
	                       x->department,
	                       x->mail != NULL ? "mail" : NULL,
	                       x->mail,
	                       NULL};

	if (strcmp(c->user_attr, "uid") != 0) /* inetOrgPerson has uid; others add theirs */
		log_debug("create: user_attr %s set alongside inetOrgPerson", c->user_attr);
	return dir_add_entry(x->A->dir, x->new_dn, pairs, create_added, x);
}

/* ---- group memberships follow moves and deletes --------------------------------------- */

/* One group update (add the new DN, then drop the old one) per group found. */
struct member_fix {
	struct act *x;
	char *group;
	bool adding; /* step 1 of a move */
};

static void members_settled(struct act *x);
static void fix_groups(struct act *x);

/* The DN the groups are searched and updated for: the entry's own, or
 * (second round) the one a move cut short left them naming. */
static const char *member_dn(const struct act *x)
{
	return x->groups_dn != NULL ? x->groups_dn : x->user->dn;
}

/* A move cut short after its rename left groups naming the DN its
 * department attribute still gives: a later move or delete takes those too
 * (stale_dn), or they would name nobody, and a later account at that DN
 * would get their access. */
static void note_stale_dn(struct act *x)
{
	char *old = x->conf->group_base != NULL && x->conf->flavor != FLAVOR_AD &&
	                    x->user->department != NULL && x->user->uid != NULL
	                ? lifecycle_user_dn(x->conf, x->user->uid, x->user->department)
	                : NULL;

	if (old != NULL && !dir_dn_equal(old, x->user->dn))
		x->stale_dn = old;
	else
		free(old);
}

/* Counted for groups_left; the first one is named in the outcome. */
static void group_not_updated(struct act *x, const char *group, const char *why)
{
	log_warnx("%s %s: group %s not updated: %s", x->kind == ACT_MOVE ? "move" : "delete",
	          x->target, group, why);
	if (x->groups_failed++ == 0)
		snprintf(x->group_err, sizeof(x->group_err), "%s: %s", group, why);
}

static void member_fix_done(void *arg, enum dir_status st, const char *err)
{
	struct member_fix *f = arg;
	struct act *x = f->x;

	/* A group deleted since the search names nobody any more. */
	if (st == DIR_NOT_FOUND)
		st = DIR_UNCHANGED;
	/* Already naming the new DN (a rerun after a move cut short): the old
	 * DN must still go. */
	if ((st == DIR_OK || st == DIR_UNCHANGED) && f->adding) {
		f->adding = false;
		if (dir_del_member(x->A->dir, f->group, member_dn(x), member_fix_done, f) == 0)
			return;
	}
	if (st != DIR_OK && st != DIR_UNCHANGED)
		group_not_updated(x, f->group, err != NULL ? err : "refused");
	else if (st == DIR_OK && x->groups_dropped++ == 0)
		snprintf(x->group_dropped, sizeof(x->group_dropped), "%s", f->group);
	free(f->group);
	free(f);
	if (--x->pending == 0)
		members_settled(x);
}

/* Takes the entry out of (delete) or carries it over in (move) each group. */
static void groups_update(struct act *x, char **dns, size_t n)
{
	x->pending = 1; /* held until every update is under way */
	for (size_t i = 0; i < n; i++) {
		struct member_fix *f = calloc(1, sizeof(*f));

		if (f == NULL || (f->group = strdup(dns[i])) == NULL) {
			free(f);
			group_not_updated(x, dns[i], "out of memory");
			continue;
		}
		f->x = x;
		f->adding = x->kind == ACT_MOVE;
		x->pending++;
		if ((f->adding ? dir_add_member(x->A->dir, f->group, x->new_dn, member_fix_done, f)
		               : dir_del_member(x->A->dir, f->group, member_dn(x), member_fix_done,
		                                f)) == -1) {
			x->pending--;
			group_not_updated(x, f->group, "too many directory operations queued");
			free(f->group);
			free(f);
		}
	}
	if (--x->pending == 0)
		members_settled(x);
}

/*
 * A delete first reads each group that names the entry: one it is the only
 * member of cannot drop it (a groupOfNames needs a member; AD's groups do
 * not), and finding that out by trying would take the entry out of the other
 * groups first, for an account that then stays.
 */
struct delete_plan {
	struct act *x;
	size_t n, reads;
	struct plan_group {
		struct delete_plan *plan;
		char *dn;
	} groups[];
};

static void plan_free(struct delete_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->groups[i].dn);
	free(p);
}

static void plan_read(struct delete_plan *p)
{
	struct act *x = p->x;
	char **dns;

	if (--p->reads > 0)
		return;
	if (x->groups_failed > 0 || (dns = calloc(p->n, sizeof(*dns))) == NULL) {
		if (x->groups_failed == 0)
			group_not_updated(x, p->groups[0].dn, "out of memory");
		plan_free(p);
		members_settled(x); /* groups_left says which and why */
		return;
	}
	for (size_t i = 0; i < p->n; i++)
		dns[i] = p->groups[i].dn;
	groups_update(x, dns, p->n);
	free(dns);
	plan_free(p);
}

static void group_members_read(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct plan_group *g = arg;
	struct act *x = g->plan->x;

	/* Gone since the search: nothing to take it out of. No member values
	 * read (an ACL, AD's ranged values): not known, so the delete tries. */
	if (st != DIR_OK && st != DIR_NOT_FOUND)
		group_not_updated(x, g->dn, err != NULL ? err : "could not be read");
	else if (st == DIR_OK && n == 1 && dir_dn_equal(dns[0], member_dn(x)))
		group_not_updated(x, g->dn, "it is the group's only member, and a group needs one");
	plan_read(g->plan);
}

static void delete_check_groups(struct act *x, char **dns, size_t n)
{
	struct delete_plan *p = calloc(1, sizeof(*p) + n * sizeof(p->groups[0]));

	if (p == NULL) {
		act_outcome(x, DIR_UNAVAILABLE, "out of memory", NULL);
		return;
	}
	p->x = x;
	p->reads = 1; /* held until every read is under way */
	for (size_t i = 0; i < n; i++) {
		struct plan_group *g = &p->groups[p->n];

		if ((g->dn = strdup(dns[i])) == NULL) {
			group_not_updated(x, dns[i], "out of memory");
			continue;
		}
		g->plan = p;
		p->n++;
		if (dir_read_values(x->A->dir, g->dn, "member", group_members_read, g) == 0)
			p->reads++;
		else
			group_not_updated(x, g->dn, "too many directory operations queued");
	}
	plan_read(p);
}

static void groups_found(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct act *x = arg;

	if (st != DIR_OK)
		act_outcome(x, st, err, NULL);
	else if (n == 0)
		members_settled(x);
	else if (x->kind == ACT_DELETE && x->conf->flavor != FLAVOR_AD)
		delete_check_groups(x, dns, n);
	else
		groups_update(x, dns, n);
}

/* Memberships are searched under [ldap] group_base. Without it a delete is
 * refused here, and a move before its rename (move_run): the groups would
 * give their access to the next account made at that DN. */
static void fix_groups(struct act *x)
{
	if (x->conf->group_base == NULL) {
		act_outcome(x, DIR_REFUSED,
		            "not deleted: [ldap] group_base is not set, so the groups that list "
		            "the user cannot be found to take it out (the next account at that DN "
		            "would get their access): set group_base and reload",
		            NULL);
		return;
	}
	if (dir_find_members(x->A->dir, x->conf->group_base, member_dn(x), groups_found, x) == -1)
		act_outcome(x, DIR_UNAVAILABLE, "too many directory operations queued", NULL);
}

/* ---- move ------------------------------------------------------------------------------ */

static void delete_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	char why[160];

	if (st == DIR_OK) {
		snprintf(why, sizeof(why), "closed: %s was deleted by %s", x->target, x->op.uid);
		act_requests_close_for(x->A, x->target, why);
	}
	act_outcome(x, st, err, "deleted with its group memberships");
}

/* The last step of a move: the department attribute, on the entry where
 * it now is. Failing here, the entry has moved (and its memberships with
 * it): the outcome says so. */
static void move_ou_set(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	char why[700];
	bool same = dir_dn_equal(x->new_dn, x->user->dn);

	if (st != DIR_OK) {
		snprintf(why, sizeof(why), "%s%s, but its department attribute was not changed: %s",
		         same ? "not moved in the tree" : "moved to ", same ? "" : x->new_dn,
		         err != NULL ? err : "refused");
		act_outcome(x, st, why, NULL);
		return;
	}
	act_outcome(x, DIR_OK, NULL,
	            x->move_resumed ? "department changed; group memberships carried over to the "
	                              "DN an earlier move (cut short after its rename) gave it"
	            : same          ? "department changed"
	            : x->conf->group_base != NULL ? "moved; group memberships follow"
	                                          : "moved (set [ldap] group_base to carry group "
	                                            "memberships along)");
}

/* A group that still names the entry after a delete would give its access
 * to the next account made at that DN; after a move it names nobody. So
 * either stops here, the outcome saying what to fix; the move leaves the
 * department attribute as it was, so running it again carries the
 * memberships over (move_in_place). */
static bool groups_left(struct act *x)
{
	char why[1400], dropped[600] = "";

	if (x->groups_failed == 0)
		return false;
	/* Refused after the checks (an ACL, a lost connection): the groups it
	 * did leave are named, so the audit says what changed. */
	if (x->groups_dropped > 0)
		snprintf(dropped, sizeof(dropped),
		         "; it was taken out of %zu other group(s) before (%s): add it back there "
		         "if the account stays",
		         x->groups_dropped, x->group_dropped);
	snprintf(why, sizeof(why),
	         x->kind == ACT_DELETE
	             ? "not deleted: %zu group(s) still name it (%s); fix that group (a group "
	               "needs another member first) and delete again%s"
	             : "moved in the tree, but %zu group(s) still name the old DN (%s); fix that "
	               "and run the move again to carry the memberships over%s",
	         x->groups_failed, x->group_err, x->kind == ACT_DELETE ? dropped : "");
	act_outcome(x, DIR_REFUSED, why, NULL);
	return true;
}

static void members_settled(struct act *x)
{
	if (groups_left(x))
		return;
	if (x->stale_dn != NULL) { /* the second round: see note_stale_dn */
		x->groups_dn = x->stale_dn;
		x->stale_dn = NULL;
		fix_groups(x);
		return;
	}
	if (x->kind == ACT_DELETE) {
		if (dir_delete(x->A->dir, x->user->dn, delete_done, x) == -1)
			act_outcome(x, DIR_UNAVAILABLE, "too many directory operations queued",
			            NULL);
		return;
	}
	if (dir_set_department(x->A->dir, x->new_dn, x->department, move_ou_set, x) == -1)
		act_outcome(x, DIR_UNAVAILABLE, "too many directory operations queued", NULL);
}

/* Renamed first: a department whose OU does not exist stops the move
 * before anything changed (the attribute used to be set first). */
static void move_renamed(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;

	/* Its DN changed (or may have): sessions under the old one end, even if
	 * a later step fails (their role re-read would go by a DN of nothing). */
	if (st == DIR_OK || st == DIR_UNKNOWN)
		act_end_sessions(x);
	if (st == DIR_NOT_FOUND) /* the user was read just before */
		no_department(x);
	else if (st != DIR_OK)
		act_outcome(x, st, err, NULL);
	else
		fix_groups(x);
}

/* Already where the new department puts it. Either the DN template has no
 * {department} (the attribute is all there is), or an earlier move was cut
 * short after its rename (a crash, a lost connection): then groups may still
 * name the DN the entry had in the department its attribute still holds, and
 * they are carried over as that move would have. */
static int move_in_place(struct act *x)
{
	char *old = x->user->department != NULL && x->conf->group_base != NULL
	                ? lifecycle_user_dn(x->conf, x->target, x->user->department)
	                : NULL;

	if (old == NULL || dir_dn_equal(old, x->user->dn)) {
		free(old);
		return dir_set_department(x->A->dir, x->user->dn, x->department, move_ou_set, x);
	}
	/* fix_groups replaces x->user->dn with x->new_dn in every group that names
	 * it; the attempt recorded the entry's DN already. */
	free(x->user->dn);
	x->user->dn = old;
	x->move_resumed = true;
	fix_groups(x);
	return 0;
}

static int move_run(struct act *x)
{
	char *comma;
	int rc;

	if (x->user->department != NULL && strcmp(x->user->department, x->department) == 0) {
		act_outcome(x, DIR_UNCHANGED, NULL, "already in that department");
		return 0;
	}
	/* Groups name members by DN: moved without them, the user would keep
	 * none of its roles, grants or protection, and a later account at the
	 * old DN would get them all (as for a delete). */
	if (x->conf->group_base == NULL) {
		act_outcome(
		    x, DIR_REFUSED,
		    "not moved: [ldap] group_base is not set, so the groups that list the "
		    "user cannot be found to follow it (it would lose its roles, grants and "
		    "protection): set group_base and reload",
		    NULL);
		return 0;
	}
	if (dir_dn_equal(x->new_dn, x->user->dn))
		return move_in_place(x);
	note_stale_dn(x);
	comma = strchr(x->new_dn, ',');
	if (comma == NULL) {
		act_outcome(x, DIR_REFUSED, "the new DN has no parent", NULL);
		return 0;
	}
	/* new_dn holds the RDN for the call, and is put back together after. */
	*comma = '\0';
	rc = dir_rename(x->A->dir, x->user->dn, x->new_dn, comma + 1, move_renamed, x);
	*comma = ',';
	return rc;
}

/* ---- disable, enable, delete ------------------------------------------------------------ */

static void disable_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	char detail[LDAPDESK_MAX_FIELD + 16];

	snprintf(detail, sizeof(detail), "disabled: %s", x->reason);
	act_outcome(x, st, err, detail);
}

/* 389 DS: nsAccountLock can also come from a role the entry is in
 * (nsRoleDN, through CoS), which taking the entry's own value away leaves:
 * read back, so "enabled" is never said of an account still disabled. */
static void enable_checked(void *arg, enum dir_status st, struct dir_user *u, const char *err)
{
	struct act *x = arg;
	bool still = st == DIR_OK && u->admin_locked;

	(void)err;
	dir_user_free(u);
	if (still) {
		act_outcome(x, DIR_REFUSED,
		            "still disabled: its nsAccountLock comes from a 389 DS role it is in "
		            "(nsRoleDN, through CoS), which ldapdesk does not change: unlock that "
		            "role (dsidm ... role unlock) or take the user out of it",
		            NULL);
		return;
	}
	act_outcome(x, DIR_OK, NULL,
	            st == DIR_OK ? "enabled" : "enabled (its entry could not be read back)");
}

static void enable_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;

	if ((st == DIR_OK || st == DIR_UNCHANGED) && x->conf->flavor == FLAVOR_389DS &&
	    dir_find_user(x->A->dir, x->target, enable_checked, x) == 0)
		return;
	act_outcome(x, st == DIR_UNCHANGED ? DIR_OK : st, err, "enabled");
}

int lifecycle_execute(struct act *x)
{
	switch (x->kind) {
	case ACT_CREATE:
		return create_run(x);
	case ACT_MOVE:
		return move_run(x);
	case ACT_DISABLE:
		if (x->user->admin_locked) {
			act_outcome(x, DIR_UNCHANGED, NULL, "was already disabled");
			return 0;
		}
		return dir_disable(x->A->dir, x->user, disable_done, x);
	case ACT_ENABLE:
		if (!x->user->admin_locked) {
			act_outcome(x, DIR_UNCHANGED, NULL, "was not disabled");
			return 0;
		}
		return dir_enable(x->A->dir, x->user, enable_done, x);
	case ACT_DELETE:
		note_stale_dn(x);
		fix_groups(x);
		return 0;
	default:
		return -1;
	}
}
