/*
 * actions.c — each request runs as a chain of steps: validate (400), role
 * (403), find the user and permission (404), protection (403), state (409),
 * then the attempt record is committed, the directory is changed, and the
 * outcome record is written. A refusal at any step is itself an audit record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "act_internal.h"
#include "actions.h"
#include "audit.h"
#include "clock.h"
#include "config.h"
#include "dir.h"
#include "limit.h"
#include "throttle.h"
#include "log.h"
#include "nest.h"
#include "protect.h"
#include "ldapdesk/ascii.h"
#include "ldapdesk/wire.h"

static const char *kind_action[] = {
    [ACT_LOGIN] = "login",       [ACT_STATUS] = "status",   [ACT_UNLOCK] = "unlock",
    [ACT_RESET] = "reset",       [ACT_GRANT] = "grant",     [ACT_REVOKE] = "revoke",
    [ACT_RECORD] = "record",     [ACT_CREATE] = "create",   [ACT_MOVE] = "move",
    [ACT_DISABLE] = "disable",   [ACT_ENABLE] = "enable",   [ACT_DELETE] = "delete",
    [ACT_EXPIRE] = "expire",     [ACT_APPROVE] = "approve", [ACT_REJECT] = "reject",
    [ACT_LOGOUT] = "logout",     [ACT_IMPORT] = "import",   [ACT_BACKUP] = "backup",
    [ACT_LOG] = "log",           [ACT_REPORT] = "report",   [ACT_VERIFY] = "verify",
    [ACT_REQUESTS] = "requests",
};

const char *actions_names(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(kind_action) / sizeof(kind_action[0]) && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i > 0 ? ", " : "", kind_action[i]);
	return buf;
}

bool actions_is_action(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(kind_action) / sizeof(kind_action[0]); i++)
		if (strcmp(name, kind_action[i]) == 0)
			return true;
	return false;
}

/* Roles allowed per kind (DESIGN.md "Roles"); login is open to anyone. */
static const unsigned kind_roles[] = {
    [ACT_LOGIN] = 0,
    [ACT_STATUS] = ROLE_HELPDESK | ROLE_ADMIN,
    [ACT_UNLOCK] = ROLE_HELPDESK | ROLE_ADMIN,
    [ACT_RESET] = ROLE_HELPDESK | ROLE_ADMIN,
    [ACT_GRANT] = ROLE_ADMIN,
    [ACT_REVOKE] = ROLE_ADMIN,
    [ACT_RECORD] = ROLE_HELPDESK | ROLE_ADMIN,
    [ACT_CREATE] = ROLE_ADMIN,
    [ACT_MOVE] = ROLE_ADMIN,
    [ACT_DISABLE] = ROLE_ADMIN,
    [ACT_ENABLE] = ROLE_ADMIN,
    [ACT_DELETE] = ROLE_ADMIN,
    [ACT_APPROVE] = ROLE_ADMIN,
    [ACT_REJECT] = ROLE_ADMIN,
    [ACT_LOGOUT] = 0,
    [ACT_IMPORT] = 0, /* refusals only (actions.h) */
    [ACT_BACKUP] = 0,
    [ACT_LOG] = 0,
    [ACT_REPORT] = 0,
    [ACT_VERIFY] = 0,
    [ACT_REQUESTS] = 0,
};

#define FOREIGN_MEMBER "already a member, not through ldapdesk"
/* After a defaulted term in an attempt's "expires ..." (act_fill_term). */
#define DEFAULT_TERM " (default)"

static int request_approved_txn(struct act *x, struct audit *a, char *err, size_t errlen);
void commit_flush_cb(evutil_socket_t fd, short what, void *arg);
static void act_lookup(struct act *x);
static void user_found_cb(void *arg, enum dir_status st, struct dir_user *u, const char *err);
static void user_verdicts(struct act *x);
static void protect_touch(const struct act *x);
static size_t protected_groups(const struct config *c, const char **out);

/* Throttled login sources aggregated at once, and how long one stays after
 * its last refusal (its next one then opens a new period, recorded in full). */
#define THROTTLE_KEYS 1024
#define THROTTLE_IDLE 60

static void throttle_summary(void *arg, const struct throttle_sum *s);

struct actions *actions_new(const struct config *conf, struct dir *d, struct audit *a,
                            struct sessions *s)
{
	struct actions *A = calloc(1, sizeof(*A));

	if (A == NULL)
		return NULL;
	A->conf = conf;
	TAILQ_INIT(&A->attempts);
	TAILQ_INIT(&A->outcomes);
	STAILQ_INIT(&A->settle_wait);
	A->limits = limits_new();
	A->throttled = throttle_new(THROTTLE_KEYS);
	if (A->limits == NULL || A->throttled == NULL) {
		limits_free(A->limits);
		throttle_free(A->throttled);
		free(A);
		return NULL;
	}
	A->dir = d;
	A->protect = protect_new(d, "protection", "the protected and role groups", "is protected");
	A->scope_guard = protect_new(d, "scopes", "the [scope.*] groups", "is in a scope");
	if (A->protect == NULL || A->scope_guard == NULL) {
		protect_free(A->protect);
		protect_free(A->scope_guard);
		limits_free(A->limits);
		throttle_free(A->throttled);
		free(A);
		return NULL;
	}
	A->audit = a;
	A->sessions = s;
	return A;
}

void actions_set_config(struct actions *A, const struct config *conf)
{
	A->conf = conf;
	/* Their next try comes at the next tick, not EXPIRY_RETRY later. */
	for (size_t i = 0; i < A->n_unconfigured; i++)
		limits_clear(A->limits, A->unconfigured[i]);
	A->n_unconfigured = 0;
	protect_invalidate(A->protect);
}

const char *actions_audit_error(const struct actions *A)
{
	return A->audit_error[0] != '\0' ? A->audit_error : NULL;
}

void actions_answer_stats(const struct actions *A, unsigned long long *early,
                          unsigned long long *settled)
{
	*early = A->answer_seq;
	*settled = A->settled;
}

void actions_after_settled(struct actions *A, void (*fn)(void *arg), void *arg)
{
	commit_after_settled(A, fn, arg);
}

int actions_busy(const struct actions *A)
{
	return A->busy + A->refreshing;
}

void actions_commit_stats(const struct actions *A, unsigned long long *commits,
                          unsigned long long *records, unsigned long long *pairs)
{
	*commits = A->commits;
	*records = A->committed;
	*pairs = A->pairs;
}

void actions_free(struct actions *A)
{
	if (A != NULL && A->expiry_ev != NULL)
		event_free(A->expiry_ev);
	if (A != NULL) {
		commit_stop(A);
		commit_flush(A);
		if (A->flush_ev != NULL)
			event_free(A->flush_ev);
	}
	if (A != NULL) {
		limits_free(A->limits);
		throttle_free(A->throttled);
		protect_free(A->protect);
		protect_free(A->scope_guard);
	}
	free(A);
}

void actions_drain(struct actions *A, bool dir_gone)
{
	if (A == NULL)
		return;
	A->draining = true;
	if (dir_gone)
		A->dir = NULL;
	else /* counted refusals become records while the writer still runs */
		throttle_flush(A->throttled, time(NULL), 0, throttle_summary, A);
	commit_stop(A);
	/* No loop runs the flush event any more: records are written when queued. */
	if (A->flush_ev != NULL) {
		event_free(A->flush_ev);
		A->flush_ev = NULL;
	}
	commit_flush(A);
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static bool request_claimed(const struct actions *A, int64_t id)
{
	for (size_t i = 0; i < A->n_claimed; i++)
		if (A->claimed[i] == id)
			return true;
	return false;
}

static void request_unclaim(struct actions *A, int64_t id)
{
	for (size_t i = 0; i < A->n_claimed; i++)
		if (A->claimed[i] == id) {
			A->claimed[i] = A->claimed[--A->n_claimed];
			return;
		}
}

/* ---- one change per user at a time ---- */

static size_t busy_bucket(const char *uid)
{
	return ascii_fnv1a(uid, 2166136261u, true) % ACT_BUSY_BUCKETS;
}

/* A change of uid parked (act_park), or NULL: one the directory did not
 * answer, still to be read back (slapd may apply it yet: a change now could
 * land before it, and would change what the read-back finds), or one whose
 * outcome the store did not take yet (a change now would be stored before
 * it: a revoke's outcome written after the next grant's reads as revoking
 * that grant). */
static const struct act_unknown *unknown_pending(const struct actions *A, const char *uid)
{
	for (size_t i = 0; i < A->n_unknown; i++)
		if (strcasecmp(A->unknown[i].target, uid) == 0)
			return &A->unknown[i];
	return NULL;
}

/* A change of uid under way, or one waiting to be read back. */
static bool user_busy(struct actions *A, const char *uid)
{
	struct act *y;

	LIST_FOREACH(y, &A->changing[busy_bucket(uid)], changing_entry)
	if (strcasecmp(y->target, uid) == 0)
		return true;
	return unknown_pending(A, uid) != NULL;
}

/* Claims x's target until x is freed. Return: false when another change of
 * that user holds it. */
static bool busy_claim(struct act *x)
{
	if (x->target == NULL || user_busy(x->A, x->target))
		return false;
	LIST_INSERT_HEAD(&x->A->changing[busy_bucket(x->target)], x, changing_entry);
	x->changing = true;
	return true;
}

static void busy_release(struct act *x)
{
	if (x->changing)
		LIST_REMOVE(x, changing_entry);
	x->changing = false;
}

static bool act_changes_user(const struct act *x)
{
	static const bool changes[ACT_REQUESTS + 1] = {
	    [ACT_UNLOCK] = true,
	    [ACT_RESET] = true,
	    [ACT_GRANT] = true,
	    [ACT_REVOKE] = true,
	    [ACT_CREATE] = true,
	    [ACT_MOVE] = true,
	    [ACT_DISABLE] = true,
	    [ACT_ENABLE] = true,
	    [ACT_DELETE] = true,
	    [ACT_APPROVE] = true,
	    [ACT_EXPIRE] = true,
	    /* Changes nothing in the directory, but closes a request an approve
	     * left unanswered (or cut short by a crash) may have carried out:
	     * it waits for that read-back (503 recovering, 409 user_busy). */
	    [ACT_REJECT] = true,
	};

	return changes[x->kind] && x->target != NULL;
}

/*
 * One change per user at a time, whatever order two would reach the
 * directory in. The claim is taken when the request arrives (act_claim),
 * before its user is read, so the state a change is decided on is not one
 * another change is altering; a request that found its user busy goes
 * through its other checks all the same and is refused at the last
 * (act_busy): DESIGN's 404 and 403 come before this 409, and a helpdesk
 * operator learns nothing of users outside its scope.
 */
static void act_claim(struct act *x)
{
	if (act_changes_user(x) && !x->changing)
		busy_claim(x);
}

/*
 * The claim was taken under the uid as typed, which folds ASCII case only;
 * slapd matched the entry by its own rules (a full-width "ａｌｉｃｅ" finds
 * alice). Once the entry's own uid is known, the claim moves to it, so two
 * spellings of one user are not two users; the audit names that uid too.
 */
static bool act_held(struct act *x);

/* Return: true when x was refused (its user, by the entry's own uid, is held
 * by start-up recovery), else false. */
static bool act_reclaim(struct act *x)
{
	char *uid;

	if (x->user->uid == NULL || x->target == NULL || strcasecmp(x->user->uid, x->target) == 0 ||
	    (uid = strdup(x->user->uid)) == NULL)
		return false;
	bool claimed = x->changing;

	busy_release(x);
	free(x->target);
	x->target = uid;
	/* The recovery hold, like the claim, goes by the entry's uid (checked at
	 * arrival under the spelling typed). Not once the attempt is stored. */
	if (x->attempt == 0 && act_held(x))
		return true;
	if (claimed)
		busy_claim(x); /* refused by act_busy when the entry's uid is taken */
	return false;
}

/* Refuses x (and says so) when its user was busy when it arrived. Return:
 * true when refused. */
static bool act_busy(struct act *x)
{
	const struct act_unknown *pending;

	if (!act_changes_user(x) || x->changing)
		return false;
	if ((pending = unknown_pending(x->A, x->target)) != NULL && pending->result[0] != '\0')
		act_refuse(x, ACT_CONFLICT, "user_busy", "failed",
		           "the outcome of a change of %s (event %lld) is still to be stored (the "
		           "audit store failed): try again once it is recorded (ldapdesk log "
		           "--user %s)",
		           x->target, (long long)pending->attempt, x->target);
	else if (pending != NULL)
		act_refuse(x, ACT_CONFLICT, "user_busy", "failed",
		           "a change of %s the directory did not answer (event %lld) is still to "
		           "be read back: try again once its outcome is recorded (ldapdesk log "
		           "--user %s)",
		           x->target, (long long)pending->attempt, x->target);
	else
		act_refuse(x, ACT_CONFLICT, "user_busy", "failed",
		           "another change to %s is under way%s: try again once it is done (a "
		           "moment)",
		           x->target, x->kind == ACT_CREATE ? " (its create, or its delete)" : "");
	return true;
}

/* Lets go of x's slot in the list of unanswered changes (act_held), if any. */
static void unreserve(struct act *x)
{
	if (x->reserved)
		x->A->n_reserved--;
	x->reserved = false;
}

static void login_unreserve(struct act *x);

static void act_free(struct act *x)
{
	char **strs[] = {&x->client_addr, &x->target,       &x->permission, &x->until,
	                 &x->category,    &x->description,  &x->ticket,     &x->requester,
	                 &x->department,  &x->channel,      &x->note,       &x->name,
	                 &x->mail,        &x->reason,       &x->new_dn,     &x->stale_dn,
	                 &x->groups_dn,   &x->request_entry};

	busy_release(x); /* before x->target is freed */
	unreserve(x);
	/* A login refused for no failed guess (its scope unknown, the store)
	 * gives back what it counted in flight; x->user is still here. */
	if (x->kind == ACT_LOGIN && !x->login_final)
		login_unreserve(x);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	if (x->password != NULL) {
		OPENSSL_cleanse(x->password, strlen(x->password));
		free(x->password);
	}
	OPENSSL_cleanse(x->reply.password, sizeof(x->reply.password));
	OPENSSL_cleanse(x->reply.token, sizeof(x->reply.token));
	dir_user_free(x->user);
	json_decref(x->reply.body);
	free(x->out_text);
	free(x->commit_err);
	if (x->claimed)
		request_unclaim(x->A, x->request_id);
	x->A->busy--;
	config_unref(x->conf);
	free(x);
}

static struct act *act_new(struct actions *A, const struct act_request *r)
{
	struct act *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	x->A = A;
	x->conf = config_ref(A->conf); /* held to the end, across a reload */
	x->kind = r->kind;
	/* The attempt's time is the request's, not when a lookup before it ended. */
	audit_now(x->requested_at, sizeof(x->requested_at));
	x->conf_gen = session_gen(A->sessions);
	x->ended_mark = session_ended_mark(A->sessions); /* a login: see login_roles_cb */
	A->busy++;
	if (r->operator!= NULL) {
		x->op = *r->operator;
		x->has_op = true;
	}
	x->client_addr = dup_or_null(r->client_addr);
	x->target = dup_or_null(r->target);
	x->password = dup_or_null(r->password);
	x->permission = dup_or_null(r->permission);
	x->until = dup_or_null(r->until);
	x->category = dup_or_null(r->category);
	x->description = dup_or_null(r->description);
	x->ticket = dup_or_null(r->ticket);
	x->requester = dup_or_null(r->requester);
	x->department = dup_or_null(r->department);
	x->channel = dup_or_null(r->channel);
	x->note = dup_or_null(r->note);
	x->name = dup_or_null(r->name);
	x->mail = dup_or_null(r->mail);
	x->reason = dup_or_null(r->reason);
	x->request_id = r->request_id;
	x->days = r->days;
	x->unlock = r->unlock;
	return x;
}

/* x is answered before its outcome record is stored (commit_outcome): it
 * lets go of its user at once (a next change's attempt is stored after this
 * outcome, in its commit or a later one) and of the new password, and waits
 * in the commit queue to be freed. */
static void act_answered(struct act *x)
{
	x->answered = true;
	busy_release(x);
	OPENSSL_cleanse(x->reply.password, sizeof(x->reply.password));
}

/* Answers and frees x; an early one (x->early) is freed on the second call,
 * after its commit, which answers nothing. */
void act_reply(struct act *x, enum act_status st, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (x->answered) {
		act_free(x);
		return;
	}
	x->reply.status = st;
	x->reply.code = code;
	x->reply.event = x->attempt;
	if (fmt != NULL) {
		va_start(ap, fmt);
		/* clang-analyzer loses track of ap along act_refuse -> commit -> here. */
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(x->reply.message, sizeof(x->reply.message), fmt, ap);
		va_end(ap);
	}
	x->fn(x->arg, &x->reply);
	if (x->early)
		act_answered(x);
	else
		act_free(x);
}

static const char *kind_category(enum act_kind k)
{
	if (k == ACT_UNLOCK || k == ACT_RESET)
		return "unlock-reset";
	/* Not ACT_EXPIRE: the daemon's own revocation is not an event handled. */
	if (k == ACT_GRANT || k == ACT_REVOKE || k == ACT_APPROVE)
		return "grant";
	return NULL;
}

/* The uid as the directory spells it once the user was read ("CAROL" typed
 * is carol): DESIGN's target is a uid, and `log --user carol` must find it.
 * Before that (no such user, a refusal first) it is the name asked. */
static const char *target_uid(const struct act *x)
{
	return x->user != NULL && x->user->uid != NULL ? x->user->uid : x->target;
}

void act_event(const struct act *x, struct audit_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->requested_at = x->requested_at[0] != '\0' ? x->requested_at : NULL;
	if (x->has_op)
		ev->operator= x->op.uid;
	else if (x->kind == ACT_LOGIN && x->user != NULL)
		/* Only a name the directory knows: people type their password
		 * into the user field, and the log keeps what it is given forever. */
		ev->operator= target_uid(x);
	else if (x->kind == ACT_EXPIRE || x->kind == ACT_REJECT) /* expiries */
		ev->operator= "ldapdeskd";
	ev->operator_dn = x->has_op ? x->op.dn : NULL;
	ev->client_addr = x->client_addr;
	ev->action = kind_action[x->kind];
	ev->target = x->kind == ACT_LOGIN || x->kind == ACT_RECORD ? NULL : target_uid(x);
	ev->target_dn = x->user != NULL && x->kind != ACT_LOGIN ? x->user->dn : x->new_dn;
	if (x->kind == ACT_LOGIN && x->user != NULL)
		ev->operator_dn = x->user->dn;
	ev->permission = x->permission;
	ev->category = x->kind == ACT_RECORD ? x->category : kind_category(x->kind);
	/* A grant that became a request is counted when it is approved and done. */
	if (x->needs_approval)
		ev->category = NULL;
	ev->request_id = x->request_id > 0 ? x->request_id : 0;
	ev->ticket = x->ticket;
	ev->requester = x->requester;
	ev->department = x->department;
	/* The submitting department (事件提交单位) defaults to the user's own: the
	 * user is who calls the hotline, and the half-year report's count by
	 * department would otherwise fill with "(未填写)". */
	if (ev->department == NULL && x->user != NULL && x->user->department != NULL &&
	    (x->kind == ACT_UNLOCK || x->kind == ACT_RESET || x->kind == ACT_GRANT ||
	     x->kind == ACT_REVOKE))
		ev->department = x->user->department;
	ev->channel = x->channel;
	ev->description = x->description != NULL ? x->description : x->reason;
	ev->note = x->note;
	ev->detail = x->term[0] != '\0' ? x->term : NULL;
}

/* A term the operator gave (days or until), not max_days' default. */
static bool term_asked(const struct act *x)
{
	return x->days > 0 || x->until != NULL;
}

void act_fill_term(struct act *x)
{
	char utc[CLOCK_ISO_LEN];

	x->term[0] = '\0';
	/* A request's grant shows what it waits for until its outcome says. */
	if (x->kind == ACT_GRANT && x->needs_approval && x->request_id > 0) {
		char asked[80];

		/* The term asked, in the chain: the request's row is not
		 * (audit_request_get holds one against the other). */
		audit_request_term(x->days, x->until, asked, sizeof(asked));
		snprintf(x->term, sizeof(x->term),
		         "request %lld awaits another admin's approval %s",
		         (long long)x->request_id, asked);
		return;
	}
	/* Not for a grant that becomes a four-eyes request (the approval sets
	 * the term) nor for a refusal (nothing was given). */
	if (x->expires == 0 || (x->kind != ACT_GRANT && x->kind != ACT_APPROVE) ||
	    x->needs_approval || x->pair_done != NULL)
		return;
	clock_utc(x->expires, utc, sizeof(utc));
	/* Marked when defaulted: a read-back of a grant to a member keeps the
	 * term in force then, as grant_done does (recovery_prior_term). */
	snprintf(x->term, sizeof(x->term), "expires %s%s", utc, term_asked(x) ? "" : DEFAULT_TERM);
}

/* Every request, refused or done, is recorded (DESIGN): a refusal the store
 * did not take is answered 503 audit_unavailable, as an action would be,
 * naming the refusal it stands for. Nothing was done either way; answered
 * as refused, it left no trace but the daemon's log. */
static void refusal_stored(struct act *x, const char *err)
{
	if (err != NULL) {
		snprintf(x->A->audit_error, sizeof(x->A->audit_error), "%s", err);
		log_warnx("audit: cannot record a refused %s: %s", kind_action[x->kind], err);
		act_reply(x, ACT_UNAVAILABLE, "audit_unavailable",
		          "the audit store cannot record this request, refused (%s: %s): %s",
		          x->refuse_code != NULL ? x->refuse_code : "refused",
		          x->out_text != NULL ? x->out_text : "", err);
		return;
	}
	act_reply(x, x->refuse_status, x->refuse_code, "%s",
	          x->out_text != NULL ? x->out_text : "");
}

/* A logged-in operator's refusals are recorded under its name, each a
 * record pair for good: flooded (a script gone wrong, or on purpose), past
 * REFUSALS_PER_MINUTE they are throttled as failed logins are: 429, the
 * first of the period recorded, the rest counted into one summary (throttle.h).
 * Return: true when x was answered here. */
#define REFUSALS_PER_MINUTE 120
static void limit_key(char *buf, size_t len, const char *kind, const char *who);

/* A 429 for key (failed logins, an operator's refusals): the first of its
 * period recorded as a refusal, the rest only counted into the period's
 * summary (throttle.h), so that a flood cannot fill the disk. */
static void refuse_throttled(struct act *x, const char *key, const char *code, const char *msg)
{
	x->refuse_status = ACT_TOO_MANY;
	x->refuse_code = code;
	if (throttle_note(x->A->throttled, key, x->client_addr, time(NULL)) == 1)
		act_reply(x, ACT_TOO_MANY, code, "%s", msg);
	else
		commit_pair(x, "denied", msg, refusal_stored);
}

static bool refusals_throttled(struct act *x, enum act_status st)
{
	char key[LIMIT_KEY_MAX], msg[160];
	time_t now = time(NULL);
	int wait;

	/* The operator's own doing only (400, 403, 404, 409): not a directory
	 * or store outage, whose 503s say what is wrong. */
	if (!x->has_op || x->kind == ACT_LOGIN || x->kind == ACT_LOGOUT ||
	    (st != ACT_BAD_REQUEST && st != ACT_FORBIDDEN && st != ACT_NOT_FOUND &&
	     st != ACT_CONFLICT))
		return false;
	limit_key(key, sizeof(key), "refused-op", x->op.uid);
	if ((wait = limits_wait(x->A->limits, key, REFUSALS_PER_MINUTE, 60, now)) == 0) {
		limits_count(x->A->limits, key, 60, now);
		return false;
	}
	x->reply.retry_after = wait;
	snprintf(msg, sizeof(msg),
	         "over %d requests of this operator were refused within a minute: try again in "
	         "%d s",
	         REFUSALS_PER_MINUTE, wait);
	refuse_throttled(x, key, "too_many_refusals", msg);
	return true;
}

/*
 * A refusal is an attempt and its outcome in one record pair, written by the group commit like any
 * action's records: a flood of bad logins costs the loop no fsync, and shares commits. If even that
 * cannot be stored, the refusal still stands: nothing was done, so nothing is lost but the trace —
 * commit.c says so.
 */
void act_refuse(struct act *x, enum act_status st, const char *code, const char *result,
                const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): see act_reply
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Refused after its attempt was stored (a cached unlock read again):
	 * the refusal is that attempt's outcome. */
	if (x->attempt != 0) {
		x->refuse_status = st;
		x->refuse_code = code;
		x->refuse_result = result;
		commit_outcome(x, DIR_REFUSED, msg);
		return;
	}
	if (refusals_throttled(x, st))
		return;
	/* A refused status read is recorded too (DESIGN: only successful
	 * status reads are not): who probed which uid, outside their scope. */
	x->refuse_status = st;
	x->refuse_code = code;
	commit_pair(x, result, msg, refusal_stored);
}

