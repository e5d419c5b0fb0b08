/*
 * fds.c — see fds.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fds.h"

bool fds_exhausted(void)
{
	int saved = errno;
	/* A duplicate needs no path and no file system: only a free slot. */
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	bool out;

	if (fd == -1 && errno == EBADF)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	out = fd == -1 && (errno == EMFILE || errno == ENFILE);
	if (fd != -1)
		close(fd);
	errno = saved;
	return out;
}

const char *fds_hint(void)
{
	return fds_exhausted()
	           ? "; ldapdeskd has run out of file descriptors: raise its limit (LimitNOFILE "
	             "in the systemd unit, ulimit -n), or find the clients holding connections "
	             "open"
	           : "";
}
