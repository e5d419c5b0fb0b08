/*
 * report.h — the half-year service report built from the audit store:
 * summary line, counts by month × category, by department and by operator,
 * and the detail table of every event handled. No HTTP here.
 */
#pragma once
#include <stddef.h>

#include "audit.h"
#include "config.h"

/* Largest report produced; a larger one is refused (narrow the range). */
#define REPORT_MAX_BYTES ((size_t)1 << 30)

/* True if name is a report format: text, md, csv, json or html. */
bool report_format_known(const char *name);

/* Checks a range before a report is built (stored UTC format, as
 * report_build): from <= to and at most 1,200 months (local months).
 * Return: 0, or -1 with err filled, saying what to do. */
int report_range_check(const char *from, const char *to, char *err, size_t errlen);

/*
 * Builds the report over attempts with from <= requested_at <= to (stored
 * UTC format "YYYY-MM-DDTHH:MM:SS.mmmZ", both inclusive). Only attempts
 * whose result is ok or unchanged and that carry a category are counted.
 * format: text, md, csv, json or html (NULL = text). Categories, labels and
 * units come from conf (DESIGN.md order, then configured extras; categories
 * found in the log but no longer configured follow under their key).
 * Times shown are in the process's local zone (TZ).
 * csv is the detail table alone (plus a 类别 column), so that it can be fed
 * back to import_csv.
 * Return: 0 with *outp (malloc'd, caller frees, not NUL-terminated
 * necessarily: use *lenp), *lenp and *ctypep (static string); or -1 with
 * err filled (bad format or range, store error, report too large).
 */
int report_build(struct audit *a, const struct config *conf, const char *from, const char *to,
                 const char *format, char **outp, size_t *lenp, const char **ctypep, char *err,
                 size_t errlen);
