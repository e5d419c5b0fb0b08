/*
 * import.h — loads historical events, kept by hand in the report's
 * detail-table columns, into the audit store: all rows or none.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "audit.h"
#include "config.h"

/* Most data rows one import takes; bad rows listed at most (every one of a
 * file kept by hand, while the answer stays a few MB: err then says how many
 * more there are and how to see them). */
#define IMPORT_MAX_ROWS   1000000
#define IMPORT_MAX_ERRORS 10000

/*
 * Parses body (CSV, RFC 4180, UTF-8, optional BOM; a header row naming the
 * columns 序号, 事件提交单位, 提交人, 提交时间, 事件描述, 解决办法, 问题处理,
 * 解决时间, 解决情况, 备注 and optionally 类别; 提交时间 and 事件描述 are
 * required, unknown columns are ignored) and checks every row before
 * storing any. Each good row becomes one attempt (action "record",
 * imported = true, category from 类别 or inferred from the text) with an
 * "ok" outcome at 解决时间 (else 提交时间). The historical handler (问题处理)
 * is kept as the record's operator (the importer when empty); the importer
 * is on the "import" event appended in the same transaction
 * (operator_uid/operator_dn/client_addr, detail naming the id range). A
 * refused import is recorded as a failed "import" event.
 * A file imported before (same SHA-256, kept on the import event) is
 * refused: -2 with err naming that import. So is a file with rows whose
 * event (提交时间, 事件提交单位, 提交人, 事件描述) was imported already, by
 * any file or earlier in this one: -2 with *errorsp listing them.
 * Return: 0 with *importedp = rows stored; -2 (events imported already); or -1
 * with err filled and, when
 * rows were bad, *errorsp = new array [{"line","message"}] (line numbers of
 * the file, the header is line 1; at most IMPORT_MAX_ERRORS; caller
 * decrefs), else *errorsp = NULL. Nothing is stored on -1.
 * The import's attempt is stored before its rows' transaction (a daemon
 * killed meanwhile leaves it pending: import_recover).
 */
int import_csv(struct audit *a, const struct config *conf, const char *operator_uid,
               const char *operator_dn, const char *client_addr, const char *body, size_t len,
               int64_t *importedp, json_t **errorsp, char *err, size_t errlen);

/* The checks of import_csv without storing anything. Of the store only the
 * file's own SHA-256 is looked up (a != NULL): a file imported before is -2
 * with err naming that import, as import_csv would refuse it; rows whose
 * events are in the log by another file are found only by the import
 * itself. Return: 0 with *previewp = new {"rows", "categories": {KEY:
 * count}, "events": [{"line","submitted","department","description",
 * "category"}]}; -2; or -1 with err filled and, when rows were bad, *errorsp
 * as import_csv's (caller decrefs both). a is also watched for a stop
 * (audit_interrupt): err then says "interrupted". */
int import_check(struct audit *a, const struct config *conf, const char *body, size_t len,
                 json_t **previewp, json_t **errorsp, char *err, size_t errlen);

/* At start-up, for an import attempt an earlier run left pending (it was
 * killed during the rows' transaction): recorded failed, as none of its rows
 * committed (they commit with the outcome). Errors are logged; -1 when a
 * was too busy to take the outcome (the caller tries again later). */
int import_recover(struct audit *a, int64_t attempt);
