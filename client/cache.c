/*
 * cache.c — session files under $XDG_CACHE_HOME/ldapdesk/. Names are the
 * sanitized URL and uid plus a hash of both, so distinct servers or
 * operators never share a file. Files are private (0600, ours) or ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "ldapdesk/ascii.h"
#include "ldapdesk/wire.h"
#include "cache.h"

#define MAX_FILE   (64 * 1024)
#define NAME_PART  64
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME  UINT64_C(0x100000001b3)

static int home_dir(char *buf, size_t len, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (xdg != NULL && xdg[0] == '/')
		return snprintf(buf, len, "%s", xdg) < (int)len ? 0 : -1;
	if (home == NULL || home[0] != '/') {
		const struct passwd *pw = getpwuid(geteuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL) {
		snprintf(err, errlen, "no home directory: set HOME or XDG_CACHE_HOME");
		return -1;
	}
	return snprintf(buf, len, "%s/.cache", home) < (int)len ? 0 : -1;
}

/* A directory of ours that nobody else can read; tightened if needed. */
static int private_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s is not a directory of yours", dir);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(dir, 0700) != 0) {
		snprintf(err, errlen, "cannot make %s private: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* mkdir -p, 0700 for what it creates (XDG's mode for a missing
 * $XDG_CACHE_HOME). ~/.cache is shared with other programs: create it,
 * don't judge it. */
static int make_parents(char *path, char *err, size_t errlen)
{
	struct stat st;
	char *p = path;

	do {
		if ((p = strchr(p + 1, '/')) != NULL)
			*p = '\0';
		bool bad = stat(path, &st) != 0 && mkdir(path, 0700) != 0 && errno != EEXIST;
		if (bad)
			snprintf(err, errlen,
			         "cannot create %s: %s (set XDG_CACHE_HOME to a directory you can "
			         "write)",
			         path, strerror(errno));
		if (p != NULL)
			*p = '/';
		if (bad)
			return -1;
	} while (p != NULL);
	return 0;
}

static int cache_dir(char *buf, size_t len, char *err, size_t errlen)
{
	char base[PATH_MAX];

	if (home_dir(base, sizeof base, err, errlen) != 0 || make_parents(base, err, errlen) != 0)
		return -1;
	if (snprintf(buf, len, "%s/ldapdesk", base) >= (int)len) {
		snprintf(err, errlen, "cache directory path is too long");
		return -1;
	}
	return private_dir(buf, err, errlen);
}

static void sanitize(const char *s, char *out, size_t outlen)
{
	size_t i = 0;

	for (; s[i] != '\0' && i + 1 < outlen; i++) {
		char c = s[i];
		int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '.';
		out[i] = keep ? c : '_';
	}
	out[i] = '\0';
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		h = (h ^ *p) * FNV_PRIME;
	return (h ^ 0xff) * FNV_PRIME; /* end marker: "ab"+"c" != "a"+"bc" */
}

/* uids ignore ASCII case: HD1's session is hd1's, in one file. */
static int fold_uid(const char *user, char *out, size_t len, char *err, size_t errlen)
{
	size_t n = strlen(user);

	if (n >= len) {
		snprintf(err, errlen, "operator name is longer than %d bytes", LDAPDESK_MAX_UID);
		return -1;
	}
	snprintf(out, len, "%s", user);
	ascii_lower(out);
	return 0;
}

/* DIR/URL@UID.HASH.session (UID in lower case), or DIR/URL.HASH.last when
 * user is NULL. */
static int cache_path(const char *url, const char *user, char *buf, size_t len, char *err,
                      size_t errlen)
{
	char dir[PATH_MAX], u[NAME_PART + 1], low[LDAPDESK_MAX_UID + 1];
	uint64_t h = fnv1a(FNV_OFFSET, url);
	int w;

	if (cache_dir(dir, sizeof dir, err, errlen) != 0 ||
	    (user != NULL && fold_uid(user, low, sizeof low, err, errlen) != 0))
		return -1;
	sanitize(url, u, sizeof u);
	if (user == NULL) {
		w = snprintf(buf, len, "%s/%s.%016" PRIx64 ".last", dir, u, h);
	} else {
		char n[NAME_PART + 1];
		sanitize(low, n, sizeof n);
		h = fnv1a(h, low);
		w = snprintf(buf, len, "%s/%s@%s.%016" PRIx64 ".session", dir, u, n, h);
	}
	if (w < 0 || (size_t)w >= len) {
		snprintf(err, errlen, "cache file path is too long");
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes path through a fresh 0600 temp file and rename(2). */
static int write_private(const char *path, const char *data, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 32];

	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	(void)unlink(tmp); /* a leftover of a crashed run with our pid */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	int rc = write_all(fd, data, strlen(data));
	if (rc == 0)
		rc = fsync(fd);
	if (close(fd) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) == 0)
		return 0;
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	(void)unlink(tmp);
	return -1;
}

