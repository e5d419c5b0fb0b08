/*
 * test_audit.c — unit tests of the audit store (daemon/audit.c): rows,
 * filters, pages, the hash chain and tamper detection, each on a fresh
 * database in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct fixture {
	char dir[64];
	char path[128];
	struct audit *a;
	char err[256];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_audit.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof fx->path, "%s/audit.db", fx->dir);
	if (audit_open(fx->path, &fx->a, fx->err, sizeof fx->err) == -1) {
		fprintf(stderr, "%s\n", fx->err);
		rmdir(fx->dir);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static void remove_db(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-ids"};
	char name[160];

	for (size_t i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
		unlink(name);
	}
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	audit_close(fx->a);
	remove_db(fx->path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---- helpers ---- */

static sqlite3 *raw_open(struct fixture *fx)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK)
		fprintf(stderr, "%s: %s\n", sql, msg);
	sqlite3_free(msg);
	assert_int_equal(rc, SQLITE_OK);
}

/* First column of the first row as text, into buf. */
static void raw_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void sha256_hex(const char *a, const char *b, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
	assert_true(EVP_DigestUpdate(ctx, a, strlen(a)));
	assert_true(EVP_DigestUpdate(ctx, b, strlen(b)));
	assert_true(EVP_DigestFinal_ex(ctx, md, &len));
	EVP_MD_CTX_free(ctx);
	assert_int_equal(len, 32);
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int collect(void *arg, json_t *row)
{
	return json_array_append(arg, row);
}

/* Runs a query and returns its rows (caller decrefs). */
static json_t *query(struct fixture *fx, const struct audit_filter *f, int64_t *nextp)
{
	json_t *rows = json_array();

	assert_int_equal(audit_query(fx->a, f, collect, rows, nextp, fx->err, sizeof fx->err), 0);
	return rows;
}

/* Ids of the rows a filter returns, as "1,3,4". */
static void query_ids(struct fixture *fx, const struct audit_filter *f, char *buf, size_t len,
                      int64_t *nextp)
{
	json_t *rows = query(fx, f, nextp);
	size_t i, used = 0;
	json_t *row;

	buf[0] = '\0';
	json_array_foreach(rows, i, row)
	{
		used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
		                         (long long)json_integer_value(json_object_get(row, "id")));
	}
	json_decref(rows);
}

static int64_t record(struct fixture *fx, const char *at, const char *op, const char *action,
                      const char *target, const char *result)
{
	struct audit_event ev = {
	    .requested_at = at,
	    .operator= op,
	    .action = action,
	    .target = target,
	    .category = "account",
	    .department = "IT",
	};
	int64_t id = 0;

	assert_int_equal(audit_record(fx->a, &ev, result, NULL, &id, fx->err, sizeof fx->err), 0);
	return id;
}

static void verify(struct fixture *fx, const char *since, struct audit_verify *out)
{
	assert_int_equal(audit_verify(fx->a, since, out, fx->err, sizeof fx->err), 0);
}

/* A chain-valid outcome record, forged with the canonical rule, so that
 * only the structural checks of verify can catch it. */
static void forge_outcome(sqlite3 *db, int64_t id, int64_t attempt_id)
{
	static const char *const nulls[] = {
	    "operator",    "operator_dn", "client_addr", "action",     "target",     "target_dn",
	    "permission",  "category",    "ticket",      "requester",  "department", "channel",
	    "description", "note",        "detail",      "request_id", "imported",
	};
	char prev[65], hash[65], sql[512];
	json_t *o = json_object();
	char *canon;

	snprintf(sql, sizeof sql, "SELECT hash FROM records WHERE id = %lld", (long long)id - 1);
	raw_text(db, sql, prev, sizeof prev);
	for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
		json_object_set_new(o, nulls[i], json_null());
	json_object_set_new(o, "id", json_integer(id));
	json_object_set_new(o, "kind", json_string("outcome"));
	json_object_set_new(o, "attempt_id", json_integer(attempt_id));
	json_object_set_new(o, "at", json_string("2026-01-01T00:00:00.000Z"));
	json_object_set_new(o, "result", json_string("ok"));
	json_object_set_new(o, "prev_hash", json_string(prev));
	canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	sha256_hex(prev, canon, hash);
	snprintf(sql, sizeof sql,
	         "INSERT INTO records (id, kind, attempt_id, at, result, prev_hash, hash)"
	         " VALUES (%lld, 'outcome', %lld, '2026-01-01T00:00:00.000Z', 'ok', '%s', '%s')",
	         (long long)id, (long long)attempt_id, prev, hash);
	raw_exec(db, sql);
	free(canon);
	json_decref(o);
}

/* ---- rows ---- */

static void begin_then_finish_gives_one_row_with_result(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "alice", .action = "unlock", .target = "bob"};
	int64_t id = 0, next = -1;
	json_t *rows, *row;

	assert_int_equal(audit_begin(fx->a, &ev, &id, fx->err, sizeof fx->err), 0);
	assert_int_equal(id, 1);
	assert_int_equal(audit_finish(fx->a, id, "ok", "unlocked", fx->err, sizeof fx->err), 0);
	rows = query(fx, NULL, &next);
	assert_int_equal(json_array_size(rows), 1);
	assert_int_equal(next, 0);
	row = json_array_get(rows, 0);
	assert_int_equal(json_integer_value(json_object_get(row, "id")), 1);
	assert_string_equal(json_string_value(json_object_get(row, "result")), "ok");
	assert_string_equal(json_string_value(json_object_get(row, "detail")), "unlocked");
	assert_string_equal(json_string_value(json_object_get(row, "target")), "bob");
	assert_true(json_is_string(json_object_get(row, "finished_at")));
	assert_true(json_is_false(json_object_get(row, "imported")));
	assert_true(json_is_null(json_object_get(row, "request_id")));
	assert_true(json_is_null(json_object_get(row, "ticket")));
	json_decref(rows);
}

static void query_row_keys_follow_header_order(void **state)
{
	static const char *const keys[] = {
	    "id",        "requested_at", "finished_at", "operator",    "operator_dn", "client_addr",
	    "action",    "target",       "target_dn",   "permission",  "category",    "ticket",
	    "requester", "department",   "channel",     "description", "note",        "result",
	    "detail",    "request_id",   "imported",    "hash",
	};
	struct fixture *fx = *state;
	json_t *rows, *row;
	size_t n = 0;
	void *it;

	record(fx, NULL, "alice", "login", "alice", "ok");
	rows = query(fx, NULL, NULL);
	row = json_array_get(rows, 0);
	for (it = json_object_iter(row); it; it = json_object_iter_next(row, it), n++) {
		assert_true(n < sizeof keys / sizeof keys[0]);
		assert_string_equal(json_object_iter_key(it), keys[n]);
	}
	assert_int_equal(n, sizeof keys / sizeof keys[0]);
	json_decref(rows);
}

