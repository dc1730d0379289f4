/* SPDX-License-Identifier: BSD-3-Clause */
/* test_value.c - unit tests for command-line values, files and reprs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "cohort/kernel.h"
#include "tap.h"
#include "value.h"

static char dir[] = "/tmp/test_value.XXXXXX";
static char path[512];

static const char *
tmp(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static struct cohort_error *
fresh(struct cohort_error *err)
{
	err->text[0] = '\0';
	return err;
}

/* value_from_arg then value_format; "ERR: ..." on error. */
static char *
fmt_arg(const char *arg, size_t max)
{
	struct cohort_error err;
	msgpack_sbuffer sb;
	char *r;

	msgpack_sbuffer_init(&sb);
	if (value_from_arg(arg, &sb, fresh(&err)) < 0) {
		r = malloc(strlen(err.text) + 6);
		sprintf(r, "ERR: %s", err.text);
	} else {
		r = value_format(sb.data, sb.size, max);
	}
	msgpack_sbuffer_destroy(&sb);
	return r;
}

static void
is_fmt(const char *arg, const char *want)
{
	char *s = fmt_arg(arg, 0), msg[300];

	snprintf(msg, sizeof(msg), "format %s", arg);
	is_str(s, want, msg);
	free(s);
}

/* The error text of value_from_arg(arg) contains want. */
static void
arg_error(const char *arg, const char *want)
{
	struct cohort_error err;
	msgpack_sbuffer sb;
	int rc;

	msgpack_sbuffer_init(&sb);
	rc = value_from_arg(arg, &sb, fresh(&err));
	if (!ok(rc < 0 && strstr(err.text, want) && sb.size == 0,
	        "%s fails with '%s'", arg, want))
		diag("rc %d, error '%s'", rc, err.text);
	msgpack_sbuffer_destroy(&sb);
}

/* An ndarray value, packed here independently of value.c. */
static void
make_nd(msgpack_sbuffer *sb, const char *descr, unsigned ndim,
        const uint64_t *shape, const void *data, size_t nbytes)
{
	msgpack_sbuffer hs;
	msgpack_packer hp, pk;

	msgpack_sbuffer_init(&hs);
	msgpack_packer_init(&hp, &hs, msgpack_sbuffer_write);
	msgpack_pack_array(&hp, 2);
	msgpack_pack_str_with_body(&hp, descr, strlen(descr));
	msgpack_pack_array(&hp, ndim);
	for (unsigned i = 0; i < ndim; i++)
		msgpack_pack_uint64(&hp, shape[i]);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_ext(&pk, hs.size + nbytes, COHORT_EXT_NDARRAY);
	msgpack_pack_ext_body(&pk, hs.data, hs.size);
	msgpack_pack_ext_body(&pk, data, nbytes);
	msgpack_sbuffer_destroy(&hs);
}

static void
is_value_fmt(const void *data, size_t len, const char *want, const char *msg)
{
	char *s = value_format(data, len, 0);

	is_str(s, want, msg);
	free(s);
}

static char *
slurp(const char *p, size_t *n)
{
	FILE *fp = fopen(p, "rb");
	char *buf;
	long sz;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	sz = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)sz + 1);
	*n = fread(buf, 1, (size_t)sz, fp);
	buf[*n] = '\0';
	fclose(fp);
	return buf;
}

static void
spit(const char *p, const void *data, size_t n)
{
	FILE *fp = fopen(p, "wb");

	fwrite(data, 1, n, fp);
	fclose(fp);
}

static void
test_json_literals(void)
{
	is_fmt("3", "3");
	is_fmt("-7", "-7");
	is_fmt("9223372036854775807", "9223372036854775807");
	is_fmt("-9223372036854775808", "-9223372036854775808");
	is_fmt("2.5", "2.5");
	is_fmt("1.0", "1.0");
	is_fmt("0.1", "0.1");
	is_fmt("-0.0", "-0.0");
	is_fmt("123.456", "123.456");
	is_fmt("1e15", "1000000000000000.0");
	is_fmt("1e16", "1e+16");
	is_fmt("1e100", "1e+100");
	is_fmt("0.0001", "0.0001");
	is_fmt("0.00001", "1e-05");
	is_fmt("1.5e-7", "1.5e-07");
	is_fmt("null", "None");
	is_fmt("true", "True");
	is_fmt("false", "False");
	is_fmt("\"text\"", "'text'");
	is_fmt("\"it's\"", "\"it's\"");
	is_fmt("\"a\\nb\\\\c\\u0000d\"", "'a\\nb\\\\c\\x00d'");
	is_fmt("\"caf\\u00e9 \\u20ac\"", "'caf\xc3\xa9 \xe2\x82\xac'");
	is_fmt("[]", "[]");
	is_fmt("{}", "{}");
	is_fmt("{\"a\": [1, 2.5, null, true, \"x\"]}",
	       "{'a': [1, 2.5, None, True, 'x']}");
	is_fmt("{\"b\": {\"c\": []}, \"a\": 1}", "{'b': {'c': []}, 'a': 1}");
	is_fmt("[1,2,3,4,5,6]", "[1, 2, 3, 4, 5, 6]");
	is_fmt("[1,2,3,4,5,6,7,8,9,10]", "[1, 2, 3, ..., 8, 9, 10]");
	is_fmt("[[1,[2]],{\"k\":\"v\"},[4,5,6,7,8,9,10],8,9,10,11]",
	       "[[1, [2]], {'k': 'v'}, [4, 5, 6, ..., 8, 9, 10], ..., 9, "
	       "10, 11]");
}

