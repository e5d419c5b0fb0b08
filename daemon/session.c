/*
 * session.c — signed tokens and the table of sessions seen since start.
 * The table is open addressing on the nonce, bounded at SESSION_MAX live
 * entries; it holds what a token cannot: last use, the last role check, and
 * logouts. A valid token unknown to the table (issued before a restart) is
 * taken in as a session whose roles must be re-read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "session.h"
#include "log.h"

#define SLOTS       (SESSION_MAX * 2) /* load factor at most 1/2 */
#define KEY_LEN     32
#define MAC_LEN     32
#define PAYLOAD_MAX 720

struct slot {
	bool used;
	bool revoked;
	struct session s;
};

struct sessions {
	unsigned char key[KEY_LEN];
	int idle;
	unsigned gen; /* bumped by each reload (session_config_changed) */
	char revoked_path[4096];
	struct slot slots[SLOTS];
};

/* ---- base64url ---------------------------------------------------------------- */

static const char b64tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64tab[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return o;
}

/* Return: bytes decoded, or -1 on a character outside the alphabet or overflow. */
static ssize_t b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p = in[i] != '\0' ? strchr(b64tab, in[i]) : NULL;

		if (p == NULL)
			return -1;
		acc = (acc << 6) | (uint32_t)(p - b64tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (ssize_t)o;
}

/* ---- key and revocations ---------------------------------------------------------- */

