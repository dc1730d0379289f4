/* SPDX-License-Identifier: BSD-3-Clause */
/* test_kernel_python.c - unit tests for the embedded Python kernel:
 * execute, errors, interrupts, and push/pull of msgpack values. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "cohort/kernel.h"
#include "tap.h"

static const struct kernel_ops *k = &kernel_python;
static struct kernel_reply r;

static struct kernel_reply *
run(const char *code)
{
	kernel_reply_clear(&r);
	k->execute(code, strlen(code), &r);
	if (!r.ok)
		diag("%s: %s: %s", code, r.ename ? r.ename : "?",
		     r.evalue ? r.evalue : "?");
	return &r;
}

/* Execute code that must succeed and return its result (or ""). */
static const char *
eval(const char *code)
{
	run(code);
	return r.ok ? (r.result ? r.result : "") : "(error)";
}

static struct kernel_reply *
push(const char *name, const void *data, size_t len)
{
	kernel_reply_clear(&r);
	k->push(name, data, len, &r);
	return &r;
}

static struct kernel_reply *
pull(const char *name)
{
	kernel_reply_clear(&r);
	k->pull(name, &r);
	return &r;
}

static int
has(const char *s, const char *sub)
{
	return s && strstr(s, sub);
}

/* A <f8 array of shape [rows, cols] holding 0, 1, 2, ... */
/* The [dtype, shape] of a <f8 [rows, cols] array into hs (initialised). */
static void
pack_f8_header(msgpack_sbuffer *hs, size_t rows, size_t cols)
{
	msgpack_packer hp;

	msgpack_sbuffer_init(hs);
	msgpack_packer_init(&hp, hs, msgpack_sbuffer_write);
	msgpack_pack_array(&hp, 2);
	msgpack_pack_str_with_body(&hp, "<f8", 3);
	msgpack_pack_array(&hp, 2);
	msgpack_pack_uint64(&hp, rows);
	msgpack_pack_uint64(&hp, cols);
}

static void
pack_f8_array(msgpack_sbuffer *sb, unsigned rows, unsigned cols, size_t nbytes)
{
	msgpack_sbuffer hs;
	msgpack_packer pk;
	double v[64];
	unsigned i;

	for (i = 0; i < 64; i++)
		v[i] = i;
	pack_f8_header(&hs, rows, cols);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_ext(&pk, hs.size + nbytes, COHORT_EXT_NDARRAY);
	msgpack_pack_ext_body(&pk, hs.data, hs.size);
	msgpack_pack_ext_body(&pk, v, nbytes);
	msgpack_sbuffer_destroy(&hs);
}

static int
same_bytes(const struct kernel_reply *a, const msgpack_sbuffer *sb)
{
	return a->ok && a->len == sb->size && a->data &&
	       memcmp(a->data, sb->data, sb->size) == 0;
}

