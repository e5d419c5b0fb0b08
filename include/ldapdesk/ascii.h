/*
 * ascii.h — ASCII case folding, shared by ldapdeskd and ldapdesk. uids
 * compare without ASCII case (the directory's matching rule), so the store,
 * the caches, the rate limits and the client's session files fold them the
 * same way. Bytes outside A-Z (UTF-8 included) are left alone.
 */
#pragma once

/* Folds s in place and returns it; NULL stays NULL (so a failed strdup
 * passes through). */
static inline char *ascii_lower(char *s)
{
	for (char *p = s; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}