static int count_row(void *arg, json_t *row)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static void pending_row_until_finished(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "alice", .action = "reset", .target = "bob"};
	int64_t id = 0;
	int pending = 0;
	json_t *rows;
	sqlite3 *db;

	assert_int_equal(audit_begin(fx->a, &ev, &id, fx->err, sizeof fx->err), 0);
	/* Committed before return: another connection sees it at once. */
	db = raw_open(fx);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM records WHERE kind = 'attempt'"), 1);
	sqlite3_close(db);
	rows = query(fx, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "result")),
	                    "pending");
	assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "finished_at")));
	json_decref(rows);
	assert_int_equal(audit_pending(fx->a, count_row, &pending, fx->err, sizeof fx->err), 0);
	assert_int_equal(pending, 1);
	assert_int_equal(audit_finish(fx->a, id, "failed", NULL, fx->err, sizeof fx->err), 0);
	pending = 0;
	assert_int_equal(audit_pending(fx->a, count_row, &pending, fx->err, sizeof fx->err), 0);
	assert_int_equal(pending, 0);
}

struct finisher {
	struct fixture *fx;
	int n;
};

static int finish_row(void *arg, json_t *row)
{
	struct finisher *f = arg;
	json_int_t id = json_integer_value(json_object_get(row, "id"));

	f->n++;
	return audit_finish(f->fx->a, id, "ok", "recovered at start-up", f->fx->err,
	                    sizeof f->fx->err);
}

static void pending_callback_may_finish_attempts(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "alice", .action = "unlock", .target = "bob"};
	struct finisher f = {.fx = fx};
	struct audit_verify v;
	int left = 0;

	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_begin(fx->a, &ev, NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_pending(fx->a, finish_row, &f, fx->err, sizeof fx->err), 0);
	assert_int_equal(f.n, 3);
	assert_int_equal(audit_pending(fx->a, count_row, &left, fx->err, sizeof fx->err), 0);
	assert_int_equal(left, 0);
	verify(fx, NULL, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, 6);
}

