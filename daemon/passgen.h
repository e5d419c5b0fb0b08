/*
 * passgen.h — one-time passwords from OpenSSL's RNG.
 */
#pragma once
#include <stddef.h>

#define PASSGEN_LEN 16

/* Writes a PASSGEN_LEN-character password with upper and lower case letters,
 * digits and symbols, no look-alikes (0/O/o, 1/l/I), NUL-terminated, into buf
 * (len > PASSGEN_LEN). Return: 0, or -1 if the RNG failed or buf is short. */
int passgen_make(char *buf, size_t len);
