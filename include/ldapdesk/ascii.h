/*
 * ascii.h — ASCII case folding, lower-case hex, and the FNV-1a hash of the daemon's tables,
 * shared by ldapdeskd and ldapdesk. uids compare without ASCII case (the directory's matching
 * rule), so the store, the caches, the rate limits and the client's session files fold them the
 * same way. Bytes outside A-Z (UTF-8 included) are left alone.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
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

/* in[0..n) as lower-case hex into out (2n + 1 bytes, NUL-terminated): hashes,
 * MACs, nonces and directory ids are all written so. By table, not snprintf:
 * the audit's runs for every record written. */
static inline void ascii_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
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