void act_dir_refuse(struct act *x, enum dir_status st, const char *err)
{
	if (st == DIR_UNAVAILABLE)
		act_refuse(x, ACT_UNAVAILABLE, "directory_unavailable", "failed",
		           "directory unavailable: %s", err != NULL ? err : "no connection");
	else
		act_refuse(x, ACT_FAILED, "directory_refused", "failed", "%s",
		           err != NULL ? err : "the directory refused");
}

/* The directory got the change but did not answer: "failed" would be
 * wrong if it made it (a reset's password unknown to anyone, a timed grant
 * never expired). The attempt stays pending and is read back, as at start-up,
 * once the directory has had time to finish or drop it (unknown_retry). */
bool act_park(struct act *x, const char *result, const char *detail)
{
	struct actions *A = x->A;
	struct audit_event ev;
	struct act_unknown *u;

	/* A change taken holds its slot (act_held); anything else parks only
	 * in a slot no change holds. */
	if (x->reserved)
		unreserve(x);
	else if (A->n_unknown + A->n_reserved >= ACT_UNKNOWN_SLOTS)
		return false;
	u = &A->unknown[A->n_unknown++];
	act_event(x, &ev);
	memset(u, 0, sizeof(*u));
	snprintf(u->result, sizeof(u->result), "%s", result != NULL ? result : "");
	snprintf(u->detail, sizeof(u->detail), "%s", detail != NULL ? detail : "");
	u->attempt = x->attempt;
	u->request_id = x->request_id;
	u->since = time(NULL);
	/* An approve keeps its request held until the read-back: nobody
	 * may reject or expire a request the directory may have granted. */
	u->claimed = x->claimed;
	x->claimed = false;
	if (x->expires != 0 && (x->kind == ACT_GRANT || x->kind == ACT_APPROVE)) {
		clock_utc(x->expires, u->expires, sizeof(u->expires));
		if (!term_asked(x))
			strncat(u->expires, DEFAULT_TERM,
			        sizeof(u->expires) - strlen(u->expires) - 1);
	}
	snprintf(u->action, sizeof(u->action), "%s", ev.action);
	snprintf(u->target, sizeof(u->target), "%s", x->target != NULL ? x->target : "");
	snprintf(u->permission, sizeof(u->permission), "%s",
	         x->permission != NULL ? x->permission : "");
	snprintf(u->operator, sizeof(u->operator), "%s", ev.operator != NULL ? ev.operator : "");
	snprintf(u->department, sizeof(u->department), "%s",
	         x->department != NULL ? x->department : "");
	clock_utc(x->attempt_at, u->requested_at, sizeof(u->requested_at));
	return true;
}

static void act_unknown(struct act *x, const char *err)
{
	bool parked = act_park(x, NULL, NULL);

	if (!parked)
		log_warnx("attempt %lld: no answer from the directory; it stays pending until the "
		          "next start",
		          (long long)x->attempt);
	OPENSSL_cleanse(x->reply.password, sizeof(x->reply.password));
	act_reply(x, ACT_UNAVAILABLE, "directory_no_answer",
	          "%s: whether the directory made the change is not known yet; ldapdeskd %s and "
	          "records the outcome of event %lld (see 'ldapdesk log')",
	          err != NULL ? err : "no answer",
	          parked ? "reads it back shortly" : "reads it back at its next start",
	          (long long)x->attempt);
}

void act_end_sessions(struct act *x)
{
	size_t n = session_end_operator(x->A->sessions, x->user->dn);

	if (n > 0)
		log_info("%s %s: %zu of its sessions ended", kind_action[x->kind], x->target, n);
}

/* An operator disabled or deleted (or maybe so: not answered) ends its
 * sessions at once: a role re-read comes only once an idle period. (A move
 * ends them at its rename.) So does a reset: an admin resets an operator
 * whose password leaked, and the sessions made with it must not go on. */
static void operator_ended(struct act *x, enum dir_status st)
{
	bool ends = x->kind == ACT_DISABLE || x->kind == ACT_DELETE || x->kind == ACT_RESET;

	if (ends && x->user != NULL && (st == DIR_OK || st == DIR_UNCHANGED || st == DIR_UNKNOWN))
		act_end_sessions(x);
}

/* The outcome of a directory change: record it, then answer. */
void act_outcome(struct act *x, enum dir_status st, const char *err, const char *detail)
{
	protect_touch(x);
	operator_ended(x, st);
	if (st == DIR_UNKNOWN) {
		act_unknown(x, err);
		return;
	}
	commit_outcome(x, st, st == DIR_OK || st == DIR_UNCHANGED ? detail : err);
}

void act_outcome_reply(struct act *x, enum dir_status st, const char *err, const char *detail)
{
	const char *result = st == DIR_OK ? "ok" : st == DIR_UNCHANGED ? "unchanged" : "failed";

	if (st == DIR_OK || st == DIR_UNCHANGED) {
		x->reply.result = result;
		act_reply(x, ACT_OK, NULL, "%s", detail != NULL ? detail : "");
		return;
	}
	if (st == DIR_EXISTS)
		act_reply(x, ACT_CONFLICT, "exists", "%s already exists in the directory",
		          x->new_dn != NULL ? x->new_dn : x->target);
	else if (st == DIR_UNAVAILABLE)
		act_reply(x, ACT_UNAVAILABLE, "directory_unavailable", "directory unavailable: %s",
		          err != NULL ? err : "");
	else if (st == DIR_NOT_FOUND)
		act_reply(x, ACT_NOT_FOUND, "no_such_user",
		          "no such user: %s (give the account's uid, not the person's name)",
		          x->target);
	else
		act_reply(x, ACT_FAILED, "directory_refused", "%s",
		          err != NULL ? err : "the directory refused");
}

/* Any trace of a lock: a current one, an administrator's, or one that has
 * expired but is still recorded (a reset or an unlock clears it too). */
static bool lock_present(const struct dir_user *u)
{
	return u->locked || u->admin_locked || u->locked_since != NULL;
}

static void unlock_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;

	/* The cached DN or department was wrong, or the account was disabled
	 * (the modify asserts it is not): read the user and decide again, under
	 * the same attempt — once. */
	if (!x->relooked && (st == DIR_STALE || (x->user->cached && st == DIR_NOT_FOUND))) {
		x->relooked = true;
		dir_user_free(x->user);
		x->user = NULL;
		if (dir_find_user(x->A->dir, x->target, user_found_cb, x) == -1)
			act_outcome(x, DIR_UNAVAILABLE, "too many directory operations queued",
			            NULL);
		return;
	}
	if (st == DIR_STALE)
		err =
		    "the account changed while it was being unlocked (disabled, moved, or locked "
		    "or unlocked meanwhile): look again with 'ldapdesk status', then unlock again";
	act_outcome(x, st, err,
	            st != DIR_UNCHANGED     ? "unlocked"
	            : lock_present(x->user) ? "was not locked (a lock not in effect, expired or "
	                                      "dated ahead, was cleared from the entry)"
	                                    : "was not locked");
}

static void reset_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	/* A lock that had expired is cleared too, but nobody was locked out. */
	const char *lock = x->user->locked         ? "; unlocked"
	                   : lock_present(x->user) ? "; an expired lock cleared"
	                                           : "";
	bool was_locked = x->user->locked;
	char detail[700];

	/* The account has the new password now: the operator must get it, told
	 * that the must-change step failed (slapd may have set pwdReset itself). */
	if (st == DIR_PARTIAL) {
		snprintf(detail, sizeof(detail), "password reset%s; must-change not confirmed: %s",
		         was_locked ? ", unlocked" : "", err != NULL ? err : "");
		act_outcome(x, DIR_OK, NULL, detail);
		return;
	}
	if (st != DIR_OK)
		OPENSSL_cleanse(x->reply.password, sizeof(x->reply.password));
	/* slapd sets pwdReset, but acts on it only under pwdMustChange TRUE. */
	x->reply.change_not_forced = !x->user->change_forced;
	if (x->user->change_forced)
		snprintf(detail, sizeof(detail), "password reset; must change at next login%s",
		         lock);
	else /* in the flavour's words: pwdMustChange, passwordMustChange, AD's never-expires */
		snprintf(detail, sizeof(detail),
		         "password reset; the password policy does not force a change (%s)%s",
		         x->user->no_change_why != NULL ? x->user->no_change_why
		                                        : "pwdMustChange is not TRUE",
		         lock);
	act_outcome(x, st, err, detail);
}

/* The term an outcome's detail gives a grant ("expires " and 20 characters
 * of UTC time; a term change names the old one after it) into out, "" for
 * none. Return: false when the membership is not ours (out is then ""). */
static bool detail_term(const char *det, char *out, size_t len)
{
	const char *e = strstr(det, "expires ");
	bool ours = strstr(det, FOREIGN_MEMBER) == NULL;

	snprintf(out, len, "%.20s", ours && e != NULL ? e + 8 : "");
	return ours;
}

/* The term of the grant of ours in force for an existing member, into cur
 * ("" = no expiry). Return: 1 found, 0 the membership is not ours (it came
 * from elsewhere, or a grant of ours found it there: a term given now must
 * not end it), -1 unknown (the store failed to answer). */
static int member_term(struct act *x, char *cur, size_t len)
{
	char op[LDAPDESK_MAX_UID + 1], det[256] = "", err[256];
	int rc = audit_last_grant(x->A->audit, target_uid(x), x->permission, op, sizeof(op), det,
	                          sizeof(det), err, sizeof(err));

	if (rc == -1) {
		log_warnx("grant %s %s: %s (the term given is kept)", x->target, x->permission,
		          err);
		return -1;
	}
	return rc == 1 && detail_term(det, cur, len) ? 1 : 0;
}