static void finish_refuses_unknown_or_finished_attempt(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.action = "unlock", .target = "bob"};
	int64_t id = 0;

	assert_int_equal(audit_begin(fx->a, &ev, &id, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_finish(fx->a, 99, "ok", NULL, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "99"));
	assert_int_equal(audit_finish(fx->a, id, "bogus", NULL, fx->err, sizeof fx->err), -1);
	assert_int_equal(audit_finish(fx->a, id, "ok", NULL, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_finish(fx->a, id, "ok", NULL, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "already"));
	/* An outcome cannot point at an outcome either. */
	assert_int_equal(audit_finish(fx->a, 2, "ok", NULL, fx->err, sizeof fx->err), -1);
}

/* A pair whose outcome cannot be stored leaves nothing behind (no attempt
 * that would look pending), and the batch goes on with a whole chain. */
static void batch_pair_is_stored_whole_or_not_at_all(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "hd1", .action = "login", .target = NULL};
	sqlite3 *db = raw_open(fx);
	struct audit_verify v;
	int64_t id1 = 0, id2 = 0, id3 = 0;
	int pending = 0;
	char n[32];

	/* A trigger that refuses one outcome, after its attempt went in. */
	raw_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.kind = 'outcome'"
	             " AND NEW.detail = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END");
	assert_int_equal(audit_batch_begin(fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(
	    audit_batch_pair(fx->a, &ev, "denied", "first", &id1, fx->err, sizeof fx->err), 0);
	assert_int_equal(
	    audit_batch_pair(fx->a, &ev, "denied", "boom", &id2, fx->err, sizeof fx->err), -1);
	assert_int_equal(audit_batch_pair(fx->a, &ev, "ok", "third", &id3, fx->err, sizeof fx->err),
	                 0);
	assert_int_equal(audit_batch_commit(fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(id1, 1);
	assert_int_equal(id3, 3); /* the undone pair's ids are not taken */
	raw_text(db, "SELECT count(*) FROM records", n, sizeof n);
	assert_string_equal(n, "4");
	assert_int_equal(audit_pending(fx->a, count_row, &pending, fx->err, sizeof fx->err), 0);
	assert_int_equal(pending, 0);
	verify(fx, NULL, &v);
	assert_true(v.ok);
	sqlite3_close(db);
}

/* What a group commit stores with a record (a four-eyes request's row) goes
 * with it: a savepoint undone drops the row and the records after it, puts
 * the chain tail back, and the batch goes on. */
static void savepoint_undoes_a_request_with_its_records(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "adm1", .action = "grant", .target = "carol"};
	struct audit_req r = {.operator= "adm1", .target = "carol", .permission = "docs"};
	sqlite3 *db = raw_open(fx);
	struct audit_mark m;
	struct audit_verify v;
	int64_t req = 0, id = 0;
	char n[64];

	raw_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.kind = 'outcome'"
	             " AND NEW.detail = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END");
	assert_int_equal(audit_batch_begin(fx->a, fx->err, sizeof fx->err), 0);
	/* The request is stored, its pair is refused: neither stays. */
	assert_int_equal(audit_batch_savepoint(fx->a, &m, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_request_create(fx->a, &r, &req, fx->err, sizeof fx->err), 0);
	ev.request_id = req;
	assert_int_equal(audit_batch_pair(fx->a, &ev, "ok", "boom", &id, fx->err, sizeof fx->err),
	                 -1);
	audit_batch_release(fx->a, &m, false);
	/* A whole pair undone by the outer savepoint: the tail goes back too. */
	assert_int_equal(audit_batch_savepoint(fx->a, &m, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_batch_pair(fx->a, &ev, "ok", "undone", &id, fx->err, sizeof fx->err),
	                 0);
	assert_int_equal(id, 1);
	audit_batch_release(fx->a, &m, false);
	/* Then one that is kept. */
	assert_int_equal(audit_batch_savepoint(fx->a, &m, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_request_create(fx->a, &r, &req, fx->err, sizeof fx->err), 0);
	ev.request_id = req;
	assert_int_equal(audit_batch_pair(fx->a, &ev, "ok", "kept", &id, fx->err, sizeof fx->err),
	                 0);
	audit_batch_release(fx->a, &m, true);
	assert_int_equal(audit_batch_commit(fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(id, 1); /* undone ids are not taken */
	raw_text(db, "SELECT count(*) || ' ' || group_concat(DISTINCT request_id) FROM records", n,
	         sizeof n);
	snprintf(fx->err, sizeof fx->err, "2 %lld", (long long)req);
	assert_string_equal(n, fx->err);
	raw_text(db, "SELECT count(*) FROM requests", n, sizeof n);
	assert_string_equal(n, "1");
	verify(fx, NULL, &v);
	assert_true(v.ok);
	sqlite3_close(db);
}

static void refused_record_is_attempt_and_outcome(void **state)
{
	struct fixture *fx = *state;
	int64_t id = record(fx, NULL, "mallory", "login", "mallory", "denied");
	int pending = 0;
	json_t *rows;
	sqlite3 *db;

	assert_int_equal(id, 1);
	db = raw_open(fx);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM records"), 2);
	assert_int_equal(raw_int(db, "SELECT attempt_id FROM records WHERE id = 2"), 1);
	assert_int_equal(raw_int(db, "SELECT kind = 'outcome' AND result = 'denied'"
	                             " AND action IS NULL FROM records WHERE id = 2"),
	                 1);
	sqlite3_close(db);
	rows = query(fx, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "result")),
	                    "denied");
	json_decref(rows);
	assert_int_equal(audit_pending(fx->a, count_row, &pending, fx->err, sizeof fx->err), 0);
	assert_int_equal(pending, 0);
}

/* ---- filters and pages ---- */

static void filters_by_user_operator_action_result_and_time(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.requested_at = "2026-01-04T00:00:00.000Z",
	                         .operator= "dave",
	                         .action = "grant",
	                         .target = "carol",
	                         .category = "access",
	                         .department = "Sales"};
	char ids[64];

	record(fx, "2026-01-01T00:00:00.000Z", "alice", "unlock", "bob", "ok");
	record(fx, "2026-01-02T00:00:00.000Z", "alice", "reset", "carol", "denied");
	record(fx, "2026-01-03T00:00:00.000Z", "dave", "unlock", "bob", "failed");
	assert_int_equal(audit_begin(fx->a, &ev, NULL, fx->err, sizeof fx->err), 0);

	query_ids(fx, &(struct audit_filter){.user = "bob"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "1,5");
	query_ids(fx, &(struct audit_filter){.operator = "dave"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "5,7");
	query_ids(fx, &(struct audit_filter){.action = "unlock"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "1,5");
	query_ids(fx, &(struct audit_filter){.result = "pending"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "7");
	query_ids(fx, &(struct audit_filter){.result = "denied"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "3");
	query_ids(fx, &(struct audit_filter){.category = "access"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "7");
	query_ids(fx, &(struct audit_filter){.department = "IT"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "1,3,5");
	query_ids(fx,
	          &(struct audit_filter){.from = "2026-01-02T00:00:00.000Z",
	                                 .to = "2026-01-03T00:00:00.000Z"},
	          ids, sizeof ids, NULL);
	assert_string_equal(ids, "3,5");
	query_ids(fx, &(struct audit_filter){.operator= "alice", .action = "reset"}, ids,
	          sizeof ids, NULL);
	assert_string_equal(ids, "3");
	query_ids(fx, &(struct audit_filter){.user = ""}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "1,3,5,7");
	/* uids ignore case: stored folded (AD's "JSmith" is jsmith), found as typed. */
	record(fx, "2026-01-05T00:00:00.000Z", "JSmith", "unlock", "Bob", "ok"); /* 8, 9 */
	query_ids(fx, &(struct audit_filter){.user = "BOB"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "1,5,8");
	query_ids(fx, &(struct audit_filter){.operator = "jsmith"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "8");
	{
		sqlite3 *db = raw_open(fx);

		assert_int_equal(raw_int(db, "SELECT count(*) FROM records WHERE id = 8 AND"
		                             " operator = 'jsmith' AND target = 'bob'"),
		                 1);
		sqlite3_close(db);
	}
}

static void pagination_next_and_after(void **state)
{
	struct fixture *fx = *state;
	int64_t next = -1;
	char ids[64];

	for (int i = 0; i < 5; i++)
		record(fx, NULL, "alice", "unlock", "bob", "ok");
	query_ids(fx, &(struct audit_filter){.limit = 2}, ids, sizeof ids, &next);
	assert_string_equal(ids, "1,3");
	assert_int_equal(next, 3);
	query_ids(fx, &(struct audit_filter){.limit = 2, .after = next}, ids, sizeof ids, &next);
	assert_string_equal(ids, "5,7");
	assert_int_equal(next, 7);
	query_ids(fx, &(struct audit_filter){.limit = 2, .after = next}, ids, sizeof ids, &next);
	assert_string_equal(ids, "9");
	assert_int_equal(next, 0);
	/* A page that ends exactly at the last row has no next page. */
	query_ids(fx, &(struct audit_filter){.limit = 5}, ids, sizeof ids, &next);
	assert_int_equal(next, 0);
}

static void page_limit_defaults_and_caps(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = raw_open(fx);
	int64_t next = -1;
	json_t *rows;

	/* Rows for the query only (not chained): the chain is not under test. */
	raw_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	             " WHERE i < 5002) INSERT INTO records (id, kind, at, action, prev_hash, hash)"
	             " SELECT i, 'attempt', '2026-01-01T00:00:00.000Z', 'login', '', '' FROM n");
	sqlite3_close(db);
	rows = query(fx, &(struct audit_filter){.limit = 0}, &next);
	assert_int_equal(json_array_size(rows), 1000);
	assert_int_equal(next, 1000);
	json_decref(rows);
	rows = query(fx, &(struct audit_filter){.limit = 1000000}, &next);
	assert_int_equal(json_array_size(rows), 5000);
	assert_int_equal(next, 5000);
	json_decref(rows);
}

static void no_sql_injection_through_filter_values(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	char ids[64];
	sqlite3 *db;

	record(fx, NULL, "alice", "unlock", "o'brien", "ok");
	record(fx, NULL, "alice", "unlock", "bob", "ok");
	query_ids(fx, &(struct audit_filter){.user = "x' OR '1'='1"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "");
	query_ids(fx, &(struct audit_filter){.user = "x\" OR 1=1 --"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "");
	query_ids(fx, &(struct audit_filter){.action = "unlock'; DROP TABLE records; --"}, ids,
	          sizeof ids, NULL);
	assert_string_equal(ids, "");
	query_ids(fx, &(struct audit_filter){.user = "o'brien"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "1");
	query_ids(fx, &(struct audit_filter){.result = "ok' OR 'a'='a"}, ids, sizeof ids, NULL);
	assert_string_equal(ids, "");
	db = raw_open(fx);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM records"), 4);
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_true(v.ok);
}

static void utf8_chinese_fields_roundtrip(void **state)
{
	static const char dept[] = "办公室(外事办公室董事会办公室)";
	static const char desc[] = "用户忘记密码，电话确认身份后解锁";
	struct fixture *fx = *state;
	struct audit_event ev = {.operator= "张伟",
	                         .action = "unlock",
	                         .target = "li.na",
	                         .department = dept,
	                         .description = desc};
	struct audit_verify v;
	json_t *rows, *row;
	char stored[256];
	sqlite3 *db;

	assert_int_equal(audit_record(fx->a, &ev, "ok", "已解锁", NULL, fx->err, sizeof fx->err),
	                 0);
	rows = query(fx, &(struct audit_filter){.department = dept}, NULL);
	assert_int_equal(json_array_size(rows), 1);
	row = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(row, "department")), dept);
	assert_string_equal(json_string_value(json_object_get(row, "description")), desc);
	assert_string_equal(json_string_value(json_object_get(row, "operator")), "张伟");
	assert_string_equal(json_string_value(json_object_get(row, "detail")), "已解锁");
	json_decref(rows);
	db = raw_open(fx);
	raw_text(db, "SELECT department FROM records WHERE id = 1", stored, sizeof stored);
	assert_string_equal(stored, dept);
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_true(v.ok);
}

/* ---- the chain ---- */

static void canonical_hash_matches_independent_recomputation(void **state)
{
	/* Record 1 by hand: keys sorted, compact, absent = null, imported 0. */
	static const char canon1[] =
	    "{\"action\":\"unlock\",\"at\":\"2026-01-02T03:04:05.678Z\",\"attempt_id\":null,"
	    "\"category\":null,\"channel\":null,\"client_addr\":\"192.0.2.1\","
	    "\"department\":\"办公室\",\"description\":null,\"detail\":null,\"id\":1,"
	    "\"imported\":0,\"kind\":\"attempt\",\"note\":null,\"operator\":\"alice\","
	    "\"operator_dn\":\"uid=alice,ou=people,dc=example,dc=org\",\"permission\":null,"
	    "\"prev_hash\":\"" ZERO_HASH "\",\"request_id\":42,\"requester\":null,"
	    "\"result\":null,\"target\":\"bob\",\"target_dn\":null,\"ticket\":null}";
	struct fixture *fx = *state;
	struct audit_event ev = {.requested_at = "2026-01-02T03:04:05.678Z",
	                         .operator= "alice",
	                         .operator_dn = "uid=alice,ou=people,dc=example,dc=org",
	                         .client_addr = "192.0.2.1",
	                         .action = "unlock",
	                         .target = "bob",
	                         .department = "办公室",
	                         .request_id = 42};
	char want1[65], want2[65], stored[65], at2[32], canon2[1024];
	json_t *rows;
	sqlite3 *db;

	assert_int_equal(audit_record(fx->a, &ev, "ok", "done", NULL, fx->err, sizeof fx->err), 0);
	sha256_hex(ZERO_HASH, canon1, want1);
	db = raw_open(fx);
	raw_text(db, "SELECT hash FROM records WHERE id = 1", stored, sizeof stored);
	assert_string_equal(stored, want1);
	raw_text(db, "SELECT at FROM records WHERE id = 2", at2, sizeof at2);
	/* Record 2, the outcome: imported and every event field null. */
	snprintf(canon2, sizeof canon2,
	         "{\"action\":null,\"at\":\"%s\",\"attempt_id\":1,\"category\":null,"
	         "\"channel\":null,\"client_addr\":null,\"department\":null,"
	         "\"description\":null,\"detail\":\"done\",\"id\":2,\"imported\":null,"
	         "\"kind\":\"outcome\",\"note\":null,\"operator\":null,\"operator_dn\":null,"
	         "\"permission\":null,\"prev_hash\":\"%s\",\"request_id\":null,"
	         "\"requester\":null,\"result\":\"ok\",\"target\":null,\"target_dn\":null,"
	         "\"ticket\":null}",
	         at2, want1);
	sha256_hex(want1, canon2, want2);
	raw_text(db, "SELECT hash FROM records WHERE id = 2", stored, sizeof stored);
	assert_string_equal(stored, want2);
	sqlite3_close(db);
	rows = query(fx, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "hash")),
	                    want1);
	json_decref(rows);
}

/* Random text of pieces that each take another path through the canonical
 * writer: plain ASCII, JSON escapes, control characters, DEL, multi-byte
 * UTF-8 (CJK, emoji, U+2028). Into buf; NULL about one time in five. */
static const char *random_text(unsigned *seed, char *buf, size_t len)
{
	static const char *const pieces[] = {"a",
	                                     "Z",
	                                     " ",
	                                     "\"",
	                                     "\\",
	                                     "/",
	                                     "\x01",
	                                     "\x1f",
	                                     "\t",
	                                     "\n",
	                                     "\x7f",
	                                     "é",
	                                     "技术",
	                                     "\xf0\x9f\x98\x80",
	                                     "\xe2\x80\xa8",
	                                     "{}"};
	int k = rand_r(seed) % 7;

	if (k == 0 && rand_r(seed) % 2)
		return NULL;
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < k; i++) {
		const char *p = pieces[rand_r(seed) % (sizeof pieces / sizeof pieces[0])];
		if (used + strlen(p) < len)
			used += (size_t)snprintf(buf + used, len - used, "%s", p);
	}
	return buf;
}

/* Every stored record's hash, recomputed from its row the slow, obvious way
 * (a jansson object of every column but hash, json_dumps with sorted keys):
 * the daemon's key-by-key writer must give the same bytes for any text. */
static void canonical_hash_matches_jansson_for_any_text(void **state)
{
	struct fixture *fx = *state;
	char t[12][64], prev[65], want[65], det[64];
	unsigned seed = 20261129;
	sqlite3_stmt *st = NULL;
	int rows = 0;
	sqlite3 *db;

	for (int i = 0; i < 300; i++) {
		struct audit_event ev = {
		    .operator= random_text(&seed, t[0], sizeof t[0]),
		    .operator_dn = random_text(&seed, t[1], sizeof t[1]),
		    .client_addr = random_text(&seed, t[2], sizeof t[2]),
		    .action = "record",
		    .target = random_text(&seed, t[3], sizeof t[3]),
		    .target_dn = random_text(&seed, t[4], sizeof t[4]),
		    .permission = random_text(&seed, t[5], sizeof t[5]),
		    .category = random_text(&seed, t[6], sizeof t[6]),
		    .ticket = random_text(&seed, t[7], sizeof t[7]),
		    .department = random_text(&seed, t[8], sizeof t[8]),
		    .description = random_text(&seed, t[9], sizeof t[9]),
		    .note = random_text(&seed, t[10], sizeof t[10]),
		    .detail = random_text(&seed, t[11], sizeof t[11]),
		    .request_id = i % 3 == 0 ? 0 : (int64_t)i * 4294967296LL,
		    .imported = i % 2,
		};
		assert_int_equal(audit_record(fx->a, &ev, i % 2 ? "ok" : "failed",
		                              random_text(&seed, det, sizeof det), NULL, fx->err,
		                              sizeof fx->err),
		                 0);
	}
	db = raw_open(fx);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM records ORDER BY id", -1, &st, NULL),
	                 SQLITE_OK);
	snprintf(prev, sizeof prev, "%s", ZERO_HASH);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *o = json_object();
		const char *hash = NULL;
		char *canon;

		for (int c = 0; c < sqlite3_column_count(st); c++) {
			const char *name = sqlite3_column_name(st, c);
			int type = sqlite3_column_type(st, c);
			const char *text = (const char *)sqlite3_column_text(st, c);

			if (strcmp(name, "hash") == 0)
				hash = text;
			else
				json_object_set_new(
				    o, name,
				    type == SQLITE_INTEGER
				        ? json_integer(sqlite3_column_int64(st, c))
				    : type == SQLITE_TEXT
				        ? json_stringn(text, (size_t)sqlite3_column_bytes(st, c))
				        : json_null());
		}
		canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(canon);
		sha256_hex(prev, canon, want);
		assert_non_null(hash);
		assert_string_equal(hash, want);
		snprintf(prev, sizeof prev, "%s", hash);
		free(canon);
		json_decref(o);
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(rows, 600);
}

static void verify_ok_on_fresh_log_and_head_format(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	char head[96], hash[65];
	sqlite3 *db;

	verify(fx, NULL, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, 0);
	assert_string_equal(v.head, "");
	record(fx, NULL, "alice", "unlock", "bob", "ok");
	record(fx, NULL, "alice", "reset", "bob", "denied");
	assert_int_equal(audit_begin(fx->a, &(struct audit_event){.action = "grant"}, NULL, fx->err,
	                             sizeof fx->err),
	                 0);
	verify(fx, NULL, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, 5);
	assert_int_equal(v.first_bad, 0);
	assert_string_equal(v.reason, "");
	db = raw_open(fx);
	raw_text(db, "SELECT hash FROM records WHERE id = 5", hash, sizeof hash);
	sqlite3_close(db);
	snprintf(head, sizeof head, "5:%s", hash);
	assert_string_equal(v.head, head);
	assert_int_equal(strlen(hash), 64);
	assert_int_equal(strspn(hash, "0123456789abcdef"), 64);
	verify(fx, head, &v);
	assert_true(v.ok);
}

static void six_records(struct fixture *fx)
{
	record(fx, NULL, "alice", "unlock", "bob", "ok");
	record(fx, NULL, "alice", "reset", "carol", "ok");
	record(fx, NULL, "dave", "unlock", "erin", "denied");
}

static void verify_detects_update_behind_back(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	sqlite3 *db;

	six_records(fx);
	db = raw_open(fx);
	raw_exec(db, "DROP TRIGGER records_no_update");
	raw_exec(db, "UPDATE records SET note = 'edited' WHERE id = 3");
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 3);
	assert_int_equal(v.records, 6);
	assert_non_null(strstr(v.reason, "3"));
}

static void verify_detects_delete(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	sqlite3 *db;

	six_records(fx);
	db = raw_open(fx);
	raw_exec(db, "DROP TRIGGER records_no_delete");
	raw_exec(db, "DELETE FROM records WHERE id = 3");
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 4);
	assert_int_equal(v.records, 5);
}

static void verify_detects_inserted_row(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	char sql[512], prev[65];
	sqlite3 *db;

	six_records(fx);
	db = raw_open(fx);
	raw_text(db, "SELECT hash FROM records WHERE id = 6", prev, sizeof prev);
	snprintf(sql, sizeof sql,
	         "INSERT INTO records (id, kind, at, operator, action, target, prev_hash, hash)"
	         " VALUES (7, 'attempt', '2026-01-01T00:00:00.000Z', 'alice', 'grant', 'bob',"
	         " '%s', '%s')",
	         prev, prev);
	raw_exec(db, sql);
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 7);
}

static void verify_detects_outcome_for_missing_attempt(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	sqlite3 *db;

	six_records(fx);
	db = raw_open(fx);
	forge_outcome(db, 7, 99);
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 7);
	assert_non_null(strstr(v.reason, "missing attempt"));
}

static void verify_detects_second_outcome_for_one_attempt(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	sqlite3 *db;

	six_records(fx);
	db = raw_open(fx);
	raw_exec(db, "DROP INDEX records_outcome");
	forge_outcome(db, 7, 3);
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 7);
	assert_non_null(strstr(v.reason, "second outcome"));
}

static void verify_since_head_detects_truncation(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	char head[96];
	sqlite3 *db;

	six_records(fx);
	verify(fx, NULL, &v);
	snprintf(head, sizeof head, "%s", v.head);
	assert_int_equal(strncmp(head, "6:", 2), 0);
	record(fx, NULL, "alice", "unlock", "bob", "ok");
	verify(fx, head, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, 8);

	db = raw_open(fx);
	raw_exec(db, "DROP TRIGGER records_no_delete");
	raw_exec(db, "DELETE FROM records WHERE id >= 5");
	sqlite3_close(db);
	verify(fx, head, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 6);
	assert_string_equal(v.reason, "head 6 no longer matches");
	assert_int_equal(strncmp(v.head, "4:", 2), 0);
	/* Without the head the missing tail still shows in the sequence. */
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 5);
}

static void verify_since_head_malformed_is_an_error(void **state)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "6",
	    "6:",
	    "0:" ZERO_HASH,
	    "6:" ZERO_HASH "0",
	    "6:ABCDEF0000000000000000000000000000000000000000000000000000000000",
	    "x6:" ZERO_HASH,
	};
	struct fixture *fx = *state;
	struct audit_verify v;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(audit_verify(fx->a, bad[i], &v, fx->err, sizeof fx->err), -1);
	verify(fx, "1:" ZERO_HASH, &v);
	assert_false(v.ok);
	assert_string_equal(v.reason, "head 1 no longer matches");
}

