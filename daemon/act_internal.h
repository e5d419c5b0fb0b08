/*
 * act_internal.h — what actions.c shares with lifecycle.c, and nothing
 * else includes: the request state and the helpers that answer and audit.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "actions.h"
#include "dir.h"
#include "limit.h"
#include "ldapdesk/wire.h"

struct config_grant;
struct committer;
struct protect;
struct event_base;
struct audit;
struct audit_event;
struct act;
struct settle_waiter;
TAILQ_HEAD(act_queue, act);
LIST_HEAD(act_busy, act);

#define ACT_MAX_CLAIMS  64
#define ACT_MAX_HELD    256  /* users with attempts left pending by a stop */
#define ACT_MAX_UNKNOWN 64   /* unanswered changes waiting: no change is taken beyond */
#define ACT_MAX_CHANGES 1024 /* changes under way at once */
/* Every change under way may yet be left unanswered and parked. */
#define ACT_UNKNOWN_SLOTS (ACT_MAX_UNKNOWN + ACT_MAX_CHANGES)
#define ACT_BUSY_BUCKETS  256

/* A change the directory got but did not answer (DIR_UNKNOWN): its attempt
 * stays pending until it is read back from the directory (actions.c). */
struct act_unknown {
	int64_t attempt, request_id;
	time_t since, tried; /* parked; last read-back started (0 = none) */
	bool claimed;        /* holds request_id in A->claimed until it has an outcome */
	char action[16], target[65], permission[80], operator[65];
	char department[1025]; /* LDAPDESK_MAX_FIELD + 1 */
	char requested_at[32];
	char expires[40]; /* a timed grant's end (UTC), "" for none */
	/* A known outcome the store failed to take (a full disk): written as it
	 * is once the store works again, with no read-back. "" = read back. */
	char result[16];
	char detail[600];
};

struct actions {
	const struct config *conf;
	char audit_error[256]; /* the last audit write failure, "" once writes work again */
	struct limits *limits;
	struct throttle *throttled; /* throttled logins counted, not yet recorded */
	int busy;                   /* requests started and not yet freed */
	int refreshing;             /* role re-reads under way (their requests not started yet) */
	struct dir *dir;
	struct protect *protect; /* protected-membership snapshot */
	/* [scope.*] groups' members, read down through nested groups wherever
	 * they lie: an operator a walk found in no scope must be in none. */
	struct protect *scope_guard;
	struct audit *audit;
	struct sessions *sessions;
	struct event *expiry_ev;
	int expiry_every;
	bool expiry_busy; /* a due grant's user was busy this tick: the next comes in 1 s */
	bool draining;    /* actions_drain: the stop has begun */
	/* Due grants whose permission is not configured (their expiry keys),
	 * each recorded failed once; emptied by a reload (actions_set_config),
	 * which may put the permission back. */
	char unconfigured[500][LIMIT_KEY_MAX]; /* as many as one tick's due list */
	size_t n_unconfigured;
	/* Group commit (commit.c): records waiting for the next shared commit. */
	struct event *flush_ev;
	struct event_base *base; /* actions_expiry_start's: logins wait on it (NULL: never) */
	struct act_queue attempts, outcomes;
	struct committer *committer; /* the writer thread, once commit_start ran */
	/* Outcomes answered before they were stored (commit_outcome), counted;
	 * settled: how many of them have had their commit, stored or not.
	 * Reads of the audit for a client wait in settle_wait until settled
	 * reaches what had been answered when they came (commit_after_settled). */
	uint64_t answer_seq, settled;
	STAILQ_HEAD(, settle_waiter) settle_wait;
	size_t n_settle_wait;
	unsigned long long commits, committed; /* group commits stored, records in them */
	unsigned long long pairs;              /* attempt-outcome pairs among them */
	/* Four-eyes requests an approve or reject is working on: no second
	 * approve, reject or expiry may start on one until that one is done. */
	int64_t claimed[ACT_MAX_CLAIMS];
	size_t n_claimed;
	/* Changes under way, by their target's uid (case ignored): one change
	 * per user at a time. Two at once would reach the directory in either
	 * order (a grant after its user's delete, a reset after the disable, two
	 * creates of one uid in different departments). */
	struct act_busy changing[ACT_BUSY_BUCKETS];
	struct act_unknown unknown[ACT_UNKNOWN_SLOTS]; /* calloc'd: pages untouched till used */
	size_t n_unknown;
	/* Changes taken and not yet finished (at most ACT_MAX_CHANGES): each
	 * holds a slot of unknown[], so one the directory leaves unanswered can
	 * always be parked. */
	size_t n_reserved;
	int unknown_failed; /* read-backs that could not read the directory */
	/* Users an earlier stop left attempts pending on, until recovery has
	 * resolved them: an action on one now would change what recovery reads
	 * back. More users than fit hold every user (held_all). */
	struct held {
		char uid[LDAPDESK_MAX_UID + 1];
		int n; /* attempts left */
	} held[ACT_MAX_HELD];
	size_t n_held;
	int held_left; /* attempts held, in all */
	bool held_all;
};

