/*
 * log.h — the daemon's diagnostics on stderr (journald adds time and unit).
 * log_warn appends strerror(errno); fatal/fatalx exit and are for start-up only.
 */
#pragma once
#include <stdbool.h>

#define LOG_PRINTF(a, b) __attribute__((__format__(printf, a, b)))

/* verbose: also print log_debug lines. Routes libevent's messages here too. */
void log_init(bool verbose);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);