static void append_only_triggers_refuse_update(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	sqlite3 *db;

	six_records(fx);
	db = raw_open(fx);
	assert_int_not_equal(
	    sqlite3_exec(db, "UPDATE records SET note = 'x' WHERE id = 1", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM records WHERE id = 6", NULL, NULL, NULL),
	                     SQLITE_OK);
	assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
	assert_int_equal(raw_int(db, "SELECT count(*) FROM records WHERE note IS NULL"), 6);
	sqlite3_close(db);
	verify(fx, NULL, &v);
	assert_true(v.ok);
}

static void reopen_continues_chain(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify v;
	int64_t id = 0;

	six_records(fx);
	audit_close(fx->a);
	fx->a = NULL;
	assert_int_equal(audit_open(fx->path, &fx->a, fx->err, sizeof fx->err), 0);
	id = record(fx, NULL, "alice", "unlock", "bob", "ok");
	assert_int_equal(id, 7);
	verify(fx, NULL, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, 8);
}

/* ---- grants, errors, time ---- */

static void grant(struct fixture *fx, const char *action, const char *op, const char *result,
                  const char *detail)
{
	struct audit_event ev = {
	    .operator= op, .action = action, .target = "bob", .permission = "vpn"};

	assert_int_equal(audit_record(fx->a, &ev, result, detail, NULL, fx->err, sizeof fx->err),
	                 0);
}

static int last_grant(struct fixture *fx, char *op, size_t oplen, char *detail, size_t detlen)
{
	return audit_last_grant(fx->a, "bob", "vpn", op, oplen, detail, detlen, fx->err,
	                        sizeof fx->err);
}

static void last_grant_is_undone_by_later_ok_revoke(void **state)
{
	struct fixture *fx = *state;
	char op[64], detail[128];

	assert_int_equal(last_grant(fx, op, sizeof op, detail, sizeof detail), 0);
	grant(fx, "grant", "alice", "ok", "until 2026-12-31");
	grant(fx, "grant", "mallory", "denied", "not allowed");
	assert_int_equal(last_grant(fx, op, sizeof op, detail, sizeof detail), 1);
	assert_string_equal(op, "alice");
	assert_string_equal(detail, "until 2026-12-31");
	grant(fx, "revoke", "dave", "failed", NULL);
	assert_int_equal(last_grant(fx, op, sizeof op, detail, sizeof detail), 1);
	grant(fx, "revoke", "dave", "ok", NULL);
	assert_int_equal(last_grant(fx, op, sizeof op, detail, sizeof detail), 0);
	grant(fx, "grant", "carol", "ok", "until 2027-01-31");
	assert_int_equal(last_grant(fx, op, sizeof op, detail, sizeof detail), 1);
	assert_string_equal(op, "carol");
	assert_string_equal(detail, "until 2027-01-31");
	assert_int_equal(audit_last_grant(fx->a, "bob", "wifi", op, sizeof op, detail,
	                                  sizeof detail, fx->err, sizeof fx->err),
	                 0);
}

static void errors_never_contain_field_values(void **state)
{
	struct fixture *fx = *state;
	struct audit_event ev = {.action = "reset", .target = "bob", .note = "secret-pw\xff"};
	json_t *rows;

	assert_int_equal(audit_begin(fx->a, &ev, NULL, fx->err, sizeof fx->err), -1);
	assert_null(strstr(fx->err, "secret"));
	assert_non_null(strstr(fx->err, "UTF-8"));
	ev.note = NULL;
	ev.requested_at = "secret-time";
	assert_int_equal(audit_record(fx->a, &ev, "ok", NULL, NULL, fx->err, sizeof fx->err), -1);
	assert_null(strstr(fx->err, "secret"));
	ev.requested_at = NULL;
	ev.action = NULL;
	assert_int_equal(audit_begin(fx->a, &ev, NULL, fx->err, sizeof fx->err), -1);
	assert_int_equal(audit_record(fx->a, &(struct audit_event){.action = "login"}, "secret",
	                              NULL, NULL, fx->err, sizeof fx->err),
	                 -1);
	assert_null(strstr(fx->err, "secret"));
	rows = query(fx, NULL, NULL);
	assert_int_equal(json_array_size(rows), 0);
	json_decref(rows);
}

static void open_error_names_the_file(void **state)
{
	struct fixture *fx = *state;
	struct audit *a = NULL;
	char path[160];

	snprintf(path, sizeof path, "%s/no-such-dir/audit.db", fx->dir);
	assert_int_equal(audit_open(path, &a, fx->err, sizeof fx->err), -1);
	assert_null(a);
	assert_non_null(strstr(fx->err, path));
}

static void now_is_utc_with_milliseconds(void **state)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	char buf[32];

	(void)state;
	audit_now(buf, sizeof buf);
	assert_int_equal(strlen(buf), 24);
	for (size_t i = 0; i < 24; i++) {
		if (shape[i] == 'd')
			assert_true(buf[i] >= '0' && buf[i] <= '9');
		else
			assert_int_equal(buf[i], shape[i]);
	}
	assert_true(strncmp(buf, "2024", 4) > 0);
	/* The date part is kept per second: a second call still reads the clock. */
	for (int i = 0; i < 3; i++) {
		char want[2][20], again[32];
		time_t t = time(NULL);
		struct tm tm;

		audit_now(again, sizeof again);
		for (int k = 0; k < 2; k++) {
			time_t tk = t + k; /* the second may turn between the two reads */
			gmtime_r(&tk, &tm);
			strftime(want[k], sizeof want[k], "%Y-%m-%dT%H:%M:%S", &tm);
		}
		if (strncmp(again, want[0], 19) != 0 && strncmp(again, want[1], 19) != 0)
			fail_msg("audit_now %s is not now (%s)", again, want[0]);
		assert_int_equal(strlen(again), 24);
	}
	/* A short buffer gets the start, terminated, as snprintf gives it. */
	audit_now(buf, 11);
	assert_int_equal(strlen(buf), 10);
	assert_int_equal(buf[4], '-');
}