static void
test_json_errors(void)
{
	char deep[200], *s;

	arg_error("[1,", "JSON error at line 1 column");
	arg_error("{\"a\" 1}", "JSON error at line 1 column 6");
	arg_error("hello", "a string needs JSON quotes");
	arg_error("", "empty value");
	arg_error("1e999", "JSON error");
	memset(deep, 0, sizeof(deep));
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	s = fmt_arg(deep, 0);
	ok(strncmp(s, "[[[[", 4) == 0 && strlen(s) == 128, "64 levels: %.20s",
	   s);
	free(s);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	arg_error(deep, "value nested too deeply");
}

static void
test_format_limits(void)
{
	const char bad1[] = "\xc1", bad2[] = "\x92\x01";
	const char huge[] = "\xdd\xff\xff\xff\xff";
	const char deep[] = "\x91\x91\x91\x91";
	char arg[300], *s;

	memset(arg, 'x', sizeof(arg));
	arg[0] = '"';
	arg[sizeof(arg) - 2] = '"';
	arg[sizeof(arg) - 1] = '\0';
	s = fmt_arg(arg, 20);
	ok(strlen(s) == 20 && strcmp(s + 17, "...") == 0, "elided to 20: %s",
	   s);
	free(s);
	/* "ééé…" cut at 8 bytes must not split a UTF-8 sequence */
	s = fmt_arg("\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"", 8);
	is_str(s, "'\xc3\xa9\xc3\xa9...", "elision keeps UTF-8 whole");
	free(s);
	s = value_format(bad1, 1, 0);
	ok(strstr(s, "<malformed value: invalid msgpack type byte 0xc1>") == s,
	   "0xc1 is malformed: %s", s);
	free(s);
	s = value_format(bad2, 2, 0);
	is_str(s, "<malformed value: list of 2 items in 1 bytes>",
	       "truncated list");
	free(s);
	s = value_format(huge, 5, 0);
	ok(strncmp(s, "<malformed value: list of 4294967295 items", 40) == 0,
	   "a 5-byte list of 2^32 items is refused: %s", s);
	free(s);
	s = value_format(deep, 4, 0);
	is_str(s, "<malformed value: list of 1 items in 0 bytes>",
	       "truncated nest");
	free(s);
	s = value_format("\x01\x02", 2, 0);
	is_str(s, "<malformed value: 1 bytes after the value>", "trailing");
	free(s);
	s = value_format(NULL, 0, 0);
	is_str(s, "<malformed value: truncated>", "empty value");
	free(s);
	s = value_format("\xd4\x05\x07", 3, 0);
	is_str(s, "<extension type 5, 1 bytes>", "unknown extension");
	free(s);
	s = value_format("\xc4\x03"
	                 "a\x00\xff",
	                 5, 0);
	is_str(s, "b'a\\x00\\xff'", "bytes repr");
	free(s);
}

static void
test_format_arrays(void)
{
	double f8[3] = {1.0, 2.0, 3.5};
	int32_t i4[10];
	int64_t i8 = -5;
	uint8_t b1[2] = {1, 0};
	double c16[2] = {1, -2};
	float f4[2] = {0.1f, 1e20f};
	uint64_t s3 = 3, s10 = 10, s2 = 2, s23[2] = {2, 3}, s03[2] = {0, 3};
	uint64_t s1 = 1, s234[3] = {2, 3, 4};
	int64_t n24[24];
	msgpack_sbuffer sb;

	for (int i = 0; i < 10; i++)
		i4[i] = i - 1;
	for (int i = 0; i < 24; i++)
		n24[i] = i;
#define CASE(descr, nd, shape, bytes, n, want)                                 \
	do {                                                                   \
		msgpack_sbuffer_init(&sb);                                     \
		make_nd(&sb, descr, nd, shape, bytes, n);                      \
		is_value_fmt(sb.data, sb.size, want, "format " descr);         \
		msgpack_sbuffer_destroy(&sb);                                  \
	} while (0)
	CASE("<f8", 1, &s3, f8, 24,
	     "array([1.0, 2.0, 3.5], shape=(3,), dtype=float64)");
	CASE("<i4", 1, &s10, i4, 40,
	     "array([-1, 0, 1, ..., 6, 7, 8], shape=(10,), dtype=int32)");
	CASE("<i8", 0, NULL, &i8, 8, "array(-5, shape=(), dtype=int64)");
	CASE("|b1", 1, &s2, b1, 2,
	     "array([True, False], shape=(2,), dtype=bool)");
	CASE("<c16", 1, &s1, c16, 16,
	     "array([(1-2j)], shape=(1,), dtype=complex128)");
	CASE("<f4", 1, &s2, f4, 8,
	     "array([0.1, 1e+20], shape=(2,), dtype=float32)");
	CASE("<f8", 2, s03, NULL, 0, "array([], shape=(0, 3), dtype=float64)");
	CASE("<i8", 3, s234, n24, sizeof(n24),
	     "array([0, 1, 2, ..., 21, 22, 23], shape=(2, 3, 4), "
	     "dtype=int64)");
	CASE("<i8", 2, s23, n24, 40,
	     "<malformed value: array data is 40 bytes, its shape needs 48>");
	CASE("<U3", 1, &s1, n24, 12,
	     "<malformed value: unsupported array dtype '<U3'>");
#undef CASE
}

/* Write a .npy from a value, read it back, and let numpy check it. */
static void
test_npy_round_trip(void)
{
	double d[6] = {0.5, 1, 2, 3, 4, 5e300};
	uint64_t shape[2] = {2, 3};
	struct cohort_error err;
	msgpack_sbuffer sb, back;
	char arg[600], cmd[2048];
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_init(&back);
	make_nd(&sb, "<f8", 2, shape, d, sizeof(d));
	rc = value_write_file(sb.data, sb.size, tmp("rt.npy"), fresh(&err));
	if (!ok(rc == 0, "write rt.npy"))
		diag("%s", err.text);
	snprintf(arg, sizeof(arg), "@%s", tmp("rt.npy"));
	rc = value_from_arg(arg, &back, fresh(&err));
	if (!ok(rc == 0, "read rt.npy back"))
		diag("%s", err.text);
	ok(back.size == sb.size && memcmp(back.data, sb.data, sb.size) == 0,
	   "the value survives .npy exactly");
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 -c 'import numpy as np; "
	         "a = np.load(\"%s\"); assert a.dtype == np.float64 and "
	         "a.shape == (2, 3) and a[1, 2] == 5e300 and a[0, 0] == 0.5; "
	         "assert open(\"%s\", \"rb\").read(10)[8] + 10 == 128'",
	         tmp("rt.npy"), tmp("rt.npy"));
	ok(system(cmd) == 0, "numpy reads our .npy");
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&back);
}