static void
test_execute(void)
{
	run("1+1");
	ok(r.ok, "1+1 succeeds");
	is_str(r.result, "2", "1+1 gives 2");
	is_int(r.execution_count, 1, "first execution_count is 1");
	run("x = 5");
	ok(r.ok && !r.result, "assignment has no result");
	is_int(r.execution_count, 2, "execution_count increments");
	is_str(eval("x*2"), "10", "globals persist between calls");
	is_str(eval("40 + 2"), "42", "expression");
	is_str(eval("_"), "42", "_ holds the last result");
	is_str(eval("None"), "", "None gives no result");
	is_str(eval("def f(n):\n    return n + 1\nf(1)"), "2",
	       "multi-line cell ending in an expression");
	is_str(eval("import sys\nsys.argv"), "['test_kernel_python']",
	       "sys.argv is [argv0]");
	is_str(eval("sys.path[0]"), "''", "cwd is first on sys.path");
	is_str(eval("'_cohort_kernel' in globals(), 'run' in globals()"),
	       "(False, False)", "helper is not visible in __main__");
	is_str(eval("print('hello from python')"), "", "print works");
	k->flush();

	run("1/0");
	ok(!r.ok, "1/0 fails");
	is_str(r.ename, "ZeroDivisionError", "ename");
	is_str(r.evalue, "division by zero", "evalue");
	ok(has(r.traceback, "<cell-") && has(r.traceback, "1/0"),
	   "traceback names the cell and shows its source");
	ok(!has(r.traceback, "<cohort-kernel>") && !has(r.traceback, "run"),
	   "traceback has no helper frames");
	is_int(r.execution_count, 12, "execution_count set on error too");

	run("def g():\n    raise ValueError('boom')\ng()");
	ok(has(r.traceback, "in g") && has(r.traceback, "raise ValueError"),
	   "traceback goes into user functions");
	is_str(r.evalue, "boom", "ValueError evalue");

	run("1 +");
	is_str(r.ename, "SyntaxError", "syntax error");
	ok(has(r.traceback, "<cell-") && has(r.traceback, "1 +") &&
	       !has(r.traceback, "ast.py"),
	   "syntax error traceback shows the line, not ast.py");
	run("return 1");
	is_str(r.ename, "SyntaxError", "compile-time syntax error");

	run("exit(3)");
	is_str(r.ename, "SystemExit", "exit() is an error");
	is_str(r.evalue, "3", "SystemExit value");
	is_str(eval("'still here'"), "'still here'", "engine survives exit()");

	run("\xff\xfe");
	is_str(r.ename, "UnicodeDecodeError", "code that is not UTF-8");

	run("class Bad:\n    def __repr__(self):\n        raise KeyError(1)\n"
	    "Bad()");
	is_str(r.ename, "KeyError", "a failing repr is an error");
}

static void *
interrupt_later(void *arg)
{
	usleep(200 * 1000);
	k->interrupt();
	return arg;
}

static void
test_interrupt(void)
{
	pthread_t t;

	k->interrupt();
	is_str(eval("'fine'"), "'fine'", "an interrupt while idle is dropped");
	if (pthread_create(&t, NULL, interrupt_later, NULL) != 0) {
		ok(0, "pthread_create");
		return;
	}
	run("while True:\n    pass");
	pthread_join(t, NULL);
	is_str(r.ename, "KeyboardInterrupt", "interrupt stops a busy loop");
	ok(has(r.traceback, "<cell-"), "KeyboardInterrupt has a traceback");
	is_str(eval("1"), "1", "the kernel works after an interrupt");

	/* A main thread blocked in a system call is interrupted too. */
	if (pthread_create(&t, NULL, interrupt_later, NULL) != 0) {
		ok(0, "pthread_create");
		return;
	}
	run("import time\ntime.sleep(30)");
	pthread_join(t, NULL);
	is_str(r.ename, "KeyboardInterrupt", "interrupt stops time.sleep()");
}

