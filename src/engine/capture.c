/* SPDX-License-Identifier: BSD-3-Clause */
/* capture.c - capture of stdout and stderr at the file-descriptor level.
 *
 * Descriptors 1 and 2 are replaced, for the engine's whole life, by the
 * write ends of two pipes; the I/O thread reads the other ends. Output of
 * Python, C extensions and child processes is caught alike. The engine's
 * own log goes to a duplicate of the original stderr.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "engine.h"
#include "util.h"

#define PIPE_SIZE (1 << 20)

static int
pipe_onto(int target, int *rd, struct cohort_error *err)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return errprintf(err, "cannot create capture pipe: %m");
	/* A larger pipe lets bursts of output go without blocking. */
	(void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
	if (dup2(fds[1], target) < 0) {
		close(fds[0]);
		close(fds[1]);
		return errprintf(err, "cannot redirect fd %d: %m", target);
	}
	close(fds[1]);
	if (fd_set_nonblock(fds[0]) < 0) {
		close(fds[0]);
		return errprintf(err, "cannot make capture pipe non-blocking");
	}
	*rd = fds[0];
	return 0;
}

/* Redirect fds 1 and 2 into pipes, keeping the original stderr for logs. */
int
capture_start(int *out_rd, int *err_rd, int *log_fd, struct cohort_error *err)
{
	fflush(stdout);
	fflush(stderr);
	*log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (*log_fd < 0)
		return errprintf(err, "cannot duplicate stderr: %m");
	if (pipe_onto(STDOUT_FILENO, out_rd, err) < 0 ||
	    pipe_onto(STDERR_FILENO, err_rd, err) < 0)
		return -1;
	/* Line-buffer C stdio so output reaches the pipe as it is written. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	return 0;
}
