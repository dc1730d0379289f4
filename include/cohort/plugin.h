/* SPDX-License-Identifier: BSD-3-Clause */
/* cohort/plugin.h - the ABI of plugins for the native kernel.
 *
 * A plugin is a shared object that an engine started with --kernel native
 * loads with `px 'load ./libfoo.so'`. It exports
 *
 *   - cohort_plugin_abi_version: the COHORT_PLUGIN_ABI_VERSION it was built
 *     against, as a global int (COHORT_PLUGIN_DECLARE() defines it) or as a
 *     function returning int; a plugin that lacks it or says another
 *     version is refused when loaded, never called;
 *   - any number of functions `int fn(struct cohort_call *call)`, called by
 *     name from px: `s = fn(a, 2.5, "text")`.
 *
 * A function reads its arguments and returns its result through the call
 * context. Everything it needs from the engine is reached through the
 * function pointers in call->ops, so a plugin has no link-time dependency
 * on the engine and can be built and loaded without it: only this header.
 * Use the static inline wrappers below (cohort_call_*) rather than the
 * pointers directly.
 *
 * Contract:
 *   - Functions run on the engine's main thread, one at a time, the thread
 *     that initialised MPI (MPI_THREAD_FUNNELED).
 *   - Arguments are numbered from 0; messages number them from 1, as
 *     Python does ("argument 1").
 *   - Argument memory (array data, strings, shapes) belongs to the engine
 *     and is valid only until the function returns; it is read-only.
 *   - A function returns 0 on success, nonzero on failure: the return
 *     value decides (an error set by a failed accessor is dropped if the
 *     function then returns 0). cohort_call_error() sets the message and
 *     returns -1, so `return cohort_call_error(call, ...)` is one line; a
 *     failure without a message gets a generic one. Accessors set a
 *     standard TypeError themselves when an argument is of the wrong kind.
 *   - The result is nil (nothing shown) unless the function calls one
 *     cohort_call_return_*() helper; a later call replaces an earlier one.
 *   - stdout and stderr are captured by the engine at the file-descriptor
 *     level: printf and fprintf(stderr, ...) just work. The engine flushes
 *     C stdio after each request; Fortran units must be flushed by the
 *     plugin (flush(output_unit)).
 *   - MPI: cohort_call_comm() is the engine's communicator (MPI_COMM_WORLD
 *     under --mpi). This header includes <mpi.h> for it unless
 *     COHORT_PLUGIN_NO_MPI is defined first. Build the plugin against the
 *     same MPI library as the engine.
 *   - A crash (a segfault) takes the engine down with it; the controller
 *     then reports that engine dead.
 *
 * docs/native.md describes the px statements, loading and errors.
 */
#ifndef COHORT_PLUGIN_H
#define COHORT_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump when struct cohort_call, struct cohort_call_ops or the meaning of
 * any of their members changes incompatibly. Adding members at the end of
 * struct cohort_call_ops (see its size field) does not need a bump. */
#define COHORT_PLUGIN_ABI_VERSION 1

#if defined(__GNUC__)
#define COHORT_PLUGIN_EXPORT __attribute__((visibility("default")))
#define COHORT_PLUGIN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define COHORT_PLUGIN_EXPORT
#define COHORT_PLUGIN_PRINTF(f, a)
#endif

/* Put once in one source file of a plugin: exports the ABI version. */
#define COHORT_PLUGIN_DECLARE()                                                \
	COHORT_PLUGIN_EXPORT extern const int cohort_plugin_abi_version;       \
	COHORT_PLUGIN_EXPORT const int cohort_plugin_abi_version =             \
	    COHORT_PLUGIN_ABI_VERSION

/* What an argument is. Ints are 64-bit signed (an unsigned value above
 * INT64_MAX is COHORT_KIND_INT but cohort_call_int() refuses it); floats
 * are doubles (a float32 widens). COHORT_KIND_OTHER is bytes, a list, a
 * dict, or an array of a dtype this ABI does not name. */
enum cohort_kind {
	COHORT_KIND_NIL = 0,
	COHORT_KIND_BOOL = 1,
	COHORT_KIND_INT = 2,
	COHORT_KIND_FLOAT = 3,
	COHORT_KIND_STRING = 4,
	COHORT_KIND_ARRAY = 5,
	COHORT_KIND_OTHER = 6,
};