static void
test_values(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	static const char bin[] = {0, 1, 2};

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 9);
	msgpack_pack_str_with_body(&pk, "s", 1);
	msgpack_pack_str_with_body(&pk, "h\xc3\xa9", 3);
	msgpack_pack_str_with_body(&pk, "i", 1);
	msgpack_pack_int64(&pk, -5);
	msgpack_pack_str_with_body(&pk, "big", 3);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_str_with_body(&pk, "neg", 3);
	msgpack_pack_int64(&pk, INT64_MIN);
	msgpack_pack_str_with_body(&pk, "f", 1);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_str_with_body(&pk, "t", 1);
	msgpack_pack_true(&pk);
	msgpack_pack_str_with_body(&pk, "n", 1);
	msgpack_pack_nil(&pk);
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_bin_with_body(&pk, bin, sizeof(bin));
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int64(&pk, 1);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_false(&pk);

	push("v", sb.data, sb.size);
	ok(r.ok, "push a nested map");
	is_str(eval("v['s'], v['i'], v['big'], v['b'], v['a'], type(v['f'])"),
	       "('h\xc3\xa9', -5, 18446744073709551615, b'\\x00\\x01\\x02', "
	       "[1, '', [False]], <class 'float'>)",
	       "pushed values have their Python types");
	pull("v");
	ok(same_bytes(&r, &sb), "pull gives the pushed bytes back");
	msgpack_sbuffer_destroy(&sb);

	push("for", "\xc0", 1);
	ok(!r.ok && !strcmp(r.ename, "ValueError") &&
	       has(r.evalue, "invalid name"),
	   "push to a keyword is refused");
	push("1x", "\xc0", 1);
	ok(!r.ok && has(r.evalue, "invalid name"), "push to '1x' is refused");

	pull("nope");
	is_str(r.ename, "NameError", "pull of an undefined name");
	is_str(r.evalue, "name 'nope' is not defined", "NameError text");
	run("import os");
	pull("os");
	is_str(r.ename, "TypeError", "pull of a module");
	ok(has(r.evalue, "cannot pull 'os': values of type module have no "
	                 "msgpack form: <module 'os'"),
	   "TypeError names the type and the repr");
	run("def fn(): pass\nd = {1: 2}\nhuge = 2**64\nlng = 'x' * 1000");
	pull("fn");
	ok(has(r.evalue, "function"), "pull of a function");
	pull("d");
	ok(!r.ok && has(r.evalue, "keys must be str, not int"),
	   "dict with int keys");
	pull("huge");
	is_str(r.ename, "OverflowError", "int beyond 64 bits");
	run("class C:\n    def __repr__(self): return 'c' * 1000\n"
	    "obj = [C()]");
	pull("obj");
	ok(r.evalue && strlen(r.evalue) < 320 && has(r.evalue, "type C"),
	   "long reprs are truncated in the error");
	run("deep = []\ndeep.append(deep)");
	pull("deep");
	ok(!r.ok && has(r.evalue, "nested deeper"), "a cyclic list is refused");

	run("tup = (1, bytearray(b'ab'), memoryview(b'abcd')[::2])");
	pull("tup");
	ok(r.ok && r.len == 10 &&
	       !memcmp(r.data,
	               "\x93\x01\xc4\x02"
	               "ab\xc4\x02"
	               "ac",
	               10),
	   "tuple, bytearray, strided memoryview");
}

static void
test_depth(void)
{
	unsigned char buf[80];

	memset(buf, 0x91, 64);
	buf[64] = 0xc0;
	push("d64", buf, 65);
	ok(r.ok, "64 nested arrays are accepted");
	pull("d64");
	ok(r.ok && r.len == 65 && !memcmp(r.data, buf, 65), "and pulled back");
	memset(buf, 0x91, 65);
	buf[65] = 0xc0;
	push("d65", buf, 66);
	ok(!r.ok && has(r.evalue, "nested deeper"), "65 are refused");
	run("d65 = [d64]");
	pull("d65");
	ok(!r.ok && has(r.evalue, "nested deeper"), "also on pull");
}

static void
test_malformed(void)
{
	static const struct {
		const char *what;
		const char *data;
		size_t len;
	} bad[] = {
	    {"empty input", "", 0},
	    {"huge array count", "\xdd\xff\xff\xff\xff", 5},
	    {"huge map count", "\xdf\xff\xff\xff\xff", 5},
	    {"truncated str",
	     "\xa5"
	     "ab",
	     3},
	    {"trailing bytes", "\xc0\xc0", 2},
	    {"reserved byte 0xc1", "\xc1", 1},
	    {"invalid UTF-8 str", "\xa1\xff", 2},
	    {"unknown ext type", "\xd4\x05\x00", 3},
	    {"unhashable key", "\x81\x90\x01", 3},
	    {"ext with a bad header", "\xd5\x01\x92\x01", 4},
	    {"ext with bad dtype",
	     "\xc7\x0b\x01\x92\xa3|O8\x91\x01"
	     "\0\0\0\0",
	     14},
	    {"ext with negative dim", "\xc7\x07\x01\x92\xa3<f8\x91\xff", 10},
	};
	msgpack_sbuffer sb;
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		push("bad", bad[i].data, bad[i].len);
		ok(!r.ok && r.ename && r.evalue, "malformed: %s (%s: %s)",
		   bad[i].what, r.ename ? r.ename : "",
		   r.evalue ? r.evalue : "");
	}
	push("bad", NULL, 0);
	ok(!r.ok, "NULL data");

	msgpack_sbuffer_init(&sb);
	pack_f8_array(&sb, 2, 3, 40);
	push("bad", sb.data, sb.size);
	ok(!r.ok && !strcmp(r.ename, "ValueError") &&
	       !strcmp(r.evalue, "malformed array value"),
	   "array with the wrong raw length");
	msgpack_sbuffer_destroy(&sb);

	/* Random inputs and bit flips of a valid one: errors, never crashes. */
	msgpack_sbuffer_init(&sb);
	pack_f8_array(&sb, 2, 3, 48);
	srand(1);
	for (n = 0; n < 20000; n++) {
		unsigned char buf[64];
		size_t len = (size_t)rand() % sizeof(buf), j;

		if (n % 2) {
			len = sb.size;
			memcpy(buf, sb.data, len);
			buf[rand() % len] ^= (unsigned char)(1 << rand() % 8);
		} else {
			for (j = 0; j < len; j++)
				buf[j] = (unsigned char)rand();
		}
		push("fz", buf, len);
		if (r.ok || (r.ename && r.evalue))
			continue;
		break;
	}
	ok(n == 20000, "20000 random and mutated values decode or fail");
	msgpack_sbuffer_destroy(&sb);
}

