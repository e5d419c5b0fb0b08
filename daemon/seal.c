/*
 * seal.c — the audit's seals (see seal.h).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "ldapdesk/ascii.h"
#include "seal.h"

/* HMAC-SHA256 of msg under key into out (32 bytes). */
static int hmac(const unsigned char key[32], const char *msg, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, n, out, &len) != NULL &&
	               len == 32
	           ? 0
	           : -1;
}

int seal_key_init(struct seal_key *s, const unsigned char key[32])
{
	unsigned char id[32];

	memcpy(s->k, key, sizeof s->k);
	/* The id is a MAC too: it names the key without giving anything of it. */
	if (hmac(s->k, "key id", 6, id) == -1)
		return -1;
	ascii_hex(id, SEAL_ID_HEX / 2, s->id);
	OPENSSL_cleanse(id, sizeof id);
	return 0;
}

int seal_mac(const struct seal_key *s, int64_t first, int64_t last, const char *hash,
             char out[SEAL_HEX + 1])
{
	char msg[128];
	unsigned char mac[32];
	int n = snprintf(msg, sizeof msg, "%lld:%lld:%s", (long long)first, (long long)last, hash);

	if (n <= 0 || (size_t)n >= sizeof msg || hmac(s->k, msg, (size_t)n, mac) == -1)
		return -1;
	ascii_hex(mac, sizeof mac, out);
	return 0;
}

bool seal_matches(const struct seal_key *s, int64_t first, int64_t last, const char *hash,
                  const char *mac)
{
	char want[SEAL_HEX + 1];

	return mac != NULL && strlen(mac) == SEAL_HEX &&
	       seal_mac(s, first, last, hash, want) == 0 && CRYPTO_memcmp(want, mac, SEAL_HEX) == 0;
}
