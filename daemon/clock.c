/*
 * clock.c — conversions between the time formats the daemon meets. Pure
 * functions over time_t; the local zone comes from TZ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

void clock_utc(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Milliseconds from ".ddd…" at *sp (more digits ignored, fewer scaled);
 * advances *sp. No dot: 0. */
static int parse_ms(const char **sp)
{
	const char *s = *sp;
	int ms = 0, digits = 0;

	if (*s != '.')
		return 0;
	for (s++; *s >= '0' && *s <= '9'; s++, digits++)
		if (digits < 3)
			ms = ms * 10 + (*s - '0');
	for (; digits > 0 && digits < 3; digits++)
		ms *= 10;
	*sp = s;
	return ms;
}

static int two_digits_time(const char *s, int *h, int *m, int *sec, int *ms, const char **restp)
{
	int n = 0;

	*sec = 0;
	*ms = 0;
	if (sscanf(s, "%2d:%2d%n", h, m, &n) != 2 || n < 4)
		return -1;
	s += n;
	if (*s == ':') {
		if (sscanf(s, ":%2d%n", sec, &n) != 1 || n != 3)
			return -1;
		s += n;
	}
	*ms = parse_ms(&s);
	*restp = s;
	return 0;
}

/* Zone suffix: "" (local), "Z", "+HH:MM", "+HHMM". */
static int zone_offset(const char *s, bool *localp, long *offp)
{
	int hh, mm, n = 0;

	*localp = *s == '\0';
	*offp = 0;
	if (*s == '\0' || strcmp(s, "Z") == 0)
		return 0;
	if ((*s != '+' && *s != '-') ||
	    ((sscanf(s + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5) &&
	     (sscanf(s + 1, "%2d%2d%n", &hh, &mm, &n) != 2 || n != 4)))
		return -1;
	if (s[1 + n] != '\0' || hh > 23 || mm > 59)
		return -1;
	*offp = (hh * 3600L + mm * 60L) * (*s == '-' ? -1 : 1);
	return 0;
}

/*
 * "YYYY-MM-DD HH:MM[:SS]", "YYYY/M/D H:MM[:SS]", ISO 8601 with T and an
 * optional zone (local when none), or a date alone (midnight local), into
 * the stored UTC format. Return 0/-1.
 */
int clock_parse_loose(const char *s, char *out, size_t len)
{
	struct tm tm = {0}, chk;
	int y, mo, d, n = 0, h = 0, mi = 0, sec = 0, ms = 0;
	char sep;
	const char *rest = "";
	bool local;
	long off;
	time_t t;

	if (sscanf(s, "%4d%c%2d", &y, &sep, &mo) != 3 || (sep != '-' && sep != '/'))
		return -1;
	if (sscanf(s, sep == '-' ? "%4d-%2d-%2d%n" : "%4d/%2d/%2d%n", &y, &mo, &d, &n) != 3)
		return -1;
	s += n;
	if ((*s == ' ' || *s == 'T') && two_digits_time(s + 1, &h, &mi, &sec, &ms, &rest) == -1)
		return -1;
	if (*s != '\0' && *s != ' ' && *s != 'T')
		return -1;
	if (zone_offset(rest, &local, &off) == -1 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 60 || y < 1970 || y > 9999)
		return -1;
	tm = (struct tm){.tm_year = y - 1900,
	                 .tm_mon = mo - 1,
	                 .tm_mday = d,
	                 .tm_hour = h,
	                 .tm_min = mi,
	                 .tm_sec = sec,
	                 .tm_isdst = -1};
	t = local ? mktime(&tm) : timegm(&tm) - off;
	if (t == (time_t)-1 || (tm.tm_mday != d && sec < 60)) /* 2月30日 normalised away */
		return -1;
	gmtime_r(&t, &chk);
	return strftime(out, len, "%Y-%m-%dT%H:%M:%S", &chk) == 19 && len > 24 &&
	               snprintf(out + 19, len - 19, ".%03dZ", ms) == 5
	           ? 0
	           : -1;
}

/* 1..28/29/30/31 as the month has: mktime would turn 2026-06-31 into 1 July. */
static bool day_exists(int year, int mon1, int day)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (mon1 < 1 || mon1 > 12 || day < 1)
		return false;
	return day <= days[mon1 - 1] + (mon1 == 2 && leap);
}

/* *unit: the ms the text's last digit stands for (60000 without seconds,
 * 1000 without a fraction, 100, 10 or 1 with one). */
