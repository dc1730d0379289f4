/* SPDX-License-Identifier: BSD-3-Clause */
/* log.c - timestamped, levelled logging shared by all Cohort programs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

static const char *log_prog = "cohort";
static char log_prefix[64];
static int log_fd = 2;
static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Set the program name and the descriptor logs go to. */
void
log_init(const char *prog, int fd)
{
	const char *env = getenv("COHORT_LOG_LEVEL");

	log_prog = prog;
	log_fd = fd;
	if (env != NULL)
		log_parse_level(env, &log_level);
}

/* Set a prefix for every line, e.g. "rank 2". */
void
log_set_prefix(const char *prefix)
{
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "");
}

/* Set the most verbose level that is written. */
void
log_set_level(enum log_level level)
{
	log_level = level;
}

/* The most verbose level that is written. */
enum log_level
log_get_level(void)
{
	return log_level;
}

/* Parse a level name. */
int
log_parse_level(const char *s, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*level = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap, const char *tail)
{
	char line[2048], stamp[32];
	struct timeval tv;
	struct tm tm;
	int n, m;

	if (level > log_level)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03d %s[%d]%s%s %s: ", stamp,
		     (int)(tv.tv_usec / 1000), log_prog, (int)getpid(),
		     log_prefix[0] ? " " : "", log_prefix, level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (tail != NULL) {
		m = snprintf(line + n, sizeof(line) - n, ": %s", tail);
		if (m > 0)
			n += m;
		if ((size_t)n >= sizeof(line) - 1)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line so lines from several processes do not mix. */
	if (write(log_fd, line, n) < 0) {
		/* Nowhere left to report it. */
	}
}

/* Write one line at the given level. */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, fmt, ap, NULL);
	va_end(ap);
}

/* Warn, appending strerror(errno). */
void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

/* Warn without errno. */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, fmt, ap, NULL);
	va_end(ap);
}

/* Log an error without errno. */
void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
}

/* Log with strerror(errno) and exit. */
void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

/* Log and exit. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

static void
libevent_log_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

/* Send libevent's own messages through this log. */
void
log_route_libevent(void)
{
	event_set_log_callback(libevent_log_cb);
}