/* A grant to a member: unchanged when the term stays, ok when it changes
 * (a renewal or a shortening is a change the log must show: the expiry
 * follows the newest grant). The detail names one "expires" only: the
 * expiry reads the term after it. */
static enum dir_status member_detail(struct act *x, char *detail, size_t len)
{
	char cur[32] = "", now[CLOCK_ISO_LEN] = "";
	int known = member_term(x, cur, sizeof(cur));

	/* No term asked (the max_days default): nothing needs doing, the term in
	 * force stays (DESIGN: a grant of an existing membership is unchanged). */
	if (known == 1 && x->days <= 0 && x->until == NULL &&
	    (cur[0] == '\0' || clock_parse_iso(cur, &x->expires) == 0)) {
		if (cur[0] == '\0')
			x->expires = 0;
		snprintf(detail, len, "already a member; %s%s", cur[0] ? "expires " : "no expiry",
		         cur);
		return DIR_UNCHANGED;
	}
	if (x->expires != 0)
		clock_utc(x->expires, now, sizeof(now));
	if (known == 0 && x->expires != 0) {
		x->expires = 0;
		snprintf(detail, len, "%s: no expiry set", FOREIGN_MEMBER);
		return DIR_UNCHANGED;
	}
	if (known != 1 || strcmp(cur, now) == 0) {
		snprintf(detail, len, "already a member; %s%s", now[0] ? "expires " : "no expiry",
		         now);
		return DIR_UNCHANGED;
	}
	snprintf(detail, len, "already a member; term changed: %s%s (was %s)",
	         now[0] ? "expires " : "no expiry", now, cur[0] ? cur : "no expiry");
	return DIR_OK;
}

/* A member modify's "no such object" is about the group, not the user (who
 * was just read): a configuration or directory fault, said as one instead
 * of "no such user". Return: the message to answer with, in buf. */
static const char *group_missing(const struct act *x, enum dir_status *st, const char *err,
                                 char *buf, size_t len)
{
	if (*st != DIR_NOT_FOUND)
		return err;
	*st = DIR_REFUSED;
	snprintf(buf, len,
	         "the group of permission %s (%s) is not in the directory: create it, or "
	         "correct [grant.%s] group in the configuration and reload ldapdeskd",
	         x->permission, x->grant->group, x->permission);
	return buf;
}

static void grant_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	char detail[160] = "no expiry", msg[1024];

	bool member = st == DIR_UNCHANGED;

	err = group_missing(x, &st, err, msg, sizeof(msg));
	if (member)
		st = member_detail(x, detail, sizeof(detail)); /* may drop the term */
	if (x->expires != 0)
		clock_utc(x->expires, x->reply.expires, sizeof(x->reply.expires));
	if (!member && x->expires != 0)
		snprintf(detail, sizeof(detail), "expires %s", x->reply.expires);
	if (x->kind == ACT_APPROVE && (st == DIR_OK || st == DIR_UNCHANGED))
		x->in_txn = request_approved_txn; /* closed with the outcome record */
	act_outcome(x, st, err, detail);
}

/* One try per grant every EXPIRY_RETRY seconds: an expiry still in flight is
 * not started again on the next tick, and one the directory keeps refusing
 * (its group deleted, say) adds two records per retry rather than per tick.
 * An expiry that is done, or failed only because the directory was out of
 * reach, clears its key (expire_answered): the next tick tries again. */
#define EXPIRY_RETRY 900

static void expiry_key(char *buf, size_t len, const char *target, const char *permission)
{
	snprintf(buf, len, "expire:%s:%s", target, permission);
}

static void revoke_done(void *arg, enum dir_status st, const char *err)
{
	struct act *x = arg;
	char msg[1024];

	err = group_missing(x, &st, err, msg, sizeof(msg));
	act_outcome(x, st, err,
	            st == DIR_UNCHANGED && x->user == NULL
	                ? "was not a member (the user is no longer in the directory; if it was "
	                  "moved before it was deleted, its last DN may still be in the group: "
	                  "check it)"
	            : st == DIR_UNCHANGED ? "was not a member"
	            : x->user == NULL ? "expired: the grant's term ended; the user is no longer "
	                                "in the directory, and the DN it was granted to was "
	                                "taken out of the group"
	            : x->kind == ACT_EXPIRE ? "expired: the grant's term ended"
	                                    : "revoked");
}

/* The attempt is durable before the directory is touched (fail closed):
 * it joins the next group commit, and act_dispatch runs after it. */
static void act_execute(struct act *x)
{
	/* Checked again after a stale cache: the attempt is already stored. */
	if (x->attempt != 0) {
		act_dispatch(x);
		return;
	}
	/* One change per user at a time (act_claim): refused here, once every
	 * other check has passed. */
	if (act_busy(x))
		return;
	/* As long as the user's password policy asks, if over PASSGEN_LEN. */
	if (x->kind == ACT_RESET &&
	    passgen_make_n(x->reply.password, sizeof(x->reply.password),
	                   passgen_length(x->user != NULL ? x->user->password_min : 0)) == -1) {
		act_refuse(x, ACT_UNAVAILABLE, "rng_failed", "failed",
		           "cannot generate a password: the random number generator failed");
		return;
	}
	commit_attempt(x);
}

/* A change that may alter who is in a protected group (a grant of one, any
 * lifecycle change) makes the protected snapshot stale: before the change,
 * so no check trusts a snapshot read while it runs, and after it. */
static void protect_touch(const struct act *x)
{
	/* Every grant and revoke, whatever its group: a group's DN can be
	 * spelled many ways (RDN order, spaces, escapes, Unicode width), and a
	 * protected group missed here would keep a stale snapshot. Grants are
	 * rare; a snapshot is a few searches. */
	if (x->kind != ACT_UNLOCK && x->kind != ACT_RESET && x->kind != ACT_RECORD) {
		protect_invalidate(x->A->protect);
		protect_invalidate(x->A->scope_guard);
	}
}

void act_dispatch(struct act *x)
{
	int rc;

	if (x->attempt_at == 0)
		x->attempt_at = time(NULL);
	if (x->A->dir == NULL) { /* actions_drain: the directory side is gone */
		act_outcome(x, DIR_UNAVAILABLE, "ldapdeskd is stopping", NULL);
		return;
	}
	protect_touch(x);
	if (x->kind == ACT_UNLOCK)
		rc = dir_unlock(x->A->dir, x->user, unlock_done, x);
	else if (x->kind == ACT_RESET)
		rc = dir_set_password(x->A->dir, x->user->dn, x->reply.password, reset_done, x);
	else if (x->kind == ACT_GRANT || x->kind == ACT_APPROVE)
		rc = dir_add_member(x->A->dir, x->grant->group, x->user->dn, grant_done, x);
	else if (x->kind == ACT_REVOKE || x->kind == ACT_EXPIRE)
		rc = dir_del_member(x->A->dir, x->grant->group,
		                    x->user != NULL ? x->user->dn : x->new_dn, revoke_done, x);
	else
		rc = lifecycle_execute(x) == 0 ? 0 : -1;
	if (rc == -1)
		act_outcome(x, DIR_UNAVAILABLE, "too many directory operations queued", NULL);
}

/* ---- protection and state --------------------------------------------------- */

/* Groups whose members only an admin may touch: [protect] and every role. */
static size_t protected_groups(const struct config *c, const char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_protect; i++)
		out[n++] = c->protect[i];
	if (c->role_helpdesk != NULL)
		out[n++] = c->role_helpdesk;
	if (c->role_admin != NULL)
		out[n++] = c->role_admin;
	if (c->role_auditor != NULL)
		out[n++] = c->role_auditor;
	return n;
}

/* ASCII case folded: uids (and DNs' attribute values here) compare without
 * it, so "Alice" and "ALICE" must not each get their own five failures. */
static void limit_key(char *buf, size_t len, const char *kind, const char *who)
{
	snprintf(buf, len, "%s:%s", kind, who != NULL ? who : "-");
	ascii_lower(buf);
}

/* Failed logins per source: an address, or an IPv6 host's whole /64. */
static void addr_key(const struct act *x, const char *kind, char *buf, size_t len)
{
	char src[64];

	limits_source(x->client_addr, src, sizeof(src));
	limit_key(buf, len, kind, src);
}

/* ---- four-eyes requests -------------------------------------------------------------- */

static int request_validate(struct act *x)
{
	if (x->kind == ACT_REJECT && (x->reason == NULL || x->reason[0] == '\0')) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "a rejection needs a reason (--reason TEXT)");
		return -1;
	}
	return 0;
}

/* Closes x's request in the group commit's transaction, with the record of
 * the step that closes it (approve outcome, reject or expiry pair). */
static int request_close_txn(struct act *x, struct audit *a, const char *status, const char *reason,
                             char *err, size_t errlen)
{
	int rc = audit_request_close(a, x->request_id, status, x->has_op ? x->op.uid : "ldapdeskd",
	                             reason, err, errlen);

	if (rc == 1) {
		x->request_gone = true; /* read on the loop once the batch is back */
		snprintf(err, errlen, "request %lld is no longer pending",
		         (long long)x->request_id);
	}
	return rc == 0 ? 0 : -1;
}

static int request_approved_txn(struct act *x, struct audit *a, char *err, size_t errlen)
{
	return request_close_txn(x, a, "approved", NULL, err, errlen);
}

/* A reject by an admin, or (no operator) the daemon's expiry. */
static int request_rejected_txn(struct act *x, struct audit *a, char *err, size_t errlen)
{
	return x->has_op ? request_close_txn(x, a, "rejected", x->reason, err, errlen)
	                 : request_close_txn(x, a, "expired", x->out_text, err, errlen);
}

/* The request and its record are stored together, or neither. */
static void request_opened(struct act *x, const char *err)
{
	if (err != NULL && x->request_dup > 0) {
		act_reply(x, ACT_CONFLICT, "already_requested", "%s", err);
		return;
	}
	if (err != NULL) {
		act_reply(x, ACT_UNAVAILABLE, "audit_unavailable", "cannot store the request: %s",
		          err);
		return;
	}
	x->reply.request_id = x->request_id;
	x->reply.result = "ok";
	act_reply(x, ACT_OK, NULL, "%s", x->out_text != NULL ? x->out_text : "");
}

