/*
 * fuzz_token.c — bearer tokens are the first thing the daemon parses from a
 * stranger: base64url, HMAC check, payload fields. Also feeds valid-looking
 * tokens signed with the fuzzer's key, so the payload parser is reached.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The store, made at the first input. One that cannot be made aborts the run:
 * returning 0 for every input would fuzz nothing and still pass. */
static struct sessions *store(void)
{
	static struct sessions *s;
	const char *tmp = getenv("TMPDIR"); /* ./dev fuzz: under build-fuzz, emptied after */
	char dir[256], path[300], err[256];

	if (s != NULL)
		return s;
	snprintf(dir, sizeof(dir), "%s/ldapdesk-fuzz-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "fuzz_token: cannot make %s: %s\n", dir, strerror(errno));
		abort();
	}
	snprintf(path, sizeof(path), "%s/key", dir);
	if ((s = session_store_new(path, 600, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_token: cannot make the session store: %s\n", err);
		abort();
	}
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sessions *s = store();
	char token[SESSION_TOKEN_MAX];
	struct session in = {.roles = ROLE_HELPDESK};

	if (size >= sizeof(token))
		return 0;
	memcpy(token, data, size);
	token[size] = '\0';
	session_find(s, token);
	/* Fields that do not fit the payload format must not break signing. */
	snprintf(in.uid, sizeof(in.uid), "%.*s", (int)(size < 64 ? size : 64), (const char *)data);
	if (session_create(s, &in, 60, token) == 0)
		session_find(s, token);
	return 0;
}
