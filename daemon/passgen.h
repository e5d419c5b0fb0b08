/*
 * passgen.h — one-time passwords from OpenSSL's RNG.
 */
#pragma once
#include <stddef.h>

#define PASSGEN_LEN 16  /* the length, unless a policy asks for more */
#define PASSGEN_MAX 128 /* the longest made, whatever a policy asks */

/* The length to make for a password policy's minimum (0: none): at least
 * PASSGEN_LEN, at most PASSGEN_MAX. */
size_t passgen_length(int policy_min);

/* Writes an n-character password (PASSGEN_LEN <= n <= PASSGEN_MAX) with
 * upper and lower case letters, digits and symbols, no look-alikes (0/O/o,
 * 1/l/I), NUL-terminated, into buf (len > n). Return: 0, or -1 if the RNG
 * failed, n is out of range or buf is short. */
int passgen_make_n(char *buf, size_t len, size_t n);

/* passgen_make_n with PASSGEN_LEN characters. */
int passgen_make(char *buf, size_t len);