/* On the writer thread: the request's row, whose id its record carries. */
static int request_create_txn(struct act *x, struct audit *a, char *err, size_t errlen)
{
	struct audit_req r = {.days = x->days};
	char detail[96];
	int rc;

	snprintf(r.operator, sizeof(r.operator), "%s", x->op.uid);
	snprintf(r.target, sizeof(r.target), "%s", target_uid(x));
	snprintf(r.permission, sizeof(r.permission), "%s", x->permission);
	snprintf(r.until, sizeof(r.until), "%s", x->until != NULL ? x->until : "");
	/* One that would not fit is not kept (cut, it would never match). A
	 * cached user has none: its request is approved without the check. */
	if (x->user != NULL && x->user->entry_id != NULL &&
	    strlen(x->user->entry_id) < sizeof(r.target_entry))
		snprintf(r.target_entry, sizeof(r.target_entry), "%s", x->user->entry_id);
	/* Checked again in the transaction that stores the request: two asked
	 * within one group commit both passed request_open's check. */
	rc = audit_request_pending_for(a, r.target, r.permission, &x->request_dup, err, errlen);
	if (rc == 1)
		snprintf(err, errlen,
		         "request %lld for %s on %s is already waiting for approval: see "
		         "'ldapdesk pending'",
		         (long long)x->request_dup, r.permission, r.target);
	if (rc != 0)
		return -1;
	if (audit_request_create(a, &r, &x->request_id, err, errlen) == -1)
		return -1;
	snprintf(detail, sizeof(detail), "request %lld awaits another admin's approval",
	         (long long)x->request_id);
	free(x->out_text);
	x->out_text = strdup(detail);
	if (x->out_text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* A grant of an approval = yes permission becomes a pending request; the
 * attempt is recorded (uncounted) with the request's id and no outcome: it
 * is pending (DESIGN: no outcome yet) until the request is approved,
 * rejected or expires (audit_request_close). */
static void request_open(struct act *x)
{
	char err[256];
	int64_t id = 0;
	int rc = audit_request_pending_for(x->A->audit, target_uid(x), x->permission, &id, err,
	                                   sizeof(err));

	if (rc == -1) {
		act_reply(x, ACT_UNAVAILABLE, "audit_unavailable", "%s", err);
		return;
	}
	/* A second request for the same grant would be approved twice. */
	if (rc == 1) {
		act_refuse(x, ACT_CONFLICT, "already_requested", "failed",
		           "request %lld for %s on %s is already waiting for approval: see "
		           "'ldapdesk pending'",
		           (long long)id, x->permission, target_uid(x));
		return;
	}
	x->in_txn = request_create_txn;
	commit_pair(x, NULL, NULL, request_opened);
}

/* The approve or reject carries the request's event fields (department,
 * requester, ticket...) unless the admin gave their own: the approval is
 * the event the report counts, and it belongs to whoever asked. */
static void request_inherit(struct act *x)
{
	char **dst[] = {&x->ticket,  &x->requester,   &x->department,
	                &x->channel, &x->description, &x->note};
	static const char *const keys[] = {"ticket",  "requester",   "department",
	                                   "channel", "description", "note"};
	json_t *f = NULL;
	char err[256];

	if (audit_request_fields(x->A->audit, x->request_id, &f, err, sizeof(err)) == -1)
		log_warnx("request %lld: %s", (long long)x->request_id, err);
	for (size_t i = 0; f != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(f, keys[i]));

		/* A reject's description is its reason (act_event). */
		if (dst[i] == &x->description && x->kind != ACT_APPROVE)
			continue;
		if (*dst[i] == NULL && v != NULL)
			*dst[i] = strdup(v);
	}
	json_decref(f);
}

/* The sweep closes requests past [limits] request_ttl only every tick: one
 * it has not reached yet is as closed for an approve. Return: true (and
 * refused) if r is past it. */
static bool request_past_ttl(struct act *x, const struct audit_req *r)
{
	time_t asked;

	if (clock_parse_iso(r->created_at, &asked) == -1 ||
	    time(NULL) - asked <= x->conf->request_ttl)
		return false;
	act_refuse(x, ACT_CONFLICT, "request_closed", "denied",
	           "request %lld has expired: it was not approved within %d s ([limits] "
	           "request_ttl); ask again if the access is still needed",
	           (long long)x->request_id, x->conf->request_ttl);
	return true;
}

/* Approve and reject act on a stored request: it must exist (404), come
 * from another admin (403), and be open (409). */
static int request_load(struct act *x)
{
	struct audit_req r;
	char err[256];
	int rc;

	/* A path id that is no number names no request, as a name that cannot
	 * be a uid names no user (404, after the role). */
	if (x->request_id <= 0) {
		act_refuse(
		    x, ACT_NOT_FOUND, "no_such_request", "failed",
		    "no such request: request ids are whole numbers from 1 (ldapdesk pending)");
		return -1;
	}
	rc = audit_request_get(x->A->audit, x->request_id, &r, err, sizeof(err));
	if (rc == -1) {
		act_reply(x, ACT_UNAVAILABLE, "audit_unavailable", "%s", err);
		return -1;
	}
	if (rc == 0) {
		act_refuse(x, ACT_NOT_FOUND, "no_such_request", "failed", "no such request: %lld",
		           (long long)x->request_id);
		return -1;
	}
	free(x->target);
	free(x->permission);
	x->target = strdup(r.target);
	x->permission = strdup(r.permission);
	free(x->request_entry);
	x->request_entry = r.target_entry[0] != '\0' ? strdup(r.target_entry) : NULL;
	request_inherit(x);
	x->days = r.days;
	if (r.until[0] != '\0') {
		free(x->until);
		x->until = strdup(r.until);
	}
	/* Its row is not in the chain; the grant record that asked is. */
	if (x->kind == ACT_APPROVE && r.mismatch) {
		char rec[48] = "no grant record asked for it";

		if (r.event > 0)
			snprintf(rec, sizeof(rec), "its grant record is event %lld",
			         (long long)r.event);
		act_refuse(
		    x, ACT_CONFLICT, "request_altered", "denied",
		    "request %lld does not match the grant record that asked for it (%s): it "
		    "was changed outside ldapdesk, so it is not approved; reject it, tell the "
		    "auditors, and ask again",
		    (long long)x->request_id, rec);
		return -1;
	}
	/* DESIGN's order puts 403 (scope) before 409: one's own request is
	 * refused as such even once it is closed. Approve and reject alike are
	 * another admin's (issue 7); the requester's own expires by itself. */
	if (strcasecmp(r.operator, x->op.uid) == 0) {
		act_refuse(x, ACT_FORBIDDEN, "four_eyes", "denied",
		           "request %lld is yours: another admin must %s it (an open request also "
		           "closes by itself after [limits] request_ttl)",
		           (long long)x->request_id, kind_action[x->kind]);
		return -1;
	}
	if (strcmp(r.status, "pending") != 0) {
		act_refuse(x, ACT_CONFLICT, "request_closed", "denied",
		           "request %lld is already %s", (long long)x->request_id, r.status);
		return -1;
	}
	if (x->kind == ACT_APPROVE && request_past_ttl(x, &r))
		return -1;
	/* Between this check and the request's close lie a group commit and, to
	 * approve, the directory: the request is held meanwhile, so a reject and
	 * an approve (or two of either) cannot both go through. */
	if (request_claimed(x->A, x->request_id) || x->A->n_claimed == ACT_MAX_CLAIMS) {
		act_refuse(x, ACT_CONFLICT, "request_busy", "denied",
		           "request %lld is being approved or rejected right now: look again "
		           "with 'ldapdesk pending'",
		           (long long)x->request_id);
		return -1;
	}
	x->A->claimed[x->A->n_claimed++] = x->request_id;
	x->claimed = true;
	return 0;
}

/* A rejection that cannot be recorded is not made: the request stays open. */
static void request_rejected(struct act *x, const char *err)
{
	if (err != NULL && x->request_gone) {
		act_reply(x, ACT_CONFLICT, "request_closed", "%s", err);
		return;
	}
	if (err != NULL) {
		act_reply(x, ACT_UNAVAILABLE, "audit_unavailable",
		          "the audit store cannot record this rejection: %s", err);
		return;
	}
	x->reply.result = "ok";
	act_reply(x, ACT_OK, NULL, NULL);
}

static void request_reject(struct act *x)
{
	x->in_txn = request_rejected_txn;
	commit_pair(x, "ok", x->reason, request_rejected);
}

/* The approved grant runs as a grant would, with the term counted from now. */
static void request_approve(struct act *x)
{
	time_t now = time(NULL);

	x->grant = config_grant(x->conf, x->permission);
	if (x->grant == NULL) {
		act_refuse(x, ACT_NOT_FOUND, "no_such_permission", "failed",
		           "%s is no longer a configured permission", x->permission);
		return;
	}
	x->reply.grant_name = x->grant->name;
	x->reply.grant_label = x->grant->label != NULL ? x->grant->label : x->grant->name;
	if (x->until != NULL &&
	    (clock_parse_until(x->until, &x->expires) == -1 || x->expires <= now)) {
		char utc[CLOCK_ISO_LEN], local[CLOCK_ISO_LEN];

		/* Shown in the server's zone, like every time an operator reads. */
		clock_utc(x->expires, utc, sizeof(utc));
		act_refuse(x, ACT_CONFLICT, "request_stale", "denied",
		           "request %lld asked for access until %s, which has passed: reject it, "
		           "and ask for a new term if still needed",
		           (long long)x->request_id,
		           x->expires > 0 && clock_local(utc, local, sizeof(local)) == 0
		               ? local
		               : x->until);
		return;
	}
	if (x->until == NULL)
		x->expires = x->days > 0              ? now + (time_t)x->days * 86400
		             : x->grant->max_days > 0 ? now + (time_t)x->grant->max_days * 86400
		                                      : 0;
	act_lookup(x);
}

/* A helpdesk operator may reset one user only so often (admins are exempt). */
static int reset_throttled(struct act *x)
{
	char key[LIMIT_KEY_MAX];
	time_t now = time(NULL);
	int wait;

	if (x->kind != ACT_RESET || (x->op.roles & ROLE_ADMIN))
		return 0;
	limit_key(key, sizeof(key), "reset", x->user->dn);
	wait = limits_wait(x->A->limits, key, x->conf->resets_per_hour, 3600, now);
	if (wait == 0) {
		limits_count(x->A->limits, key, 3600, now);
		return 0;
	}
	x->reply.retry_after = wait;
	act_refuse(x, ACT_TOO_MANY, "too_many_resets", "denied",
	           "%s was reset %d times in the last hour: try again in %d s or ask an "
	           "administrator",
	           x->target, x->conf->resets_per_hour, wait);
	return -1;
}

/* The uid a request named may have been deleted and made again outside
 * ldapdesk since: approving would give the access to someone the requester
 * never asked for. Return: true (and refused) if the entry is another. */
static bool request_recreated(struct act *x)
{
	if (x->kind != ACT_APPROVE || x->request_entry == NULL || x->user->entry_id == NULL ||
	    strcmp(x->request_entry, x->user->entry_id) == 0)
		return false;
	act_refuse(x, ACT_CONFLICT, "request_stale", "denied",
	           "%s is not the account request %lld was made for: it was deleted and made "
	           "again since (its entry %s was %s), so it is not approved; reject the "
	           "request, and ask again for this account if it needs the access",
	           x->target, (long long)x->request_id, x->user->entry_id, x->request_entry);
	return true;
}

static void act_checked(struct act *x)
{
	/* A reset would also clear an administrator's lock on OpenLDAP (any
	 * password change deletes pwdAccountLockedTime): only `user enable` may
	 * lift it, on every flavour alike. DESIGN lists it with the protections:
	 * 403, like them. */
	if ((x->kind == ACT_UNLOCK || x->kind == ACT_RESET) && x->user->admin_locked) {
		act_refuse(x, ACT_FORBIDDEN, "account_disabled", "denied",
		           "%s was disabled by an administrator; only 'ldapdesk user enable' "
		           "may enable it",
		           x->target);
		return;
	}
	/* Before the reset limit counts it: a refused reset is no reset. */
	if (request_recreated(x) || act_busy(x) || reset_throttled(x) == -1)
		return;
	if (x->kind == ACT_GRANT && x->needs_approval) {
		request_open(x);
		return;
	}
	act_execute(x);
}

static void protect_cb(void *arg, enum dir_status st, bool member, const char *err)
{
	struct act *x = arg;

	if (st != DIR_OK) {
		act_dir_refuse(x, st, err);
		return;
	}
	if (member && !(x->op.roles & ROLE_ADMIN)) {
		act_refuse(x, ACT_FORBIDDEN, "protected", "denied",
		           "%s is a protected account (an operator or a member of a protected "
		           "group): only an administrator may %s it",
		           x->target, kind_action[x->kind]);
		return;
	}
	act_checked(x);
}

static void act_protect(struct act *x)
{
	const char *groups[CONFIG_MAX_LIST + 3];
	size_t n = protected_groups(x->conf, groups);

	/* uids match case-insensitively (a cached user's uid is as typed). */
	if (strcasecmp(x->op.uid, target_uid(x)) == 0) {
		act_refuse(x, ACT_FORBIDDEN, "self", "denied",
		           "operators may not %s their own account", kind_action[x->kind]);
		return;
	}
	/* An admin may act on protected accounts: asking would change nothing,
	 * and a check that cannot be answered must not lock admins out too. */
	if (x->op.roles & ROLE_ADMIN) {
		act_checked(x);
		return;
	}
	/* protected_groups lists [protect]'s first: those must exist. */
	if (protect_check(x->A->protect, x->user->dn, groups, n, x->conf->n_protect,
	                  x->conf->cache_seconds, protect_cb, x) == -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

/* ---- status ------------------------------------------------------------------ */

static json_t *gentime_json(const char *gt)
{
	char utc[CLOCK_ISO_LEN], local[CLOCK_ISO_LEN];
	time_t t;

	if (gt == NULL || clock_parse_gentime(gt, &t) == -1)
		return json_null();
	clock_utc(t, utc, sizeof(utc));
	if (clock_local(utc, local, sizeof(local)) == -1)
		return json_null();
	return json_string(local);
}

static json_t *grant_json(struct act *x, const struct config_grant *g)
{
	char op[80] = "", detail[256] = "", err[128], term[32], local[CLOCK_ISO_LEN];
	json_t *expires = json_null(), *by = json_null();

	/* A membership made outside ldapdesk has no granter and no term of ours. */
	if (audit_last_grant(x->A->audit, target_uid(x), g->name, op, sizeof(op), detail,
	                     sizeof(detail), err, sizeof(err)) == 1 &&
	    detail_term(detail, term, sizeof(term))) {
		by = json_string(op);
		if (term[0] != '\0' && clock_local(term, local, sizeof(local)) == 0) {
			json_decref(expires);
			expires = json_string(local);
		}
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "permission", g->name, "label",
	                 g->label != NULL ? g->label : g->name, "group", g->group, "expires",
	                 expires, "granted_by", by);
}

static json_t *status_json(struct act *x, unsigned long mask)
{
	const struct dir_user *u = x->user;
	json_t *grants = json_array();

	for (size_t i = 0; i < x->conf->n_grants; i++)
		if (mask & (1UL << i))
			json_array_append_new(grants, grant_json(x, &x->conf->grants[i]));
	return json_pack(
	    "{s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:o, s:b, s:i, s:b, s:o, s:o}", "uid", u->uid,
	    "dn", u->dn, "name", u->name, "department", u->department, "mail", u->mail, "locked",
	    u->locked, "locked_since",
	    u->locked && !u->admin_locked ? gentime_json(u->locked_since) : json_null(),
	    "admin_locked", u->admin_locked, "failures", u->failures, "must_change", u->must_change,
	    "password_changed", gentime_json(u->password_changed), "grants", grants);
}

/* Who disabled the account, when and why, from the audit (issue 7: status
 * explains the lock); a disable made outside ldapdesk has no record. */
static json_t *disable_reason(const struct act *x)
{
	char op[72] = "", at[40] = "", local[CLOCK_ISO_LEN], why[LDAPDESK_MAX_FIELD + 1] = "";
	char err[256], buf[LDAPDESK_MAX_FIELD + 200];
	int rc = audit_last_disable(x->A->audit, target_uid(x), op, sizeof(op), at, sizeof(at), why,
	                            sizeof(why), err, sizeof(err));

	if (rc == -1)
		log_warnx("status: %s", err);
	if (rc != 1)
		return json_string(
		    "disabled by an administrator (no ldapdesk record says who or why: "
		    "done outside ldapdesk; only 'user enable' lifts it)");
	snprintf(buf, sizeof(buf), "disabled by %s at %s: %s (only 'user enable' lifts it)", op,
	         clock_local(at, local, sizeof(local)) == 0 ? local : at,
	         why[0] != '\0' ? why : "no reason recorded");
	return json_string(buf);
}

/* Why the account is locked, in words, or NULL. */
static json_t *lock_reason(const struct act *x)
{
	const struct dir_user *u = x->user;
	char buf[160];
	time_t t;

	if (u->admin_locked)
		return disable_reason(x);
	if (u->locked) {
		snprintf(buf, sizeof(buf), "%d failed logins (password policy lockout)",
		         u->failures);
		return json_string(buf);
	}
	if (u->locked_since != NULL && clock_parse_gentime(u->locked_since, &t) == 0 &&
	    t > time(NULL))
		return json_string("a lock dated in the future: not in effect yet (an unlock "
		                   "clears it)");
	if (u->outside_validity && u->validity_why != NULL)
		return json_string(u->validity_why);
	if (u->outside_validity)
		return json_string(
		    "outside the account's validity (pwdStartTime / pwdEndTime): the "
		    "directory refuses its logins, and an unlock does not change that; "
		    "fix those attributes");
	if (u->password_expired)
		return json_string("the password has expired (older than the policy's pwdMaxAge; "
		                   "only grace logins are left, if any): reset it");
	if (u->locked_since != NULL)
		return json_string("a lock that has expired (the next good login clears it)");
	return json_null();
}

static int history_row(void *arg, json_t *row)
{
	char local[CLOCK_ISO_LEN];
	const char *utc = json_string_value(json_object_get(row, "requested_at"));
	json_t *copy = json_pack(
	    "{s:O, s:o, s:O, s:O, s:O, s:O}", "id", json_object_get(row, "id"), "requested_at",
	    utc != NULL && clock_local(utc, local, sizeof(local)) == 0 ? json_string(local)
	                                                               : json_null(),
	    "operator", json_object_get(row, "operator"), "action", json_object_get(row, "action"),
	    "result", json_object_get(row, "result"), "detail", json_object_get(row, "detail"));

	json_array_append_new(arg, copy);
	return 0;
}

/* The rest of the one-screen explanation: why locked, password age, and the
 * last five audit rows about the user. */
static void status_explain(struct act *x, json_t *body)
{
	json_t *history = json_array();
	time_t changed;
	char err[128];

	json_object_set_new(body, "lock_reason", lock_reason(x));
	if (x->user->password_changed != NULL &&
	    clock_parse_gentime(x->user->password_changed, &changed) == 0)
		json_object_set_new(body, "password_age_days",
		                    json_integer((time(NULL) - changed) / 86400));
	else
		json_object_set_new(body, "password_age_days", json_null());
	if (audit_recent(x->A->audit, target_uid(x), 5, history_row, history, err, sizeof(err)) ==
	    -1)
		log_warnx("status: cannot read the history of %s: %s", x->target, err);
	json_object_set_new(body, "history", history);
}

/* Once the outcomes answered before it are stored (commit.c: answer first):
 * its grants' terms and its history show a change just answered. */
static void status_finish(void *arg)
{
	struct act *x = arg;

	x->reply.body = status_json(x, x->roles_mask);
	if (x->reply.body != NULL)
		status_explain(x, x->reply.body);
	act_reply(x, ACT_OK, NULL, NULL);
}

static void status_groups_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct act *x = arg;

	if (st != DIR_OK) {
		act_dir_refuse(x, st, err);
		return;
	}
	x->roles_mask = mask; /* here: the user's grant groups */
	commit_after_settled(x->A, status_finish, x);
}

static void act_status_read(struct act *x)
{
	const char *groups[64];
	size_t n = x->conf->n_grants;

	if (n == 0) {
		status_groups_cb(x, DIR_OK, 0, NULL);
		return;
	}
	for (size_t i = 0; i < n && i < 64; i++)
		groups[i] = x->conf->grants[i].group;
	if (dir_member_of(x->A->dir, x->user->dn, groups, n > 64 ? 64 : n, status_groups_cb, x) ==
	    -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

/* ---- login and roles ----------------------------------------------------------- */

/* The groups that decide a session: the role groups that are set, then every
 * [scope.*] group. Return: how many (at most 3 + 64). */
static size_t session_groups(const struct config *c, const char **groups)
{
	size_t n = 0;

	if (c->role_helpdesk != NULL)
		groups[n++] = c->role_helpdesk;
	if (c->role_admin != NULL)
		groups[n++] = c->role_admin;
	if (c->role_auditor != NULL)
		groups[n++] = c->role_auditor;
	for (size_t i = 0; i < c->n_scopes && n < 64; i++)
		groups[n++] = c->scopes[i].group;
	return n;
}

/* The bits of session_groups() that settle the scope: a scope missed in
 * a walk cut short would leave an operator in none, unlimited (nest.h),
 * unless one is found, or the admin role (admins are never scoped).
 * Without scopes nothing is needed. */
static unsigned long scope_bits(const struct config *c, size_t n)
{
	size_t roles =
	    (c->role_helpdesk != NULL) + (c->role_admin != NULL) + (c->role_auditor != NULL);
	unsigned long all = n >= 64 ? ~0UL : (1UL << n) - 1, admin = 0;

	if (c->role_admin != NULL) /* session_groups: helpdesk, admin, auditor, scopes */
		admin = 1UL << (c->role_helpdesk != NULL);
	if ((all & ~((1UL << roles) - 1)) == 0)
		return 0;
	return (all & ~((1UL << roles) - 1)) | admin;
}

/* Turns a dir_member_of mask over session_groups() into roles and scopes. */
static void session_roles(const struct config *c, unsigned long mask, unsigned *rolesp,
                          unsigned long *scopesp)
{
	const char *dns[3] = {c->role_helpdesk, c->role_admin, c->role_auditor};
	const unsigned roles[3] = {ROLE_HELPDESK, ROLE_ADMIN, ROLE_AUDITOR};
	size_t bit = 0;

	*rolesp = 0;
	*scopesp = 0;
	for (size_t i = 0; i < 3; i++)
		if (dns[i] != NULL && (mask & (1UL << bit++)))
			*rolesp |= roles[i];
	for (size_t i = 0; i < c->n_scopes && bit < 64; i++, bit++)
		if (mask & (1UL << bit))
			*scopesp |= 1UL << i;
}

/* A helpdesk operator the walk found in no [scope.*] group acts unlimited.
 * The walk sees groups nested under group_base only (direct members without
 * it): one the scope guard finds in a scope group all the same is in it
 * through a group the walk cannot see, and is refused (fail closed). */
static bool scope_unseen(const struct config *c, unsigned roles, unsigned long scopes)
{
	return (roles & ROLE_HELPDESK) && !(roles & ROLE_ADMIN) && scopes == 0 && c->n_scopes > 0;
}

#define SCOPE_UNSEEN                                                                               \
	"%s is in a [scope.*] group only through a group nested in it that ldapdesk does not "     \
	"follow (outside [ldap] group_base, or any without group_base), so its scope cannot be "   \
	"told and it is refused: list the operator in the scope group directly, or keep the "      \
	"nested groups under group_base"

/* Is dn in one of c's [scope.*] groups, through groups nested anywhere?
 * Return: as protect_check. */
static int scope_guard_check(struct actions *A, const struct config *c, const char *dn,
                             protect_fn fn, void *arg)
{
	const char *groups[64];
	size_t n = 0;

	for (size_t i = 0; i < c->n_scopes && n < 64; i++)
		groups[n++] = c->scopes[i].group;
	return protect_check(A->scope_guard, dn, groups, n, 0, c->cache_seconds, fn, arg);
}

/* The operator's key: its entry once found, since slapd matches "ａｄｍ１"
 * (full width) or "ADM1" to adm1 too — each spelling must not bring its own
 * allowance of failures. Before the lookup, and for a name nobody has, the
 * name as typed. */
static void login_user_key(const struct act *x, char *key, size_t len)
{
	char dn[24];

	if (x->user == NULL) {
		limit_key(key, len, "login-user", x->target);
		return;
	}
	/* A DN may be longer than a key holds (UTF-8 OUs, AD's CN=Full Name):
	 * cut, two operators could share one allowance. Hashed, 64 bits. */
	snprintf(dn, sizeof(dn), "%08x%08x", ascii_fnv1a(x->user->dn, 2166136261u, true),
	         ascii_fnv1a(x->user->dn, 0x9747b28cu, true));
	limit_key(key, len, "login-user", dn);
}

/* Counts a failed login against the operator and the address; one at the
 * directory (login_reserve) is settled as counted instead. */
static void login_failed(struct act *x)
{
	char key[LIMIT_KEY_MAX];
	time_t now = time(NULL);

	login_user_key(x, key, sizeof(key));
	if (x->counted_user)
		limits_settle(x->A->limits, key, x->user_window, true, x->conf->login_window, now);
	else
		limits_count(x->A->limits, key, x->conf->login_window, now);
	addr_key(x, "login-addr", key, sizeof(key));
	limits_count(x->A->limits, key, x->conf->login_window, now);
	x->counted_user = false;
	x->login_final = true;
}

/* A bind in flight is pending on the operator's counter until its answer:
 * checked one after the other on the loop, a burst of 60 wrong passwords
 * sent at once would otherwise each find the count under the limit, and
 * reach slapd (issue 3: at most login_failures failed binds a window). */
static void login_reserve(struct act *x)
{
	char key[LIMIT_KEY_MAX];

	login_user_key(x, key, sizeof(key));
	x->user_window = limits_reserve(x->A->limits, key, x->conf->login_window, time(NULL));
	x->counted_user = true;
}

/* Drops the pending bind: the login succeeded, or the directory could not
 * say (an outage is no failed guess). */
static void login_unreserve(struct act *x)
{
	char key[LIMIT_KEY_MAX];

	if (!x->counted_user)
		return;
	login_user_key(x, key, sizeof(key));
	limits_settle(x->A->limits, key, x->user_window, false, x->conf->login_window, time(NULL));
	x->counted_user = false;
}

/* Failures and binds in flight together fill the operator's allowance:
 * the bind waits for those to answer (LOGIN_WAIT_MS at a time), so that
 * right passwords sent at once all go through one after the other, and
 * wrong ones stop at the limit. Return: true if x waits (act_login_bind
 * runs again later). */
#define LOGIN_WAIT_MS    20
#define LOGIN_WAIT_TRIES 250 /* 5 s: then it is refused as busy */

static void act_login_bind(struct act *x);

static void login_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	act_login_bind(arg);
}

static bool login_crowded(struct act *x)
{
	char key[LIMIT_KEY_MAX];
	const struct timeval tv = {0, LOGIN_WAIT_MS * 1000};

	login_user_key(x, key, sizeof(key));
	if (x->A->base == NULL ||
	    limits_load(x->A->limits, key, time(NULL)) < x->conf->login_failures)
		return false;
	if (++x->login_waits > LOGIN_WAIT_TRIES) {
		act_refuse(x, ACT_UNAVAILABLE, "busy", "failed",
		           "too many logins of this operator at once: try again in a moment");
		return true;
	}
	if (event_base_once(x->A->base, -1, EV_TIMEOUT, login_wait_cb, x, &tv) == -1)
		return false;
	return true;
}

/* 429 when the operator or the address failed too often lately. */
static int login_throttled(struct act *x)
{
	char ukey[LIMIT_KEY_MAX], akey[LIMIT_KEY_MAX], msg[160];
	time_t now = time(NULL);
	int wu, wa;

	login_user_key(x, ukey, sizeof(ukey));
	addr_key(x, "login-addr", akey, sizeof(akey));
	wu = limits_wait(x->A->limits, ukey, x->conf->login_failures, x->conf->login_window, now);
	wa = limits_wait(x->A->limits, akey, x->conf->login_failures_per_addr,
	                 x->conf->login_window, now);
	if (wu == 0 && wa == 0)
		return 0;
	x->reply.retry_after = wu > wa ? wu : wa;
	snprintf(msg, sizeof(msg), "too many failed logins from this %s: try again in %d s",
	         wu > 0 ? "operator" : "address", x->reply.retry_after);
	refuse_throttled(x, wu > 0 ? ukey : akey, "too_many_failures", msg);
	return -1;
}

/* A login that cannot be recorded is refused (nothing done without a
 * record): its session, whose token nobody has seen yet, is ended. */
static void login_recorded(struct act *x, const char *err)
{
	/* Ended while its record was written (evicted, its operator disabled):
	 * the token would be refused at once. */
	if (err == NULL && session_find(x->A->sessions, x->reply.token) == NULL) {
		OPENSSL_cleanse(x->reply.token, sizeof(x->reply.token));
		act_reply(x, ACT_UNAUTHORIZED, "unauthenticated",
		          "the session ended as it was made (your account was changed, or too many "
		          "logins of yours at once): log in again");
		return;
	}
	if (err == NULL) {
		act_reply(x, ACT_OK, NULL, NULL);
		return;
	}
	log_warnx("audit: cannot record a login: %s", err);
	session_discard(x->A->sessions, x->reply.token);
	OPENSSL_cleanse(x->reply.token, sizeof(x->reply.token));
	act_reply(x, ACT_UNAVAILABLE, "audit_unavailable",
	          "cannot record the login, so it is refused: %s", err);
}

/* The login's session, with the roles and scopes of mask (the walk's). */
static void login_session(struct act *x, unsigned long mask)
{
	struct session s = {.roles = 0};
	char key[LIMIT_KEY_MAX];
	int rc;

	session_roles(x->conf, mask, &s.roles, &s.scopes);
	if (s.roles == 0) {
		login_failed(x);
		act_refuse(x, ACT_FORBIDDEN, "no_role", "denied",
		           "%s has no ldapdesk role: ask an administrator to add you to the "
		           "helpdesk, admin or auditor group",
		           x->target);
		return;
	}
	/* Disabled, moved or deleted by an admin since this login began: the
	 * bind was good then, but no session may outlive that change. */
	if (session_ended_since(x->A->sessions, x->user->dn, x->ended_mark)) {
		act_refuse(x, ACT_UNAUTHORIZED, "unauthenticated", "denied",
		           "%s was disabled, moved or deleted while logging in: log in again (or "
		           "ask an administrator)",
		           x->target);
		return;
	}
	snprintf(s.uid, sizeof(s.uid), "%s", target_uid(x));
	snprintf(s.dn, sizeof(s.dn), "%s", x->user->dn);
	/* Scopes read under x->conf: a reload since makes them stale at once. */
	s.roles_gen = x->conf_gen;
	rc = session_create(x->A->sessions, &s, x->conf->session_ttl, x->reply.token);
	if (rc == -2) {
		act_refuse(x, ACT_UNAVAILABLE, "session_failed", "failed",
		           "the session could not be signed (see ldapdeskd's log): try again");
		return;
	}
	if (rc == -1) {
		act_refuse(x, ACT_UNAVAILABLE, "sessions_full", "failed",
		           "too many sessions are open: try again later");
		return;
	}
	login_unreserve(x);
	login_user_key(x, key, sizeof(key));
	limits_clear(x->A->limits, key);
	{
		const struct session *made = session_find(x->A->sessions, x->reply.token);

		x->reply.roles = made != NULL ? made->roles : 0;
		x->reply.session_expires = made != NULL ? made->expires : 0;
	}
	commit_pair(x, "ok", NULL, login_recorded);
}

static void login_guard_cb(void *arg, enum dir_status st, bool member, const char *err)
{
	struct act *x = arg;

	if (st != DIR_OK)
		act_dir_refuse(x, st, err);
	else if (member)
		act_refuse(x, ACT_FORBIDDEN, "scope_unknown", "denied", SCOPE_UNSEEN, x->target);
	else
		login_session(x, x->roles_mask);
}

static void login_roles_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct act *x = arg;
	unsigned roles;
	unsigned long scopes;

	if (st != DIR_OK) {
		act_dir_refuse(x, st, err);
		return;
	}
	session_roles(x->conf, mask, &roles, &scopes);
	if (!scope_unseen(x->conf, roles, scopes)) {
		login_session(x, mask);
		return;
	}
	x->roles_mask = mask;
	if (scope_guard_check(x->A, x->conf, x->user->dn, login_guard_cb, x) == -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

static void login_bind_cb(void *arg, enum dir_bind_result r, const char *err)
{
	struct act *x = arg;
	const char *groups[64];
	size_t n = session_groups(x->conf, groups);

	if (r == DIR_BIND_BAD_CREDENTIALS) {
		login_failed(x);
		act_refuse(x, ACT_UNAUTHORIZED, "bad_credentials", "denied",
		           "wrong user name or password");
		return;
	}
	/* Every refused login counts towards the throttle, not only a wrong
	 * password: repeated logins of a locked, disabled or role-less account
	 * each cost a bind and two records, and were never answered 429. */
	if (r == DIR_BIND_DISABLED || r == DIR_BIND_MUST_CHANGE || r == DIR_BIND_LOCKED)
		login_failed(x);
	/* ppolicy answers accountLocked for an administrator's permanent lock
	 * too: the entry read before the bind tells a disable from a lockout
	 * (an unlock would be refused: only 'user enable' lifts it). */
	if (r == DIR_BIND_LOCKED && x->user != NULL && x->user->admin_locked)
		r = DIR_BIND_DISABLED;
	if (r == DIR_BIND_DISABLED) {
		act_refuse(x, ACT_FORBIDDEN, "disabled", "denied",
		           "your account is disabled: ask an administrator to enable it ('ldapdesk "
		           "user enable')");
		return;
	}
	if (r == DIR_BIND_MUST_CHANGE || r == DIR_BIND_LOCKED) {
		act_refuse(x, ACT_FORBIDDEN, r == DIR_BIND_LOCKED ? "locked" : "must_change",
		           "denied", "%s",
		           r == DIR_BIND_LOCKED
		               ? "your account is locked: ask an administrator to unlock it (an "
		                 "operator's account is protected: only an admin may)"
		               : "your password must be changed (an administrator reset it, or it "
		                 "has expired) before you can use ldapdesk: change it, then log in "
		                 "again");
		return;
	}
	/* AD accountExpires: the account's term ended, which no unlock or
	 * `user enable` lifts; err says who must extend it. */
	if (r == DIR_BIND_EXPIRED) {
		login_failed(x);
		act_refuse(x, ACT_UNAUTHORIZED, "account_ended", "denied", "%s",
		           err != NULL ? err
		                       : "your account has expired: ask a directory "
		                         "administrator to extend it");
		return;
	}
	if (r != DIR_BIND_OK) {
		login_unreserve(x);
		act_dir_refuse(x, DIR_UNAVAILABLE, err);
		return;
	}
	/* Nested too: an operator in a team group listed in a role group has
	 * the role (and a scope group's nested members are scoped). */
	if (nest_member_of(x->A->dir, x->user->dn, dir_group_base(x->A->dir), groups, n, false,
	                   scope_bits(x->conf, n), login_roles_cb, x) == -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

static void act_login_bind(struct act *x)
{
	/* Checked again under the entry found: any spelling of the name. */
	if (login_throttled(x) == -1)
		return;
	/* An empty password would be an unauthenticated bind, which "succeeds".
	 * Refused once the user is found, so the record names the operator. */
	if (x->password == NULL || x->password[0] == '\0') {
		login_failed(x);
		act_refuse(x, ACT_UNAUTHORIZED, "bad_credentials", "denied",
		           "wrong user name or password");
		return;
	}
	if (login_crowded(x))
		return;
	login_reserve(x);
	if (dir_bind_check(x->A->dir, x->user->dn, x->password, login_bind_cb, x) == -1) {
		login_unreserve(x);
		act_refuse(x, ACT_UNAVAILABLE, "busy", "failed",
		           "too many logins at once: try again in a moment");
	}
}

/* Role refresh for a running session: the same groups as at login, then
 * the operator's own entry. */
struct refresh {
	struct actions *A;
	act_roles_fn fn;
	void *arg;
	const struct config *conf;
	char uid[LDAPDESK_MAX_UID + 1], dn[512]; /* copies: the session may go meanwhile */
	unsigned roles;
	unsigned long scopes;
};

static void refresh_end(struct refresh *r, bool ok, const char *ended)
{
	r->A->refreshing--;
	r->fn(r->arg, ok, ended != NULL ? 0 : r->roles, ended != NULL ? 0 : r->scopes, ended);
	config_unref(r->conf);
	free(r);
}

/* The search by uid did not find the session's entry: only its DN read
 * says it is gone. A reload narrowing user_base or changing user_attr, or a
 * second entry with the uid, must not end every session. */
static void refresh_entry_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct refresh *r = arg;

	(void)dns, (void)n, (void)err;
	refresh_end(r, true, st == DIR_NOT_FOUND ? "your account was deleted or moved" : NULL);
}

/* Why a session's operator may no longer act, as its login would now be
 * refused (DESIGN: a locked or must-change operator is), or NULL. A lock
 * by failed logins or a reset by another tool reaches a running session
 * within one idle period; ldapdesk's own reset ends it at once. */
static const char *refresh_verdict(const struct dir_user *u)
{
	if (u->admin_locked)
		return "your account is disabled";
	if (u->outside_validity)
		return "your account is outside its validity (it ended, or has not begun)";
	/* Only when the policy says so: under one not read, both are guesses
	 * (erring towards refusal), and the operator's logins may well work. */
	if (u->locked && u->policy_read)
		return "your account is locked (failed logins)";
	if (u->must_change && u->policy_read)
		return "your password was reset and must be changed first";
	return NULL;
}

/* A group lists the DN still, but the account may be disabled, or gone
 * (deleted, or moved: another DN) by another tool than ldapdesk. The roles
 * were read: whatever this read says, they apply (ok). */
static void refresh_user_cb(void *arg, enum dir_status st, struct dir_user *u, const char *err)
{
	struct refresh *r = arg;
	bool same = st == DIR_OK && u != NULL && u->dn != NULL &&
	            (strcmp(u->dn, r->dn) == 0 || dir_dn_equal(u->dn, r->dn));

	/* No login would succeed now, so no session goes on either. */
	if (same)
		refresh_end(r, true, refresh_verdict(u));
	else if ((st == DIR_OK || st == DIR_NOT_FOUND) &&
	         dir_read_values(r->A->dir, r->dn, "objectClass", refresh_entry_cb, r) == 0)
		; /* refresh_entry_cb ends it */
	else {
		if (st != DIR_OK && st != DIR_NOT_FOUND)
			log_warnx("session of %s: roles re-read, its entry not (%s): checked again "
			          "at the next re-read",
			          r->uid, err != NULL ? err : "no answer");
		refresh_end(r, true, NULL);
	}
	dir_user_free(u);
}

/* The roles are read: whether the entry is still the session's. */
static void refresh_user(struct refresh *r)
{
	/* No role: the session ends, nothing to look up. Otherwise, if the
	 * lookup cannot be sent, the roles were read: they apply. */
	if (r->roles == 0 || dir_find_user(r->A->dir, r->uid, refresh_user_cb, r) == -1)
		refresh_end(r, true, NULL);
}

/* A re-read that found no scope: one the scope guard finds all the same
 * ends the session, as a login now would be refused. */
static void refresh_guard_cb(void *arg, enum dir_status st, bool member, const char *err)
{
	struct refresh *r = arg;

	if (st == DIR_REFUSED || (st == DIR_OK && member)) {
		log_warnx("the scope of %s cannot be told: %s", r->uid,
		          member ? "it is in a [scope.*] group only through a nested group not "
		                   "followed (outside [ldap] group_base, or any without it)"
		                 : (err != NULL ? err : "refused"));
		refresh_end(r, true, "your scope cannot be told (the daemon's log says why)");
	} else if (st != DIR_OK) {
		refresh_end(r, false, NULL);
	} else {
		refresh_user(r);
	}
}

static void refresh_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct refresh *r = arg;

	/* Refused (a walk cut short that found no scope, or the directory
	 * refused the searches): a login now would be refused, so the session
	 * ends. Keeping the roles read before, as for an outage, would keep an
	 * admin removed from cn=admins an admin until session_ttl. */
	if (st == DIR_REFUSED) {
		log_warnx("roles of %s cannot be read whole: %s", r->uid,
		          err != NULL ? err : "refused");
		refresh_end(r, true,
		            "your groups cannot be read whole (the daemon's log says why)");
		return;
	}
	if (st == DIR_OK)
		session_roles(r->conf, mask, &r->roles, &r->scopes);
	if (st == DIR_OK && scope_unseen(r->conf, r->roles, r->scopes)) {
		if (scope_guard_check(r->A, r->conf, r->dn, refresh_guard_cb, r) == -1)
			refresh_end(r, false, NULL);
		return;
	}
	if (st != DIR_OK)
		refresh_end(r, false, NULL);
	else
		refresh_user(r);
}

int act_refresh_roles(struct actions *A, const char *uid, const char *dn, act_roles_fn fn,
                      void *arg)
{
	struct refresh *r = calloc(1, sizeof(*r));
	const char *groups[64];
	size_t n = session_groups(A->conf, groups);

	if (r == NULL)
		return -1;
	r->A = A;
	r->fn = fn;
	r->arg = arg;
	r->conf = config_ref(A->conf);
	snprintf(r->uid, sizeof(r->uid), "%s", uid);
	snprintf(r->dn, sizeof(r->dn), "%s", dn);
	/* A request waiting on its roles is in flight: a stop waits for it.
	 * Counted first: a walk that cannot send a search answers at once. */
	A->refreshing++;
	if (n == 0 || nest_member_of(A->dir, dn, dir_group_base(A->dir), groups, n, false,
	                             scope_bits(A->conf, n), refresh_cb, r) == -1) {
		A->refreshing--;
		config_unref(r->conf);
		free(r);
		return -1;
	}
	return 0;
}

/* ---- start --------------------------------------------------------------------- */

/* Delegation: an operator in [scope.*] groups acts only inside the union of
 * those scopes; admins and operators in no scope group are not limited. */
static bool in_scope(const struct act *x)
{
	const struct config *c = x->conf;
	const char *dept = x->user->department;

	if ((x->op.roles & ROLE_ADMIN) || x->op.scopes == 0)
		return true;
	for (size_t i = 0; i < c->n_scopes && i < 64; i++) {
		const struct config_scope *k = &c->scopes[i];

		if (!(x->op.scopes & (1UL << i)))
			continue;
		for (size_t j = 0; j < k->n_departments; j++)
			if (dept != NULL && strcmp(dept, k->departments[j]) == 0)
				return true;
		for (size_t j = 0; j < k->n_bases; j++)
			if (dir_dn_under(x->user->dn, k->bases[j]))
				return true;
	}
	return false;
}

/* The expiry of a user gone from the directory takes out the DN it was
 * granted to only if that DN names nothing now: under AD a CN=Full Name
 * may since name another account, whose own membership it would end. */
static void expire_dn_checked(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct act *x = arg;

	(void)dns;
	(void)n;
	if (st == DIR_NOT_FOUND) {
		act_execute(x);
		return;
	}
	if (st != DIR_OK) {
		act_dir_refuse(x, st, err);
		return;
	}
	act_refuse(x, ACT_NOT_FOUND, "no_such_user", "unchanged",
	           "no such user: %s; the DN its grant was made to (%s) now names another entry, "
	           "so it was left in the group: check that member by hand",
	           x->target, x->new_dn);
}

static void user_found_cb(void *arg, enum dir_status st, struct dir_user *u, const char *err)
{
	struct act *x = arg;

	if (st == DIR_NOT_FOUND && x->kind == ACT_LOGIN) {
		login_failed(x);
		act_refuse(x, ACT_UNAUTHORIZED, "bad_credentials", "denied",
		           "wrong user name or password");
		return;
	}
	/* A user deleted outside ldapdesk leaves its DN in the group, which would
	 * give the access to the next account made at that DN: the expiry takes
	 * the DN it granted to out (act_dispatch). */
	if (st == DIR_NOT_FOUND && x->kind == ACT_EXPIRE && x->new_dn != NULL) {
		if (dir_read_dn(x->A->dir, x->new_dn, expire_dn_checked, x) == -1)
			act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
		return;
	}
	if (st == DIR_NOT_FOUND) {
		/* An expiry for a deleted user has nothing left to do: unchanged,
		 * so it is not tried again. */
		act_refuse(
		    x, ACT_NOT_FOUND, "no_such_user",
		    x->kind == ACT_EXPIRE ? "unchanged" : "failed", "no such user: %s%s", x->target,
		    x->kind == ACT_EXPIRE ? ""
		                          : " (give the account's uid, not the person's name)");
		return;
	}
	if (st != DIR_OK) {
		if (x->kind == ACT_LOGIN)
			login_unreserve(x);
		act_dir_refuse(x, st, err);
		return;
	}
	x->user = u;
	if (act_reclaim(x))
		return;
	if (x->kind == ACT_EXPIRE) {
		act_execute(x);
		return;
	}
	/* The department a user moves to is a 404 too: before scope and self. */
	if (x->kind == ACT_MOVE && x->dept_next == NULL) {
		lifecycle_dept_check(x, user_verdicts);
		return;
	}
	user_verdicts(x);
}

/* The user is found: the 403s of scope, then what the kind does next. */
static void user_verdicts(struct act *x)
{
	const struct dir_user *u = x->user;

	if (x->kind != ACT_LOGIN && !in_scope(x)) {
		act_refuse(x, ACT_FORBIDDEN, "out_of_scope", "denied",
		           "%s (%s) is outside the departments and subtrees you may act on",
		           x->target, u->department != NULL ? u->department : u->dn);
		return;
	}
	if (x->kind == ACT_LOGIN)
		act_login_bind(x);
	else if (x->kind == ACT_STATUS)
		act_status_read(x);
	else
		act_protect(x);
}

static bool field_ok(const char *s)
{
	return s == NULL || strlen(s) <= LDAPDESK_MAX_FIELD;
}

/* Every text field that reaches the audit record is bounded. An over-long
 * one is dropped before the refusal is recorded: the append-only log keeps
 * that the request was refused, not the 64 KiB that made it so. */
/* A user name from the path that is too long to be a uid: kept cut to 64
 * bytes (at a character's start) and marked "…", which no uid holds, so the
 * request answers 404 no_such_user in DESIGN's order (after the role) and its
 * record says what was asked. */
static void target_cut(struct act *x)
{
	size_t n = 64;

	if (x->kind == ACT_CREATE || x->kind == ACT_LOGIN || field_ok(x->target))
		return; /* a name from the body (create, login): a 400 like any field */
	while (n > 0 && ((unsigned char)x->target[n] & 0xC0) == 0x80)
		n--;
	memcpy(x->target + n, "\xE2\x80\xA6", 4); /* "…" and the end */
}

static int act_fields_bounded(struct act *x)
{
	static const char *const names[] = {
	    "ticket", "requester",  "department", "channel", "note", "description", "until",
	    "target", "permission", "category",   "reason",  "name", "mail",
	};
	char **f[] = {&x->ticket,      &x->requester, &x->department, &x->channel,    &x->note,
	              &x->description, &x->until,     &x->target,     &x->permission, &x->category,
	              &x->reason,      &x->name,      &x->mail};
	const char *bad = NULL;

	target_cut(x);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!field_ok(*f[i])) {
			bad = bad == NULL ? names[i] : bad;
			free(*f[i]);
			*f[i] = NULL;
		}
	if (bad == NULL)
		return 0;
	/* The target comes from the body's own field for these two. */
	if (strcmp(bad, "target") == 0 && (x->kind == ACT_LOGIN || x->kind == ACT_CREATE))
		bad = x->kind == ACT_LOGIN ? "user" : "uid";
	act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
	           "%s is longer than %d bytes: shorten it", bad, LDAPDESK_MAX_FIELD);
	return -1;
}

#define UNTIL_MAX ((time_t)253402128000) /* 9999-12-30T00:00:00Z */

/* 400s: what can be told from the request alone. */
static int act_validate(struct act *x)
{
	time_t t;

	if (act_fields_bounded(x) == -1)
		return -1;
	if (x->channel != NULL && strcmp(x->channel, "hotline") != 0 &&
	    strcmp(x->channel, "request") != 0) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "channel must be hotline or request");
		return -1;
	}
	if (x->kind == ACT_GRANT && (x->permission == NULL || x->permission[0] == '\0')) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "a grant needs \"permission\": one of the [grant.NAME] sections "
		           "(ldapdesk grant USER PERMISSION)");
		return -1;
	}
	if (x->kind == ACT_GRANT && x->days != 0 && x->until != NULL) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "give days or until, not both");
		return -1;
	}
	/* Before 9999-12-30 UTC: its end must show as a four-digit year in any
	 * zone (9999-12-31T23:59:59Z read as 10000-01-01 at +08:00). */
	if (x->kind == ACT_GRANT && x->until != NULL &&
	    (clock_parse_until(x->until, &t) == -1 || t <= time(NULL) || t >= UNTIL_MAX)) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "until must be a future ISO 8601 time before 9999-12-30, e.g. "
		           "2027-01-31 or 2027-01-31T18:00:00+08:00");
		return -1;
	}
	if (x->kind == ACT_GRANT && x->days < 0) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "days must be a positive number");
		return -1;
	}
	return 0;
}

