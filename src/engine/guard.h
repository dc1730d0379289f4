/* SPDX-License-Identifier: BSD-3-Clause */
/* guard.h - refuse MPI calls that would wait for ranks a request skips. */
#ifndef COHORT_GUARD_H
#define COHORT_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Arm the guard for a request running on the given MPI_COMM_WORLD ranks
 * (NULL: all of them, guard off; allow: the user opted out). */
void guard_begin(const int64_t *ranks, size_t n, bool allow);
/* Disarm it; the message of the first refused call, or NULL. */
const char *guard_end(void);

#endif
