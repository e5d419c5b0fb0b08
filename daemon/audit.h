/*
 * audit.h — the append-only, hash-chained audit store (SQLite).
 * Only audit.c includes sqlite3.h. Every call runs on the caller's thread and
 * returns once its records are committed (WAL, synchronous=FULL).
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct audit;

/* The attempt half of an event. Every pointer may be NULL (stored as null);
 * action is required. Strings are borrowed for the duration of the call. */
struct audit_event {
	const char *requested_at; /* UTC "YYYY-MM-DDTHH:MM:SS.mmmZ"; NULL = now */
	const char *operator;     /* uid, or "ldapdeskd" for the daemon's own actions */
	const char *operator_dn;
	const char *client_addr;
	const char *action; /* login, logout, unlock, reset, grant, revoke, record, ... */
	const char *target; /* uid */
	const char *target_dn;
	const char *permission;
	const char *category;
	const char *ticket;
	const char *requester;
	const char *department;
	const char *channel;
	const char *description;
	const char *note;
	/* What the attempt asks beyond these fields, kept in its detail column: a
	 * timed grant's "expires YYYY-MM-DDTHH:MM:SSZ", so that a grant found made
	 * after a crash keeps its end. NULL = none. */
	const char *detail;
	int64_t request_id; /* 0 = absent */
	bool imported;
};

/* Filters for audit_query; NULL / 0 = no filter. Times are UTC ISO 8601
 * strings in the stored format, both bounds inclusive. */
struct audit_filter {
	const char *from;
	const char *to;
	const char *user; /* matches target */
	const char *operator;
	const char *action;
	const char *category;
	const char *department;
	const char *result; /* ok, unchanged, denied, failed, pending */
	int64_t after;      /* only attempts with id > after */
	int limit;          /* rows at most; 0 = LDAPDESK_AUDIT_PAGE_DEF */
};

struct audit_verify {
	bool ok; /* the chain is whole: every record and link as written */
	/* And the log complete: no ids declared lost after the since head (any,
	 * without one). first_bad and reason name the first problem. */
	bool complete;
	int64_t records;   /* records walked */
	int64_t first_bad; /* id of the first bad record, 0 if none */
	char head[96];     /* "ID:HASH" of the last record, "" for an empty log */
	char reason[320];  /* why first_bad is bad, "" if ok */
	/* Ids a restore declared lost (audit_ids_restore): the chain is whole
	 * around them, but they are gone. "" if none; the latest declared. */
	char lost[160];
	int64_t n_lost; /* ids declared lost, over every such declaration */
};

/* Called once per attempt row; row is a JSON object owned by audit (borrow
 * it, json_incref to keep it). Return 0 to go on, -1 to stop the query. */
typedef int (*audit_row_fn)(void *arg, json_t *row);

/* Process-wide SQLite settings; call once, before any other audit_ function
 * (main, at start-up). Return: 0, or -1 if SQLite was already in use. */
int audit_library_init(void);

/* Opens (creating if needed) the database at path. Return: 0 and *ap set, or
 * -1 with err filled (names the file and what is wrong). */
int audit_open(const char *path, struct audit **ap, char *err, size_t errlen);

/* As audit_open, for a connection that one thread at a time uses (the
 * audit writer's): SQLite takes no locks of its own around its calls. */
int audit_open_single(const char *path, struct audit **ap, char *err, size_t errlen);

/* As audit_open, for a database that must exist already (a job's second
 * connection: a store removed under the daemon is not made anew, empty).
 * Makes no schema, so it takes no write lock: a verify opens while an
 * import holds it. */
int audit_open_existing(const char *path, struct audit **ap, char *err, size_t errlen);

/* For -n only: is path (if it exists and is not empty) an SQLite file?
 * Never for a database this process has open: closing the descriptor it
 * reads with would drop SQLite's POSIX locks on it. Return: 0, or -1 with
 * err = why (the path named). */
int audit_check_header(const char *path, char *err, size_t errlen);

/* On a's own thread, once: lets audit_interrupt stop a (a job's connection). */
void audit_stoppable(struct audit *a);

/* From another thread, while a is open: the statement running on a and any
 * started later fail (SQLITE_INTERRUPT), so the work rolls back and ends.
 * a must have been made audit_stoppable. */
void audit_interrupt(struct audit *a);
/* On a's own thread, after its work gave up: lets statements run again (one
 * last record of what the stop cut short). Return: whether a stop had been
 * asked for. */
