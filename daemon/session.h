/*
 * session.h — operator sessions as signed bearer tokens. A token is
 * base64url(payload) "." base64url(HMAC-SHA256(key, payload)); the payload
 * names the operator, roles, scopes, issue and expiry times and a nonce.
 * The key is generated on first start and kept in a 0600 file, so tokens
 * survive a restart; logouts are remembered (in memory and in a file beside
 * the key) until the token would have expired anyway.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum role { ROLE_HELPDESK = 1, ROLE_ADMIN = 2, ROLE_AUDITOR = 4 };

#define SESSION_TOKEN_MAX 1024 /* bytes, NUL included */
#define SESSION_MAX       4096 /* live sessions */

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
 * absent; refuses a key file readable by group or others. idle: seconds a
 * session may go unused. Return: the store, or NULL with err filled. */
struct sessions *session_store_new(const char *key_file, int idle, char *err, size_t errlen);
void session_store_free(struct sessions *s);

/* Signs a new session for in (uid, dn, roles, scopes read under configuration
 * generation in->roles_gen) lasting ttl seconds and
 * writes the token into token (SESSION_TOKEN_MAX bytes). Return: 0, or -1 when
 * the store is full of live sessions or the RNG failed. */
int session_create(struct sessions *s, const struct session *in, int ttl, char *token);

/* The live session for token, or NULL when the token is malformed, forged,
 * expired, idle too long or logged out. Marks it used now. The pointer is
 * valid until the next call that changes the store. */
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
 * ends the session). */
void session_set_roles(struct sessions *s, struct session *ses, unsigned roles,
                       unsigned long scopes, unsigned gen);

/* Ends the session for token, also across restarts (session_revoke, then
 * session_revoke_persist). Return: 0, or -1 if the token was not a live
 * session. */
int session_drop(struct sessions *s, const char *token);

/* Ends the session for token, whose token was never handed out (a login
 * refused after all): its slot is free again at once, nothing is written. */
void session_discard(struct sessions *s, const char *token);

/* Ends the session for token in memory at once and copies it into out (for
 * session_revoke_persist and the logout's record). Return: 0, or -1 if the
 * token was not a live session. */
int session_revoke(struct sessions *s, const char *token, struct session *out);

/* Appends ses's revocation to the revocation file and fsyncs it, so it holds
 * after a restart. Reads only what session_store_new set, so it may run on
 * another thread (the audit writer) — also beside a call on the loop: each
 * line is one short O_APPEND write. Return: 0, or -1 with err (the
 * revocation then lasts until the daemon stops). */
int session_revoke_persist(const struct sessions *s, const struct session *ses, char *err,
                           size_t errlen);

/* "helpdesk", "admin" or "auditor". */
const char *session_role_name(enum role r);