static int key_create(const char *path, unsigned char *key, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd == -1) {
		snprintf(err, errlen, "cannot create the session key %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (RAND_bytes(key, KEY_LEN) != 1 || write(fd, key, KEY_LEN) != KEY_LEN || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write the session key %s", path);
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

static int key_load(const char *path, unsigned char *key, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1 && errno == ENOENT)
		return key_create(path, key, err, errlen);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "cannot read the session key %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0 || read(fd, key, KEY_LEN) != KEY_LEN) {
		snprintf(err, errlen,
		         "the session key %s must be %d bytes and mode 0600 (delete it to make a "
		         "new one; open sessions then end)",
		         path, KEY_LEN);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static size_t slot_index(const unsigned char nonce[16])
{
	uint32_t h;

	memcpy(&h, nonce, sizeof(h));
	return h % SLOTS;
}

/* The slot holding nonce, or the free slot where it would go, or NULL. */
static struct slot *slot_get(struct sessions *s, const unsigned char nonce[16], time_t now)
{
	size_t i = slot_index(nonce);
	struct slot *free_slot = NULL;

	for (size_t probes = 0; probes < SLOTS; probes++, i = (i + 1) % SLOTS) {
		struct slot *sl = &s->slots[i];

		if (sl->used && memcmp(sl->s.nonce, nonce, 16) == 0)
			return sl;
		if (free_slot == NULL && (!sl->used || sl->s.expires <= now))
			free_slot = sl;
		if (!sl->used)
			break;
	}
	return free_slot;
}

/*
 * Revocations of tokens that have expired since are dropped as the file is
 * read: what is still live is written to PATH.tmp and renamed over it, so the
 * file holds at most one line per live session, not one per logout ever.
 */
static void revoked_load(struct sessions *s)
{
	FILE *fp = fopen(s->revoked_path, "r"), *keep;
	char hex[40], tmp[sizeof(s->revoked_path) + 4];
	long long exp;
	time_t now = time(NULL);
	bool whole = true, ok;

	if (fp == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->revoked_path);
	keep = fopen(tmp, "w");
	while (fscanf(fp, "%32s %lld", hex, &exp) == 2) {
		unsigned char nonce[16];
		struct slot *sl;

		if (exp <= now || strlen(hex) != 32)
			continue;
		if (keep != NULL)
			fprintf(keep, "%s %lld\n", hex, exp);
		for (int i = 0; i < 16; i++)
			sscanf(hex + 2 * i, "%2hhx", &nonce[i]);
		sl = slot_get(s, nonce, now);
		if (sl == NULL) {
			whole = false;
			break;
		}
		memset(sl, 0, sizeof(*sl));
		sl->used = sl->revoked = true;
		memcpy(sl->s.nonce, nonce, 16);
		sl->s.expires = (time_t)exp;
	}
	/* A malformed line (a torn append after a crash) ends fscanf early: the
	 * lines after it are not in the copy, so the copy must not replace it. */
	whole = whole && feof(fp);
	fclose(fp);
	if (keep == NULL)
		return;
	/* Replaced only by a complete copy; otherwise the old file stays (correct, longer). */
	ok = whole && fflush(keep) == 0 && fsync(fileno(keep)) == 0;
	ok = fclose(keep) == 0 && ok;
	if (!ok || rename(tmp, s->revoked_path) == -1)
		unlink(tmp);
}

/* One line per logout; fsynced, so a token ended before a power cut stays
 * ended after it. */
int session_revoke_persist(const struct sessions *s, const struct session *ses, char *err,
                           size_t errlen)
{
	char line[64];
	int n = 0, fd = open(s->revoked_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	bool ok;

	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", s->revoked_path, strerror(errno));
		return -1;
	}
	/* One write of the whole line: appends from two threads never interleave. */
	for (int i = 0; i < 16; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", ses->nonce[i]);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " %lld\n", (long long)ses->expires);
	ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
	if (!ok)
		snprintf(err, errlen, "%s: %s", s->revoked_path, strerror(errno));
	close(fd);
	return ok ? 0 : -1;
}

struct sessions *session_store_new(const char *key_file, int idle, char *err, size_t errlen)
{
	struct sessions *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->idle = idle;
	snprintf(s->revoked_path, sizeof(s->revoked_path), "%s.revoked", key_file);
	if (key_load(key_file, s->key, err, errlen) == -1) {
		session_store_free(s);
		return NULL;
	}
	revoked_load(s);
	return s;
}

void session_store_free(struct sessions *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* ---- tokens ------------------------------------------------------------------------- */

static void mac(const struct sessions *s, const char *payload, size_t n, unsigned char *out)
{
	unsigned int len = MAC_LEN;

	HMAC(EVP_sha256(), s->key, KEY_LEN, (const unsigned char *)payload, n, out, &len);
}

static int payload_format(const struct session *ses, char *buf, size_t len)
{
	char hex[33];
	int n;

	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", ses->nonce[i]);
	n = snprintf(buf, len, "v1\n%s\n%s\n%u\n%lu\n%lld\n%lld\n%s", ses->uid, ses->dn, ses->roles,
	             ses->scopes, (long long)ses->issued, (long long)ses->expires, hex);
	return n > 0 && (size_t)n < len ? n : -1;
}

/* Splits the signed payload back into a session. Return 0/-1. */
static int payload_parse(char *p, struct session *ses)
{
	char *f[8], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(p, "\n", &save); t != NULL && n < 8;
	     t = strtok_r(NULL, "\n", &save))
		f[n++] = t;
	if (n != 8 || strcmp(f[0], "v1") != 0 || strlen(f[1]) >= sizeof(ses->uid) ||
	    strlen(f[2]) >= sizeof(ses->dn) || strlen(f[7]) != 32)
		return -1;
	memset(ses, 0, sizeof(*ses));
	memcpy(ses->uid, f[1], strlen(f[1]) + 1);
	memcpy(ses->dn, f[2], strlen(f[2]) + 1);
	ses->roles = (unsigned)strtoul(f[3], NULL, 10);
	ses->scopes = strtoul(f[4], NULL, 10);
	ses->issued = (time_t)strtoll(f[5], NULL, 10);
	ses->expires = (time_t)strtoll(f[6], NULL, 10);
	for (int i = 0; i < 16; i++)
		sscanf(f[7] + 2 * i, "%2hhx", &ses->nonce[i]);
	return 0;
}

int session_create(struct sessions *s, const struct session *in, int ttl, char *token)
{
	struct session ses = *in;
	char payload[PAYLOAD_MAX];
	unsigned char sig[MAC_LEN];
	time_t now = time(NULL);
	struct slot *sl;
	size_t o;
	int n;

	if (RAND_bytes(ses.nonce, sizeof(ses.nonce)) != 1)
		return -1;
	ses.issued = ses.last_seen = ses.roles_checked = now;
	ses.expires = now + ttl;
	n = payload_format(&ses, payload, sizeof(payload));
	sl = slot_get(s, ses.nonce, now);
	if (n < 0 || sl == NULL)
		return -1;
	mac(s, payload, (size_t)n, sig);
	o = b64url_encode((const unsigned char *)payload, (size_t)n, token);
	token[o++] = '.';
	b64url_encode(sig, sizeof(sig), token + o);
	sl->used = true;
	sl->revoked = false;
	sl->s = ses;
	OPENSSL_cleanse(payload, sizeof(payload));
	return 0;
}

/* Checks the signature and decodes token into *ses. Return 0/-1. */
static int token_open(const struct sessions *s, const char *token, struct session *ses)
{
	const char *dot = token != NULL ? strchr(token, '.') : NULL;
	unsigned char payload[PAYLOAD_MAX], sig[MAC_LEN + 1], want[MAC_LEN];
	ssize_t n, m;

	if (dot == NULL || strlen(token) >= SESSION_TOKEN_MAX)
		return -1;
	n = b64url_decode(token, (size_t)(dot - token), payload, sizeof(payload) - 1);
	m = b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig));
	if (n <= 0 || m != MAC_LEN)
		return -1;
	mac(s, (const char *)payload, (size_t)n, want);
	if (CRYPTO_memcmp(sig, want, MAC_LEN) != 0)
		return -1;
	payload[n] = '\0';
	return payload_parse((char *)payload, ses);
}