bool audit_resume(struct audit *a);
/* Whether a stop was asked for (audit_interrupt), for work outside SQLite. */
bool audit_stop_asked(struct audit *a);
void audit_close(struct audit *a);

/* Appends an attempt record (result pending) and commits it before returning.
 * Return: 0 with *idp = attempt id, or -1 with err filled. */
int audit_begin(struct audit *a, const struct audit_event *ev, int64_t *idp, char *err,
                size_t errlen);

/* Appends the outcome record for attempt_id. result: ok, unchanged, denied,
 * failed; detail may be NULL. Return: 0, or -1 with err filled. */
int audit_finish(struct audit *a, int64_t attempt_id, const char *result, const char *detail,
                 char *err, size_t errlen);

/* since is "ID:HASH" as verify --head prints it (a positive id, 64
 * lowercase hex digits). */
bool audit_head_valid(const char *since);

/* At start-up: when the highest id ever committed to the database at path
 * (hwm.h) is above its newest record, those records were lost (a restore
 * from an older copy, a cut): the id sequence is raised past them so they
 * are never given again, and a record (action backup, operator ldapdeskd,
 * result failed) names the range. Return: 0 with [*fromp, *top] the lost
 * ids (both 0 when none), or -1 with err. */
int audit_ids_restore(struct audit *a, const char *path, int64_t *fromp, int64_t *top, char *err,
                      size_t errlen);

/* Attempt and outcome in one transaction (refusals, records, logins).
 * Return: 0 with *idp = attempt id (idp may be NULL), or -1 with err filled. */
int audit_record(struct audit *a, const struct audit_event *ev, const char *result,
                 const char *detail, int64_t *idp, char *err, size_t errlen);

/* One row per attempt, ordered by id, joined with its outcome. Row keys, in
 * order: id, requested_at, finished_at, operator, operator_dn, client_addr,
 * action, target, target_dn, permission, category, ticket, requester,
 * department, channel, description, note, result, detail, request_id,
 * imported, hash (of the attempt record). Times are stored UTC strings.
 * *nextp (may be NULL) = id of the last row if more rows match, else 0.
 * Return: 0, or -1 with err filled. */
int audit_query(struct audit *a, const struct audit_filter *f, audit_row_fn fn, void *arg,
                int64_t *nextp, char *err, size_t errlen);

/* The keys of a row of audit_query, in order (static; *n of them): the CSV
 * header, also when no row matches. */
const char *const *audit_row_keys(size_t *n);

/* Attempts that have no outcome record yet, oldest first (start-up recovery).
 * Same row shape as audit_query. Return: 0, or -1 with err filled. */
int audit_pending(struct audit *a, audit_row_fn fn, void *arg, char *err, size_t errlen);

/* Walks the whole chain. since ("ID:HASH" or NULL) must name a record that is
 * still present with that hash. On a sealing connection (audit_seal, or one
 * that joined its guard) it also checks the seals: from the first
 * declaration on, a record no seal covers, or whose seal does not match or
 * names a key no declaration gave its range, is bad ("not written by
 * ldapdeskd"); other connections (a backup's check) do not read them. Fills *out. Return: 0 when
 * the walk ran (even if the chain is broken: see out->ok), -1 with err filled on I/O error or a
 * malformed since. */
int audit_verify(struct audit *a, const char *since, struct audit_verify *out, char *err,
                 size_t errlen);

/* The detail of the newest "ok" backup outcome ("FILE: N records, checked")
 * into detail. Return: 1 found, 0 none, -1 error with err filled. */
int audit_last_backup(struct audit *a, char *detail, size_t len, char *err, size_t errlen);

/* The time (at, ISO UTC) of the newest "ok" outcome of a reset or create of
 * target among attempts before the attempt before: the last password this
 * daemon set. Return: 1 found, 0 none, -1 error with err filled. */
int audit_last_password(struct audit *a, const char *target, int64_t before, char *at, size_t len,
                        char *err, size_t errlen);

/* The newest "ok" grant outcome for (target, permission) that no later ok
 * revoke undid: fills operator (uid) and detail of that grant. Return: 1 found,
 * 0 none, -1 error with err filled. */
int audit_last_grant(struct audit *a, const char *target, const char *permission, char *operator,
                     size_t oplen, char *detail, size_t detlen, char *err, size_t errlen);

