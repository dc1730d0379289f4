/* SPDX-License-Identifier: BSD-3-Clause */
/* cohort/error.h - readable error text that travels with a -1 return. */
#ifndef COHORT_ERROR_H
#define COHORT_ERROR_H

/* Functions that take a struct cohort_error * fill it with a one-line,
 * human-readable reason whenever they return -1 or NULL. */
struct cohort_error {
	char text[512];
};

#endif
