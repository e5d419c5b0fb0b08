/*
 * fds.c — see fds.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/resource.h>
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

long fds_raise(long want)
{
	struct rlimit rl;
	rlim_t w = (rlim_t)want;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < w) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > w ? w : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 && getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return -1;
	}
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX
	                                                                      : (long)rl.rlim_cur;
}