/* Element types of arrays: numpy's, little-endian. */
enum cohort_dtype {
	COHORT_DTYPE_BOOL = 0, /* "|b1", one byte, 0 or 1 */
	COHORT_DTYPE_INT8 = 1,
	COHORT_DTYPE_UINT8 = 2,
	COHORT_DTYPE_INT16 = 3,
	COHORT_DTYPE_UINT16 = 4,
	COHORT_DTYPE_INT32 = 5,
	COHORT_DTYPE_UINT32 = 6,
	COHORT_DTYPE_INT64 = 7,
	COHORT_DTYPE_UINT64 = 8,
	COHORT_DTYPE_FLOAT32 = 9,
	COHORT_DTYPE_FLOAT64 = 10,
	COHORT_DTYPE_COMPLEX64 = 11,  /* two float32: re, im */
	COHORT_DTYPE_COMPLEX128 = 12, /* two float64: re, im */
};

/* Most dimensions an array may have. */
#define COHORT_MAX_NDIM 64

/* A read-only view of an array argument: C order (row-major),
 * contiguous, little-endian, data aligned to 64 bytes. */
struct cohort_array {
	enum cohort_dtype dtype;
	size_t itemsize;     /* bytes per element */
	int ndim;            /* 0 for a scalar array */
	const size_t *shape; /* ndim extents */
	const void *data;    /* count * itemsize bytes */
	size_t count;        /* number of elements: product of shape */
};

struct cohort_call;

/* The engine's side of a call. Use the cohort_call_*() wrappers below. */
struct cohort_call_ops {
	size_t size; /* sizeof(struct cohort_call_ops) of the engine */
	int (*kind)(const struct cohort_call *call, int i);
	int (*get_array)(struct cohort_call *call, int i,
	                 struct cohort_array *out);
	int (*get_int)(struct cohort_call *call, int i, int64_t *out);
	int (*get_float)(struct cohort_call *call, int i, double *out);
	int (*get_bool)(struct cohort_call *call, int i, int *out);
	const char *(*get_string)(struct cohort_call *call, int i, size_t *len);
	const void *(*get_value)(struct cohort_call *call, int i, size_t *len);
	int (*expect)(struct cohort_call *call, int i, enum cohort_kind kind);
	int (*expect_dtype)(struct cohort_call *call, int i,
	                    enum cohort_dtype dtype);
	int (*verror)(struct cohort_call *call, const char *fmt, va_list ap);
	int (*return_int)(struct cohort_call *call, int64_t v);
	int (*return_float)(struct cohort_call *call, double v);
	int (*return_bool)(struct cohort_call *call, int v);
	int (*return_string)(struct cohort_call *call, const char *s,
	                     size_t len);
	void *(*return_array)(struct cohort_call *call, enum cohort_dtype dtype,
	                      int ndim, const size_t *shape);
	int (*return_value)(struct cohort_call *call, const void *data,
	                    size_t len);
	int (*interrupted)(const struct cohort_call *call);
	long (*comm_f)(const struct cohort_call *call);
	const char *(*kind_name)(enum cohort_kind kind);
	const char *(*dtype_name)(enum cohort_dtype dtype);
};

/* The context of one call: valid only while the function runs. */
struct cohort_call {
	int abi_version;  /* the engine's COHORT_PLUGIN_ABI_VERSION */
	int argc;         /* number of arguments */
	const char *name; /* the function's name, for messages */
	const struct cohort_call_ops *ops;
	void *engine; /* the engine's; do not touch */
};

/* The kind of argument i (COHORT_KIND_*); -1 if there is no argument i. */
static inline int
cohort_call_kind(const struct cohort_call *call, int i)
{
	return call->ops->kind(call, i);
}

/* 0 if argument i is of kind (an int also passes for COHORT_KIND_FLOAT);
 * otherwise sets the error "TypeError: NAME() argument I+1 must be an
 * array, not str" (or "NAME() takes at least I+1 arguments (N given)"
 * when there is no argument i) and returns -1. */
static inline int
cohort_call_expect(struct cohort_call *call, int i, enum cohort_kind kind)
{
	return call->ops->expect(call, i, kind);
}

/* Like cohort_call_expect() for an array whose dtype must be dtype:
 * "TypeError: psum() argument 1 must be a float64 array, not int32". */
static inline int
cohort_call_expect_dtype(struct cohort_call *call, int i,
                         enum cohort_dtype dtype)
{
	return call->ops->expect_dtype(call, i, dtype);
}

/* Fill *out with a view of array argument i; -1 (and a TypeError) if it
 * is not an array. */
static inline int
cohort_call_array(struct cohort_call *call, int i, struct cohort_array *out)
{
	return call->ops->get_array(call, i, out);
}

/* Scalars: 0 and *out, or -1 with a TypeError set. cohort_call_float()
 * also takes ints; cohort_call_int() refuses floats. */
