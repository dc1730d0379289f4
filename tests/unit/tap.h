/* SPDX-License-Identifier: BSD-3-Clause */
/* tap.h - a tiny TAP producer for Cohort's C unit tests. */
#ifndef COHORT_TAP_H
#define COHORT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static inline int __attribute__((format(printf, 2, 3)))
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define is_int(a, b, msg) do { long long a_ = (a), b_ = (b); \
	if (!ok(a_ == b_, "%s", msg)) \
		printf("#   got %lld, expected %lld\n", a_, b_); } while (0)
#define is_str(a, b, msg) do { const char *a_ = (a), *b_ = (b); \
	if (!ok(a_ && b_ && strcmp(a_, b_) == 0, "%s", msg)) \
		printf("#   got '%s', expected '%s'\n", a_ ? a_ : "(null)", \
		       b_ ? b_ : "(null)"); } while (0)
#define diag(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d tests failed\n", tap_failed, tap_count);
	return tap_failed ? 1 : 0;
}

#endif