/* 400 for a term above the permission's max_days (an unknown permission is
 * a 404, answered after the role check). */
static int act_grant_terms(struct act *x)
{
	const struct config_grant *g;
	time_t now = time(NULL), limit;

	if ((x->kind != ACT_GRANT && x->kind != ACT_REVOKE) || x->permission == NULL)
		return 0;
	g = x->grant = config_grant(x->conf, x->permission);
	if (g != NULL) {
		x->reply.grant_name = g->name;
		x->reply.grant_label = g->label != NULL ? g->label : g->name;
	}
	if (x->kind != ACT_GRANT || g == NULL)
		return 0;
	limit = g->max_days > 0 ? now + (time_t)g->max_days * 86400 : 0;
	if (x->until != NULL)
		clock_parse_until(x->until, &x->expires);
	else if (x->days > 0)
		x->expires = now + (time_t)x->days * 86400;
	else
		x->expires = limit;
	if (limit != 0 && x->expires > limit + 60) {
		act_refuse(x, ACT_BAD_REQUEST, "too_long", "failed",
		           "%s may be granted for at most %d days", g->name, g->max_days);
		return -1;
	}
	x->needs_approval = g->approval;
	return 0;
}

/* The categories an operator may record, as configured ("a, b, c"). */
static void recordable(const struct config *conf, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < conf->n_categories && n < len; i++) {
		const char *k = conf->categories[i].key;

		if (strcmp(k, kind_category(ACT_UNLOCK)) == 0 ||
		    strcmp(k, kind_category(ACT_GRANT)) == 0)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", k);
	}
}

