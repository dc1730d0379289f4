/* SPDX-License-Identifier: BSD-3-Clause */
/* crash.c - a plugin whose function segfaults, for the dead-engine test. */
#include <stddef.h>

#define COHORT_PLUGIN_NO_MPI
#include "cohort/plugin.h"

COHORT_PLUGIN_DECLARE();

/* A volatile pointer the compiler cannot prove NULL: a real load. */
static int *volatile nowhere;

/* crash(): dereference NULL, killing the engine with SIGSEGV. */
COHORT_PLUGIN_EXPORT int
crash(struct cohort_call *call)
{
	return cohort_call_return_int(call, *nowhere);
}