/* The plan's detail for sql, all rows joined. */
static void query_plan(const char *path, const char *sql, char *out, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char q[512];

	out[0] = '\0';
	snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out + strlen(out), len - strlen(out), "%s;", sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A database from before the partial indexes gets them at the next open, and
 * lookups by user, operator and action still go through them. */
/* The connection closed and opened again (as at a restart), sealing under
 * key unless NULL. */
static void reopen(struct fixture *fx, const unsigned char *key)
{
	audit_close(fx->a);
	assert_int_equal(audit_open(fx->path, &fx->a, fx->err, sizeof fx->err), 0);
	if (key != NULL)
		assert_int_equal(audit_seal(fx->a, key), 0);
}

static const unsigned char key1[32] = {1, 2, 3};
static const unsigned char key2[32] = {9, 8, 7};

/* An attempt (sealed, pending) and a chain-valid outcome for it that
 * ldapdeskd never wrote: what the README's recipe lets anyone add. */
static int64_t forge_pair(struct fixture *fx, sqlite3 *db)
{
	struct audit_event ev = {.operator= "hd1", .action = "unlock", .target = "bob"};
	int64_t id = 0;

	assert_int_equal(audit_begin(fx->a, &ev, &id, fx->err, sizeof fx->err), 0);
	forge_outcome(db, id + 1, id);
	return id + 1;
}

/* The newest records cut inside a seal's range, with the id sequence and
 * the -ids file set back (the daemon stopped): the seal of that range is
 * never reached, and says records are gone. Records put in their place with
 * correct hashes are named the same way. */
static void seals_name_a_cut_end(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = raw_open(fx);
	struct audit_verify v;
	char ids[600], n[96];

	assert_int_equal(audit_seal(fx->a, key1), 0);
	assert_int_equal(audit_seal_declare(fx->a, fx->err, sizeof fx->err), 0);
	record(fx, "2026-01-01T00:00:00.000Z", "hd1", "unlock", "bob", "ok");
	record(fx, "2026-01-01T00:00:01.000Z", "hd1", "unlock", "eve", "ok");
	raw_text(db, "SELECT group_concat(first_id || '-' || last_id) FROM seals", n, sizeof n);
	assert_string_equal(n, "1-2,3-4,5-6");
	verify(fx, NULL, &v);
	assert_true(v.ok);
	audit_close(fx->a);
	raw_exec(db, "DROP TRIGGER records_no_delete; DELETE FROM records WHERE id = 6;"
	             "UPDATE sqlite_sequence SET seq = 5 WHERE name = 'records'");
	snprintf(ids, sizeof ids, "%s-ids", fx->path);
	assert_int_equal(unlink(ids), 0);
	assert_int_equal(audit_open(fx->path, &fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_seal(fx->a, key1), 0);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 6);
	assert_non_null(strstr(v.reason, "missing: the seal of records 5 to 6 names records past"));
	/* A record of a correct hash in the cut one's place (what the README's
	 * recipe makes) does not match the seal of its range. */
	forge_outcome(db, 6, 5);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 6);
	assert_non_null(strstr(v.reason, "the seal of records 5 to 6 does not match"));
	sqlite3_close(db);
}

