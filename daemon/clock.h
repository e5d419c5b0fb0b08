/*
 * clock.h — time formats: stored UTC ISO 8601 with ms, the server's local
 * zone for display, LDAP GeneralizedTime. The zone is the process's TZ (set
 * once at start-up from [server] timezone).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define CLOCK_ISO_LEN 40

/* t as UTC "YYYY-MM-DDTHH:MM:SSZ" into buf (CLOCK_ISO_LEN). */
void clock_utc(time_t t, char *buf, size_t len);

/* A stored UTC time ("...Z", ms optional) shown in local time with offset,
 * e.g. "2026-11-26T09:54:33.123+08:00". Return: 0, or -1 if utc is malformed. */
int clock_local(const char *utc, char *buf, size_t len);

/* Parses a user's date or time into a stored-format UTC bound. "YYYY-MM-DD"
 * means the whole local day: its first ms when end is false, its last when
 * true. A full ISO 8601 time (with Z or ±HH:MM, or local without) starts
 * exactly; as an end it covers its last digit's unit ("…T09:00" to
 * 09:00:59.999, "…T09:00:05" to 09:00:05.999, "….5" to .599).
 * A bound before 1970 is 1970-01-01T00:00:00.000Z (nothing is stored before).
 * Return: 0, or -1 if text is neither. */
int clock_bound(const char *text, bool end, char *buf, size_t len);

/* Parses ISO 8601 (date, or time with optional zone) into *tp. Return 0/-1. */
int clock_parse_iso(const char *text, time_t *tp);

/* An end of term ("until"): a date alone is the whole day, so its last
 * second in the server's zone; a time is exact. Return 0/-1. */
int clock_parse_until(const char *text, time_t *tp);

/* Parses a hand-kept time into the stored UTC format ("…T…:…:….mmmZ", len
 * at least 25): "YYYY-MM-DD HH:MM[:SS]", "YYYY/M/D H:MM[:SS]", ISO 8601 with T
 * and an optional zone (local when none), or a date alone (local midnight);
 * impossible dates (2月30日) and years outside 1970..9999 are refused.
 * Return 0/-1. */
int clock_parse_loose(const char *text, char *out, size_t len);

/* Parses LDAP GeneralizedTime "YYYYMMDDHHMMSS[.frac]Z". Return 0/-1. */
int clock_parse_gentime(const char *text, time_t *tp);
