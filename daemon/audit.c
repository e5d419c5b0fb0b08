/*
 * audit.c — the append-only, hash-chained audit store on SQLite.
 * Owns the database file, its schema, the chain and every query over it.
 *
 * Canonical JSON of a record (what its hash covers, after prev_hash):
 * every column but hash, as stored, keys sorted, compact, UTF-8, i.e.
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS). INTEGER columns are JSON
 * integers, TEXT columns strings, NULL columns null. So imported is 0 or 1
 * on an attempt and null on an outcome; request_id is null when absent (an
 * event's 0); an outcome has null in every event field. Control characters
 * other than \b \f \n \r \t are escaped \u00XX with upper-case hex (jansson);
 * every other character, including DEL and U+2028, is written as is.
 *
 * The tail (next id, previous hash) is not cached: it is re-read inside each
 * write transaction. Both reads are single b-tree descents under the write
 * lock, and the chain stays right even if another process appended.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "fds.h"
#include "hwm.h"
#include "seal.h"
#include "ldapdesk/ascii.h"
#include "ldapdesk/wire.h"

/* 2: sealed stores (seal.h). A store of version 1 is read and raised to 2
 * at the start; an ldapdeskd that reads only 1 then refuses the store
 * rather than write records without seals into it. */
#define SCHEMA_VERSION     "2"
#define SCHEMA_VERSION_OLD "1"

/* The detail of the record that declares sealing under a key from here on
 * (audit_seal_declare), which the verify walk reads (walk_seal_declared). */
#define SEALS_PREFIX "audit seals from here on: key "
#define SEALS_FMT    SEALS_PREFIX "%16[0-9a-f]"
#define SEALS_TEXT   SEALS_PREFIX "%s (%s)"
#define HASH_HEX     64
#define ZERO_HASH    "0000000000000000000000000000000000000000000000000000000000000000"
#define TIME_LEN     24

/* Column positions in records, in table order; the canonical JSON takes
 * all of them but COL_HASH. */
enum {
	COL_ID,
	COL_KIND,
	COL_ATTEMPT_ID,
	COL_AT,
	COL_OPERATOR,
	COL_OPERATOR_DN,
	COL_CLIENT_ADDR,
	COL_ACTION,
	COL_TARGET,
	COL_TARGET_DN,
	COL_PERMISSION,
	COL_CATEGORY,
	COL_TICKET,
	COL_REQUESTER,
	COL_DEPARTMENT,
	COL_CHANNEL,
	COL_DESCRIPTION,
	COL_NOTE,
	COL_RESULT,
	COL_DETAIL,
	COL_REQUEST_ID,
	COL_IMPORTED,
	COL_PREV_HASH,
	COL_HASH,
	NCOLS
};

static const char *const col_names[NCOLS] = {
    "id",          "kind",      "attempt_id", "at",        "operator",    "operator_dn",
    "client_addr", "action",    "target",     "target_dn", "permission",  "category",
    "ticket",      "requester", "department", "channel",   "description", "note",
    "result",      "detail",    "request_id", "imported",  "prev_hash",   "hash",
};

/* Row keys of audit_query, in the order audit.h promises; ROW_SELECT
 * yields the columns in the same order. */
#define NROWKEYS     22
#define ROW_IMPORTED 20
static const char *const row_keys[NROWKEYS] = {
    "id",        "requested_at", "finished_at", "operator",    "operator_dn", "client_addr",
    "action",    "target",       "target_dn",   "permission",  "category",    "ticket",
    "requester", "department",   "channel",     "description", "note",        "result",
    "detail",    "request_id",   "imported",    "hash",
};

const char *const *audit_row_keys(size_t *n)
{
	*n = NROWKEYS;
	return row_keys;
}

#define ROW_SELECT                                                                                 \
	"SELECT a.id, a.at, o.at, a.operator, a.operator_dn, a.client_addr, a.action, a.target,"   \
	" a.target_dn, a.permission, a.category, a.ticket, a.requester, a.department, a.channel,"  \
	" a.description, a.note, COALESCE(o.result, 'pending'), CASE WHEN o.id IS NULL"            \
	" THEN a.detail ELSE o.detail END,"                                                        \
	" a.request_id,"                                                                           \
	" a.imported, a.hash FROM records a"                                                       \
	" LEFT JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id"                       \
	" WHERE a.kind = 'attempt'"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '" SCHEMA_VERSION "');"
    "CREATE TABLE IF NOT EXISTS records ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL CHECK (kind IN ('attempt', 'outcome')),"
    " attempt_id INTEGER, at TEXT NOT NULL,"
    " operator TEXT, operator_dn TEXT, client_addr TEXT, action TEXT, target TEXT,"
    " target_dn TEXT, permission TEXT, category TEXT, ticket TEXT, requester TEXT,"
    " department TEXT, channel TEXT, description TEXT, note TEXT, result TEXT, detail TEXT,"
    " request_id INTEGER, imported INTEGER,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
    " CHECK ((kind = 'attempt' AND attempt_id IS NULL AND action IS NOT NULL"
    " AND result IS NULL)"
    " OR (kind = 'outcome' AND attempt_id IS NOT NULL AND result IS NOT NULL)));"
    "CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    /* One row per transaction ldapdeskd committed (seal.h); append-only too. */
    "CREATE TABLE IF NOT EXISTS seals (last_id INTEGER PRIMARY KEY,"
    " first_id INTEGER NOT NULL, key_id TEXT NOT NULL, mac TEXT NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS seals_no_update BEFORE UPDATE ON seals"
    " BEGIN SELECT RAISE(ABORT, 'audit seals are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS seals_no_delete BEFORE DELETE ON seals"
    " BEGIN SELECT RAISE(ABORT, 'audit seals are append-only'); END;"
    /* Partial: outcome records (NULL there) stay out of these three, which
     * makes writing one a third of the index work. "col = ?" and "col IN"
     * imply "col IS NOT NULL", so every query still uses them. */
    "CREATE INDEX IF NOT EXISTS records_target ON records (target, id)"
    " WHERE target IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS records_operator ON records (operator, id)"
    " WHERE operator IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS records_at ON records (at);"
    /* An import's look for the live event a report row shows: by time among
     * the live attempts only. Through records_at it walked every row the
     * import had stored at that minute, quadratic for rows sharing one. */
    "CREATE INDEX IF NOT EXISTS records_live_at ON records (at)"
    " WHERE kind = 'attempt' AND imported = 0;"
    /* ... and for an earlier import of the same row: time and description
     * (rows of one day, or one minute, share the time). */
    "CREATE INDEX IF NOT EXISTS records_imported_at ON records (at, description)"
    " WHERE kind = 'attempt' AND imported = 1;"
    "CREATE INDEX IF NOT EXISTS records_action ON records (action, id)"
    " WHERE action IS NOT NULL;"
    /* Closing a request finds the grant attempt that opened it. */
    "CREATE INDEX IF NOT EXISTS records_request ON records (request_id)"
    " WHERE request_id IS NOT NULL;"
    /* Unique: a second outcome for one attempt is refused by the database
     * itself, not only by audit_finish. */
    "CREATE UNIQUE INDEX IF NOT EXISTS records_outcome ON records (attempt_id)"
    " WHERE kind = 'outcome';"
    /* Four-eyes requests: workflow state, not evidence. Every step is also an
     * audit record carrying the request id, which is what auditors rely on. */
    "CREATE TABLE IF NOT EXISTS requests ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,"
    " operator TEXT NOT NULL, target TEXT NOT NULL, permission TEXT NOT NULL,"
    " days INTEGER, until TEXT, status TEXT NOT NULL DEFAULT 'pending',"
    " decided_at TEXT, decided_by TEXT, reason TEXT, target_entry TEXT);";

static const char insert_sql[] =
    "INSERT INTO records (id, kind, attempt_id, at, operator, operator_dn, client_addr,"
    " action, target, target_dn, permission, category, ticket, requester, department,"
    " channel, description, note, result, detail, request_id, imported, prev_hash, hash)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

/* sqlite_sequence can be ahead of max(id) only if the tail was deleted
 * behind our back; taking the larger keeps ids unique and verify names the
 * gap. */
static const char tail_sql[] =
    "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0),"
    " COALESCE((SELECT max(id) FROM records), 0)),"
    " (SELECT hash FROM records ORDER BY id DESC LIMIT 1)";

static const char open_attempt_sql[] =
    "SELECT (SELECT kind FROM records WHERE id = ?1),"
    " (SELECT count(*) FROM records WHERE kind = 'outcome' AND attempt_id = ?1)";

static const char walk_sql[] =
    "SELECT id, kind, attempt_id, at, operator, operator_dn, client_addr, action, target,"
    " target_dn, permission, category, ticket, requester, department, channel, description,"
    " note, result, detail, request_id, imported, prev_hash, hash FROM records ORDER BY id";

static const char link_sql[] =
    "SELECT (SELECT kind FROM records WHERE id = ?1),"
    " (SELECT count(*) FROM records WHERE kind = 'outcome' AND attempt_id = ?1 AND id < ?2)";

/* The grant in force for (target, permission): the newest ok or unchanged
 * grant that no later revoke or expiry undid. */
/* Walks back the backup attempts only (records_action), newest first; a
 * declaration of the seal key (audit_seal_declare) is a backup record too,
 * but no backup. */
static const char backup_sql[] =
    "SELECT o.detail FROM records a"
    " JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id AND o.result = 'ok'"
    " WHERE a.action = 'backup' AND a.kind = 'attempt'"
    " AND COALESCE(a.detail, '') NOT LIKE '" SEALS_PREFIX "%'"
    " ORDER BY a.id DESC LIMIT 1";

static const char grant_sql[] =
    "SELECT a.operator, o.detail FROM records a"
    " JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id"
    "  AND o.result IN ('ok', 'unchanged')"
    " WHERE a.kind = 'attempt' AND a.action IN ('grant', 'approve') AND a.target = lower(?1)"
    " AND NOT (a.action = 'grant' AND a.request_id IS NOT NULL)"
    " AND a.permission = ?2 AND NOT EXISTS (SELECT 1 FROM records ra"
    "  JOIN records ro ON ro.kind = 'outcome' AND ro.attempt_id = ra.id"
    "   AND ro.result IN ('ok', 'unchanged')"
    "  WHERE ra.kind = 'attempt' AND ra.action IN ('revoke', 'expire') AND ra.target = lower(?1)"
    "  AND ra.permission = ?2 AND ro.id > o.id)"
    " ORDER BY o.id DESC LIMIT 1";

/* The disable in force: the newest done (ok) for target that no enable,
 * and no delete or create of the uid, done since undid. Its attempt's
 * description is the reason given. */
static const char disable_sql[] =
    "SELECT a.operator, o.at, a.description FROM records a"
    " JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id AND o.result = 'ok'"
    " WHERE a.kind = 'attempt' AND a.action = 'disable' AND a.target = lower(?1)"
    " AND NOT EXISTS (SELECT 1 FROM records ra"
    "  JOIN records ro ON ro.kind = 'outcome' AND ro.attempt_id = ra.id AND ro.result = 'ok'"
    "  WHERE ra.kind = 'attempt' AND ra.action IN ('enable', 'create', 'delete')"
    "  AND ra.target = lower(?1) AND ro.id > o.id)"
    " ORDER BY o.id DESC LIMIT 1";

/* Grants whose recorded expiry ("expires YYYY-MM-DDTHH:MM:SSZ" in the outcome)
 * has passed and that nothing later (grant, revoke, expiry) superseded. The
 * permissions of ?2 (a JSON array: the configured ones) come first: due
 * grants of a permission no longer configured stay due, and must not fill
 * the 500 places of every tick. */
static const char due_sql[] =
    "SELECT a.target, a.permission, substr(o.detail, instr(o.detail, 'expires ') + 8, 20),"
    " a.target_dn, a.request_id FROM records a"
    " JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id"
    "  AND o.result IN ('ok', 'unchanged')"
    " WHERE a.kind = 'attempt' AND a.action IN ('grant', 'approve')"
    " AND NOT (a.action = 'grant' AND a.request_id IS NOT NULL)"
    " AND instr(o.detail, 'expires ') > 0"
    " AND substr(o.detail, instr(o.detail, 'expires ') + 8, 20) <= ?1"
    " AND NOT EXISTS (SELECT 1 FROM records ra"
    "  JOIN records ro ON ro.kind = 'outcome' AND ro.attempt_id = ra.id"
    "   AND ro.result IN ('ok', 'unchanged')"
    "  WHERE ra.kind = 'attempt' AND ra.action IN ('grant', 'approve', 'revoke', 'expire')"
    "  AND NOT (ra.action = 'grant' AND ra.request_id IS NOT NULL)"
    "  AND ra.target = a.target AND ra.permission = a.permission AND ro.id > o.id)"
    " ORDER BY a.permission NOT IN (SELECT value FROM json_each(?2)), o.id LIMIT 500";

struct audit {
	sqlite3 *db;
	sqlite3_stmt *insert; /* kept prepared: every append uses them */
	sqlite3_stmt *tail;
	sqlite3_stmt *open_check;
	sqlite3_stmt *begin;  /* BEGIN IMMEDIATE and COMMIT, prepared on first use: */
	sqlite3_stmt *commit; /* each transaction runs both (exec_kept) */
	/* SHA-256, fetched once: EVP_sha256() in EVP_DigestInit_ex fetched the
	 * algorithm from the provider again for every record hashed. */
	EVP_MD *sha256;
	EVP_MD_CTX *md_ctx;
	sqlite3_stmt *dup_check;   /* audit_find_imported's, prepared on first use */
	sqlite3_stmt *live_check;  /* audit_find_live's, likewise */
	struct hwm *hwm;           /* NULL: not kept (ENOMEM) */
	struct audit_guard *guard; /* shared with the daemon's other connections, or NULL */
	int64_t top;               /* the highest id appended, noted in hwm once committed */
	int64_t committed;         /* top as of the last commit: put back by a rollback */
	int64_t txn_last;          /* the last record this transaction appended, 0: none */
	int64_t txn_first;         /* and the first, 0: none */
	bool sealing;              /* audit_seal: each transaction stores a seal */
	struct seal_key seal;
	sqlite3_stmt *seal_ins; /* prepared on the first seal */
	/* Inside audit_batch_begin/commit the write lock is held throughout, so
	 * the tail read once stays right: cached here (next_id 0 = not read). */
	int64_t batch_next;
	/* The files this connection writes, as opened: one removed or replaced
	 * while we run would take every record after with it (files_check). */
	char *path;
	struct file_id {
		dev_t dev;
		ino_t ino; /* 0: not seen yet (a WAL made by the first write) */
	} files[3];        /* the database, its -wal and -shm */
	atomic_int stop;   /* audit_interrupt: every statement from now on fails */
	int wal_pages;     /* guarded: the WAL's size after the last commit */
	char batch_prev[HASH_HEX + 1];
	char txn_hash[HASH_HEX + 1];
	bool batch; /* see batch_next */
	bool gone;  /* files_check failed once: stays failed */
	bool busy;  /* the last txn_begin found another writer's lock */
};

