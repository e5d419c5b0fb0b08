/*
 * fuzz_query.c — what a query string and a path bring: evhttp's decoding,
 * the dates of from/to, and whether a path segment can be a uid.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evkeyvalq kv;
	struct evkeyval *e;
	char *text = malloc(size + 1), bound[CLOCK_ISO_LEN];
	size_t n = 0;
	char *dec;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(text, &kv) == 0) {
		TAILQ_FOREACH(e, &kv, next)
		{
			clock_bound(e->value, true, bound, sizeof(bound));
			dir_valid_uid(e->value);
		}
	}
	evhttp_clear_headers(&kv);
	dec = evhttp_uridecode(text, 0, &n);
	if (dec != NULL)
		dir_valid_uid(dec);
	free(dec);
	clock_bound(text, false, bound, sizeof(bound));
	free(text);
	return 0;
}