struct act {
	struct actions *A;
	const struct config *conf; /* the configuration this request started under */
	enum act_kind kind;
	struct session op; /* copy: the session may end while we wait */
	bool has_op;
	char *client_addr, *target, *password, *permission, *until, *category, *description;
	char *ticket, *requester, *department, *channel, *note;
	int days;
	bool unlock;
	const struct config_grant *grant;
	time_t expires; /* grant: 0 = none */
	char term[160]; /* "expires <UTC>" for the attempt record (act_fill_term), "" = none */
	struct dir_user *user;
	int64_t attempt;
	act_fn fn;
	void *arg;
	struct act_reply reply;
	char *name, *mail, *reason; /* lifecycle */
	char *new_dn;               /* create, move: the entry's DN after the action */
	size_t pending;             /* move, delete: group updates still running */
	size_t groups_failed;       /* move, delete: group updates the directory refused */
	char group_err[400];        /* the first of them: "GROUP_DN: why" */
	size_t groups_dropped;      /* delete: groups that let the entry go */
	char group_dropped[400];    /* the first of them */
	int64_t request_id;         /* approve, reject, and grants that need approval */
	char *request_entry;        /* approve: the entry its request was made for, or NULL */
	bool needs_approval;        /* grant of an approval = yes permission */
	bool claimed;               /* holds request_id in A->claimed until freed */
	bool changing;              /* holds target in A->changing until freed */
	bool reserved;              /* holds one of A->unknown's slots (act_held) */
	LIST_ENTRY(act) changing_entry;
	bool move_resumed; /* a move finishing one cut short after its rename */
	/* move, delete: the DN groups may still name after a move cut short
	 * after its rename (its department attribute's DN), looked for once
	 * the entry's own DN is done (stale_dn), then as groups_dn. */
	char *stale_dn, *groups_dn;
	bool request_gone;   /* its request was closed by someone else meanwhile */
	int64_t request_dup; /* grant: a pending request for the same found in the txn */
	bool relooked;       /* unlock: the user was read again after a failed assertion */
	/* login: its bind pending on the operator's counter while at the
	 * directory (login_reserve): a burst cannot outrun the limit. */
	bool counted_user;               /* its bind is pending on the operator's counter */
	uint64_t user_window;            /* where (limits_reserve's token) */
	bool login_final;                /* login_failed counted it for good */
	int login_waits;                 /* login_crowded: times it waited for binds in flight */
	void (*dept_next)(struct act *); /* create, move: after the department is found */
	time_t attempt_at;        /* when its attempt was stored (read-backs compare with it) */
	unsigned long roles_mask; /* login: the walk's mask, while the scope guard asks;
	                           * status: the grant groups the user is in */
	char requested_at[32];    /* when the request arrived: the attempt's time (audit_now) */
	unsigned conf_gen;        /* session_gen when it arrived: x->conf's generation */
	unsigned long long ended_mark; /* session_ended_mark when it arrived */
	TAILQ_ENTRY(act) commit;       /* in a group-commit queue */
	bool has_outcome;              /* queued for its outcome record (not its attempt) */
	/* Answered before its outcome record is stored (commit_outcome): the
	 * reply is sent, x lives on until the commit (then act_reply frees it). */
	bool early, answered;
	enum dir_status out_st; /* the outcome waiting to be recorded */
	char *out_text;         /* its detail (ok) or error (otherwise) */
	char *commit_err;       /* the attempt could not be added to its batch: why */
	/* A refusal recorded as the outcome of a stored attempt (act_refuse). */
	enum act_status refuse_status;
	const char *refuse_code, *refuse_result; /* result NULL: not a refusal */
	/* A request done without the directory (a refusal, a login, a recorded
	 * event): its attempt and outcome (pair_result, out_text) join one group
	 * commit as a pair, so it costs the loop no fsync; pair_done runs on the
	 * loop after the commit, with NULL or why the pair was not stored. */
	const char *pair_result;
	void (*pair_done)(struct act *x, const char *err);
	/* Work stored with x's next records or not at all (a four-eyes request's
	 * row): run by the group commit inside its
	 * transaction, just before those records, on the writer thread with the
	 * writer's connection a. Return: 0, or -1 with err: an attempt or pair is
	 * then left out, as when it cannot be stored; an outcome is stored
	 * anyway (the directory changed) and err logged. Cleared once run: still
	 * set when x comes back, it did not run (the batch failed first). */
	int (*in_txn)(struct act *x, struct audit *a, char *err, size_t errlen);
};