/*
 * The guard: the last record the daemon's connections (the loop's, the
 * writer's, the jobs') committed, kept in memory. A hash chain alone cannot
 * tell a record added at its end with a correct hash, or the end cut off,
 * from the daemon's own work; the daemon can, as long as it runs. Each write
 * transaction compares the store's tail with the guard before it appends; a
 * commit moves the guard under its mutex, held across the COMMIT so that the
 * next writer (which waits for the write lock meanwhile) never sees the new
 * tail before the guard does.
 */
struct audit_guard {
	pthread_mutex_t mu;
	atomic_int refs;
	int64_t id;              /* the tail ldapdeskd left: its id (0: empty) */
	char hash[HASH_HEX + 1]; /* and hash */
	char why[320];           /* once the store was found changed: every write refused */
	/* The seal key of the connection that started the guard, for those
	 * that join it (set before, never changed: read without the mutex). */
	bool sealing;
	struct seal_key seal;
};

/* The detail of the record that declares lost ids (audit_ids_restore),
 * which verify accepts as the one explained gap (gap_declared). */
#define LOST_FMT "records %lld to %lld are not in this database"

/* SQLite's default auto-checkpoint threshold, kept for guarded connections. */
#define WAL_CHECKPOINT_PAGES 1000

/* One column value; type is SQLITE_NULL, SQLITE_INTEGER or SQLITE_TEXT. */
struct value {
	int type;
	int64_t i;
	const char *s;
	size_t len;
};

static int db_fail(struct audit *a, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "audit: %s: %s", what, sqlite3_errmsg(a->db));
	return -1;
}

static void set_text(struct value *v, const char *s)
{
	v->type = s ? SQLITE_TEXT : SQLITE_NULL;
	v->s = s;
	v->len = s ? strlen(s) : 0;
}

static void set_int(struct value *v, int64_t i)
{
	v->type = SQLITE_INTEGER;
	v->i = i;
}

void audit_now(char *buf, size_t len)
{
	/* Per thread (the loop and the writer call it): the date changes once a
	 * second, and gmtime_r, strftime and snprintf cost ~3,000 instructions
	 * a call, three calls a request. */
	static _Thread_local time_t sec = -1;
	static _Thread_local char date[20];
	static _Thread_local size_t date_len;
	struct timespec ts;
	struct tm tm;
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != sec) {
		gmtime_r(&ts.tv_sec, &tm);
		date_len = strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
		sec = ts.tv_sec;
	}
	ms = ts.tv_nsec / 1000000;
	if (len < TIME_LEN + 1 || date_len != TIME_LEN - 5) {
		snprintf(buf, len, "%s.%03ldZ", date, ms); /* cut short, as before */
		return;
	}
	memcpy(buf, date, TIME_LEN - 5);
	buf[TIME_LEN - 5] = '.';
	buf[TIME_LEN - 4] = (char)('0' + ms / 100);
	buf[TIME_LEN - 3] = (char)('0' + ms / 10 % 10);
	buf[TIME_LEN - 2] = (char)('0' + ms % 10);
	buf[TIME_LEN - 1] = 'Z';
	buf[TIME_LEN] = '\0';
}

/* from/to compare times as strings, which is only right if every stored
 * time has exactly this shape. */
static bool valid_time(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (strlen(s) != TIME_LEN)
		return false;
	for (size_t i = 0; i < TIME_LEN; i++) {
		bool digit = s[i] >= '0' && s[i] <= '9';
		if (shape[i] == 'd' ? !digit : s[i] != shape[i])
			return false;
	}
	return true;
}

static bool valid_result(const char *r)
{
	static const char *const results[] = {"ok", "unchanged", "denied", "failed"};

	for (size_t i = 0; r && i < sizeof results / sizeof results[0]; i++)
		if (strcmp(r, results[i]) == 0)
			return true;
	return false;
}

/* ---- canonical JSON and hash ---- */

/* Column numbers in the order of their names (strcmp): the canonical key
 * order, the one JSON_SORT_KEYS gives. Filled once (canon_order_init). */
static int canon_order[COL_HASH];
static pthread_once_t canon_once = PTHREAD_ONCE_INIT;

static int canon_cmp(const void *a, const void *b)
{
	return strcmp(col_names[*(const int *)a], col_names[*(const int *)b]);
}

static void canon_order_init(void)
{
	for (int c = 0; c < COL_HASH; c++)
		canon_order[c] = c;
	qsort(canon_order, COL_HASH, sizeof canon_order[0], canon_cmp);
}

/* True if jansson would write s between quotes byte for byte: printable
 * ASCII but '"' and '\'. Pure ASCII is valid UTF-8, so nothing to check. */
static bool json_verbatim(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

/* Appends the JSON of one value at buf + *n (room is reserved by the caller:
 * 6 bytes per byte of text, \u00XX at worst, plus quotes). Texts that are not
 * verbatim (escapes, UTF-8) are encoded by jansson. Return: 0, or -1 if the
 * text is not valid UTF-8 (or memory ran out). */
static int value_append(const struct value *v, char *buf, size_t cap, size_t *n)
{
	json_t *j;
	size_t m;
	int w;

	if (v->type == SQLITE_INTEGER) {
		w = snprintf(buf + *n, cap - *n, "%" PRId64, v->i);
		*n += w > 0 ? (size_t)w : 0;
	} else if (v->type != SQLITE_TEXT) {
		memcpy(buf + *n, "null", 5); /* with its NUL: room for 24 is reserved */
		*n += 4;
	} else if (v->s == NULL) {
		return -1; /* SQLite out of memory reading it back: as jansson refused it */
	} else if (json_verbatim(v->s, v->len)) {
		buf[(*n)++] = '"';
		memcpy(buf + *n, v->s, v->len);
		*n += v->len;
		buf[(*n)++] = '"';
	} else {
		j = json_stringn(v->s, v->len); /* NULL if not valid UTF-8 */
		m = j != NULL ? json_dumpb(j, buf + *n, cap - *n, JSON_ENCODE_ANY) : 0;
		json_decref(j);
		if (m == 0 || m > cap - *n)
			return -1;
		*n += m;
	}
	return 0;
}

/*
 * The canonical JSON of v: what json_dumps(JSON_COMPACT | JSON_SORT_KEYS)
 * writes for an object of every column but hash (test_audit checks it
 * byte for byte). Written key by key because building and sorting that
 * object cost 10-14 us a record, most of the writer thread's hashing; the
 * keys are fixed names and most values need no escaping.
 * Return: malloc'd string, or NULL if a text is not valid UTF-8 (or memory
 * ran out).
 */
static char *canonical_json(const struct value v[NCOLS])
{
	size_t cap = 2, n = 0;
	char *buf;

	pthread_once(&canon_once, canon_order_init);
	for (int c = 0; c < COL_HASH; c++)
		cap +=
		    strlen(col_names[c]) + 4 + (v[c].type == SQLITE_TEXT ? 6 * v[c].len + 2 : 24);
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	for (int k = 0; k < COL_HASH; k++) {
		const char *key = col_names[canon_order[k]];
		size_t kl = strlen(key);

		buf[n++] = k == 0 ? '{' : ',';
		buf[n++] = '"';
		memcpy(buf + n, key, kl);
		n += kl;
		buf[n++] = '"';
		buf[n++] = ':';
		if (value_append(&v[canon_order[k]], buf, cap, &n) == -1) {
			free(buf);
			return NULL;
		}
	}
	buf[n++] = '}';
	buf[n] = '\0';
	return buf;
}

/* SHA-256 of prev then json, as lower-case hex, with a's digest: fetched
 * and its context made at the first use (a owns both until audit_close or
 * digest_free; a failed fetch is tried again next time). Return: 0, or -1
 * if OpenSSL failed. */
static int sha256_hex(struct audit *a, const char *prev, const char *json, char hex[HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok;

	if (a->sha256 == NULL)
		a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (a->md_ctx == NULL)
		a->md_ctx = EVP_MD_CTX_new();
	ok = a->sha256 != NULL && a->md_ctx != NULL &&
	     EVP_DigestInit_ex2(a->md_ctx, a->sha256, NULL) &&
	     EVP_DigestUpdate(a->md_ctx, prev, strlen(prev)) &&
	     EVP_DigestUpdate(a->md_ctx, json, strlen(json)) &&
	     EVP_DigestFinal_ex(a->md_ctx, md, &mdlen);
	if (!ok || mdlen * 2 != HASH_HEX)
		return -1;
	ascii_hex(md, mdlen, hex);
	return 0;
}

/* Hash of the record in v, whose prev_hash is already set, with a's digest.
 * Return: 0, or -1 if a text is not valid UTF-8 or hashing failed. */
static int record_hash(struct audit *a, const struct value v[NCOLS], char hex[HASH_HEX + 1])
{
	char *json = canonical_json(v);
	int rc = json ? sha256_hex(a, v[COL_PREV_HASH].s, json, hex) : -1;

	free(json);
	return rc;
}

/* Frees a's digest (sha256_hex); a may be used again after. */
static void digest_free(struct audit *a)
{
	EVP_MD_CTX_free(a->md_ctx);
	EVP_MD_free(a->sha256);
	a->md_ctx = NULL;
	a->sha256 = NULL;
}

/* ---- open and close ---- */

static bool files_same(struct audit *a);

static int open_fail(sqlite3 *db, const char *path, const char *what, char *err, size_t errlen)
{
	int code = db != NULL ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
	const char *why = code == SQLITE_CANTOPEN ? fds_hint() : "";

	/* A full disk may read as an I/O error too (a WAL that cannot grow).
	 * SQLite makes PATH-wal and PATH-shm beside the file: a database the
	 * daemon may write, in a directory it may not, fails here too — unless
	 * the daemon is simply out of descriptors (why). */
	if (why[0] != '\0')
		;
	else if (code == SQLITE_FULL || code == SQLITE_IOERR)
		why = " (free space on the file system that holds it, or check it for errors)";
	else if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM)
		why = " (the daemon's user must be able to write the file and its directory, where "
		      "SQLite keeps its -wal and -shm files)";
	snprintf(err, errlen, "%s: %s: %s%s", path, what, db ? sqlite3_errmsg(db) : "out of memory",
	         why);
	sqlite3_close(db);
	return -1;
}

static int check_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);
		ok = mode && strcmp(mode, "wal") == 0;
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

/* 0 when the store's schema version is ours; else -1 with what was found. */
static int check_version(sqlite3 *db, char *found, size_t len)
{
	sqlite3_stmt *st = NULL;
	int ok = 0;

	snprintf(found, len, "none");
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		snprintf(found, len, "\"%.40s\"", v != NULL ? v : "");
		ok = v && (strcmp(v, SCHEMA_VERSION) == 0 || strcmp(v, SCHEMA_VERSION_OLD) == 0);
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

static int prepare_kept(sqlite3 *db, const char *sql, sqlite3_stmt **stp)
{
	return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, stp, NULL);
}

/* Databases made before the indexes were partial get them rebuilt once (in
 * the schema transaction; a few seconds per million records). */
static int migrate_indexes(sqlite3 *db)
{
	static const char *const cols[] = {"target", "operator", "action"};
	char sql[256];
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]) && rc == SQLITE_OK; i++) {
		bool full = false;

		snprintf(
		    sql, sizeof(sql),
		    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'records_%s'",
		    cols[i]);
		if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK)
			break;
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			full = strstr((const char *)sqlite3_column_text(st, 0), "WHERE") == NULL;
		sqlite3_finalize(st);
		if (!full)
			continue;
		snprintf(sql, sizeof(sql),
		         "DROP INDEX records_%s; CREATE INDEX records_%s ON records (%s, id)"
		         " WHERE %s IS NOT NULL",
		         cols[i], cols[i], cols[i], cols[i]);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	return rc == SQLITE_OK ? 0 : -1;
}

/* Requests stored before approve checked the account's identity get the
 * column (empty: such a request is approved without that check). */