static int read_fd(int fd, size_t size, char **outp)
{
	char *buf = malloc(size + 1);
	size_t len = 0;

	if (buf == NULL)
		return -1;
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*outp = buf;
	return 0;
}

/* Return: 1 read into *outp (caller frees), 0 no such file, -1 with err. */
static int read_private(const char *path, char **outp, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_size > MAX_FILE) {
		snprintf(err, errlen, "ignoring %s: not a private file of yours; delete it", path);
		goto fail;
	}
	if (read_fd(fd, (size_t)st.st_size, outp) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	close(fd);
	return 1;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Reads path as a JSON object whose "url" (and "user", if given) match.
 * Return: 1 with *jp set, 0 no file, -1 with err set. */
static int load_json(const char *path, const char *url, const char *user, json_t **jp, char *err,
                     size_t errlen)
{
	char *text = NULL;
	int rc = read_private(path, &text, err, errlen);

	if (rc != 1)
		return rc;
	json_t *j = json_loads(text, 0, NULL);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	const char *u = json_string_value(json_object_get(j, "url"));
	const char *n = json_string_value(json_object_get(j, "user"));
	if (u == NULL || n == NULL || strcmp(u, url) != 0 ||
	    (user != NULL && strcasecmp(n, user) != 0)) {
		json_decref(j);
		snprintf(err, errlen, "ignoring %s: not a session file of this server", path);
		return -1;
	}
	*jp = j;
	return 1;
}

static char *dup_member(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s != NULL ? strdup(s) : NULL;
}

int cache_load(const char *url, const char *user, struct cache_session *s, char *err, size_t errlen)
{
	char path[PATH_MAX + 1];
	json_t *j = NULL;

	memset(s, 0, sizeof *s);
	if (cache_path(url, user, path, sizeof path, err, errlen) != 0)
		return -1;
	int rc = load_json(path, url, user, &j, err, errlen);
	if (rc != 1)
		return rc;
	s->url = strdup(url);
	s->user = strdup(user);
	s->token = dup_member(j, "token");
	s->expires = dup_member(j, "expires");
	json_decref(j);
	if (s->url == NULL || s->user == NULL || s->token == NULL || s->token[0] == '\0') {
		cache_session_clear(s);
		snprintf(err, errlen, "ignoring %s: it holds no token", path);
		return -1;
	}
	return 1;
}

/* Writes j to path; the text is wiped, since it may hold a token. */
static int save_json(const char *path, const json_t *j, char *err, size_t errlen)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	if (text == NULL) {
		snprintf(err, errlen, "cannot encode the session (not UTF-8?)");
		return -1;
	}
	int rc = write_private(path, text, err, errlen);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return rc;
}

int cache_save(const struct cache_session *s, bool note_last, char *err, size_t errlen)
{
	char path[PATH_MAX + 1];

	if (cache_path(s->url, s->user, path, sizeof path, err, errlen) != 0)
		return -1;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s?}", "url", s->url, "user", s->user, "token",
	                      s->token, "expires", s->expires);
	int rc = save_json(path, j, err, errlen);
	json_decref(j);
	if (rc != 0 || !note_last)
		return rc;
	if (cache_path(s->url, NULL, path, sizeof path, err, errlen) != 0)
		return -1;
	j = json_pack("{s:s, s:s}", "url", s->url, "user", s->user);
	rc = save_json(path, j, err, errlen);
	json_decref(j);
	return rc;
}

static int remove_file(const char *path, char *err, size_t errlen)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
	return -1;
}

int cache_remove(const char *url, const char *user, char *err, size_t errlen)
{
	char path[PATH_MAX + 1], last[LDAPDESK_MAX_UID + 1];

	if (cache_path(url, user, path, sizeof path, err, errlen) != 0 ||
	    remove_file(path, err, errlen) != 0)
		return -1;
	if (cache_last_user(url, last, sizeof last, err, errlen) != 1 ||
	    strcasecmp(last, user) != 0)
		return 0;
	if (cache_path(url, NULL, path, sizeof path, err, errlen) != 0)
		return -1;
	return remove_file(path, err, errlen);
}

int cache_last_user(const char *url, char *user, size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX + 1];
	json_t *j = NULL;

	if (cache_path(url, NULL, path, sizeof path, err, errlen) != 0)
		return -1;
	int rc = load_json(path, url, NULL, &j, err, errlen);
	if (rc != 1)
		return rc;
	const char *n = json_string_value(json_object_get(j, "user"));
	if (n == NULL || n[0] == '\0' || strlen(n) >= len) {
		snprintf(err, errlen, "ignoring %s: bad operator name", path);
		rc = -1;
	} else {
		memcpy(user, n, strlen(n) + 1);
	}
	json_decref(j);
	return rc;
}

void cache_session_clear(struct cache_session *s)
{
	if (s->token != NULL)
		OPENSSL_cleanse(s->token, strlen(s->token));
	free(s->token);
	free(s->url);
	free(s->user);
	free(s->expires);
	s->url = s->user = s->token = s->expires = NULL;
}
