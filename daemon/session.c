/*
 * session.c — signed tokens and the table of sessions seen since start.
 * The table is open addressing on the nonce, bounded at SESSION_MAX live
 * entries, SESSION_PER_OPERATOR of one operator; it holds what a token
 * cannot: last use and the last role check. A token is good only while its
 * session is in the table: a logout, an idle period, an eviction or an ended
 * operator frees the slot, and the token is refused from then on. A stop
 * (SIGTERM) saves the live sessions' last use to KEY_FILE.sessions, which the
 * next start reads and empties: sessions go on across a restart, idle time
 * included, and none comes back after a crash (operators log in again).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>

#include "ldapdesk/ascii.h"
#include "session.h"
#include "log.h"

#define SLOTS (SESSION_MAX * 2) /* load factor at most 1/2 */
_Static_assert(SLOTS <= UINT16_MAX + 1, "list holds slot numbers as uint16_t");
#define KEY_LEN     32
#define MAC_LEN     32
#define PAYLOAD_MAX 720

/* A slot stays used once taken (the probe chains run through it); it is
 * free again when its session is not live (expires 0 when ended). */
struct slot {
	bool loaded; /* read from the saved file: the token not seen yet (uid, roles unknown) */
	unsigned long long use_seq; /* sessions->uses when last used: the least recent ends first */
	struct session s;
};

/* Operators whose sessions were ended (session_end_operator), newest last:
 * a login under way then must not make a session after it. */
#define ENDED_KEPT 64

struct sessions {
	unsigned char key[KEY_LEN];
	/* HMAC-SHA256 keyed once (mac_start): HMAC() fetched the algorithm and
	 * set the key again for every token, 1.9 us against 0.4. */
	EVP_MAC_CTX *mac;
	int idle;
	unsigned long long ended_seq; /* session_end_operator calls so far */
	char ended[ENDED_KEPT][sizeof(((struct session *)0)->dn)]; /* their DNs, a ring */
	unsigned gen;            /* bumped by each reload (session_config_changed) */
	unsigned long long uses; /* a clock of uses finer than last_seen's seconds */
	char saved_path[4096];
	/* Whether each slot was ever taken (the probe chains run through it),
	 * apart from the slots. And the slots that may hold a session, in the
	 * order taken (listed[] marks them): the walks (every login's
	 * make_room, every reset's session_end_operator, the save) go through
	 * these only, and list_prune drops those past their expiry or ended
	 * (expires 0), which no session ever leaves. Walking all 8,192 slots
	 * was ~75,000 instructions, 14 % of a reset's; reading all 5 MiB of
	 * slots also made this kernel map every page. */
	bool used[SLOTS];
	bool listed[SLOTS];
	uint16_t list[SLOTS];
	size_t n_list;
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

/* The value of a base64url digit, or -1. By range, not strchr over the
 * alphabet: every request's token passes here. */
static int b64url_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

/* Return: bytes decoded, or -1 on a character outside the alphabet or overflow. */
static ssize_t b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(in[i]);

		if (v == -1)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
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

/* A nonce written as 32 hex digits (hex_nonce) back into its 16 bytes. */
static bool nonce_parse(const char *hex, unsigned char nonce[16])
{
	size_t len = 0;

	return strlen(hex) == 32 && OPENSSL_hexstr2buf_ex(nonce, 16, &len, hex, '\0') == 1 &&
	       len == 16;
}

/* ---- key and saved sessions ------------------------------------------------------- */

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

static bool slot_used(const struct sessions *s, const struct slot *sl)
{
	return s->used[sl - s->slots];
}

/* Marks sl taken for good (the probe chains run through it) and lists it
 * for the walks. */
static void slot_take(struct sessions *s, struct slot *sl)
{
	size_t i = (size_t)(sl - s->slots);

	s->used[i] = true;
	if (!s->listed[i]) {
		s->listed[i] = true;
		s->list[s->n_list++] = (uint16_t)i;
	}
}

/* Drops from the list the slots whose session has expired or ended: an
 * expiry is never moved later, so none of them lives again until a new
 * session takes the slot (slot_take lists it anew). Idle sessions stay
 * listed: a longer idle period after a reload could make them live. */
static void list_prune(struct sessions *s, time_t now)
{
	size_t kept = 0;

	for (size_t k = 0; k < s->n_list; k++) {
		uint16_t i = s->list[k];

		if (s->slots[i].s.expires > now)
			s->list[kept++] = i;
		else
			s->listed[i] = false;
	}
	s->n_list = kept;
}

static bool live(const struct sessions *s, const struct slot *sl, time_t now)
{
	return slot_used(s, sl) && sl->s.expires > now && now - sl->s.last_seen <= s->idle;
}

/* The slot holding nonce (live or not), or the free slot where it would go,
 * or NULL. */
static struct slot *slot_get(struct sessions *s, const unsigned char nonce[16], time_t now)
{
	size_t i = slot_index(nonce);
	struct slot *free_slot = NULL;

