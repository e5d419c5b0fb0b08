/*
 * actions.h — what login, status, unlock, reset, grant, revoke and record
 * mean: validation, roles, protection, and the audit record before and after
 * the directory is touched. Knows nothing of HTTP.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "passgen.h"
#include "session.h"

struct event_base;
struct config;
struct dir;
struct audit;
struct sessions;
struct actions;
struct event_base;

/* Maps 1:1 onto HTTP statuses in api.c. */
enum act_status {
	ACT_OK,              /* 200 */
	ACT_BAD_REQUEST,     /* 400 */
	ACT_UNAUTHORIZED,    /* 401 */
	ACT_FORBIDDEN,       /* 403 */
	ACT_NOT_FOUND,       /* 404 */
	ACT_CONFLICT,        /* 409 */
	ACT_UNAVAILABLE,     /* 503: directory or audit store unavailable */
	ACT_FAILED,          /* 502: the directory refused */
	ACT_NOT_IMPLEMENTED, /* 501 */
	ACT_TOO_MANY,        /* 429, with retry_after */
};

enum act_kind {
	ACT_LOGIN,
	ACT_STATUS,
	ACT_UNLOCK,
	ACT_RESET,
	ACT_GRANT,
	ACT_REVOKE,
	ACT_RECORD,
	ACT_CREATE,
	ACT_MOVE,
	ACT_DISABLE,
	ACT_ENABLE,
	ACT_DELETE,
	ACT_EXPIRE, /* the daemon's own revocation of a grant that ran out */
	ACT_APPROVE,
	ACT_REJECT,
	ACT_LOGOUT, /* the operator's session is already revoked (session_revoke) */
	/* Only their refusals go through actions (a role without admin): the
	 * work itself is import.c's and backup.c's. Always refused. */
	ACT_IMPORT,
	ACT_BACKUP,
	/* The same for reads of the audit (DESIGN: refused requests are
	 * attempts too): GET /v1/audit, /v1/report, /v1/verify, /v1/requests. */
	ACT_LOG,
	ACT_REPORT,
	ACT_VERIFY,
	ACT_REQUESTS,
};

/* Checks what only the actions use of c: the [lifecycle] user_dn template
 * names {uid} and gives a DN under [ldap] user_base. Return: 0, or -1 with
 * err ("FILE:LINE: ..."). */
int actions_config_check(const struct config *c, char *err, size_t errlen);

/* True if name is an action the audit records (log --action). */
bool actions_is_action(const char *name);

/* Every action name, comma-separated, into buf (cut at len). Return: buf. */
const char *actions_names(char *buf, size_t len);

/* A request. Strings are borrowed for the call only: actions copies them. */
struct act_request {
	enum act_kind kind;
	const struct session *operator; /* NULL for login */
	const char *client_addr;
	const char *target;                 /* uid (login: the operator's uid) */
	const char *password;               /* login only; wiped by the caller */
	const char *permission;             /* grant, revoke */
	int days;                           /* grant: 0 = absent */
	const char *until;                  /* grant: ISO 8601 or NULL */
	bool unlock;                        /* reset */
	const char *category, *description; /* record */
	const char *ticket, *requester, *department, *channel, *note;
	const char *name, *mail, *reason; /* create (name, mail), disable and reject (reason) */
	int64_t request_id;               /* approve, reject (-1: the path's id is not a number) */
	/* Refused by the API before any action ran: no valid session (ACT_UNAUTHORIZED)
	 * or a body it could not read (ACT_BAD_REQUEST). Recorded and answered so;
	 * ACT_OK: not refused. */
	enum act_status refused;
	const char *refused_code, *refused_message;
};

/* The answer. Everything is valid during the callback only. */
struct act_reply {
	enum act_status status;
	const char *code; /* machine-readable error code, NULL on success */
	char message[512];
	int64_t event;                  /* audit id of the attempt, 0 if none */
	const char *result;             /* "ok" or "unchanged" */
	char password[PASSGEN_MAX + 1]; /* reset: the one-time password */
	bool change_not_forced;         /* reset: the policy will not make the user change it */
	char expires[48];               /* grant: ISO time or "" (no expiry) */
	char token[SESSION_TOKEN_MAX];  /* login */
	unsigned roles;                 /* login: the session's roles (copied: ... */
	time_t session_expires;         /* ... the table may drop it meanwhile) */
	json_t *body;                   /* status: the status object (borrowed) */
	int retry_after;                /* 429: seconds */
	int64_t request_id;             /* a grant that needs approval: the request made */
	const char *grant_name, *grant_label; /* grant, revoke: the permission */
};

