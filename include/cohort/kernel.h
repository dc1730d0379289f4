/* SPDX-License-Identifier: BSD-3-Clause */
/* cohort/kernel.h - the interface every engine kernel implements.
 *
 * A kernel runs user code and holds a namespace of named values. All
 * functions except interrupt() are called on the engine's main thread, one
 * at a time; the engine captures stdout/stderr at the file-descriptor level
 * around each call, so kernels just write to fds 1 and 2 as usual.
 *
 * Values cross this interface as one encoded msgpack object (see
 * docs/protocol.md, "Values"): nil, bool, int, float, str, bin, array, map,
 * and extension type COHORT_EXT_NDARRAY for n-dimensional arrays.
 */
#ifndef COHORT_KERNEL_H
#define COHORT_KERNEL_H

#include <stddef.h>

#include "cohort/error.h"

/* msgpack extension type of an n-dimensional array. Its data is one msgpack
 * array [dtype, shape] (dtype a numpy-style descr such as "<f8", shape an
 * array of non-negative ints) followed directly by the raw element bytes,
 * little-endian, C order: prod(shape) * itemsize bytes. */
#define COHORT_EXT_NDARRAY 1

/* What one kernel call produced. Strings are NUL-terminated and malloc'd;
 * the engine frees them with kernel_reply_clear(). */
struct kernel_reply {
	int ok;              /* 1 success, 0 error in user code/value */
	int execution_count; /* execute: this call's number (1, 2, ...) */
	char *result;        /* execute: repr of a trailing expression, or NULL */
	char *ename;         /* error: exception type name, e.g. "NameError" */
	char *evalue;        /* error: str(exception) */
	char *traceback;     /* error: formatted traceback text, may be NULL */
	void *data;          /* pull: the encoded msgpack value (malloc'd) */
	size_t len;          /* pull: its length */
	/* pull_lend: the rest of the value, lent by the kernel (a large
	 * array's elements, where they are): data/len then lent/lent_len
	 * make the value. lender is what give_back() releases. */
	const void *lent;
	size_t lent_len;
	void *lender;
};

void kernel_reply_clear(struct kernel_reply *r);

struct kernel_ops {
	const char *name; /* "python" */
	/* Start the kernel. argv0 is the engine's argv[0]. */
	int (*init)(const char *argv0, struct cohort_error *err);
	/* Run code; a trailing expression's repr becomes r->result. */
	void (*execute)(const char *code, size_t len, struct kernel_reply *r);
	/* Bind name to the decoded msgpack value in data/len. */
	void (*push)(const char *name, const void *data, size_t len,
		     struct kernel_reply *r);
	/* Optional (NULL: push is used). As push, but data lies inside
	 * block, a malloc'd allocation the kernel takes over and frees with
	 * free(): a large array can then keep its elements where they are
	 * instead of being copied (the engine aligns them for this). */
	void (*push_owned)(const char *name, void *block, const void *data,
			   size_t len, struct kernel_reply *r);
	/* Encode the value bound to name into r->data/r->len. */
	void (*pull)(const char *name, struct kernel_reply *r);
	/* Optional (NULL: pull is used). As pull, but a large array's
	 * elements may be lent (r->lent, r->lent_len, r->lender) instead of
	 * copied after the head in r->data. The engine sends them, runs
	 * nothing else meanwhile (so user code cannot change them under the
	 * send), then calls give_back(r->lender). */
	void (*pull_lend)(const char *name, struct kernel_reply *r);
	void (*give_back)(void *lender);
	/* Flush the language's buffered stdout/stderr to fds 1 and 2. */
	void (*flush)(void);
	/* Ask running code to stop (KeyboardInterrupt in Python). Called from
	 * the engine's I/O thread: must not touch interpreter state. */
	void (*interrupt)(void);
	/* Write the language-level stack of the main thread to fd. Called
	 * from a signal handler on the main thread, wherever it is: must be
	 * async-signal-safe. May be NULL. */
	void (*where)(int fd);
	/* Shut the kernel down (main thread, at exit). */
	void (*finalize)(void);
};

extern const struct kernel_ops kernel_python;
/* Plugins in shared objects, no interpreter (docs/native.md). */
extern const struct kernel_ops kernel_native;

#endif