/* Answers x with st and a message, then frees x. */
void act_reply(struct act *x, enum act_status st, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records a refusal (attempt + outcome) and answers. */
void act_refuse(struct act *x, enum act_status st, const char *code, const char *result,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Refusal for a directory error before anything was changed. */
void act_dir_refuse(struct act *x, enum dir_status st, const char *err);
/* Records the outcome of a change (attempt already stored) and answers. */
void act_outcome(struct act *x, enum dir_status st, const char *err, const char *detail);

/* Keeps x's attempt for a later outcome (unknown_retry): result NULL = read
 * the directory back; else the known result and detail are stored as soon as
 * the store takes them. Takes over x's request hold. Return: false if the
 * table is full (the attempt then stays pending until the next start). */
bool act_park(struct act *x, const char *result, const char *detail);
/* Fills ev from x (strings borrowed from x). */
void act_event(const struct act *x, struct audit_event *ev);
/* Sets x->term from x->expires for a grant or approve ("" otherwise), just
 * before its attempt is written: the attempt keeps the term it asked for. */
void act_fill_term(struct act *x);
/* Starts the directory work of x, whose attempt is stored (actions.c). */
void act_dispatch(struct act *x);
/* Answers x after its outcome was recorded (actions.c). */
void act_outcome_reply(struct act *x, enum dir_status st, const char *err, const char *detail);

/* commit.c: x's attempt record joins the next group commit; act_dispatch runs
 * once it is durable (or x is answered 503 when it cannot be stored). */
void commit_attempt(struct act *x);
/* commit.c: x's attempt and an outcome with result and text (copied) join
 * the next group commit; then done(x, NULL or why they were not stored) runs
 * on the loop and answers x. With result NULL the attempt is stored alone
 * and stays pending (a grant awaiting approval: its request's close adds
 * the outcome). */
void commit_pair(struct act *x, const char *result, const char *text,
                 void (*done)(struct act *x, const char *err));
/* commit.c: x's outcome joins the next group commit; x is answered at once
 * when its attempt's durability is all the audit needs (commit.c), else
 * after the commit. */
void commit_outcome(struct act *x, enum dir_status st, const char *text);
/* commit.c: runs fn(arg) once every outcome answered so far has had its
 * commit (stored or parked), at once if none waits. A read of the audit
 * for a client goes through here, so it shows what was answered before it.
 * When too many wait already (or memory runs out), fn runs at once too. */
void commit_after_settled(struct actions *A, void (*fn)(void *arg), void *arg);
/* commit.c: writes both queues now (also the fallback with no event loop),
 * or hands them to the writer thread. */
void commit_flush(struct actions *A);
/* commit.c: from now on batches are written by a thread on its own
 * connection to the database db, gathering up to delay_ms while other
 * requests are in flight; done batches are answered on base's loop.
 * Return: 0, or -1 with err (batches stay on the loop). */
int commit_start(struct actions *A, struct event_base *base, const char *db, int delay_ms,
                 char *err, size_t errlen);
/* commit.c: answers the writer's batch, writes what is queued on the loop's
 * connection, stops the thread. No-op without commit_start. */
void commit_stop(struct actions *A);

/* Ends every session of x's user (an operator disabled, deleted, moved), and
 * logs how many. */
void act_end_sessions(struct act *x);

/* Closes uid's open four-eyes requests (any case), each as a rejection by
 * ldapdeskd linked to it whose detail is why: a deleted user's request,
 * approved later, would give its access to the next account with that uid.
 * One being approved or rejected right now is left to that. */
void act_requests_close_for(struct actions *A, const char *uid, const char *why);
/* lifecycle.c: runs create, move, disable, enable, delete once the attempt is
 * stored. Return: 0 (answered later or now), -1 when the kind is not one of them. */
int lifecycle_execute(struct act *x);
/* lifecycle.c: 400s of the lifecycle kinds. Return 0, or -1 (answered). */
int lifecycle_validate(struct act *x);
/* lifecycle.c: create, move: reads the new DN's parent (the department's
 * place in the tree) and calls next(x) when it exists; answers 404
 * no_such_department when it does not, or the directory's error. Run before
 * the 403s of scope and protection and the 409s, in DESIGN's order. */
void lifecycle_dept_check(struct act *x, void (*next)(struct act *));
/* lifecycle.c: the DN user uid of department dept gets ([lifecycle] user_dn).
 * Return: malloc'd (caller frees), or NULL when out of memory. */
char *lifecycle_user_dn(const struct config *c, const char *uid, const char *dept);
