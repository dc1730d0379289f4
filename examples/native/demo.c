/* SPDX-License-Identifier: BSD-3-Clause */
/* demo.c - a plugin that exercises the native kernel's plugin ABI.
 *
 * Used by tests/integration/t5001-native-*.sh, and a reference for what a
 * plugin can do: read every kind of argument, return scalars, strings and
 * new arrays, print, fail with a named error, poll for interrupts and
 * use the engine's communicator. It declares its ABI version with a
 * function rather than COHORT_PLUGIN_DECLARE(), which is also allowed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "cohort/plugin.h"

COHORT_PLUGIN_EXPORT int
cohort_plugin_abi_version(void)
{
	return COHORT_PLUGIN_ABI_VERSION;
}

/* An exported object: calling it must be refused, not jumped to. */
COHORT_PLUGIN_EXPORT int counter = 0;

/* describe(...): print each argument's kind and contents. */
COHORT_PLUGIN_EXPORT int
describe(struct cohort_call *call)
{
	struct cohort_array a;
	const char *s;
	int64_t i64;
	double f;
	size_t n;
	int i, d, b;

	printf("%s() got %d argument%s\n", call->name, call->argc,
	       call->argc == 1 ? "" : "s");
	for (i = 0; i < call->argc; i++) {
		printf("%d: %s", i,
		       cohort_kind_name(call, cohort_call_kind(call, i)));
		switch (cohort_call_kind(call, i)) {
		case COHORT_KIND_ARRAY:
			cohort_call_array(call, i, &a);
			printf(" %s shape (", cohort_dtype_name(call, a.dtype));
			for (d = 0; d < a.ndim; d++)
				printf("%s%zu", d ? ", " : "", a.shape[d]);
			printf("%s) count %zu itemsize %zu aligned %d",
			       a.ndim == 1 ? "," : "", a.count, a.itemsize,
			       (int)((uintptr_t)a.data % 64 == 0));
			break;
		case COHORT_KIND_INT:
			if (cohort_call_int(call, i, &i64) == 0)
				printf(" %lld", (long long)i64);
			break;
		case COHORT_KIND_FLOAT:
			cohort_call_float(call, i, &f);
			printf(" %g", f);
			break;
		case COHORT_KIND_STRING:
			s = cohort_call_string(call, i, &n);
			printf(" '%s' (%zu bytes)", s, n);
			break;
		case COHORT_KIND_BOOL:
			cohort_call_bool(call, i, &b);
			printf(" %s", b ? "true" : "false");
			break;
		default:
			cohort_call_value(call, i, &n);
			printf(" (%zu bytes of msgpack)", n);
			break;
		}
		printf("\n");
	}
	return 0;
}

/* arange(n): a float64 array 0, 1, ..., n-1. */
COHORT_PLUGIN_EXPORT int
arange(struct cohort_call *call)
{
	int64_t n;
	size_t shape[1];
	double *x;

	if (cohort_call_int(call, 0, &n) < 0)
		return -1;
	if (n < 0)
		return cohort_call_error(call,
		                         "ValueError: arange() needs "
		                         "n >= 0, not %lld",
		                         (long long)n);
	shape[0] = (size_t)n;
	if (!(x = cohort_call_return_array(call, COHORT_DTYPE_FLOAT64, 1,
	                                   shape)))
		return -1;
	for (int64_t i = 0; i < n; i++)
		x[i] = (double)i;
	return 0;
}

/* scale(a, k): a new float64 array a * k, of a's shape. */
COHORT_PLUGIN_EXPORT int
scale(struct cohort_call *call)
{
	struct cohort_array a;
	const double *x;
	double k, *y;

	if (cohort_call_expect_dtype(call, 0, COHORT_DTYPE_FLOAT64) < 0 ||
	    cohort_call_array(call, 0, &a) < 0 ||
	    cohort_call_float(call, 1, &k) < 0)
		return -1;
	if (!(y = cohort_call_return_array(call, a.dtype, a.ndim, a.shape)))
		return -1;
	x = a.data;
	for (size_t i = 0; i < a.count; i++)
		y[i] = x[i] * k;
	return 0;
}

/* greet(name): "hello, NAME". */
COHORT_PLUGIN_EXPORT int
greet(struct cohort_call *call)
{
	char buf[256];
	const char *s = cohort_call_string(call, 0, NULL);

	if (!s)
		return -1;
	snprintf(buf, sizeof(buf), "hello, %s", s);
	return cohort_call_return_string(call, buf, (size_t)-1);
}

/* add(x, y): x + y as an int if both are ints, else a float. */
COHORT_PLUGIN_EXPORT int
add(struct cohort_call *call)
{
	int64_t a, b;
	double x, y;

	if (cohort_call_kind(call, 0) == COHORT_KIND_INT &&
	    cohort_call_kind(call, 1) == COHORT_KIND_INT &&
	    cohort_call_int(call, 0, &a) == 0 &&
	    cohort_call_int(call, 1, &b) == 0)
		return cohort_call_return_int(call, a + b);
	if (cohort_call_float(call, 0, &x) < 0 ||
	    cohort_call_float(call, 1, &y) < 0)
		return -1;
	return cohort_call_return_float(call, x + y);
}

/* is_even(n): a bool. */
COHORT_PLUGIN_EXPORT int
is_even(struct cohort_call *call)
{
	int64_t n;

	if (cohort_call_int(call, 0, &n) < 0)
		return -1;
	return cohort_call_return_bool(call, n % 2 == 0);
}

/* rank(): this engine's rank in its communicator, -1 without MPI. */
COHORT_PLUGIN_EXPORT int
rank(struct cohort_call *call)
{
	MPI_Comm comm = cohort_call_comm(call);
	int r = -1;

	if (comm != MPI_COMM_NULL)
		MPI_Comm_rank(comm, &r);
	return cohort_call_return_int(call, r);
}

/* say(text): print text on stdout and stderr. */
COHORT_PLUGIN_EXPORT int
say(struct cohort_call *call)
{
	const char *s = cohort_call_string(call, 0, NULL);

	if (!s)
		return -1;
	printf("out: %s\n", s);
	fprintf(stderr, "err: %s\n", s);
	return 0;
}

/* spin(seconds): busy for up to seconds, polling for an interrupt. */
COHORT_PLUGIN_EXPORT int
spin(struct cohort_call *call)
{
	struct timespec t0, t, nap = {0, 10 * 1000 * 1000};
	double secs;

	if (cohort_call_float(call, 0, &secs) < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (cohort_call_interrupted(call))
			return cohort_call_error(call, "KeyboardInterrupt: "
			                               "spin() interrupted");
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) +
		        (double)(t.tv_nsec - t0.tv_nsec) / 1e9 >=
		    secs)
			return cohort_call_return_bool(call, 1);
		nanosleep(&nap, NULL);
	}
}

/* fail(): always an error, with a name. */
COHORT_PLUGIN_EXPORT int
fail(struct cohort_call *call)
{
	return cohort_call_error(call,
	                         "ValueError: fail() always fails (%d "
	                         "arguments)",
	                         call->argc);
}

/* quiet_fail(): an error without a message. */
COHORT_PLUGIN_EXPORT int
quiet_fail(struct cohort_call *call)
{
	return 3;
}