/* The disable in force on target (the newest done, not undone by an enable
 * since): who, when (stored UTC) and the reason given. Return: 1 found, 0
 * none (disabled outside ldapdesk, or not at all), -1 error with err. */
int audit_last_disable(struct audit *a, const char *target, char *operator, size_t oplen, char *at,
                       size_t atlen, char *reason, size_t rlen, char *err, size_t errlen);

/* One grant due for expiry: target uid, permission, its expiry (UTC), the
 * DN it was granted to (NULL if not recorded) and the four-eyes request it
 * carried out (0 if none). Borrowed for the call. */
struct audit_due {
	const char *target, *permission, *expires, *target_dn;
	int64_t request_id;
};
typedef void (*audit_due_fn)(void *arg, const struct audit_due *d);

/* Calls fn for each grant whose recorded expiry is at or before now (UTC,
 * "YYYY-MM-DDTHH:MM:SSZ") and that no later grant, revoke or expiry
 * superseded; at most 500 a call, those of the permissions named in first
 * (a JSON array of strings, NULL = none) before the others, each part oldest
 * first. fn must not write to the store. Return 0/-1. */
int audit_due_grants(struct audit *a, const char *now, const char *first, audit_due_fn fn,
                     void *arg, char *err, size_t errlen);

/* The newest n attempt rows about target (as audit_query's rows), newest
 * first. Return 0/-1. */
int audit_recent(struct audit *a, const char *target, int n, audit_row_fn fn, void *arg, char *err,
                 size_t errlen);

/* A four-eyes request for a grant. Strings are NUL-terminated copies. */
struct audit_req {
	int64_t id;
	char created_at[32];
	char operator[72];
	char target[72];
	char permission[72];
	int days;        /* 0 = not given */
	char until[48];  /* "" = not given */
	char status[16]; /* pending, approved, rejected, expired */
	/* The target entry's identity when asked (dir_user.entry_id); "" when
	 * unknown (not readable, or a request older than the column). */
	char target_entry[72];
	/* audit_request_get: the grant record that asked (0 = none), and
	 * whether the row differs from it (changed outside ldapdesk). */
	int64_t event;
	bool mismatch;
};

typedef void (*audit_req_fn)(void *arg, const struct audit_req *r);

/* Stores a pending request (r->id ignored). Return: 0 with *idp, or -1. */
/* The id of a pending request for target (any case) and permission into
 * *idp. Return: 1 found, 0 none, -1 error with err filled. */
int audit_request_pending_for(struct audit *a, const char *target, const char *permission,
                              int64_t *idp, char *err, size_t errlen);

int audit_request_create(struct audit *a, const struct audit_req *r, int64_t *idp, char *err,
                         size_t errlen);
/* Reads request id into *r. Return: 1 found, 0 none, -1 error. */
int audit_request_get(struct audit *a, int64_t id, struct audit_req *r, char *err, size_t errlen);
/* The term a request asks, as its grant record states it: "(asks N days)",
 * "(asks until T)" or "(no term asked)", into buf. */
void audit_request_term(int days, const char *until, char *buf, size_t len);
/* The event fields (ticket, requester, department, channel, description,
 * note) given with the grant that opened request id, as a new JSON object
 * the caller owns (absent fields left out). Return: 1 with *out, 0 none
 * (*out NULL), -1 with err. */
int audit_request_fields(struct audit *a, int64_t id, json_t **out, char *err, size_t errlen);
/* Pending requests (created before older_than when it is not NULL), oldest
 * first, at most 1000. fn must not write to the store. Return 0/-1. */
int audit_request_list(struct audit *a, const char *older_than, audit_req_fn fn, void *arg,
                       char *err, size_t errlen);
/* Closes a pending request as approved, rejected or expired, and gives the
 * grant attempt that opened it its outcome (ok, or denied with the reason):
 * in the caller's transaction, or one of its own when none is open.
 * Return: 0, 1 when it was no longer pending, -1 on error. */
int audit_request_close(struct audit *a, int64_t id, const char *status, const char *by,
                        const char *reason, char *err, size_t errlen);

/* Current UTC time in the stored format into buf (at least 25 bytes). */
void audit_now(char *buf, size_t len);

/* Whether attempt attempt_id has its outcome record. Return: 1, 0, or -1
 * with err. */
int audit_has_outcome(struct audit *a, int64_t attempt_id, char *err, size_t errlen);

