/*
 * session.h — operator sessions as signed bearer tokens. A token is
 * base64url(payload) "." base64url(HMAC-SHA256(key, payload)); the payload
 * names the operator, roles, scopes, issue and expiry times and a nonce.
 * The key is generated on first start and kept in a 0600 file. A token is
 * good while its session is in the table (session.c): a stop saves the live
 * ones beside the key (KEY_FILE.sessions) for the next start; after a crash
 * every operator logs in again.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum role { ROLE_HELPDESK = 1, ROLE_ADMIN = 2, ROLE_AUDITOR = 4 };

#define SESSION_TOKEN_MAX    1024 /* bytes, NUL included */
#define SESSION_MAX          4096 /* live sessions */
#define SESSION_PER_OPERATOR 32   /* live sessions of one operator: a new one ends its oldest */
#define SESSION_TTL_MAX      (366L * 86400) /* a saved session lasting longer is not taken in */

struct sessions;

struct session {
	char uid[65];
	char dn[512];
	unsigned roles;
	unsigned long scopes; /* bit i: member of the i-th [scope.*] group */
	time_t issued, expires;
	time_t last_seen;     /* idle limit */
	time_t roles_checked; /* roles re-read from the directory at most one idle period ago */
	unsigned roles_gen;   /* ... under the configuration of this generation */
	unsigned char nonce[16];
};

/* Loads the key from key_file, creating it (32 random bytes, mode 0600) if
 * absent; refuses a key file readable by group or others. Takes in the
 * sessions the last stop saved in KEY_FILE.sessions (created 0600 if absent).
 * idle: seconds a session may go unused. Return: the store, or NULL with err
 * filled. */
struct sessions *session_store_new(const char *key_file, int idle, char *err, size_t errlen);
/* Once the start has succeeded: empties KEY_FILE.sessions (fsynced), so that
 * after a crash none of them comes back (a logout or an idle period since
 * would be undone). Return: 0, or -1 with err. */
int session_store_started(struct sessions *s, char *err, size_t errlen);
/* At a stop: writes the live sessions to KEY_FILE.sessions (fsynced) for
 * the next start. Return: 0, or -1 with err (they then end with this run). */
int session_store_save(struct sessions *s, char *err, size_t errlen);
void session_store_free(struct sessions *s);
/* A key for another use than tokens, derived from the store's key (HMAC of
 * label, which no token payload can equal: those begin "v1\n"), into out
 * (32 bytes): the audit's seals. Loop thread only. Return 0, or -1 if
 * OpenSSL failed. */
int session_derive(const struct sessions *s, const char *label, unsigned char out[32]);

/* Signs a new session for in (uid, dn, roles, scopes read under configuration
 * generation in->roles_gen) lasting ttl seconds and
 * writes the token into token (SESSION_TOKEN_MAX bytes). The operator's least
 * recently used session ends when it has SESSION_PER_OPERATOR. Return: 0,
 * -1 when the store is full of live sessions, or -2 when the token could not
 * be made (random bytes or HMAC failed; logged). */
int session_create(struct sessions *s, const struct session *in, int ttl, char *token);

/* The live session for token, or NULL when the token is malformed, forged,
 * expired, idle too long, logged out or otherwise ended, or not known to
 * this run (issued before a crash). Marks it used now. The pointer is valid
 * until the next call that changes the store. */
struct session *session_find(struct sessions *s, const char *token);

/* true when the session's roles should be re-read from the directory: an
 * idle period has passed, or the configuration changed since. */
bool session_stale(const struct sessions *s, const struct session *ses);

/* The configuration generation: roles and scopes read under another one are
 * stale. */
unsigned session_gen(const struct sessions *s);

/* A reload: every session's roles and scopes are re-read before its next
 * request, as its scope bits number the [scope.*] sections of the old file. */
void session_config_changed(struct sessions *s);

/* Records roles and scopes read under configuration generation gen (roles 0
 * ends the session: its token is refused from then on). */
void session_set_roles(struct sessions *s, struct session *ses, unsigned roles,
                       unsigned long scopes, unsigned gen);

/* Ends the session for token, whose token was never handed out (a login
 * refused after all): its slot is free again at once, nothing is written. */
void session_discard(struct sessions *s, const char *token);

/* Ends the session for token at once (its token is refused from then on,
 * also after a restart) and copies it into out for the logout's record.
 * Return: 0, or -1 if the token was not a live session. */
int session_revoke(struct sessions *s, const char *token, struct session *out);

/* Ends every session of the operator whose entry is dn (disabled, deleted
 * or moved), and remembers it for session_ended_since. Return: how many
 * ended. */
size_t session_end_operator(struct sessions *s, const char *dn);

/* A mark to take when a login starts ... */
unsigned long long session_ended_mark(const struct sessions *s);
/* ... and whether the operator at dn was ended since (then the login, which
 * bound before that, must make no session). True also when too many were
 * ended since to tell. */
bool session_ended_since(const struct sessions *s, const char *dn, unsigned long long mark);

/* "helpdesk", "admin" or "auditor". */
const char *session_role_name(enum role r);