static void
test_ndarray(void)
{
	static const char *const names[] = {"z", "e", "c", "b", "i8"};
	msgpack_sbuffer sb;
	char code[160];
	void *data;
	size_t i;

	msgpack_sbuffer_init(&sb);
	pack_f8_array(&sb, 2, 3, 48);
	push("a", sb.data, sb.size);
	ok(r.ok, "push a <f8 [2, 3] array");
	is_str(eval("a.sum()"), "15.0", "a.sum()");
	is_str(eval("a.shape, a.dtype.str, a.flags.writeable, a[1, 2]"),
	       "((2, 3), '<f8', True, 5.0)", "shape, dtype, writeable");
	pull("a");
	ok(same_bytes(&r, &sb), "pull gives the pushed array bytes back");

	run("import numpy as np\n"
	    "fa = np.asfortranarray(np.arange(6.).reshape(2, 3))\n"
	    "be = np.arange(6.).reshape(2, 3).astype('>f8')\n");
	pull("fa");
	ok(same_bytes(&r, &sb), "Fortran-ordered array pulls in C order");
	pull("be");
	ok(same_bytes(&r, &sb), "big-endian array pulls as little-endian");
	run("sl = np.arange(12.).reshape(2, 6)[:, ::2] / 2");
	pull("sl");
	ok(r.ok, "strided view pulls");
	data = r.data; /* push clears r */
	r.data = NULL;
	push("sl2", data, r.len);
	free(data);
	is_str(eval("(sl2 == sl).all(), sl2.flags.c_contiguous"),
	       "(True, True)", "and round-trips");
	msgpack_sbuffer_destroy(&sb);

	run("z = np.array(7, dtype=np.int32)\ne = np.zeros((0, 3), np.uint16)\n"
	    "c = np.array([1+2j, 3-4j], np.complex64)\n"
	    "b = np.array([True, False])\ni8 = np.arange(-3, 3, "
	    "dtype=np.int8)");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		pull(names[i]);
		ok(r.ok, "pull %s", names[i]);
		data = r.data; /* push clears r */
		r.data = NULL;
		push("rt", data, r.len);
		free(data);
		snprintf(code, sizeof(code),
		         "rt.dtype == %s.dtype and rt.shape == %s.shape and "
		         "(rt == %s).all()",
		         names[i], names[i], names[i]);
		is_str(eval(code), "True", "round trip");
	}

	/* A bool array whose bytes are not 0/1 is normalised. */
	push("bb", "\xc7\x09\x01\x92\xa3|b1\x91\x02\x02\x00", 12);
	is_str(eval("bb.tolist(), bb.view(np.uint8).tolist()"),
	       "([True, False], [1, 0])", "bool bytes are normalised");

	run("o = np.array([None])\ndt = np.array(['2020-01-01'], "
	    "dtype='datetime64[D]')");
	pull("o");
	ok(!r.ok && has(r.evalue, "dtype object"), "object arrays refused");
	pull("dt");
	ok(!r.ok && has(r.evalue, "datetime64"), "datetime arrays refused");

	run("s = [np.int32(7), np.bool_(True), np.float32(1.5), "
	    "np.float64(2)]");
	pull("s");
	ok(r.ok && r.len == 1 + 1 + 1 + 5 + 9 &&
	       !memcmp(r.data, "\x94\x07\xc3\xca\x3f\xc0\0\0\xcb\x40", 10),
	   "numpy scalars pull as msgpack scalars");
	run("cs = np.complex128(1j)");
	pull("cs");
	ok(!r.ok && has(r.evalue, "complex"), "complex scalar refused");
}