static const char pyscript[] =
    "import numpy as np, sys, os\n"
    "d = sys.argv[1]\n"
    "def save(name, a, **kw):\n"
    "    p = os.path.join(d, name)\n"
    "    with open(p + '.npy', 'wb') as f:\n"
    "        np.lib.format.write_array(f, a, **kw)\n"
    "    le = a.astype(a.dtype.newbyteorder('<'))\n"
    "    open(p + '.raw', 'wb').write(le.tobytes(order='C'))\n"
    "save('f8', np.linspace(0, 1, 7))\n"
    "save('i4', np.arange(-5, 5, dtype=np.int32))\n"
    "save('b1', np.array([True, False, True]))\n"
    "save('c16', np.array([1+2j, 0.5-3.5j, -3.5j]))\n"
    "save('zero_d', np.array(42, dtype=np.int64))\n"
    "save('empty', np.zeros((0, 3)))\n"
    "save('nd3', np.arange(24, dtype=np.uint16).reshape(2, 3, 4))\n"
    "save('fortran', np.asfortranarray(np.arange(24.).reshape(2, 3, 4)))\n"
    "save('fortran2', np.asfortranarray(np.arange(6, dtype=np.int8)"
    ".reshape(2, 3)))\n"
    "save('be', np.arange(5, dtype='>f8'))\n"
    "save('bec', np.array([1+2j, 3-4j], dtype='>c8'))\n"
    "save('v2', np.arange(3, dtype=np.uint64), version=(2, 0))\n"
    "save('u1', np.array([255, 0], dtype=np.uint8))\n"
    "np.save(os.path.join(d, 'rec.npy'), np.zeros(2, dtype=[('x', 'i4'),"
    " ('y', 'f8')]))\n"
    "np.save(os.path.join(d, 'str.npy'), np.array(['ab', 'c']))\n";

