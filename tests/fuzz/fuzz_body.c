/*
 * fuzz_body.c — request bodies: JSON parsing (as api.c does it) and the
 * mapping of fields onto an action request.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "actions.h"
#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	struct act_request req = {.kind = ACT_GRANT};

	if (body != NULL && json_is_object(body))
		api_body_fields(body, &req);
	json_decref(body);
	return 0;
}