static int act_record_check(struct act *x)
{
	char known[512];

	if (x->kind != ACT_RECORD)
		return 0;
	if (x->category == NULL || config_category(x->conf, x->category) == NULL) {
		recordable(x->conf, known, sizeof known);
		act_refuse(x, ACT_BAD_REQUEST, "bad_category", "failed",
		           "unknown category: use one of %s", known);
		return -1;
	}
	/* DESIGN's report counts these from the directory actions themselves:
	 * a hand-made one would count a grant nobody made (and helpdesk may
	 * record). History before ldapdesk comes in by import. */
	if (strcmp(x->category, kind_category(ACT_UNLOCK)) == 0 ||
	    strcmp(x->category, kind_category(ACT_GRANT)) == 0) {
		act_refuse(x, ACT_BAD_REQUEST, "bad_category", "failed",
		           "%s is counted from the %s themselves: use 'ldapdesk %s' (or import "
		           "history)",
		           x->category, strcmp(x->category, "grant") == 0 ? "grants" : "unlocks",
		           strcmp(x->category, "grant") == 0 ? "grant" : "unlock");
		return -1;
	}
	if (x->description == NULL || x->description[0] == '\0') {
		act_refuse(x, ACT_BAD_REQUEST, "bad_request", "failed",
		           "a description is required (--desc TEXT)");
		return -1;
	}
	return 0;
}

/* A recorded event is nothing but its record: unstored, it is refused. */
static void record_stored(struct act *x, const char *err)
{
	if (err != NULL) {
		act_reply(x, ACT_UNAVAILABLE, "audit_unavailable",
		          "the audit store cannot record this event: %s", err);
		return;
	}
	x->reply.result = "ok";
	act_reply(x, ACT_OK, NULL, NULL);
}

static void act_record(struct act *x)
{
	commit_pair(x, "ok", NULL, record_stored);
}