struct session *session_find(struct sessions *s, const char *token)
{
	struct session ses;
	time_t now = time(NULL);
	struct slot *sl;

	if (token_open(s, token, &ses) == -1 || ses.expires <= now)
		return NULL;
	sl = slot_get(s, ses.nonce, now);
	if (sl == NULL)
		return NULL;
	if (!sl->used || memcmp(sl->s.nonce, ses.nonce, 16) != 0) {
		/* Signed by us before a restart: take it in, roles to be re-read. */
		sl->used = true;
		sl->revoked = false;
		sl->s = ses;
		sl->s.last_seen = now;
		sl->s.roles_checked = 0;
		/* Its scope bits number the sections of a file this run may not
		 * have read: never current, until re-read. */
		sl->s.roles_gen = UINT_MAX;
	}
	if (sl->revoked || sl->s.roles == 0 || now - sl->s.last_seen > s->idle)
		return NULL;
	sl->s.last_seen = now;
	return &sl->s;
}

bool session_stale(const struct sessions *s, const struct session *ses)
{
	return ses->roles_gen != s->gen || time(NULL) - ses->roles_checked >= s->idle;
}

unsigned session_gen(const struct sessions *s)
{
	return s->gen;
}

void session_config_changed(struct sessions *s)
{
	s->gen++;
}

void session_set_roles(struct sessions *s, struct session *ses, unsigned roles,
                       unsigned long scopes, unsigned gen)
{
	(void)s;
	ses->roles = roles;
	ses->scopes = scopes;
	ses->roles_checked = time(NULL);
	ses->roles_gen = gen;
}

int session_revoke(struct sessions *s, const char *token, struct session *out)
{
	struct session *ses = session_find(s, token);

	if (ses == NULL)
		return -1;
	/* The slot stays taken, marked revoked, until the token would expire. */
	((struct slot *)(void *)((char *)ses - offsetof(struct slot, s)))->revoked = true;
	*out = *ses;
	return 0;
}

void session_discard(struct sessions *s, const char *token)
{
	struct session *ses = session_find(s, token);
	struct slot *sl;

	if (ses == NULL)
		return;
	sl = (struct slot *)(void *)((char *)ses - offsetof(struct slot, s));
	sl->revoked = true;
	sl->s.expires = 0; /* free for the next login at once */
}

int session_drop(struct sessions *s, const char *token)
{
	struct session ended;
	char err[256];

	if (session_revoke(s, token, &ended) == -1)
		return -1;
	if (session_revoke_persist(s, &ended, err, sizeof(err)) == -1)
		log_warnx("session: cannot keep a logout across restarts: %s", err);
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
