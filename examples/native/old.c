/* SPDX-License-Identifier: BSD-3-Clause */
/* old.c - a plugin built for an older plugin ABI (0): must be refused. */
#define COHORT_PLUGIN_NO_MPI
#include "cohort/plugin.h"

COHORT_PLUGIN_EXPORT const int cohort_plugin_abi_version = 0;

/* Never called: the engine refuses to load this plugin. */
COHORT_PLUGIN_EXPORT int
psum(struct cohort_call *call)
{
	return 0;
}
