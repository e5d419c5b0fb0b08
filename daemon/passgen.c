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

/* A uniform index below n (n < 256) from the RNG. */
static int draw(unsigned n, unsigned *out)
{
	unsigned char b;
	unsigned limit = 256 - (256 % n);

	do {
		if (RAND_bytes(&b, 1) != 1)
			return -1;
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

int passgen_make(char *buf, size_t len)
{
	unsigned idx;

	if (len <= PASSGEN_LEN)
		return -1;
	do {
		for (size_t i = 0; i < PASSGEN_LEN; i++) {
			if (draw(sizeof(alphabet) - 1, &idx) == -1) {
				OPENSSL_cleanse(buf, len);
				return -1;
			}
			buf[i] = alphabet[idx];
		}
		buf[PASSGEN_LEN] = '\0';
	} while (!has_all_classes(buf));
	return 0;
}
