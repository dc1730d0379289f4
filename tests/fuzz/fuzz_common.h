/* SPDX-License-Identifier: BSD-3-Clause */
/* fuzz_common.h - helpers shared by the libFuzzer targets. */
#ifndef COHORT_FUZZ_COMMON_H
#define COHORT_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

/* A broken invariant: say which, then abort() so libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz check failed at %s:%d: %s: ",    \
			        __FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
