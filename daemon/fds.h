/*
 * fds.h — whether the daemon has run out of file descriptors, so that a
 * failure to connect or to open a file can name the real cause instead of
 * sending the operator to check the directory or the database.
 */
#pragma once
#include <stdbool.h>

/* True if no descriptor can be made now (EMFILE or ENFILE). Makes and
 * closes one when it can; errno is kept. */
bool fds_exhausted(void);

/* What to add to a message when fds_exhausted(): a sentence starting with
 * "; " (a static string), or "" when descriptors are left. */
const char *fds_hint(void);

/* Descriptors the daemon needs beyond its HTTP connections. */
#define FDS_SPARE 256

/* Raises the soft RLIMIT_NOFILE to want, or to the hard limit if lower.
 * Return: the soft limit now (unlimited as LONG_MAX), -1 when it cannot be
 * read. */
long fds_raise(long want);