typedef void (*act_fn)(void *arg, struct act_reply *r);

/* conf, d, a and s must outlive the actions object. Return NULL on ENOMEM. */
struct actions *actions_new(const struct config *conf, struct dir *d, struct audit *a,
                            struct sessions *s);
void actions_free(struct actions *A);
/* Shutdown, once the loop has ended and while the HTTP side still exists:
 * stops the audit writer, writes and answers every record still queued, and
 * from then on writes at once. Call it again after dir_free (whose failed
 * operations queue outcomes) with dir_gone: a request whose attempt is
 * stored only now is then answered "stopping" without the directory. */
void actions_drain(struct actions *A, bool dir_gone);

/* Requests started from now on use conf; running ones keep theirs, so the
 * old configuration must stay alive (the daemon keeps every one it loaded). */
void actions_set_config(struct actions *A, const struct config *conf);

/* Why the last audit write failed, or NULL once writes work again (health). */
const char *actions_audit_error(const struct actions *A);

/* Changes answered before their outcome record was stored, and those of
 * them whose commit has ended (GET /metrics; equal: nothing waits). */
void actions_answer_stats(const struct actions *A, unsigned long long *early,
                          unsigned long long *settled);

/* Runs fn(arg) once every change answered so far has had its outcome's
 * commit (answers come before: commit.c); at once if none waits. Reads of
 * the audit for a client start here, to show what was answered before them.
 * When too many reads wait already, fn runs at once too. */
void actions_after_settled(struct actions *A, void (*fn)(void *arg), void *arg);

/* Requests started and not yet answered, or answered with their outcome
 * not yet stored (for a graceful stop). */
int actions_busy(const struct actions *A);

/* Group commits of action records stored so far, the records in them
 * (GET /metrics: their ratio is the mean batch), and the requests among them
 * stored as an attempt and its outcome in one commit (refusals, logins,
 * recorded events). */
void actions_commit_stats(const struct actions *A, unsigned long long *commits,
                          unsigned long long *records, unsigned long long *pairs);

/* Starts req; fn is called exactly once, possibly before act_start returns
 * (refusals are answered at once): the caller must not touch arg after. */
void act_start(struct actions *A, const struct act_request *req, act_fn fn, void *arg);

/* ok false: the directory could not be read; roles 0: no role any more, or
 * (ended not NULL, saying why) no account: disabled, moved or deleted. */
typedef void (*act_roles_fn)(void *arg, bool ok, unsigned roles, unsigned long scopes,
                             const char *ended);

/* Re-reads the roles and scopes of the operator uid at dn (sessions do this
 * once per idle period), and that its entry is still there, at dn, not
 * disabled: an operator disabled by another tool (an HR system, AD's own
 * console) loses its sessions then. Return: 0 (fn called once: later, or
 * before this returns when no search could be sent), or -1 (fn not called). */
int act_refresh_roles(struct actions *A, const char *uid, const char *dn, act_roles_fn fn,
                      void *arg);

/* Audit records of actions are written by a thread on its own connection to
 * the database db from now on (the loop no longer waits for fsync), which
 * gathers records for up to delay_ms while other requests are in flight. Return:
 * 0, or -1 with err (they stay on the loop's connection). */
int actions_writer_start(struct actions *A, struct event_base *base, const char *db, int delay_ms,
                         char *err, size_t errlen);

/* Revokes, as "ldapdeskd", every grant whose expiry has passed: now and then
 * every `every` seconds, so grants that ran out while the daemon was down
 * are caught up at start. Return 0, or -1 if the timer cannot be set. */
int actions_expiry_start(struct actions *A, struct event_base *base, int every);

/* Resolves an attempt left pending by a crash (row as from audit_pending) by
 * reading the directory, and records the outcome, its detail starting with
 * how (static text, e.g. "recovered at start-up"). When the directory cannot
 * be read, the attempt stays pending and *failed is incremented (later, on
 * the loop): failed must outlive the recovery. */
void act_recover(struct actions *A, json_t *row, int *failed, const char *how);

/* act_recover's how at start-up: only those read-backs release holds. */
#define ACT_RECOVERED_AT_START "recovered at start-up"

/* At start-up, before any request: an attempt on target (a uid) is left
 * pending by an earlier stop. Until act_recover has recorded its outcome,
 * actions that change target are refused (503 recovering). */
void actions_hold(struct actions *A, const char *target);