/* After the role check: 404s that need no directory, then the lookup. */
static void act_lookup(struct act *x)
{
	bool login = x->kind == ACT_LOGIN;

	if ((x->kind == ACT_GRANT || x->kind == ACT_REVOKE) && x->grant == NULL) {
		act_refuse(x, ACT_NOT_FOUND, "no_such_permission", "failed",
		           "no such permission: %s (see [grant.NAME] in the configuration)",
		           x->permission != NULL ? x->permission : "");
		return;
	}
	if (x->target == NULL || !dir_valid_uid(x->target)) {
		/* A name that cannot be a uid is never searched for. */
		act_refuse(
		    x, login ? ACT_UNAUTHORIZED : ACT_NOT_FOUND,
		    login ? "bad_credentials" : "no_such_user", login ? "denied" : "failed",
		    login ? "wrong user name or password"
		          : "no such user: not a uid (a uid holds letters, digits and . _ - @, "
		            "no blanks, parentheses or '*')");
		return;
	}
	if (login && login_throttled(x) == -1)
		return;
	/* An unlock can go by the cached DN: the modify asserts what the search
	 * would have checked (ucache.h), so no search per request. */
	if (x->kind == ACT_UNLOCK) {
		struct dir_user *u = dir_cached_user(x->A->dir, x->target);

		if (u != NULL) {
			user_found_cb(x, DIR_OK, u, NULL);
			return;
		}
	}
	if (dir_find_user(x->A->dir, x->target, user_found_cb, x) == -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

/* The session has ended either way (session_revoke, before the record: its
 * token is refused from then on, also after a restart); a logout that
 * cannot be recorded is logged. */
static void logout_recorded(struct act *x, const char *err)
{
	if (err != NULL)
		log_warnx("audit: cannot record a logout: %s", err);
	x->reply.result = "ok";
	act_reply(x, ACT_OK, NULL, NULL);
}

static void act_logout(struct act *x)
{
	commit_pair(x, "ok", NULL, logout_recorded);
}

/* A uid names one user: with a second entry anywhere under user_base,
 * every lookup of it (and that user's login) would fail as ambiguous. */
static void create_checked_cb(void *arg, enum dir_status st, struct dir_user *u, const char *err)
{
	struct act *x = arg;

	dir_user_free(u);
	if (st == DIR_OK)
		act_refuse(x, ACT_CONFLICT, "exists", "failed",
		           "a user %s exists already (uids are unique under user_base)", x->target);
	else if (st != DIR_NOT_FOUND)
		act_dir_refuse(x, st, err);
	else
		act_execute(x); /* a new entry: nothing to protect */
}

static void create_check(struct act *x)
{
	if (dir_find_user(x->A->dir, x->target, create_checked_cb, x) == -1)
		act_dir_refuse(x, DIR_UNAVAILABLE, "too many directory operations queued");
}

/*
 * What the API refused before any action ran is recorded like any refusal.
 * Without a session the caller is nobody we know: anyone could make the
 * store grow with such requests, so from an address only the first of a
 * period is recorded in full and the rest are counted into one summary per
 * flush (throttle.h), as throttled logins are.
 */
static void api_refused(struct act *x, const struct act_request *req)
{
	char key[LIMIT_KEY_MAX];
	bool unauth = req->refused == ACT_UNAUTHORIZED;

	if (!x->has_op) {
		addr_key(x, "anon-addr", key, sizeof(key));
		if (throttle_note(x->A->throttled, key, x->client_addr, time(NULL)) == 1) {
			act_reply(x, req->refused, req->refused_code, "%s", req->refused_message);
			return;
		}
	}
	act_refuse(x, req->refused, req->refused_code, unauth ? "denied" : "failed", "%s",
	           req->refused_message);
}

/* ---- users held while recovery reads them back ---- */

void actions_hold(struct actions *A, const char *target)
{
	size_t i = 0;

	/* Counted as recovery_finish releases it, with or without a target. */
	if (target == NULL)
		target = "";
	A->held_left++;
	while (i < A->n_held && strcmp(A->held[i].uid, target) != 0)
		i++;
	if (i == A->n_held && A->n_held == ACT_MAX_HELD) {
		A->held_all = true;
		return;
	}
	if (i == A->n_held) {
		snprintf(A->held[i].uid, sizeof(A->held[i].uid), "%s", target);
		A->n_held++;
	}
	A->held[i].n++;
}

/* A read-back done: recovery_finish's, also for attempts of this run whose
 * user was never held (only those held count down, or any when held_all). */
static void held_release(struct actions *A, const char *target)
{
	bool found = false;

	for (size_t i = 0; i < A->n_held && !found; i++) {
		if (strcmp(A->held[i].uid, target) != 0)
			continue;
		found = true;
		if (--A->held[i].n == 0)
			A->held[i] = A->held[--A->n_held];
	}
	if ((found || A->held_all) && A->held_left > 0 && --A->held_left == 0)
		A->held_all = false;
}

/* Is uid (as typed: the directory matches it ignoring case) held? */
static bool user_held(const struct actions *A, const char *uid)
{
	if (A->held_left == 0)
		return false;
	for (size_t i = 0; i < A->n_held; i++)
		if (strcasecmp(A->held[i].uid, uid) == 0)
			return true;
	return A->held_all;
}

/* Bounded: a change the directory would leave unanswered must find a slot
 * to be parked in, or its user would be free before it is read back. So
 * each change taken holds one (x->reserved) until it is done, and none is
 * taken while ACT_MAX_UNKNOWN wait or ACT_MAX_CHANGES are under way.
 * Return: true when x was refused. */
static bool act_full(struct act *x)
{
	if (x->A->n_unknown >= ACT_MAX_UNKNOWN)
		act_refuse(x, ACT_UNAVAILABLE, "busy", "failed",
		           "%zu changes wait to be read back from the directory (or to be stored): "
		           "none is taken while %d or more wait; try again in a minute",
		           x->A->n_unknown, ACT_MAX_UNKNOWN);
	else if (x->A->n_reserved >= ACT_MAX_CHANGES)
		act_refuse(x, ACT_UNAVAILABLE, "busy", "failed",
		           "%d changes are under way, the most ldapdeskd takes at once: try again "
		           "in a moment",
		           ACT_MAX_CHANGES);
	else
		return false;
	return true;
}

/* Refuses x (and says so) when it would change a user recovery still has
 * to read back, or any user while act_full. Return: true when refused. */
static bool act_held(struct act *x)
{
	if (!act_changes_user(x))
		return false;
	if (!x->reserved) {
		if (act_full(x))
			return true;
		x->reserved = true;
		x->A->n_reserved++;
	}
	if (!user_held(x->A, x->target))
		return false;
	act_refuse(x, ACT_UNAVAILABLE, "recovering", "failed",
	           "an action on %s left unfinished by the last stop is still being read back "
	           "from the directory: try again in a minute",
	           x->target);
	return true;
}

void act_start(struct actions *A, const struct act_request *req, act_fn fn, void *arg)
{
	struct act *x = act_new(A, req);

	if (x == NULL) {
		struct act_reply r = {.status = ACT_UNAVAILABLE, .code = "no_memory"};

		snprintf(r.message, sizeof(r.message), "out of memory");
		fn(arg, &r);
		return;
	}
	x->fn = fn;
	x->arg = arg;
	if (req->refused != ACT_OK) {
		api_refused(x, req);
		return;
	}
	if (act_validate(x) == -1 || act_grant_terms(x) == -1 || act_record_check(x) == -1 ||
	    lifecycle_validate(x) == -1 || request_validate(x) == -1)
		return;
	/* Anyone may log in, and log out: a session whose roles were removed
	 * too (its logout must still be recorded). */
	if (x->kind != ACT_LOGIN && x->kind != ACT_LOGOUT &&
	    !(x->has_op && (x->op.roles & kind_roles[x->kind]))) {
		/* Refusal-only kinds (0 above) are the API's to allow: named for
		 * the message. */
		unsigned r = kind_roles[x->kind] != 0 ? kind_roles[x->kind]
		             : x->kind == ACT_IMPORT || x->kind == ACT_BACKUP
		                 ? (unsigned)ROLE_ADMIN
		                 : (unsigned)(ROLE_ADMIN | ROLE_AUDITOR);

		act_refuse(
		    x, ACT_FORBIDDEN, "forbidden", "denied",
		    "%s's roles do not allow %s: it takes the %s role (log in as an operator "
		    "who has it, or ask an administrator)",
		    x->has_op ? x->op.uid : "this session", kind_action[x->kind],
		    r == ROLE_ADMIN                    ? "admin"
		    : r == (ROLE_ADMIN | ROLE_AUDITOR) ? "admin or auditor"
		                                       : "helpdesk or admin");
		return;
	}
	if (act_held(x)) /* an approve's user: once its request is loaded */
		return;
	act_claim(x);
	if (x->kind == ACT_RECORD)
		act_record(x);
	else if (x->kind == ACT_LOGOUT)
		act_logout(x);
	else if (x->kind == ACT_APPROVE || x->kind == ACT_REJECT) {
		/* An approve's user is known once its request is loaded. */
		if (request_load(x) == -1 || act_held(x))
			return; /* answered */
		act_claim(x);
		if (x->kind == ACT_REJECT)
			request_reject(x);
		else
			request_approve(x);
	} else if (x->kind == ACT_CREATE)
		lifecycle_dept_check(x, create_check);
	else
		act_lookup(x);
}

/* ---- start-up recovery ----------------------------------------------------------------- */

/*
 * An attempt without an outcome means the daemon stopped between the attempt
 * and its outcome record. Whether the directory changed is read back from the
 * directory itself, and recorded; an attempt whose state cannot be read now
 * stays pending for the next pass.
 */
struct recovery {
	struct actions *A;
	int64_t id;
	char target[LDAPDESK_MAX_UID + 1];
	char action[16];
	char requested_at[CLOCK_ISO_LEN];
	char permission[80];
	char operator[LDAPDESK_MAX_UID + 1];
	char department[256]; /* create, move: the department asked for */
	int64_t request_id;   /* approve: the four-eyes request it carries out */
	char expires[40];     /* a read-back timed grant: its end, kept in the outcome */
	bool default_term;    /* ... max_days' default, not one the operator gave */
	struct dir_user *user;
	int *failed;
	const char *how; /* "recovered at start-up", ... (static) */
};

/* Entry i of the changes the directory did not answer has its outcome: it
 * leaves the list, and lets go of its request and (user_busy) its user. */
static void unknown_drop(struct actions *A, size_t i)
{
	if (A->unknown[i].claimed)
		request_unclaim(A, A->unknown[i].request_id);
	A->unknown[i] = A->unknown[--A->n_unknown];
}

/* The directory could not be read for r: counted, and tried again later. */
static void recovery_later(struct recovery *r)
{
	(*r->failed)++;
	dir_user_free(r->user);
	free(r);
}

static void recovery_finish(struct recovery *r, const char *result, const char *why)
{
	char detail[300], err[256];

	snprintf(detail, sizeof(detail), "%s: %s", r->how, why);
	if (audit_finish(r->A->audit, r->id, result, detail, err, sizeof(err)) == -1) {
		log_warnx("recovery: cannot record the outcome of attempt %lld: %s",
		          (long long)r->id, err);
	} else {
		log_info("recovery: attempt %lld (%s) closed as %s: %s", (long long)r->id,
		         r->action, result, why);
		/* Only start-up's own read-backs hold anyone. */
		if (strcmp(r->how, ACT_RECOVERED_AT_START) == 0)
			held_release(r->A, r->target);
		/* A read-back's user is free at once, not at the next tick. */
		for (size_t i = 0; i < r->A->n_unknown; i++)
			if (r->A->unknown[i].attempt == r->id) {
				unknown_drop(r->A, i);
				break;
			}
	}
	dir_user_free(r->user);
	free(r);
}

/* An approval found carried out closes its request, as the lost outcome
 * record's commit would have. */
static void recovery_close_request(struct recovery *r)
{
	char err[256];

	if (strcmp(r->action, "approve") != 0 || r->request_id <= 0)
		return;
	if (audit_request_close(r->A->audit, r->request_id, "approved", r->operator, NULL, err,
	                        sizeof(err)) == -1)
		log_warnx("recovery: cannot close request %lld: %s", (long long)r->request_id, err);
}

/* A grant that asked no term, found made: a member already through a
 * grant of ours keeps that grant's term, one from elsewhere keeps none (as
 * grant_done). With no earlier grant of ours, the membership may be this
 * grant's own: max_days' term stands, since a grant that never ends is the
 * worse mistake. */
static void recovery_prior_term(struct recovery *r)
{
	char op[LDAPDESK_MAX_UID + 1], det[256] = "", err[256];
	int rc =
	    audit_last_grant(r->A->audit, r->user->uid != NULL ? r->user->uid : "", r->permission,
	                     op, sizeof(op), det, sizeof(det), err, sizeof(err));

	if (rc == 1)
		detail_term(det, r->expires, sizeof(r->expires));
}

static void recovery_groups_cb(void *arg, enum dir_status st, unsigned long mask, const char *err)
{
	struct recovery *r = arg;
	/* An approve is a grant; an expire, a revoke. */
	bool member = (mask & 1) != 0,
	     grant = strcmp(r->action, "grant") == 0 || strcmp(r->action, "approve") == 0;

	(void)err;
	if (st != DIR_OK) {
		recovery_later(r);
		return;
	}
	if (member == grant && grant)
		recovery_close_request(r);
	/* Asked no term (max_days' default, or none at all): the term in force
	 * stays, as grant_done keeps it; not a membership made permanent. */
	if (member && grant && (r->default_term || r->expires[0] == '\0'))
		recovery_prior_term(r);
	/* A timed grant's term goes into the outcome as grant_done writes it,
	 * or the expiry would never find it. Unlike grant_done, a read-back cannot
	 * tell a membership the grant made from one that was there before it
	 * (membership_foreign): it keeps the term, since a grant that never ends
	 * is the worse mistake than one ended early. */
	if (member == grant && grant && r->expires[0] != '\0') {
		char why[96];

		snprintf(why, sizeof(why), "the user is a member of the group; expires %s",
		         r->expires);
		recovery_finish(r, "ok", why);
	} else if (member == grant)
		recovery_finish(r, "ok",
		                grant ? "the user is a member of the group"
		                      : "the user is not a member of the group");
	else
		recovery_finish(r, "failed",
		                grant ? "the user is not a member of the group"
		                      : "the user is still a member of the group");
}

enum read_back { CHANGED, NOT_CHANGED, UNSURE };

/*
 * Was the password changed by this attempt? pwdChangedTime has whole
 * seconds, and a second of slack is allowed between the daemon's clock and
 * the directory's: a change at or after the attempt's second minus one
 * counts. A password this daemon set itself (an earlier reset or create)
 * no earlier than that change's second explains it as well, and the two
 * cannot be told apart: UNSURE. It used to count as this reset's (a reset
 * right after another one, killed before its change, read as done).
 */
static enum read_back password_read_back(const struct recovery *r)
{
	const struct dir_user *u = r->user;
	time_t changed, asked, earlier;
	char at[CLOCK_ISO_LEN] = "", err[256];
	int rc;

	if (u->password_changed == NULL ||
	    clock_parse_gentime(u->password_changed, &changed) == -1 ||
	    clock_parse_iso(r->requested_at, &asked) == -1 || changed < asked - 1)
		return NOT_CHANGED;
	rc = audit_last_password(r->A->audit, r->target, r->id, at, sizeof(at), err, sizeof(err));
	if (rc == -1) {
		log_warnx("recovery: attempt %lld: %s", (long long)r->id, err);
		return UNSURE;
	}
	if (rc == 1 && clock_parse_iso(at, &earlier) == 0 && changed <= earlier)
		return UNSURE;
	return CHANGED;
}

/* A create found made: did it get to its password? Either way its
 * one-time password was lost, unless its answer went out just before the
 * stop (a change is answered before its outcome is stored: commit.c). One
 * cut short before that step is failed, as create_password_done records
 * one whose step failed. */
static void recovery_create_cb(void *arg, enum dir_status st, char **dns, size_t n, const char *err)
{
	struct recovery *r = arg;

	(void)dns;
	(void)err;
	if (st != DIR_OK && st != DIR_NOT_FOUND)
		recovery_later(r);
	else if (n == 0)
		recovery_finish(
		    r, "failed",
		    "the user exists, but it has no password (the create stopped before "
		    "setting it): set one with 'ldapdesk reset' before the account is "
		    "handed over");
	else
		recovery_finish(
		    r, "ok",
		    "the user exists; its one-time password was lost unless its answer "
		    "went out just before the stop: unless the operator has it, reset it "
		    "('ldapdesk reset') before the account is handed over");
}

/* The user's lifecycle actions, read back from the entry found. Return:
 * false if r->action is not one of them. */
static bool recovery_lifecycle(struct recovery *r)
{
	const struct dir_user *u = r->user;

	if (strcmp(r->action, "create") == 0) {
		if (dir_has_password(r->A->dir, u->dn, recovery_create_cb, r) == -1)
			recovery_later(r);
	} else if (strcmp(r->action, "delete") == 0)
		/* A delete takes the user out of its groups first: cut short,
		 * the user may be left without them, and nothing else says so. */
		recovery_finish(
		    r, "failed",
		    "the user still exists, but the delete may have taken it out of its "
		    "groups already: compare 'ldapdesk status' with its grants in "
		    "'ldapdesk log', then grant back what it lost or delete it again");
	else if (strcmp(r->action, "disable") == 0)
		recovery_finish(r, u->admin_locked ? "ok" : "failed",
		                u->admin_locked ? "the account is disabled"
		                                : "the account is not disabled");
	else if (strcmp(r->action, "enable") == 0)
		recovery_finish(r, u->admin_locked ? "failed" : "ok",
		                u->admin_locked ? "the account is still disabled"
		                                : "the account is not disabled");
	else if (strcmp(r->action, "move") == 0) {
		bool there = u->department != NULL && strcmp(u->department, r->department) == 0;
		char *dn = there || u->uid == NULL
		               ? NULL
		               : lifecycle_user_dn(r->A->conf, u->uid, r->department);
		bool renamed = dn != NULL && dir_dn_equal(dn, u->dn);

		free(dn);
		recovery_finish(r, there ? "ok" : "failed",
		                there ? "the user is in that department"
		                : renamed
		                    ? "the entry was moved in the tree, but its department "
		                      "attribute was not changed: move the user again to finish"
		                    : "the user is not in that department");
	} else
		return false;
	return true;
}

static void recovery_decide(struct recovery *r)
{
	const struct config_grant *g;
	const char *group;

	if (recovery_lifecycle(r))
		return;
	if (strcmp(r->action, "unlock") == 0) {
		if (!lock_present(r->user))
			recovery_finish(r, "ok", "the account is not locked");
		else
			recovery_finish(r, "failed", "the account is still locked");
	} else if (strcmp(r->action, "reset") == 0) {
		/* Both steps (DESIGN): the password, and must-change where the
		 * daemon sets it itself. */
		enum read_back seen = password_read_back(r);

		if (seen == CHANGED)
			recovery_finish(r, "ok",
			                r->user->must_change
			                    ? "the password was changed; the one-time password "
			                      "was lost unless its answer went out just before "
			                      "the stop: unless the operator has it, reset again"
			                    : "the password was changed but must-change is not "
			                      "set, and the one-time password was lost unless its "
			                      "answer went out just before the stop: reset again");
		else if (seen == UNSURE)
			/* Not counted as done: an audit must not claim a change it
			 * cannot show. Either way the operator resets again. */
			recovery_finish(r, "failed",
			                "cannot tell whether the password was changed: its last "
			                "change is no later than the previous reset's (or "
			                "creation's) by ldapdesk; reset again");
		else
			recovery_finish(r, "failed", "the password was not changed");
	} else if ((g = config_grant(r->A->conf, r->permission)) != NULL) {
		group = g->group;
		if (dir_member_of(r->A->dir, r->user->dn, &group, 1, recovery_groups_cb, r) == -1)
			recovery_later(r);
	} else {
		recovery_finish(r, "failed", "outcome unknown");
	}
}

static void recovery_user_cb(void *arg, enum dir_status st, struct dir_user *u, const char *err)
{
	struct recovery *r = arg;

	(void)err;
	if (st == DIR_NOT_FOUND) {
		recovery_finish(r, strcmp(r->action, "delete") == 0 ? "ok" : "failed",
		                strcmp(r->action, "create") == 0 ? "the user does not exist"
		                                                 : "the user no longer exists");
		return;
	}
	if (st != DIR_OK) {
		(*r->failed)++;
		free(r);
		return;
	}
	r->user = u;
	recovery_decide(r);
}

void act_recover(struct actions *A, json_t *row, int *failed, const char *how)
{
	struct recovery *r = calloc(1, sizeof(*r));
	const char *target = json_string_value(json_object_get(row, "target"));
	const char *action = json_string_value(json_object_get(row, "action"));
	const char *at = json_string_value(json_object_get(row, "requested_at"));
	const char *perm = json_string_value(json_object_get(row, "permission"));
	const char *op = json_string_value(json_object_get(row, "operator"));
	const char *dept = json_string_value(json_object_get(row, "department"));
	const char *exp = json_string_value(json_object_get(row, "expires"));
	const char *detail = json_string_value(json_object_get(row, "detail"));
	char *marker;

	if (r == NULL)
		return;
	/* At start-up the term comes from the attempt itself (act_fill_term). */
	if (exp == NULL && detail != NULL && strncmp(detail, "expires ", 8) == 0)
		exp = detail + 8;
	snprintf(r->expires, sizeof(r->expires), "%s", exp != NULL ? exp : "");
	if ((marker = strstr(r->expires, DEFAULT_TERM)) != NULL) {
		*marker = '\0';
		r->default_term = true;
	}
	snprintf(r->operator, sizeof(r->operator), "%s", op != NULL ? op : "");
	snprintf(r->department, sizeof(r->department), "%s", dept != NULL ? dept : "");
	r->request_id = json_integer_value(json_object_get(row, "request_id"));
	r->A = A;
	r->failed = failed;
	r->how = how;
	r->id = json_integer_value(json_object_get(row, "id"));
	snprintf(r->action, sizeof(r->action), "%s", action != NULL ? action : "");
	snprintf(r->target, sizeof(r->target), "%s", target != NULL ? target : "");
	snprintf(r->requested_at, sizeof(r->requested_at), "%s", at != NULL ? at : "");
	snprintf(r->permission, sizeof(r->permission), "%s", perm != NULL ? perm : "");
	if (target == NULL || !dir_valid_uid(target)) {
		recovery_finish(r, "failed", "outcome unknown (no target)");
		return;
	}
	if (dir_find_user(A->dir, target, recovery_user_cb, r) == -1) {
		(*failed)++;
		free(r);
	}
}

/* ---- expiring grants ------------------------------------------------------------------ */

struct due {
	char target[LDAPDESK_MAX_UID + 1];
	char permission[80];
	char dn[1024];      /* the DN it was granted to, "" if not recorded */
	int64_t request_id; /* the request an approval carried out, 0 if none */
};

struct due_list {
	struct due items[500];
	size_t n;
};

static void due_collect(void *arg, const struct audit_due *d)
{
	struct due_list *l = arg;
	struct due *o = &l->items[l->n];

	if (l->n == 500 || d->target == NULL || d->permission == NULL)
		return;
	snprintf(o->target, sizeof(o->target), "%s", d->target);
	snprintf(o->permission, sizeof(o->permission), "%s", d->permission);
	/* One too long to keep whole is not kept: a cut DN names another entry. */
	if (d->target_dn != NULL && strlen(d->target_dn) < sizeof(o->dn))
		snprintf(o->dn, sizeof(o->dn), "%s", d->target_dn);
	o->request_id = d->request_id;
	l->n++;
}

static bool expiry_try_now(struct actions *A, const struct due *d, time_t now)
{
	char key[LIMIT_KEY_MAX];

	expiry_key(key, sizeof(key), d->target, d->permission);
	if (limits_wait(A->limits, key, 1, EXPIRY_RETRY, now) > 0)
		return false;
	limits_count(A->limits, key, EXPIRY_RETRY, now);
	return true;
}

struct expiry_arg {
	struct actions *A;
	char key[LIMIT_KEY_MAX];
};

/* The outcome record is the answer (nobody waits for it); only a refusal by
 * the directory waits EXPIRY_RETRY before the next try. */
static void expire_answered(void *arg, struct act_reply *r)
{
	struct expiry_arg *e = arg;

	if (r->status == ACT_OK || r->status == ACT_UNAVAILABLE)
		limits_clear(e->A->limits, e->key);
	free(e);
}

/* A due grant of a permission no longer configured: its group is not
 * known, so the membership stays. Recorded failed (the grant stays due, and
 * a reload that puts the permission back lets the expiry go on) — once per
 * configuration. Return: true the first time. */
static bool unconfigured_first(struct actions *A, const struct due *d)
{
	char key[sizeof A->unconfigured[0]];

	expiry_key(key, sizeof key, d->target, d->permission);
	for (size_t i = 0; i < A->n_unconfigured; i++)
		if (strcmp(A->unconfigured[i], key) == 0)
			return false;
	if (A->n_unconfigured == sizeof A->unconfigured / sizeof A->unconfigured[0])
		return false;
	memcpy(A->unconfigured[A->n_unconfigured++], key, sizeof key);
	log_warnx("expiry: %s's grant of %s has ended, but [grant.%s] is no longer configured: "
	          "the membership stays until the section is put back (and the daemon reloaded) "
	          "or the member is removed by hand",
	          d->target, d->permission, d->permission);
	return true;
}

static void expire_one(struct actions *A, const struct due *d)
{
	/* Linked to the request an approval carried out: its every step is. */
	struct act_request req = {.kind = ACT_EXPIRE,
	                          .target = d->target,
	                          .permission = d->permission,
	                          .request_id = d->request_id};
	const struct config_grant *g = config_grant(A->conf, d->permission);
	struct expiry_arg *e;
	struct act *x;

	if (g == NULL && !unconfigured_first(A, d))
		return;
	e = calloc(1, sizeof(*e));
	x = e != NULL ? act_new(A, &req) : NULL;
	if (x == NULL) {
		free(e);
		return;
	}
	e->A = A;
	expiry_key(e->key, sizeof(e->key), d->target, d->permission);
	if (d->dn[0] != '\0')
		x->new_dn = strdup(d->dn); /* for a user gone from the directory */
	x->fn = expire_answered;
	x->arg = e;
	/* Nothing is changed in the directory: recorded at once, with no claim
	 * on the user (another expiry of theirs may hold it). */
	x->grant = g;
	if (x->grant == NULL) {
		act_refuse(
		    x, ACT_NOT_FOUND, "no_such_permission", "failed",
		    "permission %s is no longer configured, so its group is not known: the "
		    "membership was left in place; put [grant.%s] back (the expiry then goes "
		    "on) or remove the member by hand",
		    d->permission, d->permission);
		return;
	}
	/* The user is being changed (by an operator, or by the expiry of another
	 * of its grants): tried again at the next tick, which comes sooner. */
	if (!busy_claim(x)) {
		A->expiry_busy = true;
		act_reply(x, ACT_UNAVAILABLE, "busy", NULL);
		return;
	}
	if (dir_find_user(A->dir, d->target, user_found_cb, x) == -1)
		act_reply(x, ACT_UNAVAILABLE, "busy", NULL);
}

struct stale_list {
	struct audit_req items[100];
	size_t n;
};

static void stale_collect(void *arg, const struct audit_req *r)
{
	struct stale_list *l = arg;

	if (l->n < 100)
		l->items[l->n++] = *r;
}

/* Nobody waits for an expiry's answer; one not stored is tried next tick. */
static void expiry_request_done(struct act *x, const char *err)
{
	if (err != NULL)
		log_warnx("requests: cannot expire request %lld: %s", (long long)x->request_id,
		          err);
	act_reply(x, ACT_OK, NULL, NULL);
}

static void reply_unwanted(void *arg, struct act_reply *r)
{
	(void)arg;
	(void)r;
}

/* A rejection by ldapdeskd (no operator), held like an admin's reject.
 * all_holds: may take any free hold (a deleted user's), not only half. */
static void request_expire(struct actions *A, const struct audit_req *r, const char *detail,
                           bool all_holds)
{
	struct act_request req = {.kind = ACT_REJECT,
	                          .target = r->target,
	                          .permission = r->permission,
	                          .request_id = r->id};
	struct act *x;

	/* An approve or reject is at work on it; or half the holds are taken,
	 * the rest kept for admins (the rest expire at a later tick). */
	if (request_claimed(A, r->id) ||
	    A->n_claimed >= (all_holds ? ACT_MAX_CLAIMS : ACT_MAX_CLAIMS / 2))
		return;
	/* Nor while start-up recovery has yet to read its user back: an approve
	 * a crash cut short may have carried it out (a later tick expires it). */
	if (user_held(A, r->target))
		return;
	if ((x = act_new(A, &req)) == NULL)
		return;
	x->fn = reply_unwanted;
	A->claimed[A->n_claimed++] = r->id;
	x->claimed = true;
	x->in_txn = request_rejected_txn;
	commit_pair(x, "ok", detail, expiry_request_done);
}

/* Requests nobody approved within [limits] request_ttl are closed by the
 * daemon, as a rejection by ldapdeskd linked to the request, stored with the
 * request's close by the group commit. */
static void requests_expire(struct actions *A)
{
	struct stale_list *l = calloc(1, sizeof(*l));
	char cutoff[CLOCK_ISO_LEN], err[256], detail[96];

	if (l == NULL)
		return;
	clock_utc(time(NULL) - A->conf->request_ttl, cutoff, sizeof(cutoff));
	if (audit_request_list(A->audit, cutoff, stale_collect, l, err, sizeof(err)) == -1)
		log_warnx("requests: %s", err);
	snprintf(detail, sizeof(detail), "expired: not approved within %d s", A->conf->request_ttl);
	for (size_t i = 0; i < l->n; i++)
		request_expire(A, &l->items[i], detail, false);
	free(l);
}

struct user_requests {
	struct stale_list l;
	const char *uid;
};

static void user_request_collect(void *arg, const struct audit_req *r)
{
	struct user_requests *u = arg;

	if (strcasecmp(r->target, u->uid) == 0)
		stale_collect(&u->l, r);
}

void act_requests_close_for(struct actions *A, const char *uid, const char *why)
{
	struct user_requests *u = calloc(1, sizeof(*u));
	char err[256];

	if (u == NULL)
		return;
	u->uid = uid;
	if (audit_request_list(A->audit, NULL, user_request_collect, u, err, sizeof(err)) == -1)
		log_warnx("requests: %s", err);
	for (size_t i = 0; i < u->l.n; i++)
		request_expire(A, &u->l.items[i], why, true);
	free(u);
}

/* Reads back the changes the directory did not answer, once it has had
 * twice the operation timeout to finish or drop them; an entry leaves the
 * list when its attempt has an outcome. */
static void ping_cb(void *arg, enum dir_status st, char **values, size_t n, const char *err)
{
	/* Nothing to do: any answer moves dir_last_answer. */
	(void)arg;
	(void)st;
	(void)values;
	(void)n;
	(void)err;
}

/* A known outcome the store failed to take, stored now (with the request's
 * close for an approval, as its batch would have). Return: 0, or -1 (the
 * store still fails: the next tick tries again). */
static int unknown_store(struct actions *A, const struct act_unknown *u)
{
	char detail[700], err[256];

	snprintf(detail, sizeof(detail), "recorded late (the audit store had failed): %s",
	         u->detail);
	/* The request first: closing it again answers 1 (no longer pending), so
	 * a retry after the outcome failed is harmless, and the hold is released
	 * only once both are stored. Only a grant that was made closes it. */
	if (strcmp(u->action, "approve") == 0 && u->request_id > 0 &&
	    (strcmp(u->result, "ok") == 0 || strcmp(u->result, "unchanged") == 0) &&
	    audit_request_close(A->audit, u->request_id, "approved", u->operator, NULL, err,
	                        sizeof(err)) == -1)
		return -1;
	if (audit_finish(A->audit, u->attempt, u->result, detail, err, sizeof(err)) == -1)
		return -1;
	log_info("audit: the outcome of attempt %lld (%s) is recorded after all",
	         (long long)u->attempt, u->action);
	return 0;
}

static void unknown_retry(struct actions *A)
{
	time_t now = time(NULL), wait = 2 * (A->conf->timeout_ms / 1000 + 1);
	time_t answered = A->dir != NULL ? dir_last_answer(A->dir) : 0;
	bool pinged = false;
	bool store_failing = false;
	char err[256];

	for (size_t i = 0; i < A->n_unknown;) {
		struct act_unknown *u = &A->unknown[i];
		int done = audit_has_outcome(A->audit, u->attempt, err, sizeof(err));
		json_t *row;

		/* One failed write per tick: each may wait out the busy timeout on
		 * the loop (an import holding the write lock). */
		if (done == 0 && u->result[0] != '\0' && !store_failing) {
			if (unknown_store(A, u) == 0)
				done = 1;
			else
				store_failing = true;
		}
		if (done == 1) {
			unknown_drop(A, i);
			continue;
		}
		i++;
		if (u->result[0] != '\0')
			continue; /* known: only the store is awaited, not the directory */
		/* Only once slapd has answered again since (what it still held of
		 * the change is done by then), and one read-back at a time: a
		 * read-back is a search and a group check, each up to the timeout. */
		if (done == -1 || now - u->since < wait || now - u->tried < 2 * wait ||
		    !dir_available(A->dir))
			continue;
		if (answered <= u->since) { /* ask for an answer; read back at a later tick */
			if (!pinged)
				pinged = dir_read_values(A->dir, A->conf->user_base, "objectClass",
				                         ping_cb, NULL) == 0;
			continue;
		}
		u->tried = now;
		row = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "id",
		                (json_int_t)u->attempt, "action", u->action, "target", u->target,
		                "permission", u->permission, "operator", u->operator, "department",
		                u->department, "requested_at", u->requested_at, "request_id",
		                (json_int_t)u->request_id, "expires", u->expires);
		if (row != NULL)
			act_recover(A, row, &A->unknown_failed,
			            "read back after the directory did not answer");
		json_decref(row);
	}
}

static void throttle_stored(struct act *x, const char *err)
{
	if (err != NULL)
		log_warnx("audit: cannot record throttled logins: %s", err);
	act_reply(x, ACT_OK, NULL, NULL);
}

/* One login record, refused, standing for the throttled logins counted
 * since the last flush (the first of the period has a record of its own). */
static void throttle_summary(void *arg, const struct throttle_sum *s)
{
	struct actions *A = arg;
	/* No uid: the name tried was never looked up (see act_event). */
	bool by_user = strncmp(s->key, "login-user", 10) == 0;
	bool anon = strncmp(s->key, "anon-addr", 9) == 0;
	/* An operator's own refusals (refusals_throttled): recorded under its
	 * name, which the key holds after "refused-op:" (not when counted by
	 * kind, for sources past the table: then they are many). */
	bool op = strncmp(s->key, "refused-op:", 11) == 0 && !s->overflow;
	struct session who = {.roles = 0};
	/* A user key's refusals may come from many addresses: none is named. */
	struct act_request req = {.kind = ACT_LOGIN,
	                          .client_addr = by_user || s->overflow ? NULL : s->addr,
	                          .operator= op ? &who : NULL };
	char first[CLOCK_ISO_LEN], last[CLOCK_ISO_LEN], detail[256];
	struct act *x;

	if (op)
		snprintf(who.uid, sizeof(who.uid), "%s", s->key + 11);
	if ((x = act_new(A, &req)) == NULL) {
		/* Not the key: a user key holds whatever name was typed. */
		log_warnx("audit: out of memory: %lu throttled logins not recorded", s->count);
		return;
	}
	x->fn = reply_unwanted;
	clock_utc(s->first, first, sizeof(first));
	clock_utc(s->last, last, sizeof(last));
	if (s->overflow)
		snprintf(detail, sizeof(detail),
		         "%lu more refused (%s) from %s past the %d followed one by one, from %s "
		         "to %s, counted and not recorded one by one",
		         s->count, anon ? "401 or 400" : "429",
		         anon      ? "addresses without a valid session"
		         : by_user ? "operators"
		                   : "addresses or operators",
		         THROTTLE_KEYS, first, last);
	else if (op)
		snprintf(
		    detail, sizeof(detail),
		    "too many refused requests from this operator: %lu more refused (429) from "
		    "%s to %s, counted and not recorded one by one",
		    s->count, first, last);
	else if (anon)
		snprintf(detail, sizeof(detail),
		         "%lu more requests from this address without a valid session (401) or "
		         "with a body that could not be read (400), from %s to %s, counted and "
		         "not recorded one by one",
		         s->count, first, last);
	else
		snprintf(detail, sizeof(detail),
		         "too many failed logins from this %s: %lu more refused (429) from %s to "
		         "%s, counted and not recorded one by one",
		         by_user ? "operator" : "address", s->count, first, last);
	commit_pair(x, "denied", detail, throttle_stored);
}

/* The configured permissions as a JSON array (malloc'd into *out). */
static int configured_json(const struct config *conf, char **out)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < conf->n_grants; i++)
		json_array_append_new(a, json_string(conf->grants[i].name));
	*out = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return *out != NULL ? 0 : -1;
}

