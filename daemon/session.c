/*
 * session.c — the session table: open addressing on the token's SHA-256,
 * bounded at SESSION_MAX entries. Expired entries are reused in place.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "session.h"

#define SLOTS (SESSION_MAX * 2) /* load factor at most 1/2 */

struct slot {
	unsigned char key[32]; /* SHA-256 of the token */
	bool used;
	struct session s;
};

struct sessions {
	struct slot slots[SLOTS];
};

struct sessions *session_store_new(void)
{
	return calloc(1, sizeof(struct sessions));
}

void session_store_free(struct sessions *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

static int token_key(const char *token, unsigned char key[32])
{
	unsigned int n = 32;

	if (token == NULL || strlen(token) != SESSION_TOKEN_LEN)
		return -1;
	return EVP_Digest(token, SESSION_TOKEN_LEN, key, &n, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static size_t slot_index(const unsigned char key[32])
{
	uint32_t h;

	memcpy(&h, key, sizeof(h));
	return h % SLOTS;
}

static bool slot_live(const struct slot *sl, time_t now)
{
	return sl->used && sl->s.expires > now;
}

/* base64url without padding: tokens travel in headers and file names. */
static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = tab[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

static size_t live_count(const struct sessions *s, time_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < SLOTS; i++)
		n += slot_live(&s->slots[i], now);
	return n;
}

int session_create(struct sessions *s, const struct session *in, int ttl, char *token)
{
	unsigned char raw[32], key[32];
	time_t now = time(NULL);
	size_t i;

	if (live_count(s, now) >= SESSION_MAX || RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	b64url(raw, sizeof(raw), token);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (token_key(token, key) == -1)
		return -1;
	for (i = slot_index(key); slot_live(&s->slots[i], now); i = (i + 1) % SLOTS)
		;
	memcpy(s->slots[i].key, key, sizeof(key));
	s->slots[i].used = true;
	s->slots[i].s = *in;
	s->slots[i].s.expires = now + ttl;
	return 0;
}

/*
 * Probing stops at a never-used slot. A slot freed by logout or expiry stays
 * "used" with a past expiry, so chains through it stay intact.
 */
static struct slot *slot_find(struct sessions *s, const char *token)
{
	unsigned char key[32];
	size_t i;

	if (token_key(token, key) == -1)
		return NULL;
	i = slot_index(key);
	for (size_t probes = 0; probes < SLOTS && s->slots[i].used; probes++, i = (i + 1) % SLOTS)
		if (CRYPTO_memcmp(s->slots[i].key, key, sizeof(key)) == 0)
			return &s->slots[i];
	return NULL;
}

const struct session *session_find(struct sessions *s, const char *token)
{
	struct slot *sl = slot_find(s, token);

	if (sl == NULL || !slot_live(sl, time(NULL)))
		return NULL;
	return &sl->s;
}

int session_drop(struct sessions *s, const char *token)
{
	struct slot *sl = slot_find(s, token);

	if (sl == NULL || !slot_live(sl, time(NULL)))
		return -1;
	sl->s.expires = 0;
	memset(sl->key, 0, sizeof(sl->key));
	return 0;
}

const char *session_role_name(enum role r)
{
	switch (r) {
	case ROLE_HELPDESK:
		return "helpdesk";
	case ROLE_ADMIN:
		return "admin";
	case ROLE_AUDITOR:
		return "auditor";
	}
	return "?";
}
