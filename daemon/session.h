/*
 * session.h — operator sessions: opaque bearer tokens kept in memory. Only a
 * SHA-256 of each token is stored, so a memory dump does not yield tokens.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum role { ROLE_HELPDESK = 1, ROLE_ADMIN = 2, ROLE_AUDITOR = 4 };

#define SESSION_TOKEN_LEN 43 /* base64url of 32 random bytes */
#define SESSION_MAX       4096

struct sessions;

struct session {
	char uid[65];
	char dn[512];
	unsigned roles;
	time_t expires;
};

/* Return: a new empty store, or NULL on allocation failure. */
struct sessions *session_store_new(void);
void session_store_free(struct sessions *s);

/* Creates a session lasting ttl seconds; writes the token (NUL-terminated)
 * into token (SESSION_TOKEN_LEN + 1 bytes). Return: 0, or -1 when the store
 * is full of live sessions or the RNG failed. */
int session_create(struct sessions *s, const struct session *in, int ttl, char *token);

/* The live session for token, or NULL (unknown, expired or malformed). The
 * pointer is valid until the next call that changes the store. */
const struct session *session_find(struct sessions *s, const char *token);

/* Ends the session for token. Return: 0, or -1 if there was none. */
int session_drop(struct sessions *s, const char *token);

/* Role names for JSON: writes e.g. "helpdesk,admin" style names via cb. */
const char *session_role_name(enum role r);