static int parse_fields(const char *s, struct tm *tm, int *ms, int *unit, const char **restp)
{
	int n = 0;

	memset(tm, 0, sizeof(*tm));
	*ms = 0;
	*unit = 60000;
	/* ISO 8601 lets the seconds go ("2026-11-27T09:00"): they are then 0. */
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d%n", &tm->tm_year, &tm->tm_mon, &tm->tm_mday,
	           &tm->tm_hour, &tm->tm_min, &n) != 5 ||
	    n != 16)
		return -1;
	if (s[16] == ':') {
		n = 0;
		if (sscanf(s + 17, "%2d%n", &tm->tm_sec, &n) != 1 || n != 2)
			return -1;
		n = 19;
	}
	if (!day_exists(tm->tm_year, tm->tm_mon, tm->tm_mday) || tm->tm_hour > 23 ||
	    tm->tm_min > 59 || tm->tm_sec > 60)
		return -1;
	s += n;
	if (n == 19) {
		const char *frac = s;

		*ms = parse_ms(&s);
		*unit = s - frac <= 1 ? 1000 : s - frac == 2 ? 100 : s - frac == 3 ? 10 : 1;
	}
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	*restp = s;
	return 0;
}

static int parse_time_unit(const char *text, time_t *tp, int *msp, int *unit)
{
	struct tm tm;
	const char *rest;
	long off;
	bool local;

	if (parse_fields(text, &tm, msp, unit, &rest) == -1 ||
	    zone_offset(rest, &local, &off) == -1)
		return -1;
	if (local) {
		tm.tm_isdst = -1;
		*tp = mktime(&tm);
	} else {
		*tp = timegm(&tm) - off;
	}
	return *tp == (time_t)-1 ? -1 : 0;
}

static int parse_time_ms(const char *text, time_t *tp, int *msp)
{
	int unit;

	return parse_time_unit(text, tp, msp, &unit);
}

static int parse_date(const char *text, struct tm *tm)
{
	int n = 0;

	memset(tm, 0, sizeof(*tm));
	if (sscanf(text, "%4d-%2d-%2d%n", &tm->tm_year, &tm->tm_mon, &tm->tm_mday, &n) != 3 ||
	    n != 10 || text[10] != '\0' || !day_exists(tm->tm_year, tm->tm_mon, tm->tm_mday))
		return -1;
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	tm->tm_isdst = -1;
	return 0;
}

int clock_parse_iso(const char *text, time_t *tp)
{
	struct tm tm;
	int ms;

	if (parse_date(text, &tm) == 0) {
		*tp = mktime(&tm);
		return *tp == (time_t)-1 ? -1 : 0;
	}
	return parse_time_ms(text, tp, &ms);
}

static int bound(const char *text, bool end, bool whole, char *buf, size_t len);

int clock_parse_until(const char *text, time_t *tp)
{
	char end[CLOCK_ISO_LEN];
	int ms;

	/* A term's time is exact; a date lasts to its end. */
	if (bound(text, true, false, end, sizeof(end)) == -1)
		return -1;
	return parse_time_ms(end, tp, &ms);
}

static void format_ms(time_t t, int ms, char *buf, size_t len)
{
	struct tm tm;
	char date[32];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", date, ms);
}

static int bound(const char *text, bool end, bool whole, char *buf, size_t len)
{
	struct tm tm;
	time_t t;
	int ms = 0, unit = 1;

	if (parse_date(text, &tm) == 0) {
		if (end) {
			tm.tm_mday += 1; /* mktime normalises; the day's end is next day - 1 ms */
		}
		t = mktime(&tm);
		if (t == (time_t)-1)
			return -1;
		if (end) {
			t -= 1;
			ms = 999;
		}
	} else if (parse_time_unit(text, &t, &ms, &unit) == -1) {
		return -1;
	} else if (end && whole && unit > 1) {
		/* An inclusive end given to the second (or minute) covers all of
		 * it, as a date covers its day: a time copied from a report, which
		 * shows seconds, finds the events of that second. */
		long long last = (long long)ms + unit - 1;

		t += (time_t)(last / 1000);
		ms = (int)(last % 1000);
	}
	/* Nothing is stored before 1970 (import refuses it), and a bound with a
	 * year below 1000 would not sort as text among stored times: an earlier
	 * bound is 1970's first ms, which selects the same records. */
	if (t < 0) {
		t = 0;
		ms = 0;
	}
	format_ms(t, ms, buf, len);
	return 0;
}

int clock_bound(const char *text, bool end, char *buf, size_t len)
{
	return bound(text, end, true, buf, len);
}

int clock_local(const char *utc, char *buf, size_t len)
{
	struct tm tm;
	time_t t;
	int ms;
	char date[32], zone[8];

	if (parse_time_ms(utc, &t, &ms) == -1)
		return -1;
	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm); /* +0800 */
	snprintf(buf, len, "%s.%03d%.3s:%.2s", date, ms, zone, zone + 3);
	return 0;
}

int clock_parse_gentime(const char *text, time_t *tp)
{
	struct tm tm = {0};
	int n = 0;

	if (sscanf(text, "%4d%2d%2d%2d%2d%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	           &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 14)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*tp = timegm(&tm);
	return 0;
}