static int migrate_requests(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool has;

	if (sqlite3_prepare_v2(db,
	                       "SELECT 1 FROM pragma_table_info('requests')"
	                       " WHERE name = 'target_entry'",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (has)
		return 0;
	return sqlite3_exec(db, "ALTER TABLE requests ADD COLUMN target_entry TEXT", NULL, NULL,
	                    NULL) == SQLITE_OK
	           ? 0
	           : -1;
}

/* schema: make the tables and indexes (at start-up and for the writer).
 * A job's own connection opens a store the start-up made: it must not take
 * the write lock for that (an import holding it would fail a verify). */
static int setup_db(sqlite3 *db, const char *path, bool schema, char *err, size_t errlen)
{
	char found[48];

	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, 5000);
	/* Defensive mode: no writable_schema tricks through this connection. */
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if (check_wal(db) == -1)
		return open_fail(db, path, "cannot use WAL journal", err, errlen);
	if (sqlite3_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return open_fail(db, path, "pragmas", err, errlen);
	if (schema && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return open_fail(db, path, "begin schema", err, errlen);
	if (schema &&
	    (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
	     migrate_indexes(db) == -1 || migrate_requests(db) == -1 ||
	     sqlite3_exec(db,
	                  "UPDATE meta SET value = '" SCHEMA_VERSION
	                  "' WHERE key = 'schema_version' AND value = '" SCHEMA_VERSION_OLD "'",
	                  NULL, NULL, NULL) != SQLITE_OK ||
	     sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)) {
		snprintf(err, errlen, "%s: schema: %s", path, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(db);
		return -1;
	}
	if (check_version(db, found, sizeof(found)) == -1) {
		snprintf(err, errlen,
		         "%s: schema version %s, this ldapdeskd reads %s: a store of another "
		         "ldapdesk version, or an edited one (run 'ldapdesk verify' with the "
		         "version that made it; restore from a backup if it was tampered with)",
		         path, found, SCHEMA_VERSION);
		sqlite3_close(db);
		return -1;
	}
	return 0;
}

static int open_flags(const char *path, int flags, bool schema, struct audit **ap, char *err,
                      size_t errlen)
{
	sqlite3 *db = NULL;
	struct audit *a;
	struct stat st;

	/* Without SQLITE_OPEN_CREATE SQLite says only "unable to open". */
	if ((flags & SQLITE_OPEN_CREATE) == 0 && stat(path, &st) == -1) {
		snprintf(err, errlen,
		         "%s: %s (removed while ldapdeskd ran? put it back and restart ldapdeskd)",
		         path, strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK)
		return open_fail(db, path, "open", err, errlen);
	if (setup_db(db, path, schema, err, errlen) == -1)
		return -1;
	a = calloc(1, sizeof *a);
	if (a == NULL || (a->path = strdup(path)) == NULL) {
		free(a);
		return open_fail(db, path, "out of memory", err, errlen);
	}
	a->db = db;
	files_same(a); /* notes the files as opened */
	a->hwm = hwm_open(path);
	if (prepare_kept(db, insert_sql, &a->insert) != SQLITE_OK ||
	    prepare_kept(db, tail_sql, &a->tail) != SQLITE_OK ||
	    prepare_kept(db, open_attempt_sql, &a->open_check) != SQLITE_OK) {
		snprintf(err, errlen, "%s: prepare: %s", path, sqlite3_errmsg(db));
		audit_close(a);
		return -1;
	}
	*ap = a;
	return 0;
}

/* SQLite's memory statistics take one process-wide mutex on every
 * allocation and free, shared by the loop's, the writer's and the jobs'
 * connections; the daemon never reads them (no heap limit, no
 * sqlite3_status). With audit_open_single, an unlock's mutex calls in
 * SQLite fell from ~147 to ~2 (callgrind), its instructions by 4.6 %. */
int audit_library_init(void)
{
	return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK ? 0 : -1;
}

int audit_open(const char *path, struct audit **ap, char *err, size_t errlen)
{
	return open_flags(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, true, ap, err, errlen);
}

/* SQLite's serialized mode locks the connection, and each B-tree it
 * enters, around every call: useless on a connection no two threads share. */
int audit_open_single(const char *path, struct audit **ap, char *err, size_t errlen)
{
	return open_flags(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                  true, ap, err, errlen);
}

int audit_open_existing(const char *path, struct audit **ap, char *err, size_t errlen)
{
	return open_flags(path, SQLITE_OPEN_READWRITE, false, ap, err, errlen);
}

/* SQLite's progress handler: non-zero interrupts the statement. It also
 * catches statements started between audit_interrupt's sqlite3_interrupt
 * and the work's next look, which sqlite3_interrupt alone would miss. */
static int stop_requested(void *arg)
{
	const struct audit *a = arg;

	return atomic_load(&a->stop);
}

int audit_check_header(const char *path, char *err, size_t errlen)
{
	static const char magic[16] = "SQLite format 3";
	char head[16];
	struct stat st;
	FILE *fp;
	bool ok;

	if (stat(path, &st) == -1 || st.st_size == 0)
		return 0;
	fp = fopen(path, "rb");
	ok = fp != NULL && fread(head, 1, sizeof(head), fp) == sizeof(head) &&
	     memcmp(head, magic, sizeof(magic)) == 0;
	if (fp != NULL)
		fclose(fp);
	if (ok)
		return 0;
	snprintf(err, errlen, "%s is not an SQLite database (not an audit store made by ldapdeskd)",
	         path);
	return -1;
}

void audit_stoppable(struct audit *a)
{
	sqlite3_progress_handler(a->db, 1000, stop_requested, a);
}

void audit_interrupt(struct audit *a)
{
	atomic_store(&a->stop, 1);
	sqlite3_interrupt(a->db);
}

bool audit_stop_asked(struct audit *a)
{
	return atomic_load(&a->stop) != 0;
}

bool audit_resume(struct audit *a)
{
	return atomic_exchange(&a->stop, 0) != 0;
}

void audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->insert);
	sqlite3_finalize(a->tail);
	sqlite3_finalize(a->open_check);
	sqlite3_finalize(a->begin);
	sqlite3_finalize(a->commit);
	digest_free(a);
	sqlite3_finalize(a->dup_check);
	sqlite3_finalize(a->live_check);
	sqlite3_finalize(a->seal_ins);
	OPENSSL_cleanse(&a->seal, sizeof a->seal);
	sqlite3_close(a->db);
	hwm_free(a->hwm);
	audit_guard_drop(a->guard);
	free(a->path);
	free(a);
}

/* ---- writing ---- */

/* Runs sql, which returns no rows, kept prepared in *stp (BEGIN and COMMIT
 * run once per transaction: preparing them each time was ~4 % of the
 * writer's work). Return: SQLite's code, SQLITE_OK when done; the error
 * stays on a->db for db_fail. */
static int exec_kept(struct audit *a, sqlite3_stmt **stp, const char *sql)
{
	int rc = *stp != NULL ? SQLITE_OK : prepare_kept(a->db, sql, stp);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(*stp);
	sqlite3_reset(*stp);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int txn_begin(struct audit *a, char *err, size_t errlen)
{
	int rc;

	a->busy = false;
	a->txn_last = 0;
	a->txn_first = 0;
	if ((rc = exec_kept(a, &a->begin, "BEGIN IMMEDIATE")) == SQLITE_OK)
		return 0;
	/* SQLite's own "database is locked" reads like damage; it is another
	 * writer (an import storing its rows) holding the lock past the wait. */
	if ((rc & 0xff) == SQLITE_BUSY) {
		a->busy = true;
		snprintf(err, errlen,
		         "audit: the database is busy (another writer, such as an import being "
		         "stored, holds it): try again when it ends");
		return -1;
	}
	return db_fail(a, "begin", err, errlen);
}

static const char *const file_suffix[3] = {"", "-wal", "-shm"};

/* Notes (when first seen) or checks the identity of each file; false when one
 * that was seen is gone or is another file now. A stat that fails for
 * another reason (EIO, ESTALE, EACCES) proves nothing: errno is then set and
 * the answer is false, but files_check does not hold it against the store. */
static bool files_same(struct audit *a)
{
	char path[4096];
	struct stat st;

	errno = 0;
	for (size_t i = 0; i < sizeof(a->files) / sizeof(a->files[0]); i++) {
		struct file_id *f = &a->files[i];

		snprintf(path, sizeof(path), "%s%s", a->path, file_suffix[i]);
		if (stat(path, &st) == -1) {
			if (errno != ENOENT && errno != ENOTDIR)
				return false;
			errno = 0;
			if (f->ino != 0)
				return false;
		} else if (f->ino == 0) {
			f->dev = st.st_dev;
			f->ino = st.st_ino;
		} else if (f->dev != st.st_dev || f->ino != st.st_ino) {
			return false;
		}
	}
	return true;
}

/*
 * SQLite writes on through the descriptors it holds when the database, its
 * WAL or its shared-memory index is removed or replaced under it: the
 * records would be "stored" where nobody will find them, and lost at the
 * next start, for actions already done. So each commit first checks the
 * files are the ones it opened; once one is not, nothing more is stored
 * (and so nothing is done) until the daemon is restarted on a real store.
 */
static int files_check(struct audit *a, char *err, size_t errlen)
{
	if (a->path == NULL || (!a->gone && files_same(a)))
		return 0;
	if (!a->gone && errno != 0) {
		snprintf(err, errlen, "audit: cannot check that %s is still the database: %s",
		         a->path, strerror(errno));
		return -1; /* this commit only */
	}
	a->gone = true;
	snprintf(err, errlen,
	         "audit: %s (or its -wal or -shm file) was removed or replaced while ldapdeskd "
	         "ran, so nothing more can be recorded: put the database back (doc/auditing.md, "
	         "restoring) and restart ldapdeskd",
	         a->path);
	return -1;
}

static const char seal_sql[] =
    "INSERT INTO seals (last_id, first_id, key_id, mac) VALUES (?1, ?2, ?3, ?4)";

/* In the transaction it seals: the range it appended and its last hash. */
static int txn_seal(struct audit *a, char *err, size_t errlen)
{
	char mac[SEAL_HEX + 1];
	int rc;

	if (!a->sealing || a->txn_last == 0)
		return 0;
	if (seal_mac(&a->seal, a->txn_first, a->txn_last, a->txn_hash, mac) == -1) {
		snprintf(err, errlen, "audit: cannot seal the records (OpenSSL)");
		return -1;
	}
	if (a->seal_ins == NULL && prepare_kept(a->db, seal_sql, &a->seal_ins) != SQLITE_OK)
		return db_fail(a, "prepare seal", err, errlen);
	sqlite3_bind_int64(a->seal_ins, 1, a->txn_last);
	sqlite3_bind_int64(a->seal_ins, 2, a->txn_first);
	sqlite3_bind_text(a->seal_ins, 3, a->seal.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(a->seal_ins, 4, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(a->seal_ins);
	sqlite3_reset(a->seal_ins);
	sqlite3_clear_bindings(a->seal_ins);
	if (rc != SQLITE_DONE)
		return db_fail(a, "store seal", err, errlen);
	return 0;
}

/* Commits if rc is 0, else rolls back (err already says why). */
static int txn_end(struct audit *a, int rc, char *err, size_t errlen)
{
	bool done;

	if (rc == 0)
		rc = txn_seal(a, err, errlen);
	if (rc == 0)
		rc = files_check(a, err, errlen);
	if (a->guard != NULL)
		pthread_mutex_lock(&a->guard->mu);
	done = rc == 0 && exec_kept(a, &a->commit, "COMMIT") == SQLITE_OK;
	if (done && a->guard != NULL && a->txn_last > 0) {
		a->guard->id = a->txn_last;
		memcpy(a->guard->hash, a->txn_hash, sizeof a->guard->hash);
	}
	if (a->guard != NULL)
		pthread_mutex_unlock(&a->guard->mu);
	/* SQLite's own checkpoint would run inside the COMMIT, under the
	 * guard's mutex, and hold up every other writer's first read (the
	 * loop's too) for as long as it copies: here, after it. */
	if (a->guard != NULL && a->wal_pages >= WAL_CHECKPOINT_PAGES) {
		sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		a->wal_pages = 0;
	}
	if (done) {
		hwm_note(a->hwm, a->top); /* after the commit: never ahead of it */
		a->committed = a->top;
		return 0;
	}
	a->top = a->committed;
	if (rc == 0)
		db_fail(a, "commit", err, errlen);
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Under g->mu: the store's tail (last, as read_tail reads it: the highest
 * id given, and the newest record's hash) is not the one ldapdeskd left. */
static void guard_trip(struct audit_guard *g, int64_t last)
{
	char what[120];

	if (last > g->id)
		snprintf(what, sizeof(what), "records after %lld, the last it wrote, were added",
		         (long long)g->id);
	else if (last < g->id)
		snprintf(what, sizeof(what), "records up to %lld, which it wrote, were cut off",
		         (long long)g->id);
	else
		snprintf(what, sizeof(what),
		         "record %lld, the last it wrote, was replaced or removed",
		         (long long)g->id);
	snprintf(g->why, sizeof(g->why),
	         "audit: written behind ldapdeskd's back (%s): nothing more is recorded or done "
	         "until that is looked into: keep a copy of the database, run 'ldapdesk verify', "
	         "restart ldapdeskd",
	         what);
}

/* Inside a write transaction: 0 if the tail is the guard's, else -1 with
 * err (and from then on always). */
static int guard_check(struct audit_guard *g, int64_t last, const char *hash, char *err,
                       size_t errlen)
{
	bool bad;

	pthread_mutex_lock(&g->mu);
	if (g->why[0] == '\0' && (last != g->id || strcmp(hash, g->hash) != 0))
		guard_trip(g, last);
	bad = g->why[0] != '\0';
	if (bad)
		snprintf(err, errlen, "%s", g->why);
	pthread_mutex_unlock(&g->mu);
	return bad ? -1 : 0;
}

/* A guarded connection's WAL hook: notes the size, checkpoints nothing
 * (txn_end does, after the guard's mutex; the hook replaces SQLite's
 * automatic checkpoint, which has the same threshold). */
static int wal_noted(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db;
	(void)name;
	((struct audit *)arg)->wal_pages = pages;
	return SQLITE_OK;
}

static void guard_set(struct audit *a, struct audit_guard *g)
{
	audit_guard_drop(a->guard);
	a->guard = g;
	if (g != NULL && g->sealing) {
		a->sealing = true;
		a->seal = g->seal;
	}
	if (g != NULL)
		sqlite3_wal_hook(a->db, wal_noted, a);
	else
		sqlite3_wal_autocheckpoint(a->db, WAL_CHECKPOINT_PAGES);
}

int audit_guard_start(struct audit *a, char *err, size_t errlen)
{
	struct audit_guard *g = calloc(1, sizeof(*g));
	int rc = g != NULL ? sqlite3_step(a->tail) : SQLITE_NOMEM;

	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(a->tail, 1);

		g->id = sqlite3_column_int64(a->tail, 0);
		snprintf(g->hash, sizeof g->hash, "%s", h ? h : ZERO_HASH);
		g->sealing = a->sealing;
		g->seal = a->seal;
		pthread_mutex_init(&g->mu, NULL);
		atomic_init(&g->refs, 1);
		guard_set(a, g);
	} else {
		free(g);
		snprintf(err, errlen, "audit: read chain tail: %s", sqlite3_errmsg(a->db));
	}
	sqlite3_reset(a->tail);
	return rc == SQLITE_ROW ? 0 : -1;
}

int audit_seal(struct audit *a, const unsigned char key[32])
{
	if (seal_key_init(&a->seal, key) == -1)
		return -1;
	a->sealing = true;
	return 0;
}

struct audit_guard *audit_guard_take(struct audit *a)
{
	if (a->guard != NULL)
		atomic_fetch_add(&a->guard->refs, 1);
	return a->guard;
}

void audit_guard_join(struct audit *a, struct audit_guard *g)
{
	guard_set(a, g);
}

void audit_guard_drop(struct audit_guard *g)
{
	if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&g->mu);
	OPENSSL_cleanse(&g->seal, sizeof g->seal);
	free(g);
}

/* Next id and previous hash, read inside the write transaction. */
static int read_tail(struct audit *a, int64_t *idp, char prev[HASH_HEX + 1], char *err,
                     size_t errlen)
{
	sqlite3_stmt *st = a->tail;
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 1);
		int64_t last = sqlite3_column_int64(st, 0);

		/* Records cut (and the sequence lowered) while we run: ids we
		 * committed are never given again, and verify names the gap. */
		*idp = (last > a->committed ? last : a->committed) + 1;
		snprintf(prev, HASH_HEX + 1, "%s", h ? h : ZERO_HASH);
		/* Once per transaction: a second read finds this one's own appends. */
		if (a->guard != NULL && a->txn_last == 0 &&
		    guard_check(a->guard, last, prev, err, errlen) == -1)
			rc = SQLITE_ABORT;
	} else {
		db_fail(a, "read chain tail", err, errlen);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int bind_values(sqlite3_stmt *st, const struct value v[NCOLS])
{
	int rc = SQLITE_OK;

	for (int c = 0; c < NCOLS && rc == SQLITE_OK; c++) {
		if (v[c].type == SQLITE_INTEGER)
			rc = sqlite3_bind_int64(st, c + 1, v[c].i);
		else if (v[c].type == SQLITE_TEXT)
			rc = sqlite3_bind_text(st, c + 1, v[c].s, (int)v[c].len, SQLITE_STATIC);
		else
			rc = sqlite3_bind_null(st, c + 1);
	}
	return rc;
}

/* Appends the record in v (all but id, prev_hash and hash filled) inside
 * the caller's transaction. */
static int append(struct audit *a, struct value v[NCOLS], int64_t *idp, char *err, size_t errlen)
{
	char prev[HASH_HEX + 1], hash[HASH_HEX + 1];
	int64_t id;
	int rc;

	if (a->batch && a->batch_next > 0) {
		id = a->batch_next;
		memcpy(prev, a->batch_prev, sizeof prev);
	} else if (read_tail(a, &id, prev, err, errlen) == -1) {
		return -1;
	}
	set_int(&v[COL_ID], id);
	set_text(&v[COL_PREV_HASH], prev);
	if (record_hash(a, v, hash) == -1) {
		set_text(&v[COL_PREV_HASH], NULL);
		snprintf(err, errlen, "audit: a field is not valid UTF-8");
		return -1;
	}
	set_text(&v[COL_HASH], hash);
	rc = bind_values(a->insert, v);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(a->insert);
	if (rc != SQLITE_DONE)
		db_fail(a, "insert record", err, errlen);
	sqlite3_reset(a->insert);
	sqlite3_clear_bindings(a->insert);
	/* prev and hash live on this stack: v must not point at them any more. */
	set_text(&v[COL_PREV_HASH], NULL);
	set_text(&v[COL_HASH], NULL);
	if (idp)
		*idp = id;
	if (rc == SQLITE_DONE && id > a->top)
		a->top = id;
	if (rc == SQLITE_DONE) {
		if (a->txn_first == 0)
			a->txn_first = id;
		a->txn_last = id;
		memcpy(a->txn_hash, hash, sizeof a->txn_hash);
	}
	if (rc == SQLITE_DONE && a->batch) {
		a->batch_next = id + 1;
		memcpy(a->batch_prev, hash, sizeof a->batch_prev);
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

static void attempt_values(const struct audit_event *ev, const char *at, struct value v[NCOLS])
{
	const char *text[NCOLS] = {
	    [COL_KIND] = "attempt",
	    [COL_AT] = at,
	    [COL_OPERATOR] = ev->operator,
	    [COL_OPERATOR_DN] = ev->operator_dn,
	    [COL_CLIENT_ADDR] = ev->client_addr,
	    [COL_ACTION] = ev->action,
	    [COL_TARGET] = ev->target,
	    [COL_TARGET_DN] = ev->target_dn,
	    [COL_PERMISSION] = ev->permission,
	    [COL_CATEGORY] = ev->category,
	    [COL_TICKET] = ev->ticket,
	    [COL_REQUESTER] = ev->requester,
	    [COL_DEPARTMENT] = ev->department,
	    [COL_CHANNEL] = ev->channel,
	    [COL_DESCRIPTION] = ev->description,
	    [COL_NOTE] = ev->note,
	    [COL_DETAIL] = ev->detail,
	};

	for (int c = 0; c < NCOLS; c++)
		set_text(&v[c], text[c]);
	if (ev->request_id != 0)
		set_int(&v[COL_REQUEST_ID], ev->request_id);
	set_int(&v[COL_IMPORTED], ev->imported ? 1 : 0);
}

/* uids compare without ASCII case (the directory's matching rule): stored
 * in lower case, so that one operator or target is one value to filter on,
 * by the index, whatever the directory's or the typist's spelling (AD's
 * "JSmith" is jsmith). NULL stays NULL; NULL on ENOMEM otherwise. */
static char *fold_uid(const char *uid)
{
	return uid != NULL ? ascii_lower(strdup(uid)) : NULL;
}

static int add_attempt(struct audit *a, const struct audit_event *ev, int64_t *idp, char *err,
                       size_t errlen)
{
	struct value v[NCOLS];
	char now[TIME_LEN + 1];
	char *op = fold_uid(ev->operator), *target = fold_uid(ev->target);
	int rc = -1;

	audit_now(now, sizeof now);
	attempt_values(ev, ev->requested_at ? ev->requested_at : now, v);
	set_text(&v[COL_OPERATOR], op);
	set_text(&v[COL_TARGET], target);
	if ((ev->operator!= NULL && op == NULL) || (ev->target != NULL && target == NULL))
		snprintf(err, errlen, "audit: out of memory");
	else
		rc = append(a, v, idp, err, errlen);
	free(op);
	free(target);
	return rc;
}

/* at: the outcome's stored time, NULL = now. */
static int add_outcome_at(struct audit *a, int64_t attempt_id, const char *result,
                          const char *detail, const char *at, char *err, size_t errlen)
{
	struct value v[NCOLS];
	char now[TIME_LEN + 1];

	audit_now(now, sizeof now);
	for (int c = 0; c < NCOLS; c++)
		set_text(&v[c], NULL);
	set_text(&v[COL_KIND], "outcome");
	set_int(&v[COL_ATTEMPT_ID], attempt_id);
	set_text(&v[COL_AT], at ? at : now);
	set_text(&v[COL_RESULT], result);
	set_text(&v[COL_DETAIL], detail);
	return append(a, v, NULL, err, errlen);
}

static int add_outcome(struct audit *a, int64_t attempt_id, const char *result, const char *detail,
                       char *err, size_t errlen)
{
	return add_outcome_at(a, attempt_id, result, detail, NULL, err, errlen);
}

static int check_event(const struct audit_event *ev, char *err, size_t errlen)
{
	if (ev == NULL || ev->action == NULL) {
		snprintf(err, errlen, "audit: event has no action");
		return -1;
	}
	if (ev->requested_at && !valid_time(ev->requested_at)) {
		snprintf(err, errlen, "audit: requested_at is not YYYY-MM-DDTHH:MM:SS.mmmZ");
		return -1;
	}
	return 0;
}

int audit_begin(struct audit *a, const struct audit_event *ev, int64_t *idp, char *err,
                size_t errlen)
{
	int rc;

	if (check_event(ev, err, errlen) == -1 || txn_begin(a, err, errlen) == -1)
		return -1;
	rc = add_attempt(a, ev, idp, err, errlen);
	return txn_end(a, rc, err, errlen);
}

/* The attempt must exist and have no outcome yet: verify would otherwise
 * flag the new record. */
static int check_open_attempt(struct audit *a, int64_t attempt_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = a->open_check;
	int rc = -1;

	sqlite3_bind_int64(st, 1, attempt_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(a, "look up attempt", err, errlen);
	} else if (sqlite3_column_type(st, 0) == SQLITE_NULL ||
	           strcmp((const char *)sqlite3_column_text(st, 0), "attempt") != 0) {
		snprintf(err, errlen, "audit: no attempt %lld", (long long)attempt_id);
	} else if (sqlite3_column_int64(st, 1) != 0) {
		snprintf(err, errlen, "audit: attempt %lld already has an outcome",
		         (long long)attempt_id);
	} else {
		rc = 0;
	}
	sqlite3_reset(st);
	return rc;
}

int audit_finish(struct audit *a, int64_t attempt_id, const char *result, const char *detail,
                 char *err, size_t errlen)
{
	int rc;

	if (!valid_result(result)) {
		snprintf(err, errlen, "audit: result must be ok, unchanged, denied or failed");
		return -1;
	}
	if (txn_begin(a, err, errlen) == -1)
		return -1;
	rc = check_open_attempt(a, attempt_id, err, errlen);
	if (rc == 0)
		rc = add_outcome(a, attempt_id, result, detail, err, errlen);
	return txn_end(a, rc, err, errlen);
}

/* Raises the id sequence to mark (sqlite_sequence has no row before the
 * first insert into records). */
static int sequence_raise(struct audit *a, int64_t mark, char *err, size_t errlen)
{
	static const char *const sql[] = {
	    "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'records'",
	    "INSERT INTO sqlite_sequence (name, seq) SELECT 'records', ?1"
	    " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'records')"};

	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st = NULL;
		int rc;

		if (sqlite3_prepare_v2(a->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return db_fail(a, "prepare sequence", err, errlen);
		sqlite3_bind_int64(st, 1, mark);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return db_fail(a, "raise the id sequence", err, errlen);
	}
	return 0;
}

int audit_ids_restore(struct audit *a, const char *path, int64_t *fromp, int64_t *top, char *err,
                      size_t errlen)
{
	char prev[HASH_HEX + 1], detail[300];
	struct audit_event ev = {.operator= "ldapdeskd", .action = "backup", .detail = detail};
	int64_t mark = hwm_read(path), next = 0, id;
	int rc;

	*fromp = *top = 0;
	if (mark == 0 || txn_begin(a, err, errlen) == -1)
		return mark == 0 ? 0 : -1;
	rc = read_tail(a, &next, prev, err, errlen);
	if (rc == 0 && next <= mark) {
		*fromp = next;
		*top = mark;
		snprintf(detail, sizeof(detail),
		         LOST_FMT " (put back from an older copy, or cut short): their ids are not "
		                  "given again",
		         (long long)next, (long long)mark);
		rc = sequence_raise(a, mark, err, errlen);
		if (rc == 0)
			rc = add_attempt(a, &ev, &id, err, errlen);
		if (rc == 0)
			rc = add_outcome(a, id, "failed", detail, err, errlen);
	}
	return txn_end(a, rc, err, errlen);
}

static int first_text(struct audit *a, sqlite3_stmt *st, const char *what, char *out, size_t len,
                      char *err, size_t errlen);

/* The key of the newest declaration into id ("" if none). Return 0/-1. */
static int declared_key(struct audit *a, char id[SEAL_ID_HEX + 1], char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char detail[320];

	id[0] = '\0';
	if (sqlite3_prepare_v2(a->db,
	                       "SELECT detail FROM records WHERE action = 'backup' AND"
	                       " kind = 'attempt' AND operator = 'ldapdeskd' AND"
	                       " detail LIKE '" SEALS_PREFIX "%' ORDER BY id DESC LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare seal declaration", err, errlen);
	if (first_text(a, st, "read seal declaration", detail, sizeof detail, err, errlen) == -1)
		return -1;
	if (sscanf(detail, SEALS_FMT, id) != 1)
		id[0] = '\0';
	return 0;
}

int audit_seal_declare(struct audit *a, char *err, size_t errlen)
{
	char id[SEAL_ID_HEX + 1], detail[300];
	struct audit_event ev = {.operator= "ldapdeskd", .action = "backup", .detail = detail};

	if (!a->sealing || declared_key(a, id, err, errlen) == -1)
		return a->sealing ? -1 : 0;
	if (strcmp(id, a->seal.id) == 0)
		return 0;
	snprintf(detail, sizeof(detail), SEALS_TEXT, a->seal.id,
	         id[0] == '\0' ? "records before this one were written before sealing began"
	                       : "the key file was replaced: records before this one were sealed "
	                         "under the key named before");
	return audit_record(a, &ev, "ok", detail, NULL, err, errlen);
}

int audit_record(struct audit *a, const struct audit_event *ev, const char *result,
                 const char *detail, int64_t *idp, char *err, size_t errlen)
{
	int64_t id = 0;
	int rc;

	if (check_event(ev, err, errlen) == -1)
		return -1;
	if (!valid_result(result)) {
		snprintf(err, errlen, "audit: result must be ok, unchanged, denied or failed");
		return -1;
	}
	if (txn_begin(a, err, errlen) == -1)
		return -1;
	rc = add_attempt(a, ev, &id, err, errlen);
	if (rc == 0)
		rc = add_outcome(a, id, result, detail, err, errlen);
	if (txn_end(a, rc, err, errlen) == -1)
		return -1;
	if (idp)
		*idp = id;
	return 0;
}

/* ---- reading rows ---- */

static json_t *column_json(sqlite3_stmt *st, int c)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_INTEGER:
		if (c == ROW_IMPORTED)
			return json_boolean(sqlite3_column_int64(st, c) != 0);
		return json_integer(sqlite3_column_int64(st, c));
	case SQLITE_TEXT:
		return json_stringn((const char *)sqlite3_column_text(st, c),
		                    (size_t)sqlite3_column_bytes(st, c));
	default:
		return json_null();
	}
}

/* Return: a new row object, or NULL if a stored text is not valid UTF-8
 * (only possible if the file was edited) or memory ran out. */
static json_t *row_json(sqlite3_stmt *st)
{
	json_t *row = json_object();

	for (int c = 0; row && c < NROWKEYS; c++) {
		if (json_object_set_new(row, row_keys[c], column_json(st, c)) == -1) {
			json_decref(row);
			row = NULL;
		}
	}
	return row;
}

/* Appends frag to the SQL in buf; fragments are fixed strings, so running
 * out of room is a programming error reported as such. */
static int sql_add(char *buf, size_t len, size_t *used, const char *frag)
{
	int n = snprintf(buf + *used, len - *used, "%s", frag);

	if (n < 0 || (size_t)n >= len - *used)
		return -1;
	*used += (size_t)n;
	return 0;
}

struct filter_term {
	const char *sql;
	const char *value;
};

/* Builds the WHERE clause from fixed fragments and binds each used value
 * by position. Empty strings are no filter, like NULL. */
static int prepare_query(struct audit *a, const struct audit_filter *f, int limit,
                         sqlite3_stmt **stp, char *err, size_t errlen)
{
	/* uids are stored in lower case (fold_uid): "ALICE" finds alice, by
	 * the index. */
	const struct filter_term terms[] = {
	    {" AND a.at >= ?", f->from}, {" AND a.at <= ?", f->to},
	    {" AND a.target = lower(?)", f->user},
	    {
	        " AND a.operator = lower(?)",
	        f->operator},
	        {" AND a.action = ?", f->action},
	        {" AND a.category = ?", f->category},
	        {" AND a.department = ?", f->department},
	        {" AND COALESCE(o.result, 'pending') = ?", f->result},
	    };
	size_t nterms = sizeof terms / sizeof terms[0], used = 0;
	char sql[2048];
	int n = 0, bad = sql_add(sql, sizeof sql, &used, ROW_SELECT " AND a.id > ?");

	for (size_t i = 0; i < nterms && !bad; i++)
		if (terms[i].value && terms[i].value[0])
			bad = sql_add(sql, sizeof sql, &used, terms[i].sql);
	if (bad || sql_add(sql, sizeof sql, &used, " ORDER BY a.id LIMIT ?") == -1) {
		snprintf(err, errlen, "audit: query text too long");
		return -1;
	}
	if (sqlite3_prepare_v2(a->db, sql, -1, stp, NULL) != SQLITE_OK)
		return db_fail(a, "prepare query", err, errlen);
	sqlite3_bind_int64(*stp, ++n, f->after > 0 ? f->after : 0);
	for (size_t i = 0; i < nterms; i++)
		if (terms[i].value && terms[i].value[0])
			sqlite3_bind_text(*stp, ++n, terms[i].value, -1, SQLITE_STATIC);
	sqlite3_bind_int(*stp, ++n, limit + 1);
	return 0;
}

static int page_limit(int asked)
{
	if (asked <= 0)
		return LDAPDESK_AUDIT_PAGE_DEF;
	return asked > LDAPDESK_AUDIT_PAGE_MAX ? LDAPDESK_AUDIT_PAGE_MAX : asked;
}

/* Streams up to limit rows to fn; a further row only sets *nextp. fn must
 * not call back into audit: the statement is still open. */
static int stream_rows(struct audit *a, sqlite3_stmt *st, int limit, audit_row_fn fn, void *arg,
                       int64_t *nextp, char *err, size_t errlen)
{
	int64_t last = 0;
	int n = 0, rc;

	*nextp = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row;
		if (n == limit) {
			*nextp = last;
			return 0;
		}
		if ((row = row_json(st)) == NULL) {
			snprintf(err, errlen,
			         "audit: event %lld holds text that is not valid UTF-8 (a record "
			         "changed outside ldapdesk?): run 'ldapdesk verify'",
			         (long long)sqlite3_column_int64(st, 0));
			return -1;
		}
		last = sqlite3_column_int64(st, 0);
		n++;
		rc = fn(arg, row);
		json_decref(row);
		if (rc != 0)
			return 0; /* the caller stopped; not an error */
	}
	return rc == SQLITE_DONE ? 0 : db_fail(a, "query", err, errlen);
}

int audit_query(struct audit *a, const struct audit_filter *f, audit_row_fn fn, void *arg,
                int64_t *nextp, char *err, size_t errlen)
{
	const struct audit_filter none = {0};
	sqlite3_stmt *st = NULL;
	int64_t next = 0;
	int limit, rc;

	if (f == NULL)
		f = &none;
	limit = page_limit(f->limit);
	if (prepare_query(a, f, limit, &st, err, errlen) == -1)
		return -1;
	rc = stream_rows(a, st, limit, fn, arg, &next, err, errlen);
	sqlite3_finalize(st);
	if (nextp)
		*nextp = next;
	return rc;
}

/* Collects the rows first so that fn may call audit_finish on them. */
static int collect_pending(struct audit *a, json_t *rows, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* A grant awaiting approval has no outcome until its request is closed:
	 * not something to recover. */
	if (sqlite3_prepare_v2(a->db,
	                       ROW_SELECT " AND o.id IS NULL AND NOT (a.action = 'grant' AND EXISTS"
	                                  " (SELECT 1 FROM requests r WHERE r.id = a.request_id"
	                                  " AND r.status = 'pending')) ORDER BY a.id",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare pending", err, errlen);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_append_new(rows, row_json(st)) == -1) {
			snprintf(err, errlen, "audit: stored text is not valid UTF-8");
			sqlite3_finalize(st);
			return -1;
		}
	}
	if (rc != SQLITE_DONE)
		db_fail(a, "pending", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int audit_pending(struct audit *a, audit_row_fn fn, void *arg, char *err, size_t errlen)
{
	json_t *rows = json_array();
	size_t i;
	json_t *row;

	if (rows == NULL) {
		snprintf(err, errlen, "audit: out of memory");
		return -1;
	}
	if (collect_pending(a, rows, err, errlen) == -1) {
		json_decref(rows);
		return -1;
	}
	json_array_foreach(rows, i, row)
	{
		if (fn(arg, row) != 0)
			break;
	}
	json_decref(rows);
	return 0;
}

/* ---- verify ---- */

/* State of one chain walk. */
struct walk {
	struct audit *a; /* the connection walked: its digest (record_hash) */
	struct audit_verify *out;
	sqlite3_stmt *link;
	int64_t last_id;
	char last_hash[HASH_HEX + 1];
	int64_t since_id;
	char since_hash[HASH_HEX + 1];
	bool since_seen;
	int64_t lost_first; /* the first id declared lost after since_id, 0: none */
	char lost_why[160]; /* its declaration, as out->lost */
	/* Seals, walked beside the records (a sealing connection only). */
	const struct seal_key *key; /* NULL: not checked */
	sqlite3_stmt *seals;        /* by last_id */
	bool seal_have;             /* the cursor holds a seal */
	/* Past a declaration (SEALS_FMT): every record needs a seal, under key
	 * or the key it declared (another key file's: not checkable). */
	bool sealed;
	char declared[SEAL_ID_HEX + 1];
	/* A seal under key has been passed: from there on a seal under any
	 * other key is a forger's (a declaration in the chain is anyone's to
	 * append, with the README's recipe). */
	bool key_seen;
	int64_t s_first, s_last;
	char s_key[SEAL_ID_HEX + 1], s_mac[SEAL_HEX + 1];
};

static int parse_since(const char *since, struct walk *w)
{
	char *end;
	long long id;

	if (since == NULL)
		return 0;
	id = strtoll(since, &end, 10);
	if (end == since || id <= 0 || *end != ':' || strlen(end + 1) != HASH_HEX ||
	    strspn(end + 1, "0123456789abcdef") != HASH_HEX)
		return -1;
	w->since_id = id;
	memcpy(w->since_hash, end + 1, HASH_HEX + 1);
	return 0;
}

bool audit_head_valid(const char *since)
{
	struct walk w = {0};

	return since != NULL && parse_since(since, &w) == 0;
}

/* Only the first finding is kept: it is the one an auditor must look at. */
static void mark_bad(struct walk *w, int64_t id, const char *reason)
{
	if (w->out->first_bad != 0)
		return;
	w->out->ok = false;
	w->out->first_bad = id;
	snprintf(w->out->reason, sizeof w->out->reason, "record %lld: %s", (long long)id, reason);
}

static void mark_head_bad(struct walk *w)
{
	if (w->out->first_bad != 0)
		return;
	w->out->ok = false;
	w->out->first_bad = w->since_id;
	snprintf(w->out->reason, sizeof w->out->reason, "head %lld no longer matches",
	         (long long)w->since_id);
}

/* Reads each column only as its stored type, so that no conversion hides
 * a changed type from the hash. */
static void read_values(sqlite3_stmt *st, struct value v[NCOLS])
{
	for (int c = 0; c < NCOLS; c++) {
		int type = sqlite3_column_type(st, c);
		v[c] = (struct value){.type = SQLITE_NULL};
		if (type == SQLITE_INTEGER) {
			set_int(&v[c], sqlite3_column_int64(st, c));
		} else if (type == SQLITE_TEXT) {
			v[c].type = SQLITE_TEXT;
			v[c].s = (const char *)sqlite3_column_text(st, c);
			v[c].len = (size_t)sqlite3_column_bytes(st, c);
		} else if (type != SQLITE_NULL) {
			v[c].type = type; /* REAL or BLOB: never written by audit */
		}
	}
}

/* An outcome must follow an attempt that has no earlier outcome. */
static const char *link_problem(struct walk *w, int64_t id, int64_t attempt_id)
{
	sqlite3_stmt *st = w->link;
	const char *why = NULL;

	sqlite3_bind_int64(st, 1, attempt_id);
	sqlite3_bind_int64(st, 2, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		why = "cannot look up its attempt";
	else if (attempt_id >= id || sqlite3_column_type(st, 0) != SQLITE_TEXT ||
	         strcmp((const char *)sqlite3_column_text(st, 0), "attempt") != 0)
		why = "outcome of a missing attempt";
	else if (sqlite3_column_int64(st, 1) != 0)
		why = "second outcome of one attempt";
	sqlite3_reset(st);
	return why;
}

static const char *shape_problem(struct walk *w, const struct value v[NCOLS])
{
	const char *kind = v[COL_KIND].type == SQLITE_TEXT ? v[COL_KIND].s : "";

	for (int c = 0; c < NCOLS; c++)
		if (v[c].type != SQLITE_NULL && v[c].type != SQLITE_INTEGER &&
		    v[c].type != SQLITE_TEXT)
			return "a column holds a real or a blob";
	if (v[COL_ID].type != SQLITE_INTEGER || v[COL_PREV_HASH].type != SQLITE_TEXT ||
	    v[COL_HASH].type != SQLITE_TEXT)
		return "id or hashes of the wrong type";
	if (strcmp(kind, "outcome") == 0) {
		if (v[COL_ATTEMPT_ID].type != SQLITE_INTEGER)
			return "outcome without attempt_id";
		return link_problem(w, v[COL_ID].i, v[COL_ATTEMPT_ID].i);
	}
	if (strcmp(kind, "attempt") != 0)
		return "unknown kind";
	return NULL;
}

static bool text_is(const struct value *v, const char *s)
{
	return v->type == SQLITE_TEXT && strcmp(v->s, s) == 0;
}

/* The one gap that is not a deletion: the daemon found the database
 * behind the ids it had given (a restore, audit_ids_restore) and its next
 * record names exactly the ids that are missing. */
/* The detail of a note the daemon wrote about its own store (an attempt
 * "backup" by ldapdeskd: a restore's gap, a seal key), or NULL. */
static const char *store_note(const struct value v[NCOLS])
{
	if (!text_is(&v[COL_KIND], "attempt") || !text_is(&v[COL_ACTION], "backup") ||
	    !text_is(&v[COL_OPERATOR], "ldapdeskd") || v[COL_DETAIL].type != SQLITE_TEXT)
		return NULL;
	return v[COL_DETAIL].s;
}

static bool gap_declared(const struct walk *w, const struct value v[NCOLS])
{
	const char *note = store_note(v);
	long long from, to;

	return note != NULL && sscanf(note, LOST_FMT, &from, &to) == 2 && from == w->last_id + 1 &&
	       to == v[COL_ID].i - 1;
}

static const char *record_problem(struct walk *w, const struct value v[NCOLS])
{
	char hash[HASH_HEX + 1];
	const char *why = shape_problem(w, v);

	if (why)
		return why;
	if (v[COL_ID].i != w->last_id + 1 && !gap_declared(w, v))
		return "follows a gap in the ids";
	/* Whole, but an auditor must hear of the records that are gone. */
	if (v[COL_ID].i != w->last_id + 1) {
		w->out->n_lost += v[COL_ID].i - 1 - w->last_id;
		snprintf(w->out->lost, sizeof w->out->lost,
		         "records %lld to %lld, declared lost at %lld", (long long)w->last_id + 1,
		         (long long)v[COL_ID].i - 1, (long long)v[COL_ID].i);
		if (w->lost_first == 0 && w->last_id >= w->since_id) {
			w->lost_first = w->last_id + 1;
			memcpy(w->lost_why, w->out->lost, sizeof w->lost_why);
		}
	}
	if (strcmp(v[COL_PREV_HASH].s, w->last_hash) != 0)
		return "prev_hash does not match the previous record";
	if (record_hash(w->a, v, hash) == -1)
		return "cannot be hashed (not valid UTF-8)";
	if (strcmp(hash, v[COL_HASH].s) != 0)
		return "hash does not match its contents";
	return NULL;
}

static void copy_column(sqlite3_stmt *st, int c, char *buf, size_t len);

static void walk_seal_next(struct walk *w)
{
	w->seal_have = sqlite3_step(w->seals) == SQLITE_ROW;
	if (!w->seal_have)
		return;
	w->s_first = sqlite3_column_int64(w->seals, 0);
	w->s_last = sqlite3_column_int64(w->seals, 1);
	copy_column(w->seals, 2, w->s_key, sizeof w->s_key);
	copy_column(w->seals, 3, w->s_mac, sizeof w->s_mac);
}

/* A declaration that sealing goes on from here under a key (the daemon's
 * at a start with a new key file, audit_seal_declare): it is in the chain,
 * so it cannot be removed or moved without the chain showing it. */
static bool walk_seal_declared(struct walk *w, const struct value v[NCOLS])
{
	const char *note = store_note(v);
	char id[SEAL_ID_HEX + 1];

	if (note == NULL || sscanf(note, SEALS_FMT, id) != 1 || strlen(id) != SEAL_ID_HEX)
		return false;
	w->sealed = true;
	memcpy(w->declared, id, sizeof w->declared);
	return true;
}

/* Record id (its stored hash) against the seals: after a declaration,
 * each must lie in a seal's range, and the seal of a range must match its
 * last record under this key, or, before any seal under this key, name the
 * key declared for it (an earlier key file's, whose MAC only that file
 * could check). Anything else is not ldapdeskd's. */
static void walk_seal_check(struct walk *w, int64_t id, const char *hash)
{
	char why[160];

	if (w->key == NULL || !w->sealed)
		return;
	while (w->seal_have && w->s_last < id)
		walk_seal_next(w);
	if (!w->seal_have || id < w->s_first) {
		mark_bad(
		    w, id,
		    "not written by ldapdeskd: no seal of its covers it (added behind its back, "
		    "or its seal was removed)");
		return;
	}
	if (id != w->s_last)
		return;
	if (strcmp(w->s_key, w->key->id) == 0) {
		w->key_seen = true;
		if (hash != NULL && seal_matches(w->key, w->s_first, w->s_last, hash, w->s_mac))
			return;
		snprintf(why, sizeof why,
		         "the seal of records %lld to %lld does not match: not as ldapdeskd wrote "
		         "them",
		         (long long)w->s_first, (long long)w->s_last);
		mark_bad(w, id, why);
	} else if (w->key_seen) {
		mark_bad(w, id,
		         "sealed under another key after seals under ldapdeskd's own: not written "
		         "by it");
	} else if (strcmp(w->s_key, w->declared) != 0) {
		mark_bad(w, id,
		         "sealed under a key no declaration before it names: not written by "
		         "ldapdeskd");
	}
}

/* After the last record. A seal is checked at its range's last record:
 * one whose range the walk entered but did not finish, or one past the
 * last record, was never checked, and its records are gone. Without this,
 * the newest records cut, with records of correct hashes put in their
 * place and the id sequence and -ids file set back, passed. */
static void walk_seal_end(struct walk *w)
{
	char why[160];

	if (w->key == NULL || !w->sealed)
		return;
	while (w->seal_have && w->s_last <= w->last_id)
		walk_seal_next(w);
	if (!w->seal_have)
		return;
	/* Named at the first record gone (where the guard, if it saw them
	 * written, names them too); those its seal covered before it cannot
	 * be checked, and the reason says so. */
	snprintf(why, sizeof why,
	         "missing: the seal of records %lld to %lld names records past the last one: "
	         "the newest records were cut, and those after %lld may be replaced",
	         (long long)w->s_first, (long long)w->s_last, (long long)w->s_first - 1);
	mark_bad(w, w->last_id + 1, why);
}

/* Prepares the seal walk on a sealing connection, inside the snapshot. */
static int walk_seals_open(struct audit *a, struct walk *w, char *err, size_t errlen)
{
	if (!a->sealing)
		return 0;
	if (sqlite3_prepare_v2(a->db,
	                       "SELECT first_id, last_id, key_id, mac FROM seals ORDER BY last_id",
	                       -1, &w->seals, NULL) != SQLITE_OK)
		return db_fail(a, "prepare seals", err, errlen);
	w->key = &a->seal;
	walk_seal_next(w);
	return 0;
}

static void walk_record(struct walk *w, sqlite3_stmt *st)
{
	struct value v[NCOLS];
	const char *why;

	read_values(st, v);
	why = record_problem(w, v);
	if (why)
		mark_bad(w, v[COL_ID].i, why);
	walk_seal_declared(w, v);
	walk_seal_check(w, v[COL_ID].i, v[COL_HASH].type == SQLITE_TEXT ? v[COL_HASH].s : NULL);
	w->out->records++;
	w->last_id = v[COL_ID].i;
	/* Go on from the stored hash so one edit names one record. */
	snprintf(w->last_hash, sizeof w->last_hash, "%s", v[COL_HASH].s ? v[COL_HASH].s : "");
	if (w->since_id == w->last_id) {
		w->since_seen = true;
		if (strcmp(w->since_hash, w->last_hash) != 0)
			mark_head_bad(w);
	}
}

static int walk_all(struct audit *a, struct walk *w, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(a->db, walk_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare verify", err, errlen);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		walk_record(w, st);
	if (rc != SQLITE_DONE)
		db_fail(a, "verify", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A sequence ahead of the last id means the newest records were deleted. */
static int check_tail(struct audit *a, struct walk *w, char *err, size_t errlen)
{
	int rc = sqlite3_step(a->tail);
	int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(a->tail, 0) : 0;

	sqlite3_reset(a->tail);
	if (rc != SQLITE_ROW)
		return db_fail(a, "read chain tail", err, errlen);
	if (w->since_id != 0 && !w->since_seen)
		mark_head_bad(w);
	else if (seq > w->last_id)
		mark_bad(w, w->last_id + 1, "missing: the newest records were deleted");
	return 0;
}

static void fill_head(const struct walk *w)
{
	struct audit_verify *out = w->out;

	out->head[0] = '\0';
	if (out->records > 0)
		snprintf(out->head, sizeof out->head, "%lld:%s", (long long)w->last_id,
		         w->last_hash);
}

/* Names bad record id, or an earlier one than the walk named (for the same
 * one, the guard's words: they say what ldapdeskd wrote last). */
static void mark_bad_first(struct walk *w, int64_t id, const char *reason)
{
	if (w->out->first_bad != 0 && w->out->first_bad < id)
		return;
	w->out->first_bad = 0;
	mark_bad(w, id, reason);
}

/* The snapshot's newest record against the one the daemon wrote last (the
 * guard as the snapshot began): added records have correct hashes if made
 * with the README's script, and a cut end leaves a whole chain. */
static void guard_verdict(struct walk *w, const struct audit_guard *g)
{
	char why[128];

	if (w->last_id > g->id) {
		snprintf(why, sizeof(why),
		         "not written by ldapdeskd, which wrote up to %lld: added behind its back",
		         (long long)g->id);
		mark_bad_first(w, g->id + 1, why);
	} else if (w->last_id < g->id) {
		snprintf(why, sizeof(why),
		         "missing: records %lld to %lld, which ldapdeskd wrote, were deleted",
		         (long long)w->last_id + 1, (long long)g->id);
		mark_bad_first(w, w->last_id + 1, why);
	} else if (g->id > 0 && strcmp(w->last_hash, g->hash) != 0) {
		mark_bad_first(w, g->id, "replaced: not the record ldapdeskd wrote with this id");
	}
}

/* Under the guard's mutex, the read that fixes the snapshot: no commit is
 * half-way (the guard moves with the commit, under that mutex). Return:
 * SQLite's step code. */
static int snapshot_begin(struct audit *a, struct audit_guard *seen)
{
	int rc;

	pthread_mutex_lock(&a->guard->mu);
	rc = sqlite3_step(a->tail);
	seen->id = a->guard->id;
	memcpy(seen->hash, a->guard->hash, sizeof seen->hash);
	pthread_mutex_unlock(&a->guard->mu);
	sqlite3_reset(a->tail);
	return rc;
}

/* One read transaction: the walk and the checks see one snapshot. */
static int verify_snapshot(struct audit *a, struct walk *w, char *err, size_t errlen)
{
	struct audit_guard seen = {.id = 0};
	int rc;

	if (sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(a, "begin verify", err, errlen);
	if (a->guard != NULL && snapshot_begin(a, &seen) != SQLITE_ROW) {
		db_fail(a, "read chain tail", err, errlen);
		sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
		return -1;
	}
	rc = walk_seals_open(a, w, err, errlen);
	if (rc == 0)
		rc = walk_all(a, w, err, errlen);
	if (rc == 0)
		walk_seal_end(w);
	sqlite3_finalize(w->seals);
	w->seals = NULL;
	if (rc == 0)
		rc = check_tail(a, w, err, errlen);
	if (rc == 0 && a->guard != NULL)
		guard_verdict(w, &seen);
	sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* Records a restore declared lost leave the chain whole, but the log is
 * not: a failed verify too (issue 4: any DELETE), naming the first missing
 * id. A broken record goes first: an old restore must not hide new
 * tampering. With a since head, only a loss after it counts. */
static void lost_verdict(struct walk *w)
{
	w->out->complete = w->out->ok;
	if (w->lost_first == 0 || w->out->first_bad != 0)
		return;
	w->out->complete = false;
	w->out->first_bad = w->lost_first;
	snprintf(w->out->reason, sizeof w->out->reason,
	         "record %lld: missing (%s, at ldapdeskd's start: restored from an older copy, or "
	         "cut short)",
	         (long long)w->lost_first, w->lost_why);
}

int audit_verify(struct audit *a, const char *since, struct audit_verify *out, char *err,
                 size_t errlen)
{
	struct walk w = {.a = a, .out = out, .last_hash = ZERO_HASH};
	int rc;

	memset(out, 0, sizeof *out);
	if (parse_since(since, &w) == -1) {
		snprintf(err, errlen, "audit: since-head must be ID:HASH (64 lower-case hex)");
		return -1;
	}
	if (sqlite3_prepare_v2(a->db, link_sql, -1, &w.link, NULL) != SQLITE_OK)
		return db_fail(a, "prepare verify", err, errlen);
	out->ok = true;
	rc = verify_snapshot(a, &w, err, errlen);
	sqlite3_finalize(w.link);
	fill_head(&w);
	if (rc == -1)
		out->ok = false; /* a walk that did not finish proves nothing */
	if (rc == 0)
		lost_verdict(&w);
	return rc;
}

/* ---- grants ---- */

static void copy_column(sqlite3_stmt *st, int c, char *buf, size_t len)
{
	const char *s = (const char *)sqlite3_column_text(st, c);

	if (len > 0)
		snprintf(buf, len, "%s", s ? s : "");
}

/* A column of a row_texts row: where it goes and how much fits. */
struct text_out {
	char *buf;
	size_t len;
};

/* Steps st (prepared and bound) once and finalizes it: its first n columns
 * into out. Return: 1 a row, 0 none, -1 error with err naming what. */
static int row_texts(struct audit *a, sqlite3_stmt *st, const char *what,
                     const struct text_out *out, int n, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);

	for (int c = 0; rc == SQLITE_ROW && c < n; c++)
		copy_column(st, c, out[c].buf, out[c].len);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(a, what, err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int first_text(struct audit *a, sqlite3_stmt *st, const char *what, char *out, size_t len,
                      char *err, size_t errlen)
{
	const struct text_out one = {out, len};

	return row_texts(a, st, what, &one, 1, err, errlen);
}

int audit_last_grant(struct audit *a, const char *target, const char *permission, char *operator,
                     size_t oplen, char *detail, size_t detlen, char *err, size_t errlen)
{
	const struct text_out out[] = {{operator, oplen }, {detail, detlen}};
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(a->db, grant_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare last grant", err, errlen);
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, permission, -1, SQLITE_STATIC);
	return row_texts(a, st, "last grant", out, 2, err, errlen);
}

int audit_last_disable(struct audit *a, const char *target, char *operator, size_t oplen, char *at,
                       size_t atlen, char *reason, size_t rlen, char *err, size_t errlen)
{
	const struct text_out out[] = {{operator, oplen }, {at, atlen}, {reason, rlen}};
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(a->db, disable_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare last disable", err, errlen);
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	return row_texts(a, st, "last disable", out, 3, err, errlen);
}

/* The newest password set by us (a reset or a create done) before an
 * attempt: its outcome's time. */
static const char password_sql[] =
    "SELECT o.at FROM records a"
    " JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id AND o.result = 'ok'"
    " WHERE a.kind = 'attempt' AND a.action IN ('reset', 'create') AND a.target = lower(?1)"
    " AND a.id < ?2 ORDER BY a.id DESC LIMIT 1";

int audit_last_password(struct audit *a, const char *target, int64_t before, char *at, size_t len,
                        char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(a->db, password_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare last password", err, errlen);
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before);
	return first_text(a, st, "last password", at, len, err, errlen);
}

int audit_last_backup(struct audit *a, char *detail, size_t len, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(a->db, backup_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare last backup", err, errlen);
	return first_text(a, st, "last backup", detail, len, err, errlen);
}

int audit_due_grants(struct audit *a, const char *now, const char *first, audit_due_fn fn,
                     void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(a->db, due_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare due grants", err, errlen);
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, first != NULL ? first : "[]", -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_due d = {.target = (const char *)sqlite3_column_text(st, 0),
		                      .permission = (const char *)sqlite3_column_text(st, 1),
		                      .expires = (const char *)sqlite3_column_text(st, 2),
		                      .target_dn = (const char *)sqlite3_column_text(st, 3),
		                      .request_id = sqlite3_column_int64(st, 4)};

		fn(arg, &d);
	}
	if (rc != SQLITE_DONE)
		db_fail(a, "due grants", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int audit_recent(struct audit *a, const char *target, int n, audit_row_fn fn, void *arg, char *err,
                 size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* Newest first through the (target, id) index. */
	if (sqlite3_prepare_v2(a->db,
	                       ROW_SELECT " AND a.target = lower(?1) ORDER BY a.id DESC LIMIT ?2",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare recent", err, errlen);
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = row_json(st);

		if (row != NULL && fn(arg, row) != 0) {
			json_decref(row);
			rc = SQLITE_DONE;
			break;
		}
		json_decref(row);
	}
	if (rc != SQLITE_DONE)
		db_fail(a, "recent", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- four-eyes requests ---- */

static void request_row(sqlite3_stmt *st, struct audit_req *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	copy_column(st, 1, r->created_at, sizeof(r->created_at));
	copy_column(st, 2, r->operator, sizeof(r->operator));
	copy_column(st, 3, r->target, sizeof(r->target));
	copy_column(st, 4, r->permission, sizeof(r->permission));
	r->days = sqlite3_column_int(st, 5);
	copy_column(st, 6, r->until, sizeof(r->until));
	copy_column(st, 7, r->status, sizeof(r->status));
	copy_column(st, 8, r->target_entry, sizeof(r->target_entry));
}

/* Steps st (prepared and bound by the caller) for one id in column 0 into
 * *idp, then finalizes it. Return: 1 a row, 0 none, -1 error with err. */
static int step_id(struct audit *a, sqlite3_stmt *st, int64_t *idp, const char *what, char *err,
                   size_t errlen)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*idp = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		db_fail(a, what, err, errlen); /* before finalize or reset: it reads the message */
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int one_id(struct audit *a, sqlite3_stmt *st, int64_t *idp, const char *what, char *err,
                  size_t errlen)
{
	int rc = step_id(a, st, idp, what, err, errlen);

	sqlite3_finalize(st);
	return rc;
}

/* *stp, prepared (persistent, prepare_kept) at its first use: lookups only
 * some callers make (an import, per row). NULL on error, with err. */
static sqlite3_stmt *kept_stmt(struct audit *a, sqlite3_stmt **stp, const char *sql,
                               const char *what, char *err, size_t errlen)
{
	if (*stp == NULL && prepare_kept(a->db, sql, stp) != SQLITE_OK) {
		db_fail(a, what, err, errlen);
		return NULL;
	}
	return *stp;
}

/* one_id for a statement kept prepared: reset for its next use. */
static int kept_id(struct audit *a, sqlite3_stmt *st, int64_t *idp, const char *what, char *err,
                   size_t errlen)
{
	int rc = step_id(a, st, idp, what, err, errlen);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int audit_request_pending_for(struct audit *a, const char *target, const char *permission,
                              int64_t *idp, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(a->db,
	                       "SELECT id FROM requests WHERE status = 'pending' AND"
	                       " lower(target) = lower(?1) AND permission = ?2 ORDER BY id LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare pending request", err, errlen);
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, permission, -1, SQLITE_STATIC);
	return one_id(a, st, idp, "pending request", err, errlen);
}

int audit_request_create(struct audit *a, const struct audit_req *r, int64_t *idp, char *err,
                         size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	audit_now(now, sizeof(now));
	if (sqlite3_prepare_v2(a->db,
	                       "INSERT INTO requests (created_at, operator, target, permission,"
	                       " days, until, target_entry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare request", err, errlen);
	sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->operator, - 1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->permission, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->days);
	if (r->until[0] != '\0')
		sqlite3_bind_text(st, 6, r->until, -1, SQLITE_STATIC);
	if (r->target_entry[0] != '\0')
		sqlite3_bind_text(st, 7, r->target_entry, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(a, "store request", err, errlen);
	*idp = sqlite3_last_insert_rowid(a->db);
	return 0;
}

static const char request_cols[] =
    "SELECT id, created_at, operator, target, permission, days, until, status, target_entry"
    " FROM requests";

void audit_request_term(int days, const char *until, char *buf, size_t len)
{
	if (days > 0)
		snprintf(buf, len, "(asks %d days)", days);
	else if (until != NULL && until[0] != '\0')
		snprintf(buf, len, "(asks until %.40s)", until);
	else
		snprintf(buf, len, "(no term asked)");
}

/* Prepares, bound to request id, a read of cols from the grant attempt that
 * opened the request (the first: a request has one). Return: 0, or -1. */
static int grant_record(struct audit *a, const char *cols, int64_t id, sqlite3_stmt **st)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM records WHERE kind = 'attempt' AND action = 'grant'"
	         " AND request_id = ?1 ORDER BY id LIMIT 1",
	         cols);
	if (sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(*st, 1, id);
	return 0;
}

/*
 * The requests table is outside the chain: its row is held against the
 * grant's own attempt record, which is in it (verify checks that one). A
 * row changed behind the daemon's back (another target, another asker: a
 * self-approval) is marked, so nobody approves what was not asked.
 */
static int request_check(struct audit *a, struct audit_req *r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (grant_record(a, "id, operator, target, permission, detail", r->id, &st) == -1)
		return db_fail(a, "prepare request record", err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *op = (const char *)sqlite3_column_text(st, 1),
		           *target = (const char *)sqlite3_column_text(st, 2),
		           *perm = (const char *)sqlite3_column_text(st, 3),
		           *detail = (const char *)sqlite3_column_text(st, 4);
		char asked[80];

		r->event = sqlite3_column_int64(st, 0);
		r->mismatch = op == NULL || target == NULL || perm == NULL ||
		              strcasecmp(op, r->operator) != 0 ||
		              strcasecmp(target, r->target) != 0 ||
		              strcmp(perm, r->permission) != 0;
		/* The term, stated by records made since it was (older ones
		 * name none: their row's term stands). */
		audit_request_term(r->days, r->until, asked, sizeof(asked));
		if (detail != NULL &&
		    (strstr(detail, "(asks ") != NULL || strstr(detail, "(no term asked)") != NULL))
			r->mismatch = r->mismatch || strstr(detail, asked) == NULL;
	} else if (rc == SQLITE_DONE)
		r->mismatch = true; /* a request no record asked for */
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE
	           ? 0
	           : db_fail(a, "read request record", err, errlen);
}

int audit_request_get(struct audit *a, int64_t id, struct audit_req *r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	int rc;

	snprintf(sql, sizeof(sql), "%s WHERE id = ?1", request_cols);
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare request", err, errlen);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		request_row(st, r);
	else if (rc != SQLITE_DONE)
		db_fail(a, "read request", err, errlen);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW && request_check(a, r, err, errlen) == -1)
		return -1;
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int audit_request_fields(struct audit *a, int64_t id, json_t **out, char *err, size_t errlen)
{
	static const char *const cols[] = {"ticket",  "requester",   "department",
	                                   "channel", "description", "note"};
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (grant_record(a, "ticket, requester, department, channel, description, note", id, &st) ==
	    -1)
		return db_fail(a, "prepare request fields", err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && (*out = json_object()) != NULL)
		for (int c = 0; c < 6; c++)
			if (sqlite3_column_type(st, c) == SQLITE_TEXT)
				json_object_set_new(
				    *out, cols[c],
				    json_string((const char *)sqlite3_column_text(st, c)));
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(a, "read request fields", err, errlen);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW && *out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int audit_request_list(struct audit *a, const char *older_than, audit_req_fn fn, void *arg,
                       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	struct audit_req r;
	int rc;

	snprintf(sql, sizeof(sql), "%s WHERE status = 'pending'%s ORDER BY id LIMIT 1000",
	         request_cols, older_than != NULL ? " AND created_at < ?1" : "");
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare requests", err, errlen);
	if (older_than != NULL)
		sqlite3_bind_text(st, 1, older_than, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		request_row(st, &r);
		fn(arg, &r);
	}
	if (rc != SQLITE_DONE)
		db_fail(a, "list requests", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The grant attempt that opened request id, still without an outcome: *idp
 * (0 if none: stores before this version recorded it with one). Return 0/-1. */
static int request_attempt(struct audit *a, int64_t id, int64_t *idp, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	*idp = 0;
	if (sqlite3_prepare_v2(a->db,
	                       "SELECT a.id FROM records a WHERE a.request_id = ?1"
	                       " AND a.kind = 'attempt' AND a.action = 'grant' AND NOT EXISTS"
	                       " (SELECT 1 FROM records o WHERE o.kind = 'outcome'"
	                       " AND o.attempt_id = a.id)",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare request attempt", err, errlen);
	sqlite3_bind_int64(st, 1, id);
	return one_id(a, st, idp, "request attempt", err, errlen) == -1 ? -1 : 0;
}

/* The request's grant is decided: its attempt gets its outcome (ok when
 * approved, denied when rejected or expired), in the caller's transaction. */
static int request_outcome(struct audit *a, int64_t id, const char *status, const char *by,
                           const char *reason, char *err, size_t errlen)
{
	int64_t attempt;
	char detail[600];

	if (request_attempt(a, id, &attempt, err, errlen) == -1)
		return -1;
	if (attempt == 0)
		return 0;
	if (strcmp(status, "approved") == 0)
		snprintf(detail, sizeof(detail), "request %lld approved by %s", (long long)id, by);
	else if (strcmp(status, "expired") == 0) /* the reason says so */
		snprintf(detail, sizeof(detail), "request %lld: %s", (long long)id,
		         reason != NULL ? reason : "expired");
	else
		snprintf(detail, sizeof(detail), "request %lld %s by %s%s%s", (long long)id, status,
		         by, reason != NULL ? ": " : "", reason != NULL ? reason : "");
	return add_outcome(a, attempt, strcmp(status, "approved") == 0 ? "ok" : "denied", detail,
	                   err, errlen);
}

static int request_update(struct audit *a, int64_t id, const char *status, const char *by,
                          const char *reason, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	audit_now(now, sizeof(now));
	if (sqlite3_prepare_v2(a->db,
	                       "UPDATE requests SET status = ?2, decided_at = ?3, decided_by = ?4,"
	                       " reason = ?5 WHERE id = ?1 AND status = 'pending'",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare request update", err, errlen);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(a, "update request", err, errlen);
	return sqlite3_changes(a->db) == 1 ? 0 : 1;
}

int audit_request_close(struct audit *a, int64_t id, const char *status, const char *by,
                        const char *reason, char *err, size_t errlen)
{
	/* Outside a transaction (recovery) one of its own: the close and the
	 * grant's outcome are stored together or not at all. */
	bool own = sqlite3_get_autocommit(a->db) != 0;
	int rc;

	if (own && txn_begin(a, err, errlen) == -1)
		return -1;
	rc = request_update(a, id, status, by, reason, err, errlen);
	if (rc == 0 && request_outcome(a, id, status, by, reason, err, errlen) == -1)
		rc = -1;
	if (own && txn_end(a, rc == -1 ? -1 : 0, err, errlen) == -1)
		return -1;
	return rc;
}

/* ---- batches (import, bench fill) ---- */

int audit_has_outcome(struct audit *a, int64_t attempt_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(a->db,
	                       "SELECT 1 FROM records WHERE kind = 'outcome' AND attempt_id = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare outcome lookup", err, errlen);
	sqlite3_bind_int64(st, 1, attempt_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(a, "look up an outcome", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int audit_category_used(struct audit *a, const char *category, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM records WHERE category = ?1 LIMIT 1", -1, &st,
	                       NULL) != SQLITE_OK)
		return db_fail(a, "prepare category lookup", err, errlen);
	sqlite3_bind_text(st, 1, category, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(a, "look up a category", err, errlen);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int audit_find_imported(struct audit *a, const struct audit_event *ev, const char *finished_at,
                        const char *detail, int64_t *idp, char *err, size_t errlen)
{
	sqlite3_stmt *st;

	*idp = 0;
	/* By records_imported_at (time and description: a row or two) and the
	 * outcome's unique index; kept prepared, as an import asks once per row.
	 * IS: NULL matches NULL. */
	st = kept_stmt(a, &a->dup_check,
	               "SELECT a.id FROM records a INDEXED BY records_imported_at"
	               " JOIN records o ON o.kind = 'outcome'"
	               " AND o.attempt_id = a.id WHERE a.at = ?1 AND a.kind = 'attempt'"
	               " AND a.imported = 1 AND a.description IS ?2 AND a.department IS ?3"
	               " AND a.requester IS ?4 AND a.operator IS lower(?5) AND o.at IS ?6"
	               " AND o.detail IS ?7 ORDER BY a.id LIMIT 1",
	               "prepare imported lookup", err, errlen);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, ev->requested_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ev->department, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ev->requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ev->operator, - 1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, finished_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, detail, -1, SQLITE_STATIC);
	return kept_id(a, st, idp, "look up imported events", err, errlen);
}

int audit_find_live(struct audit *a, const struct audit_event *ev, bool minute, int64_t *idp,
                    char *err, size_t errlen)
{
	char from[32], to[32];
	sqlite3_stmt *st;

	*idp = 0;
	if (ev->requested_at == NULL || strlen(ev->requested_at) < 19)
		return 0;
	/* A report shows times to the second: the whole second matches (the
	 * whole minute for a time without seconds). */
	if (minute) {
		snprintf(from, sizeof(from), "%.16s:00.000Z", ev->requested_at);
		snprintf(to, sizeof(to), "%.16s:59.999Z", ev->requested_at);
	} else {
		snprintf(from, sizeof(from), "%.19s.000Z", ev->requested_at);
		snprintf(to, sizeof(to), "%.19s.999Z", ev->requested_at);
	}
	/* The report's 提交人 is the requester, or the target when none was
	 * given; it shows only what was handled (ok, unchanged). */
	st = kept_stmt(a, &a->live_check,
	               "SELECT a.id FROM records a INDEXED BY records_live_at"
	               " JOIN records o ON o.kind = 'outcome'"
	               " AND o.attempt_id = a.id WHERE a.at BETWEEN ?1 AND ?2"
	               " AND a.kind = 'attempt' AND a.imported = 0 AND a.category IS ?3"
	               " AND a.operator IS lower(?4) AND a.department IS ?5"
	               " AND (a.requester IS ?6 OR (coalesce(a.requester, '') = ''"
	               " AND a.target IS lower(?6)))"
	               " AND o.result IN ('ok', 'unchanged') ORDER BY a.id LIMIT 1",
	               "prepare live event lookup", err, errlen);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, ev->category, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ev->operator, - 1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ev->department, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ev->requester, -1, SQLITE_STATIC);
	return kept_id(a, st, idp, "look up live events", err, errlen);
}

int audit_find_import(struct audit *a, const char *sha256, int64_t *idp, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	*idp = 0;
	if (sqlite3_prepare_v2(a->db,
	                       "SELECT a.id FROM records a JOIN records o ON o.kind = 'outcome'"
	                       " AND o.attempt_id = a.id AND o.result = 'ok'"
	                       " WHERE a.kind = 'attempt' AND a.action = 'import'"
	                       " AND instr(o.detail, 'sha256 ' || ?1) > 0 ORDER BY a.id LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare import lookup", err, errlen);
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	return one_id(a, st, idp, "look up imports", err, errlen);
}

int audit_batch_begin(struct audit *a, char *err, size_t errlen)
{
	if (a->batch) {
		snprintf(err, errlen, "audit: a batch is already open");
		return -1;
	}
	if (txn_begin(a, err, errlen) == -1)
		return -1;
	a->batch = true;
	a->batch_next = 0;
	return 0;
}

/* A batch is open and its transaction too: after an I/O error or a full
 * disk SQLite may have rolled the whole transaction back on its own, and
 * further writes would then each commit alone. */
static bool batch_open(struct audit *a, char *err, size_t errlen)
{
	if (!a->batch)
		snprintf(err, errlen, "audit: no batch is open");
	else if (sqlite3_get_autocommit(a->db))
		snprintf(err, errlen, "audit: the batch's transaction was rolled back");
	else
		return true;
	return false;
}

int audit_batch_add(struct audit *a, const struct audit_event *ev, const char *result,
                    const char *detail, const char *finished_at, int64_t *idp, char *err,
                    size_t errlen)
{
	int64_t id = 0;

	if (!batch_open(a, err, errlen))
		return -1;
	if (check_event(ev, err, errlen) == -1)
		return -1;
	if (!valid_result(result)) {
		snprintf(err, errlen, "audit: result must be ok, unchanged, denied or failed");
		return -1;
	}
	if (finished_at && !valid_time(finished_at)) {
		snprintf(err, errlen, "audit: finished_at is not YYYY-MM-DDTHH:MM:SS.mmmZ");
		return -1;
	}
	if (add_attempt(a, ev, &id, err, errlen) == -1 ||
	    add_outcome_at(a, id, result, detail, finished_at, err, errlen) == -1)
		return -1;
	if (idp)
		*idp = id;
	return 0;
}

int audit_batch_savepoint(struct audit *a, struct audit_mark *m, char *err, size_t errlen)
{
	/* The tail cached for the open batch moves with each insert: put back
	 * with the rows if what follows is undone. */
	m->next = a->batch_next;
	m->top = a->top;
	memcpy(m->prev, a->batch_prev, sizeof m->prev);
	if (!batch_open(a, err, errlen))
		return -1;
	if (sqlite3_exec(a->db, "SAVEPOINT mark", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "audit: cannot open a savepoint: %s", sqlite3_errmsg(a->db));
		return -1;
	}
	return 0;
}

void audit_batch_release(struct audit *a, const struct audit_mark *m, bool keep)
{
	if (!keep) {
		sqlite3_exec(a->db, "ROLLBACK TO mark", NULL, NULL, NULL);
		a->batch_next = m->next;
		/* In a batch the last record appended is the cached tail's. */
		a->txn_last = m->next > 0 ? m->next - 1 : 0;
		if (m->next == 0 || a->txn_first >= m->next)
			a->txn_first = 0; /* all it appended is undone */
		memcpy(a->txn_hash, m->prev, sizeof a->txn_hash);
		a->top = m->top;
		memcpy(a->batch_prev, m->prev, sizeof a->batch_prev);
	}
	sqlite3_exec(a->db, "RELEASE mark", NULL, NULL, NULL);
}

int audit_batch_pair(struct audit *a, const struct audit_event *ev, const char *result,
                     const char *detail, int64_t *idp, char *err, size_t errlen)
{
	struct audit_mark m;
	int rc;

	if (audit_batch_savepoint(a, &m, err, errlen) == -1)
		return -1;
	rc = audit_batch_add(a, ev, result, detail, NULL, idp, err, errlen);
	audit_batch_release(a, &m, rc == 0);
	return rc;
}

int audit_batch_attempt(struct audit *a, const struct audit_event *ev, int64_t *idp, char *err,
                        size_t errlen)
{
	if (!batch_open(a, err, errlen) || check_event(ev, err, errlen) == -1)
		return -1;
	return add_attempt(a, ev, idp, err, errlen);
}

int audit_batch_outcome(struct audit *a, int64_t attempt_id, const char *result, const char *detail,
                        char *err, size_t errlen)
{
	if (!batch_open(a, err, errlen))
		return -1;
	if (!valid_result(result)) {
		snprintf(err, errlen, "audit: result must be ok, unchanged, denied or failed");
		return -1;
	}
	if (check_open_attempt(a, attempt_id, err, errlen) == -1)
		return -1;
	return add_outcome(a, attempt_id, result, detail, err, errlen);
}

int audit_batch_commit(struct audit *a, char *err, size_t errlen)
{
	if (!batch_open(a, err, errlen)) {
		a->batch = false;
		a->top = a->committed;
		return -1;
	}
	a->batch = false;
	return txn_end(a, 0, err, errlen);
}

void audit_batch_rollback(struct audit *a)
{
	if (!a->batch)
		return;
	a->batch = false;
	a->top = a->committed;
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- scanning a time range (reports) ---- */

#define SCAN_PAGE 2000

/* Keyset pages over (at, id): the records_at index holds the rowid after
 * at, so each page is one index range walk and no read transaction spans
 * more than a page. ?6 is the highest id when the scan began: records are
 * written by one connection at a time and ids only grow, so the records up
 * to it are the store as it was then, and a page read after an import (or
 * any commit) landed sees none of it — a report never counts half an
 * import. */
static const char scan_sql[] =
    "SELECT a.id, a.at, o.at, a.operator, a.action, a.target, a.permission, a.category,"
    " a.ticket, a.requester, a.department, a.channel, a.description, a.note,"
    " COALESCE(o.result, 'pending'), o.detail, a.imported FROM records a"
    " LEFT JOIN records o ON o.kind = 'outcome' AND o.attempt_id = a.id AND o.id <= ?6"
    " WHERE a.kind = 'attempt' AND a.at >= ?1 AND a.at <= ?2 AND (a.at, a.id) > (?3, ?4)"
    " AND a.id <= ?6 ORDER BY a.at, a.id LIMIT ?5";

static const char *col_text(sqlite3_stmt *st, int c)
{
	return (const char *)sqlite3_column_text(st, c);
}

static void scan_row(sqlite3_stmt *st, struct audit_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->requested_at = col_text(st, 1);
	r->finished_at = col_text(st, 2);
	r->operator= col_text(st, 3);
	r->action = col_text(st, 4);
	r->target = col_text(st, 5);
	r->permission = col_text(st, 6);
	r->category = col_text(st, 7);
	r->ticket = col_text(st, 8);
	r->requester = col_text(st, 9);
	r->department = col_text(st, 10);
	r->channel = col_text(st, 11);
	r->description = col_text(st, 12);
	r->note = col_text(st, 13);
	r->result = col_text(st, 14);
	r->detail = col_text(st, 15);
	r->imported = sqlite3_column_int64(st, 16) != 0;
}

/* One page from (last_at, last_id). Return: rows streamed (0 = the end),
 * -1 on error, -2 when fn stopped. */
static int scan_page(struct audit *a, sqlite3_stmt *st, char last_at[TIME_LEN + 1],
                     int64_t *last_id, audit_scan_fn fn, void *arg, char *err, size_t errlen)
{
	struct audit_row r;
	int n = 0, rc;

	sqlite3_bind_text(st, 3, last_at, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, *last_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		scan_row(st, &r);
		n++;
		*last_id = r.id;
		snprintf(last_at, TIME_LEN + 1, "%s", r.requested_at ? r.requested_at : "");
		if (fn(arg, &r) != 0) {
			sqlite3_reset(st);
			return -2;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(a, "scan", err, errlen);
	return n;
}

/* The highest record id now (0 for an empty store): the kept tail
 * statement's first column (sqlite_sequence, never below max(id)). */
static int scan_top(struct audit *a, int64_t *top, char *err, size_t errlen)
{
	int rc = sqlite3_step(a->tail);

	if (rc == SQLITE_ROW)
		*top = sqlite3_column_int64(a->tail, 0);
	else
		db_fail(a, "scan", err, errlen);
	sqlite3_reset(a->tail);
	return rc == SQLITE_ROW ? 0 : -1;
}

int audit_scan(struct audit *a, const char *from, const char *to, audit_scan_fn fn, void *arg,
               char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char last_at[TIME_LEN + 1] = "";
	int64_t last_id = 0, top = 0;
	int n;

	if (!valid_time(from) || !valid_time(to)) {
		snprintf(err, errlen, "audit: from and to must be YYYY-MM-DDTHH:MM:SS.mmmZ");
		return -1;
	}
	if (sqlite3_prepare_v2(a->db, scan_sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, "prepare scan", err, errlen);
	if (scan_top(a, &top, err, errlen) == -1) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, SCAN_PAGE);
	sqlite3_bind_int64(st, 6, top);
	do
		n = scan_page(a, st, last_at, &last_id, fn, arg, err, errlen);
	while (n == SCAN_PAGE);
	sqlite3_finalize(st);
	return n == -1 ? -1 : 0;
}

/* ---- files: path, copies, checks (backups) ---- */

const char *audit_path(const struct audit *a)
{
	const char *p = sqlite3_db_filename(a->db, "main");

	return p ? p : "";
}

bool audit_busy(const struct audit *a)
{
	return a->busy;
}

void audit_set_busy_timeout(struct audit *a, int ms)
{
	sqlite3_busy_timeout(a->db, ms);
}

void audit_set_cache(struct audit *a, int kib)
{
	char sql[48];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", kib);
	sqlite3_exec(a->db, sql, NULL, NULL, NULL);
}

/* VACUUM INTO writes a compact, consistent copy from one read snapshot; a
 * writer on another connection does not restart it (the backup API would). */
/* A long copy or check (a large store) ends early once *arg is set: the
 * daemon's stop deadline passed. */
static int flag_set(void *arg)
{
	return atomic_load((const atomic_int *)arg);
}

int audit_copy(const char *src, const char *dest, const atomic_int *stop, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return open_fail(db, src, "open for backup", err, errlen);
	sqlite3_busy_timeout(db, 5000);
	if (stop != NULL)
		sqlite3_progress_handler(db, 1000, flag_set, (void *)stop);
	if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL) != SQLITE_OK)
		return open_fail(db, src, "prepare backup", err, errlen);
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return open_fail(db, dest, "VACUUM INTO", err, errlen);
	sqlite3_close(db);
	return 0;
}

int audit_mark_copy(const char *path, int64_t attempt, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	char sql[64];

	/* user_version is 32 bits: a larger id leaves the copy unmarked, and
	 * its restore then reads as a lost backup (the older behaviour). */
	if (attempt <= 0 || attempt > INT32_MAX)
		return 0;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)attempt);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return open_fail(db, path, "open to mark", err, errlen);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return open_fail(db, path, "mark", err, errlen);
	sqlite3_close(db);
	return 0;
}

int64_t audit_copy_of(struct audit *a)
{
	sqlite3_stmt *st = NULL;
	int64_t mark = 0;

	if (sqlite3_prepare_v2(a->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		mark = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return mark;
}

static int integrity_ok(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *res;
	int ok;

	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "integrity_check: %s", sqlite3_errmsg(db));
		return -1;
	}
	ok = sqlite3_step(st) == SQLITE_ROW && (res = col_text(st, 0)) != NULL &&
	     strcmp(res, "ok") == 0;
	if (!ok)
		snprintf(err, errlen, "integrity_check failed: %s",
		         col_text(st, 0) ? col_text(st, 0) : sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

/* Read-only: a copy is checked as it is, never converted to WAL. */
int audit_count_file(const char *path, long long *records, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return open_fail(db, path, "open", err, errlen);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM records", -1, &st, NULL) != SQLITE_OK)
		return open_fail(db, path, "read", err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*records = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return open_fail(db, path, "read", err, errlen);
	sqlite3_close(db);
	return 0;
}

int audit_check_file(const char *path, struct audit_verify *out, const atomic_int *stop, char *err,
                     size_t errlen)
{
	struct audit ro = {0};
	char why[256];
	int rc;

	memset(out, 0, sizeof *out);
	if (sqlite3_open_v2(path, &ro.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return open_fail(ro.db, path, "open copy", err, errlen);
	if (stop != NULL)
		sqlite3_progress_handler(ro.db, 1000, flag_set, (void *)stop);
	if (integrity_ok(ro.db, why, sizeof why) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		sqlite3_close(ro.db);
		return -1;
	}
	if (sqlite3_prepare_v2(ro.db, tail_sql, -1, &ro.tail, NULL) != SQLITE_OK)
		return open_fail(ro.db, path, "prepare check", err, errlen);
	rc = audit_verify(&ro, NULL, out, err, errlen);
	sqlite3_finalize(ro.tail);
	sqlite3_close(ro.db);
	digest_free(&ro); /* audit_verify hashed with it */
	if (rc == 0 && !out->ok) {
		snprintf(err, errlen, "%s: chain broken: %s", path, out->reason);
		return -1;
	}
	return rc;
}
