/*
 * seal.h — the audit's seals. A hash chain shows an edit, a deletion or a
 * record put in the middle, but not records added at its end with correct
 * hashes (the README's own script makes them), nor, once the daemon has
 * restarted, which records it wrote. So every transaction the daemon commits
 * also stores a seal: HMAC-SHA256, under a key derived from the session key
 * (which only ldapdeskd reads), over the range of ids it wrote and the hash
 * of its last record. verify then names any record no valid seal covers.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define SEAL_HEX    64 /* a seal's MAC, lower-case hex */
#define SEAL_ID_HEX 16 /* a key's id, lower-case hex */

struct seal_key {
	unsigned char k[32];
	char id[SEAL_ID_HEX + 1]; /* names the key in each seal: another key's are not checkable */
};

/* The label the daemon derives its seal key from (session_derive). */
#define SEAL_LABEL "ldapdesk audit seal v1"

/* Fills s from 32 bytes of key (copied) and computes its id. Return 0, or -1
 * if OpenSSL failed. */
int seal_key_init(struct seal_key *s, const unsigned char key[32]);

/* The seal of records first..last whose last has hash (64 hex) into out.
 * Return 0, or -1 if OpenSSL failed. */
int seal_mac(const struct seal_key *s, int64_t first, int64_t last, const char *hash,
             char out[SEAL_HEX + 1]);

/* Whether mac is the seal of first..last and hash under s (constant time). */
bool seal_matches(const struct seal_key *s, int64_t first, int64_t last, const char *hash,
                  const char *mac);
