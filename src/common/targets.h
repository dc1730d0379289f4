/* SPDX-License-Identifier: BSD-3-Clause */
/* targets.h - engine target sets: "all", "2", "0,2", "1-3", "0,4-6". */
#ifndef COHORT_TARGETS_H
#define COHORT_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort/error.h"

#define TARGETS_MAX_ID 1000000

/* A parsed target set: all engines, or a sorted list of distinct ids. */
struct targets {
	bool all;
	int64_t *ids; /* malloc'd, ascending, no duplicates */
	size_t n;
};

/* Parse a target spec. -1 with err naming the bad part. */
int targets_parse(const char *spec, struct targets *t, struct cohort_error *err);
void targets_clear(struct targets *t);

/* Format ascending ids compactly ("0-3", "0,2-3") into buf; truncates with
 * "..." if buf is too small. Returns buf. */
char *targets_format(const int64_t *ids, size_t n, char *buf, size_t size);

#endif
