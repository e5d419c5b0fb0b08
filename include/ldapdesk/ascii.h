/*
 * ascii.h — ASCII case folding, and the FNV-1a hash of the daemon's tables,
 * shared by ldapdeskd and ldapdesk. uids compare without ASCII case (the directory's matching
 * rule), so the store, the caches, the rate limits and the client's session files fold them the
 * same way. Bytes outside A-Z (UTF-8 included) are left alone.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* FNV-1a of s, from h (the offset basis 2166136261, a seed mixed in if
 * wanted); with fold, A-Z hash as a-z, so uids differing in ASCII case
 * meet in one bucket. */
static inline uint32_t ascii_fnv1a(const char *s, uint32_t h, bool fold)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		h = (h ^ (fold && *p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p)) * 16777619u;
	return h;
}

/* Folds s in place and returns it; NULL stays NULL (so a failed strdup
 * passes through). */
static inline char *ascii_lower(char *s)
{
	for (char *p = s; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}