/* Every transaction of a sealing connection stores a seal over its range;
 * a record no seal covers, or under a seal of another range, is named. */
static void seals_name_records_ldapdeskd_did_not_write(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = raw_open(fx);
	struct audit_verify v;
	int64_t forged;
	char n[96];

	record(fx, "2025-12-31T00:00:00.000Z", "hd1", "unlock", "bob", "ok"); /* before sealing */
	assert_int_equal(audit_seal(fx->a, key1), 0);
	assert_int_equal(audit_seal_declare(fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_seal_declare(fx->a, fx->err, sizeof fx->err), 0); /* once */
	record(fx, "2026-01-01T00:00:00.000Z", "hd1", "unlock", "bob", "ok");
	record(fx, "2026-01-01T00:00:01.000Z", "hd1", "unlock", "eve", "ok");
	raw_text(db, "SELECT group_concat(first_id || '-' || last_id) FROM seals", n, sizeof n);
	assert_string_equal(n, "3-4,5-6,7-8");
	raw_text(db, "SELECT substr(detail, 1, 30) FROM records WHERE id = 3", n, sizeof n);
	assert_string_equal(n, "audit seals from here on: key ");
	verify(fx, NULL, &v);
	assert_true(v.ok);
	forged = forge_pair(fx, db);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, forged);
	assert_non_null(strstr(v.reason, "no seal of its covers it"));
	/* A seal copied from another range does not cover it. */
	raw_exec(db, "INSERT INTO seals SELECT 10, 10, key_id, mac FROM seals WHERE last_id = 4");
	verify(fx, NULL, &v);
	assert_int_equal(v.first_bad, forged);
	assert_non_null(strstr(v.reason, "the seal of records 10 to 10 does not match"));
	/* Nor one relabelled to another key, nor every seal removed. */
	raw_exec(db, "DROP TRIGGER seals_no_update; UPDATE seals SET key_id = '0000000000000000'"
	             " WHERE last_id = 10");
	verify(fx, NULL, &v);
	assert_int_equal(v.first_bad, forged);
	assert_non_null(strstr(v.reason, "sealed under another key after seals under ldapdeskd's"));
	raw_exec(db, "DROP TRIGGER seals_no_delete; DELETE FROM seals");
	verify(fx, NULL, &v);
	assert_int_equal(v.first_bad, 3);
	assert_non_null(strstr(v.reason, "no seal of its covers it"));
	/* Without the key (an auditor's copy, a backup's check) seals are not read. */
	reopen(fx, NULL);
	verify(fx, NULL, &v);
	assert_true(v.ok);
	sqlite3_close(db);
}