static void
check_numpy_file(const char *name, const char *want)
{
	struct cohort_error err;
	char arg[600], *raw, *s;
	msgpack_sbuffer sb;
	size_t n = 0;
	int rc;

	msgpack_sbuffer_init(&sb);
	snprintf(arg, sizeof(arg), "@%s/%s.npy", dir, name);
	rc = value_from_arg(arg, &sb, fresh(&err));
	snprintf(arg, sizeof(arg), "%s/%s.raw", dir, name);
	raw = slurp(arg, &n);
	if (!ok(rc == 0 && raw, "read numpy's %s.npy", name)) {
		diag("%s", err.text);
	} else {
		ok(sb.size >= n && memcmp(sb.data + sb.size - n, raw, n) == 0,
		   "%s: %zu data bytes are numpy's C-order little-endian bytes",
		   name, n);
		s = value_format(sb.data, sb.size, 0);
		is_str(s, want, name);
		free(s);
	}
	free(raw);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_npy_numpy(void)
{
	char cmd[1200], *buf, arg[600];
	size_t n;

	snprintf(path, sizeof(path), "%s/gen.py", dir);
	spit(path, pyscript, strlen(pyscript));
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", path, dir);
	if (!ok(system(cmd) == 0, "numpy wrote the test files"))
		return;
	check_numpy_file(
	    "f8", "array([0.0, 0.16666666666666666, "
	          "0.3333333333333333, ..., 0.6666666666666666, "
	          "0.8333333333333333, 1.0], shape=(7,), dtype=float64)");
	check_numpy_file("i4", "array([-5, -4, -3, ..., 2, 3, 4], shape=(10,), "
	                       "dtype=int32)");
	check_numpy_file("b1", "array([True, False, True], shape=(3,), "
	                       "dtype=bool)");
	check_numpy_file("c16", "array([(1+2j), (0.5-3.5j), (-0-3.5j)], "
	                        "shape=(3,), "
	                        "dtype=complex128)");
	check_numpy_file("zero_d", "array(42, shape=(), dtype=int64)");
	check_numpy_file("empty", "array([], shape=(0, 3), dtype=float64)");
	check_numpy_file("nd3", "array([0, 1, 2, ..., 21, 22, 23], "
	                        "shape=(2, 3, 4), dtype=uint16)");
	check_numpy_file("fortran", "array([0.0, 1.0, 2.0, ..., 21.0, 22.0, "
	                            "23.0], shape=(2, 3, 4), dtype=float64)");
	check_numpy_file("fortran2", "array([0, 1, 2, 3, 4, 5], shape=(2, 3), "
	                             "dtype=int8)");
	check_numpy_file("be", "array([0.0, 1.0, 2.0, 3.0, 4.0], shape=(5,), "
	                       "dtype=float64)");
	check_numpy_file("bec", "array([(1+2j), (3-4j)], shape=(2,), "
	                        "dtype=complex64)");
	check_numpy_file("v2", "array([0, 1, 2], shape=(3,), dtype=uint64)");
	check_numpy_file("u1", "array([255, 0], shape=(2,), dtype=uint8)");
	snprintf(arg, sizeof(arg), "@%s/rec.npy", dir);
	arg_error(arg, "arrays of dtype [('x', '<i4'), ('y', '<f8')] are not "
	               "supported");
	snprintf(arg, sizeof(arg), "@%s/str.npy", dir);
	arg_error(arg, "arrays of dtype '<U2' are not supported");

	/* a truncated copy of f8.npy */
	snprintf(arg, sizeof(arg), "%s/f8.npy", dir);
	if ((buf = slurp(arg, &n))) {
		spit(tmp("trunc.npy"), buf, n - 5);
		snprintf(arg, sizeof(arg), "@%s", tmp("trunc.npy"));
		arg_error(arg, "trunc.npy is not a valid .npy file: 51 data "
		               "bytes, the header says 56");
		spit(tmp("trunchdr.npy"), buf, 40);
		snprintf(arg, sizeof(arg), "@%s", tmp("trunchdr.npy"));
		arg_error(arg, "is not a valid .npy file: header of 118 bytes "
		               "goes past the end");
		free(buf);
	}
}

/* Hand-made .npy files with broken headers. */
static void
test_npy_bad(void)
{
	static const struct {
		const char *dict, *want;
	} cases[] = {
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", NULL},
	    {"{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(1,)}",
	     NULL},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1), }",
	     "malformed 'shape'"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,)",
	     "malformed header"},
	    {"{'descr': '<f8', 'fortran_order': Fals, 'shape': (1,), }",
	     "malformed 'fortran_order'"},
	    {"{'descr': '<f8', 'shape': (1,), }", "lacks"},
	    {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, "
	     "'shape': (1,), }",
	     "repeated key"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), "
	     "'x': 1}",
	     "unexpected key"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), } x",
	     "junk after"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': "
	     "(99999999999999999999999,), }",
	     "malformed 'shape'"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': "
	     "(4611686018427387904, 4611686018427387904), }",
	     "shape is too large"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': "
	     "(4611686018427387904, 2), }",
	     "shape is too large"},
	    {"{'descr': '|f8', 'fortran_order': False, 'shape': (1,), }",
	     "dtype '|f8' are not supported"},
	    {"{'descr': '<f8\\n', 'fortran_order': False, 'shape': (1,), }",
	     "malformed 'descr'"},
	    {"[1, 2]", "the header is not a dict"},
	    {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
	     "8 data bytes, the header says 16"},
	};
	unsigned char buf[256];
	char arg[600];
	size_t i, n, h;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h = strlen(cases[i].dict) + 1;
		memcpy(buf, "\x93NUMPY\x01\x00", 8);
		buf[8] = (unsigned char)h;
		buf[9] = 0;
		memcpy(buf + 10, cases[i].dict, h - 1);
		buf[10 + h - 1] = '\n';
		n = 10 + h;
		memset(buf + n, 0, 8); /* one float64 */
		spit(tmp("bad.npy"), buf, n + 8);
		snprintf(arg, sizeof(arg), "@%s", tmp("bad.npy"));
		if (cases[i].want) {
			arg_error(arg, cases[i].want);
		} else {
			char *s = fmt_arg(arg, 0);

			is_str(s, "array([0.0], shape=(1,), dtype=float64)",
			       cases[i].dict);
			free(s);
		}
	}
	spit(tmp("garbage.npy"), "hello world, not numpy", 22);
	snprintf(arg, sizeof(arg), "@%s", tmp("garbage.npy"));
	arg_error(arg, "garbage.npy is not a valid .npy file: it does not "
	               "start with \\x93NUMPY");
	spit(tmp("v9.npy"), "\x93NUMPY\x09\x00\x00\x00", 10);
	snprintf(arg, sizeof(arg), "@%s", tmp("v9.npy"));
	arg_error(arg, "unknown format version 9.0");
	spit(tmp("empty.npy"), "", 0);
	snprintf(arg, sizeof(arg), "@%s", tmp("empty.npy"));
	arg_error(arg, "is not a valid .npy file");
	arg_error("@/nonexistent/missing.npy",
	          "cannot open /nonexistent/missing.npy: No such file");
	arg_error("@x.txt", "unknown file type for @x.txt (use .npy, .json "
	                    "or .bin)");
	mkdir(tmp("dir.npy"), 0700);
	snprintf(arg, sizeof(arg), "@%s", tmp("dir.npy"));
	arg_error(arg, "dir.npy: it is a directory");
	rmdir(tmp("dir.npy"));
}

