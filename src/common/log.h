/* SPDX-License-Identifier: BSD-3-Clause */
/* log.h - timestamped, levelled logging shared by all Cohort programs. */
#ifndef COHORT_LOG_H
#define COHORT_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Set the program name, the prefix (e.g. "rank 2", may be NULL) and the fd. */
void log_init(const char *prog, int fd);
void log_set_prefix(const char *prefix);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 if unknown. */
int log_parse_level(const char *s, enum log_level *level);
/* Route libevent's internal messages into our log. */
void log_route_libevent(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* log_warn appends strerror(errno); log_warnx does not. */
#define log_debug(...) do { if (log_get_level() >= LOG_LEVEL_DEBUG) \
	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_get_level() >= LOG_LEVEL_INFO) \
	log_msg(LOG_LEVEL_INFO, __VA_ARGS__); } while (0)
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fatal: log with strerror and exit(1); fatalx: without strerror. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