static inline int
cohort_call_int(struct cohort_call *call, int i, int64_t *out)
{
	return call->ops->get_int(call, i, out);
}

static inline int
cohort_call_float(struct cohort_call *call, int i, double *out)
{
	return call->ops->get_float(call, i, out);
}

static inline int
cohort_call_bool(struct cohort_call *call, int i, int *out)
{
	return call->ops->get_bool(call, i, out);
}

/* A string argument, NUL-terminated (UTF-8; it may contain NUL bytes, so
 * *len, if len is not NULL, is its length); NULL with a TypeError if it
 * is not a string. */
static inline const char *
cohort_call_string(struct cohort_call *call, int i, size_t *len)
{
	return call->ops->get_string(call, i, len);
}

/* The raw encoded msgpack value of argument i, for kinds this ABI does
 * not model (lists, dicts, bytes); see docs/protocol.md "Values". */
static inline const void *
cohort_call_value(struct cohort_call *call, int i, size_t *len)
{
	return call->ops->get_value(call, i, len);
}

/* Fail the call with a message; returns -1. A message that starts with
 * "SomethingError: " gives that error name, others are "PluginError". */
static inline int COHORT_PLUGIN_PRINTF(2, 3)
    cohort_call_error(struct cohort_call *call, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = call->ops->verror(call, fmt, ap);
	va_end(ap);
	return rc;
}

/* Set the result. Each returns 0 (or -1 with an error set). */
static inline int
cohort_call_return_int(struct cohort_call *call, int64_t v)
{
	return call->ops->return_int(call, v);
}

static inline int
cohort_call_return_float(struct cohort_call *call, double v)
{
	return call->ops->return_float(call, v);
}

static inline int
cohort_call_return_bool(struct cohort_call *call, int v)
{
	return call->ops->return_bool(call, v);
}

/* s is copied; len (size_t)-1 means strlen(s). */
static inline int
cohort_call_return_string(struct cohort_call *call, const char *s, size_t len)
{
	return call->ops->return_string(call, s, len);
}

/* Make a new array as the result and return its writable, zeroed,
 * 64-byte-aligned data (product of shape elements of dtype, C order),
 * which the function fills before it returns. NULL with an error set if
 * the shape is invalid or too large. The engine owns the memory. */
static inline void *
cohort_call_return_array(struct cohort_call *call, enum cohort_dtype dtype,
                         int ndim, const size_t *shape)
{
	return call->ops->return_array(call, dtype, ndim, shape);
}

/* Return an encoded msgpack value (copied, and checked like a push). */
static inline int
cohort_call_return_value(struct cohort_call *call, const void *data, size_t len)
{
	return call->ops->return_value(call, data, len);
}

/* Nonzero once the user asked to interrupt (cohort interrupt, Ctrl-C).
 * C code cannot be stopped from outside: a long function should poll
 * this and return cohort_call_error(call, "KeyboardInterrupt: ...").
 * In MPI code, poll only where every rank does, or agree across ranks. */
static inline int
cohort_call_interrupted(const struct cohort_call *call)
{
	return call->ops->interrupted(call);
}

/* The engine's MPI communicator as a Fortran handle (MPI_Fint): that of
 * MPI_COMM_WORLD when the engine runs with --mpi, -1 when MPI is not
 * initialised. For Fortran plugins (through a C shim). */
static inline long
cohort_call_comm_f(const struct cohort_call *call)
{
	return call->ops->comm_f(call);
}

/* "array", "int", "str", ... and "float64", "int32", ... for messages. */
static inline const char *
cohort_kind_name(const struct cohort_call *call, enum cohort_kind kind)
{
	return call->ops->kind_name(kind);
}

static inline const char *
cohort_dtype_name(const struct cohort_call *call, enum cohort_dtype dtype)
{
	return call->ops->dtype_name(dtype);
}

#ifdef __cplusplus
}
#endif

/* The engine's MPI communicator as an MPI_Comm: MPI_COMM_WORLD when the
 * engine runs with --mpi, MPI_COMM_NULL when MPI is not initialised. The
 * plugin must be built against the same MPI library as the engine (Open
 * MPI here): a handle means nothing to another MPI. Define
 * COHORT_PLUGIN_NO_MPI before including this header to build a plugin
 * without <mpi.h>. */
#ifndef COHORT_PLUGIN_NO_MPI
#include <mpi.h>
static inline MPI_Comm
cohort_call_comm(const struct cohort_call *call)
{
	long h = call->ops->comm_f(call);

	return h < 0 ? MPI_COMM_NULL : MPI_Comm_f2c((MPI_Fint)h);
}
#endif

#endif
