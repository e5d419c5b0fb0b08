/*
 * wire.h — names and numbers shared by ldapdeskd and ldapdesk: API limits,
 * client exit codes, result words. Nothing here allocates.
 */
#pragma once

#define LDAPDESK_VERSION "0.1.0"

/* A CSV cell starting with one of these is written with a leading ' so that
 * a spreadsheet does not run it as a formula (DESIGN: = + - @; OWASP adds
 * tab and carriage return), and an import takes the ' off again. */
#define LDAPDESK_CSV_FORMULA "=+-@\t\r"

/* Largest request body the daemon reads; a larger one is answered 413. */
#define LDAPDESK_MAX_BODY (64 * 1024)
/* ... except a CSV import (POST /v1/import): up to this. */
#define LDAPDESK_MAX_IMPORT (32 * 1024 * 1024)
/* Longest uid, permission name or event field accepted (bytes, UTF-8). */
#define LDAPDESK_MAX_UID   64
#define LDAPDESK_MAX_FIELD 1024
/* Largest page GET /v1/audit returns; the default when no limit is asked. */
#define LDAPDESK_AUDIT_PAGE_MAX 5000
#define LDAPDESK_AUDIT_PAGE_DEF 1000

/* Client exit codes (DESIGN.md "Client"). */
enum ldapdesk_exit {
	EXIT_DONE = 0,        /* 2xx */
	EXIT_REFUSED = 1,     /* other 4xx/5xx; verify finding a broken chain */
	EXIT_USAGE = 2,       /* usage error or 400 */
	EXIT_UNAUTH = 3,      /* 401 */
	EXIT_FORBIDDEN = 4,   /* 403 */
	EXIT_NOT_FOUND = 5,   /* 404 */
	EXIT_UNREACHABLE = 6, /* daemon unreachable or TLS failure */
};