/* Whether any record has this category (one no longer configured may still
 * be in the log). A scan without an index: for jobs, off the loop. Return:
 * 1, 0, or -1 with err. */
int audit_category_used(struct audit *a, const char *category, char *err, size_t errlen);

/* An imported attempt with ev's requested_at, description, department,
 * requester and operator, whose outcome has finished_at and detail (NULL
 * matching NULL; the open transaction's rows too): *idp. Return: 1 found,
 * 0 none, -1 error with err. */
int audit_find_imported(struct audit *a, const struct audit_event *ev, const char *finished_at,
                        const char *detail, int64_t *idp, char *err, size_t errlen);

/* An event handled through the daemon (not imported) that a report row
 * with ev's fields shows: requested in the same second (the same minute when
 * minute: a time saved without seconds, as Excel does), the same category,
 * operator, department, and requester (or target, when it had no
 * requester), handled (ok or unchanged): *idp. Return: 1 found, 0 none, -1
 * error with err. */
int audit_find_live(struct audit *a, const struct audit_event *ev, bool minute, int64_t *idp,
                    char *err, size_t errlen);

/* The id of an earlier successful import whose file had this SHA-256 (hex,
 * kept as "sha256 HEX" in its outcome's detail). Return: 1 with *idp, 0 none
 * (*idp 0), -1 with err (*idp 0). */
int audit_find_import(struct audit *a, const char *sha256, int64_t *idp, char *err, size_t errlen);

/* ---- batches: many events in one transaction (import, bench) ---- */

/* The guard (audit.c): what ldapdeskd's own connections committed last,
 * shared by them, so that a record added at the end of the store or its end
 * cut off while the daemon runs is caught at the next write (every write is
 * refused from then on, err saying why) and named by audit_verify. */
struct audit_guard;
/* Seals every transaction a commits from now on (seal.h), and those of the
 * connections that join its guard later: key (32 bytes, copied) is the
 * daemon's seal key. audit_verify on a sealing connection then names any
 * record no valid seal covers. Call before a's first write and before
 * audit_guard_start. Return: 0, or -1 if OpenSSL failed. */
int audit_seal(struct audit *a, const unsigned char key[32]);
/* If the newest declaration in the chain does not name a's seal key (none
 * yet: a store from before sealing, or the key file was replaced), appends
 * one ("audit seals from here on: key ID"): verify needs a seal on every
 * record after it. Call once at start, after audit_ids_restore. Return: 0,
 * or -1 with err. */
int audit_seal_declare(struct audit *a, char *err, size_t errlen);
/* Starts a guard on a from the store's current tail. Return: 0, or -1 with
 * err. */
int audit_guard_start(struct audit *a, char *err, size_t errlen);
/* a's guard (NULL if none), with a reference for the caller to hand to
 * audit_guard_join or give back with audit_guard_drop. Any thread. */
struct audit_guard *audit_guard_take(struct audit *a);
/* a (another connection to the same store) shares g, taking over the
 * caller's reference; audit_close gives it back. */
void audit_guard_join(struct audit *a, struct audit_guard *g);
void audit_guard_drop(struct audit_guard *g);

/* Opens a write transaction on a's connection; until audit_batch_commit or
 * audit_batch_rollback records are written only with audit_batch_* (the
 * requests table's functions join the transaction). The chain tail is read once and kept.
 * Return: 0, or -1 with err filled. */
int audit_batch_begin(struct audit *a, char *err, size_t errlen);

/* Appends an attempt and its outcome inside the open batch. finished_at
 * is the outcome's stored UTC time (NULL = now); ev->requested_at likewise.
 * Nothing is durable until audit_batch_commit. Return: 0 with *idp (may be
 * NULL) = attempt id, or -1 with err filled (the caller then rolls back). */
int audit_batch_add(struct audit *a, const struct audit_event *ev, const char *result,
                    const char *detail, const char *finished_at, int64_t *idp, char *err,
                    size_t errlen);

/* Inside a batch: an attempt alone (pending until its outcome), and the
 * outcome of an attempt stored earlier. Used for group commit: many
 * requests' records share one transaction and one fsync. Return 0/-1. */
/* Like audit_batch_add, for a batch shared by many requests: when either
 * record cannot be stored, neither is (a savepoint), and the batch goes on
 * without them. Return: 0 with *idp = attempt id, or -1 with err. */