/* The key file replaced (A, then B): each start declares its key in the
 * chain; seals under the key declared for their range are taken while no
 * seal under the current key came before them. Declarations anyone can
 * append, so a forged range under a made-up key after the current key's
 * seals is named, declared or not. Putting key A back (A, B, A) names B's
 * range the same way: README says to keep the newest key file. */
static void seals_follow_the_key_each_start_declares(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = raw_open(fx);
	const unsigned char *keys[] = {key1, key2, key1};
	struct audit_verify v;

	for (size_t i = 0; i < 3; i++) {
		if (i > 0) {
			reopen(fx, NULL);
		}
		assert_int_equal(audit_seal(fx->a, keys[i]), 0);
		assert_int_equal(audit_seal_declare(fx->a, fx->err, sizeof fx->err), 0);
		record(fx, "2026-01-01T00:00:00.000Z", "hd1", "unlock", "bob", "ok");
		verify(fx, NULL, &v);
		assert_int_equal(v.ok, i < 2); /* A, B: whole; A again: B's range is named */
	}
	assert_int_equal(v.first_bad, 6);
	assert_non_null(strstr(v.reason, "sealed under another key after seals under ldapdeskd's"));
	/* Under B: A's first turn (records 1 to 4) and B's (5 to 8) are whole;
	 * A's second turn (9 to 12), sealed after B's seals, is named where its
	 * first seal's range ends (10). With its seals removed, its first record
	 * is named instead, as unsealed. */
	reopen(fx, key2);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 10);
	assert_non_null(strstr(v.reason, "sealed under another key after seals under ldapdeskd's"));
	raw_exec(db, "DROP TRIGGER seals_no_delete; DELETE FROM seals WHERE last_id > 8");
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 9);
	assert_non_null(strstr(v.reason, "no seal of its covers it"));
	sqlite3_close(db);
}

/* A declaration of a made-up key appended after the daemon's own seals,
 * with records sealed under it: named (the forger holds no key of ours). */
static void a_forged_declaration_does_not_cover_records(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = raw_open(fx);
	struct audit_verify v;
	int64_t forged;

	assert_int_equal(audit_seal(fx->a, key1), 0);
	assert_int_equal(audit_seal_declare(fx->a, fx->err, sizeof fx->err), 0);
	record(fx, "2026-01-01T00:00:00.000Z", "hd1", "unlock", "bob", "ok");
	/* As an outsider would: the attempt and outcome of a declaration for
	 * key 0123456789abcdef, chained, then a pair, all under one seal. */
	reopen(fx, NULL);
	assert_int_equal(
	    audit_record(fx->a,
	                 &(struct audit_event){.operator= "ldapdeskd",
	                                       .action = "backup",
	                                       .detail = "audit seals from here on: key "
	                                                 "0123456789abcdef (x)"},
	                 "ok", "x", NULL, fx->err, sizeof fx->err),
	    0);
	forged = forge_pair(fx, db);
	raw_exec(db, "INSERT INTO seals VALUES (8, 5, '0123456789abcdef', '00')");
	assert_int_equal(audit_seal(fx->a, key1), 0);
	verify(fx, NULL, &v);
	assert_false(v.ok);
	assert_int_equal(v.first_bad, 8);
	assert_non_null(strstr(v.reason, "sealed under another key after seals under ldapdeskd's"));
	(void)forged;
	sqlite3_close(db);
}

/* A store made before requests kept their target's entry gets the column
 * (its requests read back with none), and a new request keeps its entry. */
static void raw_text_path(struct fixture *fx, const char *sql, char *buf, size_t len)
{
	sqlite3 *db = raw_open(fx);

	raw_text(db, sql, buf, len);
	sqlite3_close(db);
}