/* push_owned: a large array that is the whole value becomes a view of
 * the handed-over block (no copy), freed with the array; anything else is
 * decoded as by push and the block freed at once. */
static void
test_push_owned(void)
{
	const size_t rows = 1 << 15, cols = 8, nbytes = rows * cols * 8;
	msgpack_sbuffer hs;
	size_t off, head;
	unsigned char *block;
	double *v;

	pack_f8_header(&hs, rows, cols);
	head = 6 + hs.size; /* ext32: c9, 4-byte length, type */
	/* Elements at a 64-byte boundary, as the engine places them. */
	off = (64 - head % 64) % 64;
	if (posix_memalign((void **)&block, 64, off + head + nbytes) != 0) {
		ok(0, "posix_memalign");
		return;
	}
	block[off] = 0xc9;
	block[off + 1] = (unsigned char)((hs.size + nbytes) >> 24);
	block[off + 2] = (unsigned char)((hs.size + nbytes) >> 16);
	block[off + 3] = (unsigned char)((hs.size + nbytes) >> 8);
	block[off + 4] = (unsigned char)(hs.size + nbytes);
	block[off + 5] = COHORT_EXT_NDARRAY;
	memcpy(block + off + 6, hs.data, hs.size);
	v = (double *)(block + off + head);
	for (size_t i = 0; i < rows * cols; i++)
		v[i] = (double)i;
	msgpack_sbuffer_destroy(&hs);
	ok(((uintptr_t)v & 63) == 0, "elements aligned for the test");

	kernel_reply_clear(&r);
	k->push_owned("big", block, block + off, head + nbytes, &r);
	ok(r.ok, "push_owned a 2 MiB array");
	is_str(eval("type(big.base.base).__name__, big.shape, "
	            "big.flags.writeable, big.flags.aligned"),
	       "('Block', (32768, 8), True, True)",
	       "it is a writable, aligned view of the block");
	is_str(eval("float(big.sum()) == sum(range(32768 * 8))"), "True",
	       "with the pushed elements");
	is_str(eval("big[1, 2] += 1; big[1, 2]"), "11.0", "and can be written");
	run("del big");
	ok(r.ok, "the block goes with the array");

	/* A small value is copied; the block is freed all the same (ASan
	 * would report a leak or a use after free). */
	block = malloc(16);
	memcpy(block, "\x92\x01\xa2hi", 5);
	kernel_reply_clear(&r);
	k->push_owned("small", block, block, 5, &r);
	is_str(eval("small"), "[1, 'hi']", "a small value through push_owned");
	block = malloc(16);
	memcpy(block, "\xc1", 1);
	kernel_reply_clear(&r);
	k->push_owned("bad", block, block, 1, &r);
	ok(!r.ok, "a malformed value through push_owned fails cleanly");
}

int
main(void)
{
	struct cohort_error err = {{0}};

	if (k->init("test_kernel_python", &err) < 0) {
		printf("Bail out! %s\n", err.text);
		return 1;
	}
	test_execute();
	test_interrupt();
	test_values();
	test_depth();
	test_malformed();
	test_ndarray();
	test_push_owned();
	kernel_reply_clear(&r);
	k->finalize();
	return done_testing();
}
