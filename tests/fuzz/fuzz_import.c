/*
 * fuzz_import.c — historical CSV files: RFC 4180 parsing, BOM, the header,
 * dates, category inference, and (for valid files) the batch insert.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config conf;

static struct audit *db(void)
{
	static struct audit *a;
	const char *tmp = getenv("TMPDIR"); /* ./dev fuzz: under build-fuzz, emptied after */
	char dir[256], path[300], err[256];
	static struct config_category cats[] = {
	    {"app-request", "应用需求单", "项"},
	    {"unlock-reset", "解锁重置密码", "次"},
	    {"todo-mail", "删除待办与邮件", "次"},
	    {"notice", "修改通知公告", "次"},
	};

	/* Made at the first input. One that cannot be made aborts the run:
	 * returning 0 for every input would fuzz nothing and still pass. */
	if (a != NULL)
		return a;
	snprintf(dir, sizeof(dir), "%s/ldapdesk-fuzz-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "fuzz_import: cannot make %s: %s\n", dir, strerror(errno));
		abort();
	}
	snprintf(path, sizeof(path), "%s/audit.db", dir);
	if (audit_open(path, &a, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_import: cannot open the audit store: %s\n", err);
		abort();
	}
	conf.categories = cats;
	conf.n_categories = sizeof(cats) / sizeof(cats[0]);
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit *a = db();
	json_t *errors = NULL;
	int64_t n = 0;
	char err[256];

	if (size > 64 * 1024)
		return 0;
	import_csv(a, &conf, "fuzz", "uid=fuzz", "127.0.0.1", (const char *)data, size, &n, &errors,
	           err, sizeof(err));
	json_decref(errors);
	return 0;
}