static void old_requests_table_gets_target_entry(void **state)
{
	struct fixture *fx = *state;
	char n[16];
	struct audit_req r = {.operator= "adm1", .target = "carol", .permission = "docs"};
	struct audit_req back;
	sqlite3 *db = NULL;
	int64_t id = 0;

	audit_close(fx->a);
	fx->a = NULL;
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
	                 "DROP TABLE requests; CREATE TABLE requests ("
	                 " id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,"
	                 " operator TEXT NOT NULL, target TEXT NOT NULL, permission TEXT NOT NULL,"
	                 " days INTEGER, until TEXT, status TEXT NOT NULL DEFAULT 'pending',"
	                 " decided_at TEXT, decided_by TEXT, reason TEXT);"
	                 "INSERT INTO requests (created_at, operator, target, permission)"
	                 " VALUES ('2026-01-01T00:00:00.000Z', 'adm1', 'dave', 'docs');"
	                 "UPDATE meta SET value = '1' WHERE key = 'schema_version';",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(audit_open(fx->path, &fx->a, fx->err, sizeof fx->err), 0);
	/* A store of schema version 1 is raised to 2 (sealed: older daemons refuse it). */
	raw_text_path(fx, "SELECT value FROM meta WHERE key = 'schema_version'", n, sizeof n);
	assert_string_equal(n, "2");
	assert_int_equal(audit_request_get(fx->a, 1, &back, fx->err, sizeof fx->err), 1);
	assert_string_equal(back.target, "dave");
	assert_string_equal(back.target_entry, "");
	snprintf(r.target_entry, sizeof r.target_entry, "%s",
	         "5f0c6a0e-1d2b-4c3d-9e8f-0a1b2c3d4e5f");
	assert_int_equal(audit_request_create(fx->a, &r, &id, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_request_get(fx->a, id, &back, fx->err, sizeof fx->err), 1);
	assert_string_equal(back.target_entry, r.target_entry);
	/* Opened again, the column is not added twice. */
	reopen(fx, NULL);
}

static void old_full_indexes_become_partial_and_are_used(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = NULL;
	char plan[512];

	audit_close(fx->a);
	fx->a = NULL;
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DROP INDEX records_target; DROP INDEX records_operator;"
	                              "CREATE INDEX records_target ON records (target, id);"
	                              "CREATE INDEX records_operator ON records (operator, id);",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(audit_open(fx->path, &fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st = NULL;

		assert_int_equal(
		    sqlite3_prepare_v2(db,
		                       "SELECT count(*) FROM sqlite_master WHERE type = "
		                       "'index' AND sql LIKE '%WHERE%IS NOT NULL%'",
		                       -1, &st, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 4);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	query_plan(fx->path, "SELECT id FROM records WHERE target = 'alice' ORDER BY id", plan,
	           sizeof plan);
	assert_non_null(strstr(plan, "records_target"));
	/* Closing a request finds its grant attempt by request_id (added to older stores). */
	query_plan(fx->path, "SELECT id FROM records WHERE request_id = 7", plan, sizeof plan);
	assert_non_null(strstr(plan, "records_request"));
	query_plan(fx->path, "SELECT id FROM records WHERE operator = 'hd1'", plan, sizeof plan);
	assert_non_null(strstr(plan, "records_operator"));
	query_plan(fx->path, "SELECT id FROM records WHERE action IN ('grant', 'approve')", plan,
	           sizeof plan);
	assert_non_null(strstr(plan, "records_action"));
}

/* A database put back from an older copy: the ids of the records it lost
 * are not given again, and a record says which they were; once. */
static void restored_copy_does_not_reuse_lost_ids(void **state)
{
	struct fixture *fx = *state;
	char copy[160], sql[256];
	int64_t from = -1, top = -1;
	struct audit_verify v;
	sqlite3 *db;

	assert_int_equal(audit_ids_restore(fx->a, fx->path, &from, &top, fx->err, sizeof fx->err),
	                 0);
	assert_int_equal(from, 0); /* a new database: nothing known, nothing lost */
	record(fx, NULL, "hd1", "unlock", "alice", "ok"); /* 1, 2 */
	snprintf(copy, sizeof copy, "%s/copy.db", fx->dir);
	snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
	db = raw_open(fx);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	record(fx, NULL, "hd1", "unlock", "bob", "ok");   /* 3, 4 */
	record(fx, NULL, "hd1", "unlock", "carol", "ok"); /* 5, 6 */
	audit_close(fx->a);
	assert_int_equal(rename(copy, fx->path), 0);
	assert_int_equal(audit_open(fx->path, &fx->a, fx->err, sizeof fx->err), 0);
	assert_int_equal(audit_ids_restore(fx->a, fx->path, &from, &top, fx->err, sizeof fx->err),
	                 0);
	assert_int_equal(from, 3);
	assert_int_equal(top, 6);
	/* 7 and 8 say so; the next record is 9, and the chain verifies. */
	assert_int_equal(record(fx, NULL, "hd1", "unlock", "dave", "ok"), 9);
	verify(fx, NULL, &v);
	if (!v.ok)
		fprintf(stderr, "verify: %lld %s\n", (long long)v.first_bad, v.reason);
	assert_true(v.ok);
	db = raw_open(fx);
	assert_int_equal(raw_int(db,
	                         "SELECT count(*) FROM records WHERE id = 8 AND result = 'failed'"
	                         " AND attempt_id = 7 AND detail LIKE 'records 3 to 6 are not in "
	                         "this database%'"),
	                 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM records WHERE id = 7 AND action = "
	                             "'backup' AND operator = 'ldapdeskd'"),
	                 1);
	sqlite3_close(db);
	assert_int_equal(audit_ids_restore(fx->a, fx->path, &from, &top, fx->err, sizeof fx->err),
	                 0);
	assert_int_equal(from, 0);
}

/* Due grants: the target/permission pairs, in the order given. */
static void due_collect(void *arg, const struct audit_due *d)
{
	char *buf = arg;
	size_t used = strlen(buf);

	snprintf(buf + used, 256 - used, "%s%s/%s", used ? "," : "", d->target, d->permission);
}

static void due_grant(struct fixture *fx, const char *target, const char *permission)
{
	struct audit_event ev = {.requested_at = "2020-01-01T00:00:00.000Z",
	                         .operator= "adm1",
	                         .action = "grant",
	                         .target = target,
	                         .permission = permission};

	assert_int_equal(audit_record(fx->a, &ev, "ok", "expires 2020-01-02T00:00:00Z", NULL,
	                              fx->err, sizeof fx->err),
	                 0);
}

/* Grants of a permission no longer configured stay due (their expiry is
 * recorded failed): the configured ones come first, so that the 500 places
 * of a tick are never all taken by them. */
static void due_grants_of_configured_permissions_come_first(void **state)
{
	struct fixture *fx = *state;
	char got[256] = "";

	due_grant(fx, "alice", "gone");
	due_grant(fx, "carol", "gone");
	due_grant(fx, "bob", "kept");
	assert_int_equal(audit_due_grants(fx->a, "2026-01-01T00:00:00Z", "[\"kept\"]", due_collect,
	                                  got, fx->err, sizeof fx->err),
	                 0);
	assert_string_equal(got, "bob/kept,alice/gone,carol/gone");
	got[0] = '\0';
	assert_int_equal(audit_due_grants(fx->a, "2026-01-01T00:00:00Z", NULL, due_collect, got,
	                                  fx->err, sizeof fx->err),
	                 0);
	assert_string_equal(got, "alice/gone,carol/gone,bob/kept");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(begin_then_finish_gives_one_row_with_result),
	    T(query_row_keys_follow_header_order),
	    T(pending_row_until_finished),
	    T(pending_callback_may_finish_attempts),
	    T(finish_refuses_unknown_or_finished_attempt),
	    T(batch_pair_is_stored_whole_or_not_at_all),
	    T(savepoint_undoes_a_request_with_its_records),
	    T(refused_record_is_attempt_and_outcome),
	    T(filters_by_user_operator_action_result_and_time),
	    T(pagination_next_and_after),
	    T(page_limit_defaults_and_caps),
	    T(no_sql_injection_through_filter_values),
	    T(utf8_chinese_fields_roundtrip),
	    T(canonical_hash_matches_independent_recomputation),
	    T(canonical_hash_matches_jansson_for_any_text),
	    T(verify_ok_on_fresh_log_and_head_format),
	    T(verify_detects_update_behind_back),
	    T(verify_detects_delete),
	    T(verify_detects_inserted_row),
	    T(verify_detects_outcome_for_missing_attempt),
	    T(verify_detects_second_outcome_for_one_attempt),
	    T(verify_since_head_detects_truncation),
	    T(verify_since_head_malformed_is_an_error),
	    T(append_only_triggers_refuse_update),
	    T(reopen_continues_chain),
	    T(last_grant_is_undone_by_later_ok_revoke),
	    T(errors_never_contain_field_values),
	    T(open_error_names_the_file),
	    T(now_is_utc_with_milliseconds),
	    T(old_full_indexes_become_partial_and_are_used),
	    T(old_requests_table_gets_target_entry),
	    T(seals_name_records_ldapdeskd_did_not_write),
	    T(seals_name_a_cut_end),
	    T(seals_follow_the_key_each_start_declares),
	    T(a_forged_declaration_does_not_cover_records),
	    T(restored_copy_does_not_reuse_lost_ids),
	    T(due_grants_of_configured_permissions_come_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
