/* SPDX-License-Identifier: BSD-3-Clause */
/* util.h - small helpers: error text, allocation, time. */
#ifndef COHORT_UTIL_H
#define COHORT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "cohort/error.h"

/* Fill err (may be NULL) with a message; always returns -1. */
int errprintf(struct cohort_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Allocation that aborts with a message on exhaustion (start-up sized data). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds since an arbitrary monotonic origin. */
double now_monotonic(void);
/* Set O_NONBLOCK / FD_CLOEXEC; -1 with errno on failure. */
int fd_set_nonblock(int fd);
int fd_set_cloexec(int fd);
/* Join dir and name with a slash into buf; -1 if it does not fit. */
int path_join(char *buf, size_t size, const char *dir, const char *name);
/* The address of the Unix-domain socket at path; -1 if path is too long
 * for one (107 bytes). */
struct sockaddr_un;
int unix_address(struct sockaddr_un *sun, const char *path);

#endif