/* The tick's work, once the changes answered before it have their outcomes
 * stored: a grant renewed just now (answered first, commit.c) must be in
 * the store before the due grants are read, or its old end would look due
 * and the expiry would take away what the admin was just told runs on. */
static void expiry_due(void *arg)
{
	struct actions *A = arg;
	struct due_list *l;
	struct timeval tv = {A->expiry_every, 0};
	char now[CLOCK_ISO_LEN], err[256], *first = NULL;

	if (A->draining)
		return; /* the stop settled it: no new work, no next tick */
	l = calloc(1, sizeof(*l));
	clock_utc(time(NULL), now, sizeof(now));
	if (l != NULL && dir_available(A->dir) && configured_json(A->conf, &first) == 0 &&
	    audit_due_grants(A->audit, now, first, due_collect, l, err, sizeof(err)) == -1)
		log_warnx("expiry: %s", err);
	free(first);
	/* A user recovery still reads back waits for a later tick, as does one
	 * with a change parked (a renewal whose outcome is not stored yet would
	 * be undone by the expiry of the term it replaced). */
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (!user_held(A, l->items[i].target) &&
		    unknown_pending(A, l->items[i].target) == NULL &&
		    expiry_try_now(A, &l->items[i], time(NULL)))
			expire_one(A, &l->items[i]);
	free(l);
	requests_expire(A);
	unknown_retry(A);
	throttle_flush(A->throttled, time(NULL), THROTTLE_IDLE, throttle_summary, A);
	/* Several grants of one user ending together go one per tick: the next
	 * one comes in a second, not a whole period later. */
	if (A->expiry_busy && tv.tv_sec > 1)
		tv.tv_sec = 1;
	evtimer_add(A->expiry_ev, &tv);
}

static void expiry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct actions *A = arg;

	(void)fd;
	(void)what;
	A->expiry_busy = false;
	commit_after_settled(A, expiry_due, A);
}

int actions_writer_start(struct actions *A, struct event_base *base, const char *db, int delay_ms,
                         char *err, size_t errlen)
{
	return commit_start(A, base, db, delay_ms, err, errlen);
}

int actions_expiry_start(struct actions *A, struct event_base *base, int every)
{
	struct timeval soon = {2, 0};

	A->flush_ev = event_new(base, -1, 0, commit_flush_cb, A);
	if (A->flush_ev == NULL)
		return -1;
	A->base = base;
	A->expiry_every = every;
	A->expiry_ev = evtimer_new(base, expiry_cb, A);
	return A->expiry_ev == NULL ? -1 : evtimer_add(A->expiry_ev, &soon);
}