	for (size_t probes = 0; probes < SLOTS; probes++, i = (i + 1) % SLOTS) {
		struct slot *sl = &s->slots[i];

		if (!s->used[i])
			return free_slot != NULL ? free_slot : sl;
		if (memcmp(sl->s.nonce, nonce, 16) == 0)
			return sl;
		if (free_slot == NULL && !live(s, sl, now))
			free_slot = sl;
	}
	return free_slot;
}

static void hex_nonce(const unsigned char nonce[16], char hex[33])
{
	ascii_hex(nonce, 16, hex);
}

/* One saved session: "NONCE LAST_SEEN EXPIRES DN". The DN lets an ended
 * operator's sessions go before their tokens are seen again. */
static void saved_take(struct sessions *s, const char *line, time_t now)
{
	char hex[33], dn[sizeof(((struct session *)0)->dn)];
	long long seen, exp;
	unsigned char nonce[16];
	struct slot *sl;

	_Static_assert(sizeof(dn) == 512, "the %511 below");
	dn[0] = '\0';
	/* The file is the daemon's own (0600), but its numbers are checked all
	 * the same: a last use in the future would never go idle. A line
	 * without its end was torn by a crash during the save: its DN may be
	 * cut, and the operator's end could then not find it. */
	if (strchr(line, '\n') == NULL ||
	    sscanf(line, "%32s %lld %lld %511[^\n]", hex, &seen, &exp, dn) != 4 || exp <= now ||
	    exp > now + SESSION_TTL_MAX || seen > now + 60 || seen < now - s->idle)
		return;
	if (!nonce_parse(hex, nonce) || (sl = slot_get(s, nonce, now)) == NULL || live(s, sl, now))
		return;
	memset(sl, 0, sizeof(*sl));
	slot_take(s, sl);
	sl->loaded = true;
	memcpy(sl->s.nonce, nonce, 16);
	sl->s.last_seen = (time_t)seen;
	sl->s.expires = (time_t)exp;
	snprintf(sl->s.dn, sizeof(sl->s.dn), "%s", dn);
}

/*
 * Reads the sessions the last stop saved (at most SESSION_MAX lines). The
 * file is emptied once the start has succeeded (session_store_started): a
 * start refused later keeps them for the next try.
 */
static int saved_load(struct sessions *s, char *err, size_t errlen)
{
	int fd = open(s->saved_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *fp;
	char line[640];
	time_t now = time(NULL);

	if (fd == -1 || (fp = fdopen(fd, "r+")) == NULL) {
		int e = errno;

		snprintf(err, errlen, "%s: %s%s", s->saved_path, strerror(e),
		         e == ELOOP || e == EISDIR
		             ? " (the daemon keeps its saved sessions there: remove it)"
		             : " (the daemon's user must be able to write it and its directory)");
		if (fd != -1)
			close(fd);
		return -1;
	}
	for (size_t n = 0; n < SESSION_MAX && fgets(line, sizeof(line), fp) != NULL; n++)
		saved_take(s, line, now);
	fclose(fp);
	return 0;
}

int session_store_started(struct sessions *s, char *err, size_t errlen)
{
	int fd = open(s->saved_path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	bool ok = fd != -1 && ftruncate(fd, 0) == 0 && fsync(fd) == 0;

	if (!ok)
		snprintf(err, errlen, "%s: cannot empty it: %s", s->saved_path, strerror(errno));
	if (fd != -1)
		close(fd);
	return ok ? 0 : -1;
}

int session_store_save(struct sessions *s, char *err, size_t errlen)
{
	int fd = open(s->saved_path, O_WRONLY | O_TRUNC | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *fp = fd != -1 ? fdopen(fd, "w") : NULL;
	time_t now = time(NULL);
	size_t n = 0;
	bool ok;

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", s->saved_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	for (size_t k = 0; k < s->n_list; k++) {
		const struct slot *sl = &s->slots[s->list[k]];
		char hex[33];

		if (!live(s, sl, now) || (!sl->loaded && sl->s.roles == 0))
			continue;
		hex_nonce(sl->s.nonce, hex);
		fprintf(fp, "%s %lld %lld %s\n", hex, (long long)sl->s.last_seen,
		        (long long)sl->s.expires, sl->s.dn);
		n++;
	}
	ok = !ferror(fp) && fflush(fp) == 0 && fsync(fd) == 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok) {
		snprintf(err, errlen, "%s: %s", s->saved_path, strerror(errno));
		return -1;
	}
	log_debug("session: %zu live sessions saved to %s", n, s->saved_path);
	return 0;
}

static int mac_start(struct sessions *s, char *err, size_t errlen)
{
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};

	s->mac = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
	EVP_MAC_free(hmac); /* the context holds its own reference */
	if (s->mac == NULL || EVP_MAC_init(s->mac, s->key, KEY_LEN, params) != 1) {
		snprintf(err, errlen, "cannot set up HMAC-SHA256 for session tokens (OpenSSL)");
		return -1;
	}
	return 0;
}

struct sessions *session_store_new(const char *key_file, int idle, char *err, size_t errlen)
{
	struct sessions *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->idle = idle;
	snprintf(s->saved_path, sizeof(s->saved_path), "%s.sessions", key_file);
	if (key_load(key_file, s->key, err, errlen) == -1 || mac_start(s, err, errlen) == -1 ||
	    saved_load(s, err, errlen) == -1) {
		session_store_free(s);
		return NULL;
	}
	/* Logouts of earlier versions: their tokens are not in the saved file,
	 * so they are refused anyway. */
	{
		char old[sizeof(s->saved_path)];

		snprintf(old, sizeof(old), "%s.revoked", key_file);
		(void)unlink(old);
	}
	return s;
}

void session_store_free(struct sessions *s)
{
	if (s == NULL)
		return;
	EVP_MAC_CTX_free(s->mac);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* ---- tokens ------------------------------------------------------------------------- */

/* HMAC of payload under the store's key. Return: 0, or -1 (OpenSSL failed).
 * It restarts the store's one HMAC context, const or not: callers must all
 * run on one thread (the loop's, today). */
static int mac(const struct sessions *s, const char *payload, size_t n, unsigned char *out)
{
	size_t len = 0;

	/* A NULL key starts again under the key set by mac_start. */
	if (EVP_MAC_init(s->mac, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(s->mac, (const unsigned char *)payload, n) != 1 ||
	    EVP_MAC_final(s->mac, out, &len, MAC_LEN) != 1 || len != MAC_LEN)
		return -1;
	return 0;
}

int session_derive(const struct sessions *s, const char *label, unsigned char out[32])
{
	return MAC_LEN == 32 ? mac(s, label, strlen(label), out) : -1;
}

static int payload_format(const struct session *ses, char *buf, size_t len)
{
	char hex[33];
	int n;

	hex_nonce(ses->nonce, hex);
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
	    strlen(f[2]) >= sizeof(ses->dn))
		return -1;
	memset(ses, 0, sizeof(*ses));
	memcpy(ses->uid, f[1], strlen(f[1]) + 1);
	memcpy(ses->dn, f[2], strlen(f[2]) + 1);
	ses->roles = (unsigned)strtoul(f[3], NULL, 10);
	ses->scopes = strtoul(f[4], NULL, 10);
	ses->issued = (time_t)strtoll(f[5], NULL, 10);
	ses->expires = (time_t)strtoll(f[6], NULL, 10);
	return nonce_parse(f[7], ses->nonce) ? 0 : -1;
}

/*
 * Room for one more session of uid: at most SESSION_MAX live in all, and
 * SESSION_PER_OPERATOR of one operator — its least recently used one ends to
 * make room, so logging in again and again (a script, or a flood) costs that
 * operator its oldest session, never another operator a login.
 */
static int make_room(struct sessions *s, const char *uid, time_t now)
{
	struct slot *oldest = NULL;
	size_t total = 0, mine = 0;

	list_prune(s, now);
	for (size_t k = 0; k < s->n_list; k++) {
		struct slot *sl = &s->slots[s->list[k]];

		if (!live(s, sl, now))
			continue;
		total++;
		if (sl->loaded || strcasecmp(sl->s.uid, uid) != 0)
			continue;
		mine++;
		if (oldest == NULL || sl->use_seq < oldest->use_seq)
			oldest = sl;
	}
	if (mine >= SESSION_PER_OPERATOR && oldest != NULL) {
		log_info("session: %s has %d sessions: its least recently used one ends", uid,
		         SESSION_PER_OPERATOR);
		oldest->s.expires = 0;
		total--;
	}
	return total < SESSION_MAX ? 0 : -1;
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

	ses.issued = ses.last_seen = ses.roles_checked = now;
	ses.expires = now + ttl;
	if (RAND_bytes(ses.nonce, sizeof(ses.nonce)) != 1 ||
	    (n = payload_format(&ses, payload, sizeof(payload))) < 0 ||
	    mac(s, payload, (size_t)n, sig) == -1) {
		log_warnx("session: cannot make a token for %s (OpenSSL's random bytes or HMAC "
		          "failed, or the payload is too long)",
		          in->uid);
		return -2;
	}
	/* Room made last: a login failing before it ends no other session. */
	if (make_room(s, in->uid, now) == -1 || (sl = slot_get(s, ses.nonce, now)) == NULL)
		return -1;
	o = b64url_encode((const unsigned char *)payload, (size_t)n, token);
	token[o++] = '.';
	b64url_encode(sig, sizeof(sig), token + o);
	slot_take(s, sl);
	sl->loaded = false;
	sl->use_seq = ++s->uses;
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
	if (mac(s, (const char *)payload, (size_t)n, want) == -1 ||
	    CRYPTO_memcmp(sig, want, MAC_LEN) != 0)
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
	/* Not in the table (ended, evicted, or from before a crash): refused. */
	if (sl == NULL || !live(s, sl, now) || memcmp(sl->s.nonce, ses.nonce, 16) != 0)
		return NULL;
	if (sl->loaded) {
		/* Saved by the last stop, seen again: the token gives the rest.
		 * Its scope bits number the sections of a file this run may not
		 * have read: never current, until its roles are re-read. */
		time_t seen = sl->s.last_seen;

		sl->s = ses;
		sl->s.last_seen = seen;
		sl->s.roles_checked = 0;
		sl->s.roles_gen = UINT_MAX;
		sl->loaded = false;
	}
	if (sl->s.roles == 0)
		return NULL;
	sl->s.last_seen = now;
	sl->use_seq = ++s->uses;
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
	if (roles == 0)
		ses->expires = 0; /* ended: its slot is free */
}

int session_revoke(struct sessions *s, const char *token, struct session *out)
{
	struct session *ses = session_find(s, token);

	if (ses == NULL)
		return -1;
	*out = *ses;
	ses->expires = 0; /* its token is refused from now on; the slot is free */
	return 0;
}

void session_discard(struct sessions *s, const char *token)
{
	struct session *ses = session_find(s, token);

	if (ses != NULL)
		ses->expires = 0; /* free for the next login at once */
}

unsigned long long session_ended_mark(const struct sessions *s)
{
	return s->ended_seq;
}

bool session_ended_since(const struct sessions *s, const char *dn, unsigned long long mark)
{
	/* More ended since than are kept: cannot tell, so yes (the login is
	 * refused and tried again). */
	if (s->ended_seq - mark > ENDED_KEPT)
		return true;
	for (unsigned long long q = mark + 1; q <= s->ended_seq; q++)
		if (strcasecmp(s->ended[q % ENDED_KEPT], dn) == 0)
			return true;
	return false;
}

size_t session_end_operator(struct sessions *s, const char *dn)
{
	time_t now = time(NULL);
	size_t n = 0;
	char *e = s->ended[++s->ended_seq % ENDED_KEPT];

	snprintf(e, sizeof(s->ended[0]), "%s", dn);
	list_prune(s, now);
	for (size_t k = 0; k < s->n_list; k++) {
		struct slot *sl = &s->slots[s->list[k]];

		if (live(s, sl, now) && strcasecmp(sl->s.dn, dn) == 0) {
			sl->s.expires = 0;
			n++;
		}
	}
	return n;
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
