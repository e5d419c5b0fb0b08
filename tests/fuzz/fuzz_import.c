/*
 * fuzz_import.c — historical CSV files: RFC 4180 parsing, BOM, the header,
 * dates, category inference, and (for valid files) the batch insert.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

	snprintf(dir, sizeof(dir), "%s/ldapdesk-fuzz-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (a == NULL && mkdtemp(dir) != NULL) {
		snprintf(path, sizeof(path), "%s/audit.db", dir);
		if (audit_open(path, &a, err, sizeof(err)) == -1)
			a = NULL;
		conf.categories = cats;
		conf.n_categories = sizeof(cats) / sizeof(cats[0]);
	}
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit *a = db();
	json_t *errors = NULL;
	int64_t n = 0;
	char err[256];

	if (a == NULL || size > 64 * 1024)
		return 0;
	import_csv(a, &conf, "fuzz", "uid=fuzz", "127.0.0.1", (const char *)data, size, &n, &errors,
	           err, sizeof(err));
	json_decref(errors);
	return 0;
}
