/*
 * log.c — stderr logging with a level prefix. The only state is the verbose
 * flag, set once at start-up before any thread exists.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"

static bool log_verbose;

static void log_vput(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (suffix != NULL)
		fprintf(stderr, "ldapdeskd: %s: %s: %s\n", level, line, suffix);
	else
		fprintf(stderr, "ldapdeskd: %s: %s\n", level, line);
}

static void log_event_cb(int severity, const char *msg)
{
	if (severity == EVENT_LOG_DEBUG && !log_verbose)
		return;
	fprintf(stderr, "ldapdeskd: libevent: %s\n", msg);
}

void log_init(bool verbose)
{
	log_verbose = verbose;
	event_set_log_callback(log_event_cb);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vput("info", fmt, ap, NULL);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	const char *why = strerror(errno);

	va_start(ap, fmt);
	log_vput("warning", fmt, ap, why);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vput("warning", fmt, ap, NULL);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vput("debug", fmt, ap, NULL);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	const char *why = strerror(errno);

	va_start(ap, fmt);
	log_vput("fatal", fmt, ap, why);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vput("fatal", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
