/* SPDX-License-Identifier: BSD-3-Clause */
/* psum.c - the parallel sum of IPython's MPI guide, as a native plugin.
 *
 *   px 'load ./libpsum.so'
 *   scatter a @data.npy
 *   px 's = psum(a)'
 *   px 's'
 *
 * Each engine sums its local part of a float64 array; MPI_Allreduce on the
 * engine's communicator combines the sums, so every rank gets the global
 * total. Built by CMake into libpsum.so (and, with PSUM_FORTRAN and
 * psum_f.f90, into libpsumf.so, which adds the Fortran psum_f).
 */
#include <mpi.h>

#include "cohort/plugin.h"

COHORT_PLUGIN_DECLARE();

/* psum(a): the sum of the float64 array a over all ranks, a float. */
COHORT_PLUGIN_EXPORT int
psum(struct cohort_call *call)
{
	struct cohort_array a;
	MPI_Comm comm = cohort_call_comm(call);
	double local = 0.0, total;
	const double *x;
	size_t i;
	int rc;

	/* Check everything before the collective: a rank that returns early
	 * would leave the others waiting in MPI_Allreduce. */
	if (call->argc != 1)
		return cohort_call_error(call,
		                         "TypeError: psum() takes 1 argument "
		                         "(%d given)",
		                         call->argc);
	if (cohort_call_expect(call, 0, COHORT_KIND_ARRAY) < 0 ||
	    cohort_call_expect_dtype(call, 0, COHORT_DTYPE_FLOAT64) < 0 ||
	    cohort_call_array(call, 0, &a) < 0)
		return -1;
	if (comm == MPI_COMM_NULL)
		return cohort_call_error(call,
		                         "RuntimeError: psum() needs MPI: "
		                         "start the engines with --mpi");
	x = a.data;
	for (i = 0; i < a.count; i++)
		local += x[i];
	rc = MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, comm);
	if (rc != MPI_SUCCESS)
		return cohort_call_error(call,
		                         "RuntimeError: MPI_Allreduce "
		                         "failed (error %d)",
		                         rc);
	return cohort_call_return_float(call, total);
}

#ifdef PSUM_FORTRAN
/* psum_f.f90: the same sum in Fortran, called with a Fortran MPI handle. */
void psum_fortran(const double *a, int64_t n, int comm, double *total,
                  int *ierr);

/* psum_f(a): psum, with the arithmetic and the MPI call in Fortran. */
COHORT_PLUGIN_EXPORT int
psum_f(struct cohort_call *call)
{
	struct cohort_array a;
	long comm = cohort_call_comm_f(call);
	double total = 0.0;
	int ierr = 0;

	if (call->argc != 1)
		return cohort_call_error(call,
		                         "TypeError: psum_f() takes 1 "
		                         "argument (%d given)",
		                         call->argc);
	if (cohort_call_expect(call, 0, COHORT_KIND_ARRAY) < 0 ||
	    cohort_call_expect_dtype(call, 0, COHORT_DTYPE_FLOAT64) < 0 ||
	    cohort_call_array(call, 0, &a) < 0)
		return -1;
	if (comm < 0)
		return cohort_call_error(call, "RuntimeError: psum_f() needs "
		                               "MPI: start the engines with "
		                               "--mpi");
	psum_fortran(a.data, (int64_t)a.count, (int)comm, &total, &ierr);
	if (ierr != 0)
		return cohort_call_error(call,
		                         "RuntimeError: MPI_Allreduce "
		                         "failed (error %d)",
		                         ierr);
	return cohort_call_return_float(call, total);
}
#endif