int audit_batch_pair(struct audit *a, const struct audit_event *ev, const char *result,
                     const char *detail, int64_t *idp, char *err, size_t errlen);
int audit_batch_attempt(struct audit *a, const struct audit_event *ev, int64_t *idp, char *err,
                        size_t errlen);

/* Inside a batch: everything written through a between audit_batch_savepoint
 * and audit_batch_release(keep false) is undone alone, chain tail included,
 * and the batch goes on; keep true keeps it. Savepoints nest. m is the
 * caller's. Return: 0, or -1 with err (no savepoint: do not release). */
struct audit_mark {
	int64_t next;
	char prev[65];
	int64_t top;
};
int audit_batch_savepoint(struct audit *a, struct audit_mark *m, char *err, size_t errlen);
void audit_batch_release(struct audit *a, const struct audit_mark *m, bool keep);
int audit_batch_outcome(struct audit *a, int64_t attempt_id, const char *result, const char *detail,
                        char *err, size_t errlen);

/* Commits the batch (rolled back if the commit fails). Return: 0, or -1
 * with err filled. */
int audit_batch_commit(struct audit *a, char *err, size_t errlen);

/* Drops everything added since audit_batch_begin; no-op without a batch. */
void audit_batch_rollback(struct audit *a);

/* ---- scanning a time range (reports) ---- */

/* One attempt joined with its outcome; strings are borrowed from audit for
 * the duration of the callback only (NULL = absent). result is "pending"
 * when there is no outcome. */
struct audit_row {
	int64_t id;
	const char *requested_at, *finished_at;
	const char *operator;
	const char *action, *target, *permission, *category, *ticket, *requester, *department,
	    *channel, *description, *note, *result, *detail;
	bool imported;
};

/* Return 0 to go on, non-zero to stop the scan (not an error). */
typedef int (*audit_scan_fn)(void *arg, const struct audit_row *row);

/* Streams every attempt with from <= requested_at <= to (stored format, both
 * required), ordered by (requested_at, id), in pages: no read transaction
 * spans the whole range, so WAL checkpoints go on. fn must not call into a.
 * Return: 0, or -1 with err filled. */
int audit_scan(struct audit *a, const char *from, const char *to, audit_scan_fn fn, void *arg,
               char *err, size_t errlen);

/* ---- files (backups) ---- */

/* The database file a was opened on (borrowed; "" for an in-memory one). */
const char *audit_path(const struct audit *a);

/* True when a's last write failed only because another connection held the
 * write lock past the wait (an import storing its rows): worth retrying. */
bool audit_busy(const struct audit *a);

/* How long a's writes wait for another connection's write lock before they
 * fail as busy (audit_busy; 5000 ms after audit_open). */
void audit_set_busy_timeout(struct audit *a, int ms);
/* Bounds a's page cache to kib KiB (SQLite's default is 2000 per connection). */
void audit_set_cache(struct audit *a, int kib);

/* Writes a consistent copy of the database at src to dest (which must not
 * exist) with VACUUM INTO, from a connection of its own: safe on any thread
 * while another connection writes. stop (may be NULL) set non-zero from
 * another thread ends it early: -1, err saying it was interrupted.
 * Return: 0, or -1 with err filled. */
int audit_copy(const char *src, const char *dest, const atomic_int *stop, char *err, size_t errlen);

/* Marks the copy at path as made by the backup whose attempt is attempt
 * (SQLite's user_version header field: no record, no table, the chain is
 * untouched). Return: 0, or -1 with err filled. */
int audit_mark_copy(const char *path, int64_t attempt, char *err, size_t errlen);

/* The attempt whose backup made the database a has open (its mark), or 0
 * when it is no marked copy (the live database, or an older copy). */
int64_t audit_copy_of(struct audit *a);

/* Opens path read-only, runs PRAGMA integrity_check and a full chain walk.
 * Return: 0 when both pass (*out filled: records, head), -1 with err
 * naming the file and the first problem otherwise. Any thread; stop as
 * for audit_copy. */
int audit_check_file(const char *path, struct audit_verify *out, const atomic_int *stop, char *err,
                     size_t errlen);

/* Opens path read-only and counts its records (cheap: no integrity check,
 * no chain walk). Return: 0 with *records, or -1 with err naming the file
 * and what failed (not a database, no records table). Any thread. */
int audit_count_file(const char *path, long long *records, char *err, size_t errlen);
