/*
 * fuzz_config.c — the INI configuration: libinih through our line reader
 * (length limit, line numbers) and the key table.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char path[64], err[512];
	int fd = memfd_create("ldapdesk-config", MFD_CLOEXEC);

	/* Without the file no input reaches the parser: abort, not a quiet 0. */
	if (fd == -1 || write(fd, data, size) != (ssize_t)size) {
		fprintf(stderr, "fuzz_config: cannot write the input to a memfd: %s\n",
		        strerror(errno));
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (config_load(path, &c, err, sizeof(err)) == 0)
		config_free(c);
	close(fd);
	return 0;
}
