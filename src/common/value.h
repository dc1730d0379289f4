/* SPDX-License-Identifier: BSD-3-Clause */
/* value.h - client-side values: from the command line to msgpack and back.
 *
 * A value is one msgpack object (see cohort/kernel.h): nil, bool, int,
 * float, str, bin, array, map, or an n-dimensional array as extension type
 * COHORT_EXT_NDARRAY. These functions do no network I/O.
 */
#ifndef COHORT_VALUE_H
#define COHORT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "cohort/error.h"

/* Encode a command-line value into out (appended): a JSON literal
 * ("3", "[1,2]", "{\"a\": 1}", "\"text\""), or @file.npy (numpy array),
 * @file.json (JSON document) or @file.bin (bytes). Errors name the file
 * and what is wrong ("no such file", "not a .npy file", "JSON error at
 * line 1 column 3: ..."); nothing is sent by the caller on error. */
int value_from_arg(const char *arg, msgpack_sbuffer *out,
		   struct cohort_error *err);

/* Write a value to path, by suffix: .npy (arrays only, and lists of
 * numbers are refused with a clear message), .json (any value; arrays as
 * nested lists, bin as base64 string), .bin (bin or str bytes, or an
 * array's raw bytes). Unknown suffix: error. */
int value_write_file(const void *data, size_t len, const char *path,
		     struct cohort_error *err);

/* Render a value as one short line of text, like numpy/Python reprs:
 * 3, 2.5, 'text', b'..', None, True, [1, 2], {'a': 1},
 * array([0.1, 0.2, ..., 0.9], shape=(100,), dtype=float64).
 * Long values are elided to about max_chars. Returns malloc'd text; a
 * malformed value renders as "<malformed value: reason>". */
char *value_format(const void *data, size_t len, size_t max_chars);

/* Convert a value to JSON (arrays become {"dtype": ..., "shape": [...],
 * "data": nested lists}, bin becomes {"bytes_b64": ...}). NULL on error. */
json_t *value_to_json(const void *data, size_t len, struct cohort_error *err);

/* Split a value along its first axis into n contiguous parts whose sizes
 * differ by at most one (earlier parts get the extra elements): an
 * ndarray splits into ndarrays of the same dtype and trailing shape; a
 * msgpack array into arrays. Each part is appended to parts[i] (which the
 * caller has initialised). A scalar, a 0-d array or a map is an error. */
int value_split(const void *data, size_t len, size_t n,
		msgpack_sbuffer *parts, struct cohort_error *err);

/* The same without copying: part i is its head, appended to heads[i]
 * (initialised by the caller), followed by bodies[i], a slice of data
 * (elements' bytes, or a list's encoded items). For sending a large value
 * in parts by reference. */
struct value_slice {
	const uint8_t *p;
	size_t n;
};
int value_split_ref(const void *data, size_t len, size_t n,
		    msgpack_sbuffer *heads, struct value_slice *bodies,
		    struct cohort_error *err);

/* Concatenate n values along the first axis into out: ndarrays of equal
 * dtype and trailing shape, or msgpack arrays. Mismatches are errors that
 * say which part differs. */
int value_concat(const void *const *data, const size_t *len, size_t n,
		 msgpack_sbuffer *out, struct cohort_error *err);

/* An n-dimensional array value as value_array_open() finds it. */
#define VALUE_MAX_NDIM 64
struct value_array {
	const char *descr; /* numpy descr, e.g. "<f8" */
	const char *name;  /* dtype name, e.g. "float64" */
	unsigned itemsize;
	unsigned ndim;
	uint64_t shape[VALUE_MAX_NDIM];
	const uint8_t *data; /* the raw elements, inside the value */
	size_t nbytes;
};

/* 1 and a filled in if data is one ndarray value; 0 if it is one value of
 * another kind; -1 with err if it is malformed. */
int value_array_open(const void *data, size_t len, struct value_array *a,
		     struct cohort_error *err);

/* Where the elements of an ndarray value start, from its first n bytes
 * (the head must be among them); 0 if it is not an ndarray value or the
 * head is cut off. Lets a receiver place a large array's elements at an
 * aligned address before the value has arrived. */
size_t value_array_offset(const void *prefix, size_t n);

/* Append the head of an ndarray value (everything before its elements) to
 * out; the caller then appends exactly the elements' bytes. descr is one
 * value_array_open() gave. */
int value_array_head(msgpack_sbuffer *out, const char *descr, unsigned ndim,
		     const uint64_t *shape, struct cohort_error *err);

/* Check that data is exactly one well-formed value whose declared lengths
 * fit in len bytes (nesting at most 64), without allocating. */
int value_check(const void *data, size_t len, struct cohort_error *err);

/* -1 with err ("'1a' is not a valid name (use a Python identifier)") if
 * name is not one value_name_ok() accepts; 0 otherwise. */
int value_check_name(const char *name, struct cohort_error *err);

/* True if name is a valid Python identifier (ASCII letters, digits, '_',
 * not starting with a digit, not a Python keyword). */
bool value_name_ok(const char *name);

#endif
