/*
 * passgen.c — password generation. Rejection sampling keeps every character
 * uniformly likely; a draw missing a class is discarded and redrawn.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "passgen.h"

static const char *const classes[] = {
    "ABCDEFGHJKLMNPQRSTUVWXYZ",
    "abcdefghijkmnpqrstuvwxyz",
    "23456789",
    "!#%+-=?@^_",
};

static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ"
                               "abcdefghijkmnpqrstuvwxyz"
                               "23456789"
                               "!#%+-=?@^_";

/* Random bytes are drawn a block at a time: one RAND_bytes call per byte
 * cost a getpid() each (OpenSSL's fork check) and showed in profiles. */
struct pool {
	unsigned char b[64];
	size_t used;
};

/* A uniform index below n (n < 256) from the RNG. */
static int draw(struct pool *p, unsigned n, unsigned *out)
{
	unsigned limit = 256 - (256 % n);
	unsigned char b;

	do {
		if (p->used == sizeof(p->b)) {
			if (RAND_bytes(p->b, (int)sizeof(p->b)) != 1)
				return -1;
			p->used = 0;
		}
		b = p->b[p->used++];
	} while (b >= limit);
	*out = b % n;
	return 0;
}

static bool has_all_classes(const char *pw)
{
	for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); c++)
		if (strpbrk(pw, classes[c]) == NULL)
			return false;
	return true;
}

size_t passgen_length(int policy_min)
{
	if (policy_min <= PASSGEN_LEN)
		return PASSGEN_LEN;
	return policy_min < PASSGEN_MAX ? (size_t)policy_min : PASSGEN_MAX;
}

int passgen_make_n(char *buf, size_t len, size_t n)
{
	struct pool p = {.used = sizeof(p.b)};
	unsigned idx = 0;
	int rc = 0;

	if (n < PASSGEN_LEN || n > PASSGEN_MAX || len <= n)
		return -1;
	do {
		for (size_t i = 0; i < n && rc == 0; i++) {
			rc = draw(&p, sizeof(alphabet) - 1, &idx);
			buf[i] = alphabet[idx];
		}
		buf[n] = '\0';
	} while (rc == 0 && !has_all_classes(buf));
	OPENSSL_cleanse(&p, sizeof(p));
	if (rc == -1)
		OPENSSL_cleanse(buf, len);
	return rc;
}

int passgen_make(char *buf, size_t len)
{
	return passgen_make_n(buf, len, PASSGEN_LEN);
}
