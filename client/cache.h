/*
 * cache.h — the session cache: $XDG_CACHE_HOME/ldapdesk/ (else
 * ~/.cache/ldapdesk/, missing parents created 0700), directory 0700, one
 * 0600 JSON file per server and operator (uid's ASCII case ignored)
 * {"url","user","token","expires"}, plus a note of the operator who last
 * logged in to each server. Passwords never come here.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* A cached session. All strings are owned; cache_session_clear frees them
 * and wipes the token. */
struct cache_session {
	char *url;
	char *user;
	char *token;
	char *expires; /* may be NULL */
};

/* Reads the session of user at url into *s. Return: 1 found, 0 none, -1 with
 * err set (unreadable, unsafe permissions, not ours, malformed). */
int cache_load(const char *url, const char *user, struct cache_session *s, char *err,
               size_t errlen);

/* Writes s (temp file created 0600 with O_EXCL, then renamed) and, when
 * note_last, notes s->user as the last operator at s->url (the one commands
 * without LDAPDESK_USER act as). Return: 0, or -1 with err set. */
int cache_save(const struct cache_session *s, bool note_last, char *err, size_t errlen);

/* Deletes user's session at url, and the last-operator note if it names
 * user. A missing file is fine. Return: 0, or -1 with err set. */
int cache_remove(const char *url, const char *user, char *err, size_t errlen);

/* Copies the operator who last logged in to url into user (len bytes).
 * Return: 1 found, 0 none, -1 with err set. */
int cache_last_user(const char *url, char *user, size_t len, char *err, size_t errlen);

/* Frees the strings of s, wiping the token first. */
void cache_session_clear(struct cache_session *s);
