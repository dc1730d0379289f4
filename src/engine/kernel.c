/* SPDX-License-Identifier: BSD-3-Clause */
/* kernel.c - what all kernels share: releasing a kernel_reply. */
#include <stdlib.h>
#include <string.h>

#include "cohort/kernel.h"

/* Free every string and the data of a reply and zero it for reuse. */
void
kernel_reply_clear(struct kernel_reply *r)
{
	if (!r)
		return;
	free(r->result);
	free(r->ename);
	free(r->evalue);
	free(r->traceback);
	free(r->data);
	memset(r, 0, sizeof(*r));
}