static void
test_json_bin_files(void)
{
	struct cohort_error err;
	msgpack_sbuffer sb;
	char arg[600], *s;
	size_t n;
	int rc;

	spit(tmp("in.json"), "{\"k\": [1, 2.5], \"s\": \"x\"}\n", 26);
	snprintf(arg, sizeof(arg), "@%s", tmp("in.json"));
	s = fmt_arg(arg, 0);
	is_str(s, "{'k': [1, 2.5], 's': 'x'}", "read @in.json");
	free(s);
	spit(tmp("bad.json"), "{\n  \"k\": [1,\n}", 15);
	snprintf(arg, sizeof(arg), "@%s", tmp("bad.json"));
	arg_error(arg, "bad.json: JSON error at line 3 column");
	spit(tmp("in.bin"), "ab\0\xff", 4);
	snprintf(arg, sizeof(arg), "@%s", tmp("in.bin"));
	s = fmt_arg(arg, 0);
	is_str(s, "b'ab\\x00\\xff'", "read @in.bin");
	free(s);

	/* write .json and .bin */
	msgpack_sbuffer_init(&sb);
	value_from_arg("{\"a\": [1, null, \"\\u00e9\"]}", &sb, fresh(&err));
	rc = value_write_file(sb.data, sb.size, tmp("out.json"), fresh(&err));
	s = slurp(tmp("out.json"), &n);
	ok(rc == 0 && s &&
	       strcmp(s, "{\n  \"a\": [\n    1,\n    null,\n"
	                 "    \"\xc3\xa9\"\n  ]\n}\n") == 0,
	   "write .json (%s)", s ? "as expected" : err.text);
	free(s);
	rc = value_write_file(sb.data, sb.size, tmp("out.npy"), fresh(&err));
	ok(rc < 0 && strstr(err.text, "cannot write a dict to") &&
	       strstr(err.text, "only arrays can be written to .npy; use "
	                        ".json"),
	   "a dict is not an array: %s", err.text);
	rc = value_write_file(sb.data, sb.size, tmp("out.bin"), fresh(&err));
	ok(rc < 0 && strstr(err.text, "only bytes, str and arrays"),
	   ".bin refuses a dict: %s", err.text);
	rc = value_write_file(sb.data, sb.size, tmp("out.txt"), fresh(&err));
	ok(rc < 0 && strstr(err.text, "unknown file type"), "out.txt: %s",
	   err.text);
	rc = value_write_file(sb.data, sb.size, "/nonexistent/x.json",
	                      fresh(&err));
	ok(rc < 0 && strstr(err.text, "cannot write /nonexistent/x.json: No "
	                              "such file"),
	   "unwritable path: %s", err.text);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	value_from_arg("[1, 2, 3]", &sb, fresh(&err));
	rc = value_write_file(sb.data, sb.size, tmp("list.npy"), fresh(&err));
	ok(rc < 0 && strstr(err.text, "cannot write a list to"),
	   "a list is not an array: %s", err.text);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	value_from_arg("\"raw\\u0000text\"", &sb, fresh(&err));
	rc = value_write_file(sb.data, sb.size, tmp("out.bin"), fresh(&err));
	s = slurp(tmp("out.bin"), &n);
	ok(rc == 0 && n == 8 && memcmp(s, "raw\0text", 8) == 0,
	   "write a str to .bin");
	free(s);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_to_json(void)
{
	double f8[4] = {1, 2.5, -0.0, 4};
	double c16[2] = {1, -2};
	double nan3[3] = {NAN, INFINITY, -INFINITY};
	uint64_t u8 = UINT64_MAX, s22[2] = {2, 2}, s1 = 1, s3 = 3;
	uint64_t sbig[2] = {1ULL << 40, 0};
	struct cohort_error err;
	msgpack_sbuffer sb;
	json_t *j;
	char *s;

#define JCASE(build, want)                                                     \
	do {                                                                   \
		msgpack_sbuffer_init(&sb);                                     \
		build;                                                         \
		j = value_to_json(sb.data, sb.size, fresh(&err));              \
		s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;  \
		is_str(s ? s : err.text, want, "to_json " want);               \
		free(s);                                                       \
		json_decref(j);                                                \
		msgpack_sbuffer_destroy(&sb);                                  \
	} while (0)
	JCASE(make_nd(&sb, "<f8", 2, s22, f8, 32),
	      "{\"dtype\":\"float64\",\"shape\":[2,2],\"data\":[[1.0,2.5],"
	      "[-0.0,4.0]]}");
	JCASE(make_nd(&sb, "<c16", 1, &s1, c16, 16),
	      "{\"dtype\":\"complex128\",\"shape\":[1],\"data\":[[1.0,-2.0]]}");
	JCASE(make_nd(&sb, "<f8", 1, &s3, nan3, 24),
	      "{\"dtype\":\"float64\",\"shape\":[3],\"data\":[\"nan\",\"inf\","
	      "\"-inf\"]}");
	JCASE(make_nd(&sb, "<u8", 0, NULL, &u8, 8),
	      "{\"dtype\":\"uint64\",\"shape\":[],\"data\":1."
	      "8446744073709552e19}");
	JCASE(make_nd(&sb, "<f8", 2, sbig, NULL, 0),
	      "an empty array of this shape is too large for JSON");
	JCASE(value_from_arg("{\"a\": [true, null, \"x\"]}", &sb, &err),
	      "{\"a\":[true,null,\"x\"]}");
	JCASE(msgpack_sbuffer_write(&sb,
	                            "\xc4\x04"
	                            "abcd",
	                            6),
	      "{\"bytes_b64\":\"YWJjZA==\"}");
	JCASE(msgpack_sbuffer_write(&sb, "\xcb\x7f\xf8\0\0\0\0\0\0", 9),
	      "\"nan\"");
	JCASE(msgpack_sbuffer_write(&sb, "\x81\x01\x02", 3),
	      "dict keys must be str for JSON, not an int");
	JCASE(msgpack_sbuffer_write(&sb, "\xa2\xff\xfe", 3),
	      "a str is not valid UTF-8");
	JCASE(msgpack_sbuffer_write(&sb, "\xd4\x05\x07", 3),
	      "extension type 5 has no JSON form");
	JCASE(msgpack_sbuffer_write(&sb, "\x91", 1),
	      "malformed value: list of 1 items in 0 bytes");
#undef JCASE
}

static void
test_split_concat(void)
{
	int64_t v[10], m[10];
	uint64_t s10 = 10, s52[2] = {5, 2}, s3 = 3;
	int32_t i4[3] = {1, 2, 3};
	msgpack_sbuffer orig, o2, parts[12], cat;
	const void *pd[12];
	size_t pl[12], i;
	struct cohort_error err;
	char *s;
	int rc;

	for (i = 0; i < 10; i++)
		v[i] = (int64_t)i * 1000;
	msgpack_sbuffer_init(&orig);
	make_nd(&orig, "<i8", 1, &s10, v, sizeof(v));
	for (i = 0; i < 3; i++)
		msgpack_sbuffer_init(&parts[i]);
	rc = value_split(orig.data, orig.size, 3, parts, fresh(&err));
	ok(rc == 0, "split 10 rows into 3");
	is_value_fmt(parts[0].data, parts[0].size,
	             "array([0, 1000, 2000, "
	             "3000], shape=(4,), dtype=int64)",
	             "part 0 has 4 rows");
	is_value_fmt(parts[1].data, parts[1].size,
	             "array([4000, 5000, 6000],"
	             " shape=(3,), dtype=int64)",
	             "part 1 has 3 rows");
	is_value_fmt(parts[2].data, parts[2].size,
	             "array([7000, 8000, 9000],"
	             " shape=(3,), dtype=int64)",
	             "part 2 has 3 rows");
	ok(memcmp(parts[1].data + parts[1].size - 24, v + 4, 24) == 0,
	   "part 1 bytes");
	for (i = 0; i < 3; i++) {
		pd[i] = parts[i].data;
		pl[i] = parts[i].size;
	}
	msgpack_sbuffer_init(&cat);
	rc = value_concat(pd, pl, 3, &cat, fresh(&err));
	ok(rc == 0 && cat.size == orig.size &&
	       memcmp(cat.data, orig.data, orig.size) == 0,
	   "concat of the parts is the original exactly");
	msgpack_sbuffer_destroy(&cat);
	for (i = 0; i < 3; i++)
		msgpack_sbuffer_destroy(&parts[i]);

	/* more parts than rows, and a 2-d array */
	for (i = 0; i < 10; i++)
		m[i] = (int64_t)i;
	msgpack_sbuffer_init(&o2);
	make_nd(&o2, "<i8", 2, s52, m, sizeof(m));
	for (i = 0; i < 12; i++)
		msgpack_sbuffer_init(&parts[i]);
	rc = value_split(o2.data, o2.size, 7, parts, fresh(&err));
	ok(rc == 0, "split 5 rows into 7");
	is_value_fmt(parts[0].data, parts[0].size,
	             "array([0, 1], shape=(1, 2), dtype=int64)",
	             "part 0: 1 row");
	is_value_fmt(parts[4].data, parts[4].size,
	             "array([8, 9], shape=(1, 2), dtype=int64)",
	             "part 4: 1 row");
	is_value_fmt(parts[6].data, parts[6].size,
	             "array([], shape=(0, 2), dtype=int64)", "part 6: empty");
	for (i = 0; i < 7; i++) {
		pd[i] = parts[i].data;
		pl[i] = parts[i].size;
	}
	msgpack_sbuffer_init(&cat);
	rc = value_concat(pd, pl, 7, &cat, fresh(&err));
	ok(rc == 0 && cat.size == o2.size &&
	       memcmp(cat.data, o2.data, o2.size) == 0,
	   "concat of 7 parts (2 empty) is the original exactly");
	msgpack_sbuffer_destroy(&cat);

	/* mismatches */
	pd[0] = orig.data;
	pl[0] = orig.size;
	msgpack_sbuffer_init(&cat);
	rc = value_concat(pd, pl, 2, &cat, fresh(&err));
	ok(rc < 0 && strstr(err.text, "part 1 has shape (1, 2), part 0 has "
	                              "(10,)"),
	   "shape mismatch: %s", err.text);
	msgpack_sbuffer_destroy(&orig);
	msgpack_sbuffer_init(&orig);
	make_nd(&orig, "<i4", 1, &s3, i4, sizeof(i4));
	pd[0] = orig.data;
	pl[0] = orig.size;
	rc = value_concat(pd, pl, 2, &cat, fresh(&err));
	is_str(err.text, "part 1 has dtype int64, part 0 has int32",
	       "dtype mismatch");
	ok(rc < 0 && cat.size == 0, "nothing written on error");
	for (i = 0; i < 12; i++)
		msgpack_sbuffer_destroy(&parts[i]);

	/* msgpack lists */
	msgpack_sbuffer_destroy(&orig);
	msgpack_sbuffer_init(&orig);
	value_from_arg("[1, \"two\", [3], {\"4\": 4}, 5.5]", &orig, &err);
	for (i = 0; i < 3; i++)
		msgpack_sbuffer_init(&parts[i]);
	rc = value_split(orig.data, orig.size, 3, parts, fresh(&err));
	s = value_format(parts[0].data, parts[0].size, 0);
	ok(rc == 0 && strcmp(s, "[1, 'two']") == 0, "list part 0: %s", s);
	free(s);
	is_value_fmt(parts[1].data, parts[1].size, "[[3], {'4': 4}]",
	             "list part 1");
	is_value_fmt(parts[2].data, parts[2].size, "[5.5]", "list part 2");
	for (i = 0; i < 3; i++) {
		pd[i] = parts[i].data;
		pl[i] = parts[i].size;
	}
	rc = value_concat(pd, pl, 3, &cat, fresh(&err));
	ok(rc == 0 && cat.size == orig.size &&
	       memcmp(cat.data, orig.data, orig.size) == 0,
	   "concat of list parts is the original exactly");
	pd[1] = o2.data;
	pl[1] = o2.size;
	rc = value_concat(pd, pl, 2, &cat, fresh(&err));
	is_str(err.text, "part 1 is an array, part 0 is a list",
	       "list and array do not mix");
	for (i = 0; i < 3; i++)
		msgpack_sbuffer_destroy(&parts[i]);
	msgpack_sbuffer_destroy(&cat);

	/* what cannot be split */
	msgpack_sbuffer_init(&parts[0]);
	rc = value_split("\x05", 1, 2, parts, fresh(&err));
	is_str(err.text,
	       "cannot split an int: only lists and arrays can be "
	       "split",
	       "split a scalar");
	rc = value_split("\x80", 1, 2, parts, fresh(&err));
	is_str(err.text,
	       "cannot split a dict: only lists and arrays can be "
	       "split",
	       "split a map");
	msgpack_sbuffer_destroy(&orig);
	msgpack_sbuffer_init(&orig);
	make_nd(&orig, "<i8", 0, NULL, v, 8);
	rc = value_split(orig.data, orig.size, 2, parts, fresh(&err));
	is_str(err.text, "cannot split a 0-d array", "split a 0-d array");
	pd[0] = orig.data;
	pl[0] = orig.size;
	rc = value_concat(pd, pl, 1, &cat, fresh(&err));
	is_str(err.text, "part 0 is a 0-d array, which cannot be concatenated",
	       "concat a 0-d array");
	rc = value_split(orig.data, orig.size, 0, parts, fresh(&err));
	ok(rc < 0 && parts[0].size == 0, "split into 0 parts fails");
	msgpack_sbuffer_destroy(&parts[0]);
	msgpack_sbuffer_destroy(&orig);
	msgpack_sbuffer_destroy(&o2);
}

static void
test_names(void)
{
	ok(value_name_ok("a"), "a is a name");
	ok(value_name_ok("_x1"), "_x1 is a name");
	ok(value_name_ok("Classy"), "Classy is a name");
	ok(!value_name_ok("1a"), "1a is not a name");
	ok(!value_name_ok("class"), "class is a keyword");
	ok(!value_name_ok("None"), "None is a keyword");
	ok(!value_name_ok("a-b"), "a-b is not a name");
	ok(!value_name_ok(""), "'' is not a name");
	ok(!value_name_ok("caf\xc3\xa9"), "non-ASCII is refused");
}

/* The helpers of the engines' data movement: open an array value, build
 * one from a head and elements, find where the elements start. */
static void
test_array_helpers(void)
{
	uint64_t shape[3] = {4, 2, 3}, elems[24];
	struct cohort_error err;
	struct value_array a;
	msgpack_sbuffer sb;
	size_t head;

	for (int i = 0; i < 24; i++)
		elems[i] = (uint64_t)i * 7;
	msgpack_sbuffer_init(&sb);
	ok(value_array_head(&sb, "<u8", 3, shape, &err) == 0, "array head");
	head = sb.size;
	msgpack_sbuffer_write(&sb, (const char *)elems, sizeof(elems));
	ok(value_check(sb.data, sb.size, &err) == 0, "head + elements is a value");
	ok(value_array_open(sb.data, sb.size, &a, &err) == 1 &&
	       strcmp(a.descr, "<u8") == 0 && a.ndim == 3 && a.shape[0] == 4 &&
	       a.shape[2] == 3 && a.itemsize == 8 &&
	       a.nbytes == sizeof(elems) &&
	       a.data == (const uint8_t *)sb.data + head,
	   "value_array_open finds dtype, shape and elements");
	ok(value_array_offset(sb.data, sb.size) == head,
	   "value_array_offset from the whole value");
	ok(value_array_offset(sb.data, head) == head,
	   "value_array_offset from the head alone");
	ok(value_array_offset(sb.data, head - 1) == 0,
	   "a cut-off head gives 0");
	ok(value_array_offset("\x92\x01\x02", 3) == 0 &&
	       value_array_open("\x92\x01\x02", 3, &a, &err) == 0,
	   "a list is not an array");
	ok(value_array_open("\x92\x01", 2, &a, &err) < 0,
	   "a malformed value is an error");
	ok(value_array_head(&sb, "<x9", 1, shape, &err) < 0,
	   "an unknown dtype is refused");
	msgpack_sbuffer_destroy(&sb);
}

int
main(void)
{
	char cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_json_literals();
	test_json_errors();
	test_format_limits();
	test_format_arrays();
	test_npy_round_trip();
	test_npy_numpy();
	test_npy_bad();
	test_json_bin_files();
	test_to_json();
	test_split_concat();
	test_names();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	test_array_helpers();
	return done_testing();
}
