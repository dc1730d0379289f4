/* SPDX-License-Identifier: BSD-3-Clause */
/* kernel_python.c - the Python kernel: embedded CPython behind kernel.h.
 *
 * User code runs in the persistent namespace of __main__. The fiddly parts
 * that are short in Python (parsing a cell, formatting tracebacks, numpy
 * dtype rules) live in a small helper module compiled from helper_src into
 * a private dict; value encoding and decoding are C, so no Python code runs
 * per element.
 *
 * Between calls the main thread does not hold the GIL, so threads started
 * by user code keep running while the engine waits for the next request.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* first: it sets the feature-test macros */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cohort/kernel.h"

/* Deepest nesting of arrays, maps and ndarray extensions in a value. */
#define VALUE_MAX_DEPTH 64
/* Helper frames carry this file name, so tracebacks can drop them. */
#define HELPER_FILE "<cohort-kernel>"

static const char helper_src[] =
    "import ast, keyword, linecache, math, os, signal, sys, traceback\n"
    "HERE = '" HELPER_FILE "'\n"
    "DTYPES = frozenset('|b1 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 <f4 <f8 <c8 "
    "<c16'.split())\n"
    "def setup(argv0):\n"
    "    sys.argv = [argv0]\n"
    "    sys.path.insert(0, '')\n"
    /* Python leaves SIGINT alone if it was ignored at start (engines
     * started in the background) or already handled by the engine. */
    "    signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    /* Embedded, sys.executable is guessed from PATH and may name another
     * Python (pyenv); name the one we are linked against instead. */
    "    exe = os.path.join(sys.base_prefix, 'bin',\n"
    "                       'python%d.%d' % sys.version_info[:2])\n"
    "    if os.access(exe, os.X_OK):\n"
    "        sys.executable = exe\n"
    /* Tracebacks show cell source through linecache; keep the last
     * 1000 cells there, not every cell of a long session. */
    "cells = []\n"
    "def run(src, fname, ns):\n"
    "    linecache.cache[fname] = (len(src), None, src.splitlines(True),\n"
    "                              fname)\n"
    "    cells.append(fname)\n"
    "    if len(cells) > 1000:\n"
    "        linecache.cache.pop(cells.pop(0), None)\n"
    "    try:\n"
    "        tree = ast.parse(src, fname)\n"
    "        last = None\n"
    "        if tree.body and isinstance(tree.body[-1], ast.Expr):\n"
    "            last = ast.Expression(tree.body.pop().value)\n"
    "            last = compile(last, fname, 'eval')\n"
    "        body = compile(tree, fname, 'exec')\n"
    "    except (SyntaxError, ValueError) as e:\n"
    "        raise e.with_traceback(None)\n" /* no frames of ast.py */
    "    exec(body, ns)\n"
    "    if last is None:\n"
    "        return None\n"
    "    value = eval(last, ns)\n"
    "    if value is None:\n"
    "        return None\n"
    "    ns['_'] = value\n"
    "    return repr(value)\n"
    "def describe(e, full):\n"
    "    tb = e.__traceback__\n"
    "    while tb is not None and tb.tb_frame.f_code.co_filename == HERE:\n"
    "        tb = tb.tb_next\n"
    "    try:\n"
    "        evalue = str(e)\n"
    "    except BaseException:\n"
    "        evalue = '<unprintable %s object>' % type(e).__name__\n"
    "    text = None\n"
    "    if full:\n"
    "        sys.last_type, sys.last_value, sys.last_traceback = \\\n"
    "            type(e), e, tb\n"
    "        try:\n"
    "            text = ''.join(traceback.format_exception(type(e), e, tb))\n"
    "        except BaseException:\n"
    "            pass\n"
    "    return type(e).__name__, evalue, text\n"
    "def flush():\n"
    "    for f in (sys.stdout, sys.stderr):\n"
    "        try:\n"
    "            f.flush()\n"
    "        except BaseException:\n"
    "            pass\n"
    "def check_name(name):\n"
    "    if not name.isidentifier() or keyword.iskeyword(name):\n"
    "        raise ValueError('invalid name %r' % name)\n"
    "def no_form(name, o):\n"
    "    try:\n"
    "        r = repr(o)\n"
    "    except BaseException:\n"
    "        r = '<unrepresentable object>'\n"
    "    if len(r) > 200:\n"
    "        r = r[:200] + '...'\n"
    "    raise TypeError('cannot pull %r: values of type %s have no '\n"
    "                    'msgpack form: %s' % (name, type(o).__name__, r))\n"
    "def pull_array(name, a):\n"
    "    dt = a.dtype\n"
    "    if dt.byteorder == '>':\n"
    "        dt = dt.newbyteorder('<')\n"
    "    if dt.str not in DTYPES:\n"
    "        raise TypeError('cannot pull %r: arrays of dtype %s have no '\n"
    "                        'msgpack form' % (name, a.dtype))\n"
    "    if a.dtype != dt or not a.flags.c_contiguous:\n"
    "        a = a.astype(dt, order='C')\n" /* the one copy */
    "    return dt.str, a.shape, a\n"
    "def array_dtype(hdr, nbytes):\n"
    "    import numpy\n"
    "    if not (type(hdr) is list and len(hdr) == 2 and\n"
    "            type(hdr[0]) is str and type(hdr[1]) is list and\n"
    "            all(type(n) is int and n >= 0 for n in hdr[1])):\n"
    "        raise ValueError('malformed array value')\n"
    "    if hdr[0] not in DTYPES:\n"
    "        raise ValueError('unsupported array dtype %r' % hdr[0])\n"
    "    dt = numpy.dtype(hdr[0])\n"
    "    if math.prod(hdr[1]) * dt.itemsize != nbytes:\n"
    "        raise ValueError('malformed array value')\n"
    "    return dt\n"
    "def new_array(hdr, nbytes):\n"
    "    import numpy\n"
    "    return numpy.empty(hdr[1], array_dtype(hdr, nbytes))\n"
    "def view_array(hdr, block, offset, nbytes):\n"
    "    import numpy\n"
    "    dt = array_dtype(hdr, nbytes)\n"
    "    return numpy.frombuffer(block, dt, nbytes // dt.itemsize,\n"
    "                            offset).reshape(hdr[1])\n";

enum helper {
	H_SETUP,
	H_RUN,
	H_DESCRIBE,
	H_FLUSH,
	H_CHECK_NAME,
	H_NO_FORM,
	H_PULL_ARRAY,
	H_NEW_ARRAY,
	H_VIEW_ARRAY,
	H_COUNT
};

static const char *const helper_names[H_COUNT] = {
    "setup",      "run",     "describe",   "flush",
    "check_name", "no_form", "pull_array", "new_array",
    "view_array",
};

static PyThreadState *main_tstate; /* saved between calls; NULL if down */
static PyThreadState *where_tstate; /* the main thread's, for python_where */

/* CPython's own faulthandler dump: async-signal-safe, needs no GIL. */
extern void _Py_DumpTraceback(int fd, PyThreadState *tstate);
static PyObject *main_ns;          /* __main__.__dict__ */
static PyObject *helper_ns;
static PyObject *helper[H_COUNT];
static PyObject *np_ndarray, *np_generic, *np_float32;
static int execution_count;
static pthread_t main_thread; /* where Python runs */
static atomic_int kernel_up;  /* set: SIGINT goes to Python's handler */

/* A malloc'd UTF-8 copy of a str (NULL for anything else or on failure). */
static char *
str_dup(PyObject *s)
{
	PyObject *b;
	char *c = NULL;

	if (!s || !PyUnicode_Check(s))
		return NULL;
	b = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
	if (b)
		c = strndup(PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
	else
		PyErr_Clear();
	Py_XDECREF(b);
	return c;
}

/* Turn the pending Python exception into r's error fields and clear it;
 * full (execute) adds the traceback text. */
static void
reply_error(struct kernel_reply *r, int full)
{
	PyObject *type, *value, *tb, *d = NULL;
	const char *tname, *dot;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (value && tb)
		PyException_SetTraceback(value, tb);
	if (value)
		d = PyObject_CallFunction(helper[H_DESCRIBE], "Oi", value,
		                          full);
	if (d && PyTuple_Check(d) && PyTuple_GET_SIZE(d) == 3) {
		r->ename = str_dup(PyTuple_GET_ITEM(d, 0));
		r->evalue = str_dup(PyTuple_GET_ITEM(d, 1));
		r->traceback = str_dup(PyTuple_GET_ITEM(d, 2));
	}
	PyErr_Clear();
	/* describe() can itself fail (a late interrupt): keep the type. */
	if (!r->ename) {
		tname = type && PyType_Check(type)
		            ? ((PyTypeObject *)type)->tp_name
		            : "SystemError";
		dot = strrchr(tname, '.'); /* "numpy.linalg.LinAlgError" */
		r->ename = strdup(dot ? dot + 1 : tname);
	}
	if (!r->evalue)
		r->evalue = strdup("");
	r->ok = 0;
	Py_XDECREF(d);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}

/* Take the GIL for one call and start from an empty reply. */
static void
kernel_enter(struct kernel_reply *r)
{
	memset(r, 0, sizeof(*r));
	PyEval_RestoreThread(main_tstate);
	/* An interrupt that arrived while nothing ran (a race with the end of
	 * the previous call) must not hit this call at a random point. */
	if (PyErr_CheckSignals() < 0)
		PyErr_Clear();
}

static void
kernel_leave(void)
{
	main_tstate = PyEval_SaveThread();
}

/* ---- pull: Python object -> msgpack ---------------------------------- */

struct pull {
	msgpack_packer pk;
	PyObject *key; /* the pulled name, for messages */
	bool may_lend; /* pull_lend: a large top-level array's elements */
	struct lent *lent; /* lent rather than packed (then last in the value) */
};

/* Lend the elements of arrays at least this large instead of copying. */
#define LEND_MIN (4u << 20)

/* An array whose elements a pull lends: its buffer stays acquired (and
 * the array alive) until give_back(). */
struct lent {
	Py_buffer view;
	PyObject *t; /* what pull_array() returned, which holds the array */
};

static int pack_obj(struct pull *p, PyObject *o, int depth);

/* msgpack-c returns -1 only when the sbuffer cannot grow. */
static int
pk_check(int rc)
{
	if (rc < 0) {
		PyErr_NoMemory();
		return -1;
	}
	return 0;
}

/* msgpack lengths are 32-bit; the packer would silently truncate. */
static int
len_check(struct pull *p, size_t n)
{
	if (n > UINT32_MAX) {
		PyErr_Format(PyExc_ValueError,
		             "cannot pull %R: %zu elements or bytes are too "
		             "many for msgpack",
		             p->key, n);
		return -1;
	}
	return 0;
}

static int
too_deep(PyObject *key)
{
	if (key)
		PyErr_Format(PyExc_ValueError,
		             "cannot pull %R: value nested "
		             "deeper than %d levels",
		             key, VALUE_MAX_DEPTH);
	else
		PyErr_Format(PyExc_ValueError,
		             "value nested deeper than %d "
		             "levels",
		             VALUE_MAX_DEPTH);
	return -1;
}

/* Find numpy's types if numpy is loaded; never imports it. */
static int
numpy_loaded(void)
{
	PyObject *np, *a, *g, *f;

	if (np_ndarray)
		return 1;
	np = PyDict_GetItemString(PyImport_GetModuleDict(), "numpy");
	if (!np)
		return 0;
	a = PyObject_GetAttrString(np, "ndarray");
	g = PyObject_GetAttrString(np, "generic");
	f = PyObject_GetAttrString(np, "float32");
	if (a && g && f && PyType_Check(a) && PyType_Check(g) &&
	    PyType_Check(f)) {
		np_ndarray = a;
		np_generic = g;
		np_float32 = f;
		return 1;
	}
	PyErr_Clear(); /* numpy still importing, or not the real one */
	Py_XDECREF(a);
	Py_XDECREF(g);
	Py_XDECREF(f);
	return 0;
}

static int
pack_long(struct pull *p, PyObject *o)
{
	unsigned long long u;
	long long v;
	int overflow;

	v = PyLong_AsLongLongAndOverflow(o, &overflow);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (!overflow)
		return pk_check(msgpack_pack_int64(&p->pk, v));
	if (overflow > 0) {
		u = PyLong_AsUnsignedLongLong(o);
		if (!(u == (unsigned long long)-1 && PyErr_Occurred()))
			return pk_check(msgpack_pack_uint64(&p->pk, u));
		PyErr_Clear();
	}
	PyErr_Format(PyExc_OverflowError,
	             "cannot pull %R: int does not fit in 64 bits", p->key);
	return -1;
}

static int
pack_bytes(struct pull *p, const void *b, size_t n)
{
	if (len_check(p, n) < 0 || pk_check(msgpack_pack_bin(&p->pk, n)) < 0)
		return -1;
	return n ? pk_check(msgpack_pack_bin_body(&p->pk, b, n)) : 0;
}

/* bytearray and memoryview: any contiguous buffer goes as is. */
static int
pack_buffer(struct pull *p, PyObject *o)
{
	PyObject *b;
	Py_buffer view;
	int rc;

	if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) == 0) {
		rc = pack_bytes(p, view.buf, (size_t)view.len);
		PyBuffer_Release(&view);
		return rc;
	}
	if (!PyMemoryView_Check(o))
		return -1;
	/* A strided memoryview: bytes() gathers it in one copy. */
	PyErr_Clear();
	b = PyBytes_FromObject(o);
	if (!b)
		return -1;
	rc = pack_bytes(p, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
	Py_DECREF(b);
	return rc;
}

static int
pack_seq(struct pull *p, PyObject *o, int depth)
{
	Py_ssize_t i, n = Py_SIZE(o);
	PyObject *item;
	int rc;

	if (depth >= VALUE_MAX_DEPTH)
		return too_deep(p->key);
	if (len_check(p, (size_t)n) < 0 ||
	    pk_check(msgpack_pack_array(&p->pk, (size_t)n)) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		/* Only numpy (array subclasses) runs Python code during a
		 * pull, but a list that shrinks must not be read past. */
		if (i >= Py_SIZE(o)) {
			PyErr_Format(PyExc_RuntimeError,
			             "cannot pull %R: list "
			             "changed size during pull",
			             p->key);
			return -1;
		}
		item = PyList_Check(o) ? PyList_GET_ITEM(o, i)
		                       : PyTuple_GET_ITEM(o, i);
		Py_INCREF(item);
		rc = pack_obj(p, item, depth + 1);
		Py_DECREF(item);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int
pack_dict(struct pull *p, PyObject *o, int depth)
{
	Py_ssize_t pos = 0, i = 0, n = PyDict_GET_SIZE(o);
	PyObject *k, *v;
	int rc = 0;

	if (depth >= VALUE_MAX_DEPTH)
		return too_deep(p->key);
	if (len_check(p, (size_t)n) < 0 ||
	    pk_check(msgpack_pack_map(&p->pk, (size_t)n)) < 0)
		return -1;
	while (rc == 0 && i < n && PyDict_Next(o, &pos, &k, &v)) {
		if (!PyUnicode_Check(k)) {
			PyErr_Format(PyExc_TypeError,
			             "cannot pull %R: dict "
			             "keys must be str, not %s",
			             p->key, Py_TYPE(k)->tp_name);
			return -1;
		}
		Py_INCREF(k);
		Py_INCREF(v);
		rc = pack_obj(p, k, depth + 1);
		if (rc == 0)
			rc = pack_obj(p, v, depth + 1);
		Py_DECREF(k);
		Py_DECREF(v);
		i++;
	}
	if (rc == 0 && (i != n || PyDict_GET_SIZE(o) != n)) {
		PyErr_Format(PyExc_RuntimeError,
		             "cannot pull %R: dict changed size during pull",
		             p->key);
		return -1;
	}
	return rc;
}

static int
no_form(struct pull *p, PyObject *o)
{
	Py_XDECREF(PyObject_CallFunctionObjArgs(helper[H_NO_FORM], p->key, o,
	                                        NULL)); /* always raises */
	return -1;
}

/* ext COHORT_EXT_NDARRAY: [dtype, shape] then the raw C-order bytes. */
static int
pack_ndarray(struct pull *p, PyObject *o, int depth)
{
	PyObject *t, *shape, *arr;
	msgpack_sbuffer hs;
	msgpack_packer hp;
	Py_buffer view;
	Py_ssize_t dlen, i;
	const char *descr;
	unsigned long long d;
	size_t total;
	int rc = -1;

	if (depth >= VALUE_MAX_DEPTH)
		return too_deep(p->key);
	/* (descr, shape, a little-endian C-contiguous array) */
	t = PyObject_CallFunctionObjArgs(helper[H_PULL_ARRAY], p->key, o, NULL);
	if (!t ||
	    !PyArg_ParseTuple(t, "s#O!O", &descr, &dlen, &PyTuple_Type, &shape,
	                      &arr) ||
	    PyObject_GetBuffer(arr, &view, PyBUF_C_CONTIGUOUS) < 0) {
		Py_XDECREF(t);
		return -1;
	}
	msgpack_sbuffer_init(&hs);
	msgpack_packer_init(&hp, &hs, msgpack_sbuffer_write);
	if (pk_check(msgpack_pack_array(&hp, 2)) < 0 ||
	    pk_check(msgpack_pack_str_with_body(&hp, descr, (size_t)dlen)) <
	        0 ||
	    pk_check(msgpack_pack_array(&hp, (size_t)PyTuple_GET_SIZE(shape))) <
	        0)
		goto out;
	for (i = 0; i < PyTuple_GET_SIZE(shape); i++) {
		d = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(shape, i));
		if ((d == (unsigned long long)-1 && PyErr_Occurred()) ||
		    pk_check(msgpack_pack_uint64(&hp, d)) < 0)
			goto out;
	}
	total = hs.size + (size_t)view.len;
	if (len_check(p, total) < 0 ||
	    pk_check(msgpack_pack_ext(&p->pk, total, COHORT_EXT_NDARRAY)) < 0 ||
	    pk_check(msgpack_pack_ext_body(&p->pk, hs.data, hs.size)) < 0)
		goto out;
	if (p->may_lend && depth == 0 && (size_t)view.len >= LEND_MIN &&
	    (p->lent = malloc(sizeof(*p->lent))) != NULL) {
		/* The value ends with these bytes: lend them, keep view. */
		p->lent->view = view;
		p->lent->t = t;
		msgpack_sbuffer_destroy(&hs);
		return 0;
	}
	rc = view.len ? pk_check(msgpack_pack_ext_body(&p->pk, view.buf,
	                                               (size_t)view.len))
	              : 0;
out:
	msgpack_sbuffer_destroy(&hs);
	PyBuffer_Release(&view);
	Py_DECREF(t);
	return rc;
}

/* numpy scalars go as the Python scalar item() gives; float32 stays one. */
static int
pack_npscalar(struct pull *p, PyObject *o, int depth)
{
	PyObject *item;
	int rc;

	item = PyObject_CallMethod(o, "item", NULL);
	if (!item)
		return -1;
	if (Py_TYPE(o) == (PyTypeObject *)np_float32 && PyFloat_Check(item))
		rc = pk_check(
		    msgpack_pack_float(&p->pk, (float)PyFloat_AS_DOUBLE(item)));
	else if (PyObject_TypeCheck(item, (PyTypeObject *)np_generic))
		rc = no_form(p, o); /* item() gave no Python scalar */
	else
		rc = pack_obj(p, item, depth);
	Py_DECREF(item);
	return rc;
}

static int
pack_obj(struct pull *p, PyObject *o, int depth)
{
	const char *s;
	Py_ssize_t n;

	if (o == Py_None)
		return pk_check(msgpack_pack_nil(&p->pk));
	if (PyBool_Check(o))
		return pk_check(o == Py_True ? msgpack_pack_true(&p->pk)
		                             : msgpack_pack_false(&p->pk));
	if (PyLong_Check(o))
		return pack_long(p, o);
	if (PyFloat_Check(o))
		return pk_check(
		    msgpack_pack_double(&p->pk, PyFloat_AS_DOUBLE(o)));
	if (PyUnicode_Check(o)) {
		s = PyUnicode_AsUTF8AndSize(o, &n);
		if (!s || len_check(p, (size_t)n) < 0 ||
		    pk_check(msgpack_pack_str(&p->pk, (size_t)n)) < 0)
			return -1;
		return n ? pk_check(msgpack_pack_str_body(&p->pk, s, (size_t)n))
		         : 0;
	}
	if (PyBytes_Check(o))
		return pack_bytes(p, PyBytes_AS_STRING(o),
		                  (size_t)PyBytes_GET_SIZE(o));
	if (PyByteArray_Check(o) || PyMemoryView_Check(o))
		return pack_buffer(p, o);
	if (PyList_Check(o) || PyTuple_Check(o))
		return pack_seq(p, o, depth);
	if (PyDict_Check(o))
		return pack_dict(p, o, depth);
	if (numpy_loaded()) {
		if (PyObject_TypeCheck(o, (PyTypeObject *)np_ndarray))
			return pack_ndarray(p, o, depth);
		if (PyObject_TypeCheck(o, (PyTypeObject *)np_generic))
			return pack_npscalar(p, o, depth);
	}
	return no_form(p, o);
}

/* ---- push: msgpack -> Python object ---------------------------------- */

/* Our own reader rather than msgpack_unpack_next(): msgpack-c refuses
 * values nested deeper than 32 (MSGPACK_EMBED_STACK_SIZE) and allocates
 * a container's declared element count up front, so a 5-byte input asks
 * for 96 GB. Here every count is checked against the bytes left first. */
struct reader {
	const unsigned char *p, *end;
};

static PyObject *decode_value(struct reader *rd, int depth);

/* A malloc'd block handed over by push_owned, as a Python buffer: a large
 * array pushed whole is a numpy view of its elements in the block, which
 * is freed with the last reference to it. */
struct block {
	PyObject_HEAD
	void *mem;
	Py_ssize_t len;
};

static int
block_getbuffer(PyObject *o, Py_buffer *view, int flags)
{
	struct block *b = (struct block *)o;

	return PyBuffer_FillInfo(view, o, b->mem, b->len, 0, flags);
}

static void
block_dealloc(PyObject *o)
{
	free(((struct block *)o)->mem);
	Py_TYPE(o)->tp_free(o);
}

static PyBufferProcs block_buffer = {
	.bf_getbuffer = block_getbuffer,
};

static PyTypeObject block_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cohort.Block",
	.tp_basicsize = sizeof(struct block),
	.tp_dealloc = block_dealloc,
	.tp_as_buffer = &block_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "memory of a pushed value, viewed by its array",
};

/* While push_owned decodes: the block the value lies in. Only an array
 * that is the whole value (depth 0) is viewed in place. */
static struct {
	PyObject *block;
	const unsigned char *base;
} inplace;

/* Arrays smaller than this are copied: a view would save little. */
#define INPLACE_MIN (1u << 20)

static PyObject *
malformed(const char *what)
{
	PyErr_Format(PyExc_ValueError, "malformed %s value", what);
	return NULL;
}

static size_t
left(const struct reader *rd)
{
	return (size_t)(rd->end - rd->p);
}

static const unsigned char *
take(struct reader *rd, uint64_t n)
{
	const unsigned char *b = rd->p;

	if (n > left(rd)) {
		malformed("msgpack");
		return NULL;
	}
	rd->p += n;
	return b;
}

/* A big-endian unsigned integer of n bytes. */
static int
take_uint(struct reader *rd, unsigned n, uint64_t *v)
{
	const unsigned char *b = take(rd, n);

	if (!b)
		return -1;
	for (*v = 0; n; n--)
		*v = *v << 8 | *b++;
	return 0;
}

static PyObject *
decode_str(struct reader *rd, uint64_t n)
{
	const unsigned char *b = take(rd, n);

	return b ? PyUnicode_DecodeUTF8((const char *)b, (Py_ssize_t)n, NULL)
	         : NULL;
}

static PyObject *
decode_array(struct reader *rd, uint64_t n, int depth)
{
	PyObject *list, *item;
	uint64_t i;

	if (depth >= VALUE_MAX_DEPTH) {
		too_deep(NULL);
		return NULL;
	}
	if (n > left(rd)) /* each element takes at least one byte */
		return malformed("msgpack");
	list = PyList_New((Py_ssize_t)n);
	for (i = 0; list && i < n; i++) {
		item = decode_value(rd, depth + 1);
		if (!item)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)i, item);
	}
	return list;
}

static PyObject *
decode_map(struct reader *rd, uint64_t n, int depth)
{
	PyObject *dict, *k, *v;
	uint64_t i;

	if (depth >= VALUE_MAX_DEPTH) {
		too_deep(NULL);
		return NULL;
	}
	if (n > left(rd) / 2)
		return malformed("msgpack");
	dict = PyDict_New();
	for (i = 0; dict && i < n; i++) {
		k = decode_value(rd, depth + 1);
		v = k ? decode_value(rd, depth + 1) : NULL;
		if (!v || PyDict_SetItem(dict, k, v) < 0)
			Py_CLEAR(dict);
		Py_XDECREF(k);
		Py_XDECREF(v);
	}
	return dict;
}

/* An ndarray: new_array() checks the header and makes an empty array of
 * exactly the raw length, which gets the bytes with one memcpy. */
static PyObject *
decode_ext(struct reader *rd, uint64_t len, int depth)
{
	const unsigned char *type, *b;
	struct reader sub;
	PyObject *hdr, *arr;
	Py_buffer view;
	Py_ssize_t i;

	if (!(type = take(rd, 1)) || !(b = take(rd, len)))
		return NULL;
	if (*type != COHORT_EXT_NDARRAY) {
		PyErr_Format(PyExc_ValueError,
		             "unsupported msgpack extension "
		             "type %d",
		             *type > 127 ? *type - 256 : *type);
		return NULL;
	}
	if (depth >= VALUE_MAX_DEPTH) {
		too_deep(NULL);
		return NULL;
	}
	sub.p = b;
	sub.end = b + len;
	hdr = decode_value(&sub, depth + 1);
	if (!hdr) {
		if (PyErr_ExceptionMatches(PyExc_MemoryError))
			return NULL;
		PyErr_Clear();
		return malformed("array");
	}
	if (inplace.block != NULL && depth == 0 &&
	    left(&sub) >= INPLACE_MIN && (uintptr_t)sub.p % 16 == 0)
		arr = PyObject_CallFunction(helper[H_VIEW_ARRAY], "OOnn", hdr,
		                            inplace.block,
		                            (Py_ssize_t)(sub.p - inplace.base),
		                            (Py_ssize_t)left(&sub));
	else
		arr = PyObject_CallFunction(helper[H_NEW_ARRAY], "On", hdr,
		                            (Py_ssize_t)left(&sub));
	Py_DECREF(hdr);
	if (!arr)
		return NULL;
	if (PyObject_GetBuffer(arr, &view,
	                       PyBUF_WRITABLE | PyBUF_FORMAT |
	                           PyBUF_C_CONTIGUOUS) < 0) {
		Py_DECREF(arr);
		return NULL;
	}
	if ((size_t)view.len != left(&sub)) {
		Py_CLEAR(arr);
		malformed("array");
	} else if (view.len) {
		if (view.buf != sub.p) /* else a view of the block */
			memcpy(view.buf, sub.p, (size_t)view.len);
		/* numpy bools must be 0 or 1; normalise rather than refuse. */
		if (view.format && strcmp(view.format, "?") == 0)
			for (i = 0; i < view.len; i++)
				((unsigned char *)view.buf)[i] =
				    ((unsigned char *)view.buf)[i] != 0;
	}
	PyBuffer_Release(&view);
	return arr;
}

static PyObject *
decode_value(struct reader *rd, int depth)
{
	const unsigned char *b;
	uint64_t n;
	uint32_t u32;
	float f;
	double d;
	int t;

	if (!(b = take(rd, 1)))
		return NULL;
	t = *b;
	if (t <= 0x7f || t >= 0xe0) /* positive and negative fixint */
		return PyLong_FromLong(t >= 0xe0 ? t - 256 : t);
	if (t <= 0x8f)
		return decode_map(rd, t & 0x0f, depth);
	if (t <= 0x9f)
		return decode_array(rd, t & 0x0f, depth);
	if (t <= 0xbf)
		return decode_str(rd, t & 0x1f);
	switch (t) {
	case 0xc0:
		Py_RETURN_NONE;
	case 0xc2:
		Py_RETURN_FALSE;
	case 0xc3:
		Py_RETURN_TRUE;
	case 0xc4 ... 0xc6: /* bin 8/16/32 */
		if (take_uint(rd, 1u << (t - 0xc4), &n) < 0 ||
		    !(b = take(rd, n)))
			return NULL;
		return PyBytes_FromStringAndSize((const char *)b,
		                                 (Py_ssize_t)n);
	case 0xc7 ... 0xc9: /* ext 8/16/32 */
		if (take_uint(rd, 1u << (t - 0xc7), &n) < 0)
			return NULL;
		return decode_ext(rd, n, depth);
	case 0xca:
		if (take_uint(rd, 4, &n) < 0)
			return NULL;
		u32 = (uint32_t)n;
		memcpy(&f, &u32, sizeof(f));
		return PyFloat_FromDouble(f);
	case 0xcb:
		if (take_uint(rd, 8, &n) < 0)
			return NULL;
		memcpy(&d, &n, sizeof(d));
		return PyFloat_FromDouble(d);
	case 0xcc ... 0xcf: /* uint 8/16/32/64 */
		if (take_uint(rd, 1u << (t - 0xcc), &n) < 0)
			return NULL;
		return PyLong_FromUnsignedLongLong(n);
	case 0xd0 ... 0xd3: /* int 8/16/32/64 */
		if (take_uint(rd, 1u << (t - 0xd0), &n) < 0)
			return NULL;
		switch (t) {
		case 0xd0:
			return PyLong_FromLong((int8_t)n);
		case 0xd1:
			return PyLong_FromLong((int16_t)n);
		case 0xd2:
			return PyLong_FromLong((int32_t)n);
		default:
			return PyLong_FromLongLong((int64_t)n);
		}
	case 0xd4 ... 0xd8: /* fixext 1/2/4/8/16 */
		return decode_ext(rd, 1u << (t - 0xd4), depth);
	case 0xd9 ... 0xdb: /* str 8/16/32 */
		if (take_uint(rd, 1u << (t - 0xd9), &n) < 0)
			return NULL;
		return decode_str(rd, n);
	case 0xdc ... 0xdd: /* array 16/32 */
		if (take_uint(rd, 2u << (t - 0xdc), &n) < 0)
			return NULL;
		return decode_array(rd, n, depth);
	case 0xde ... 0xdf: /* map 16/32 */
		if (take_uint(rd, 2u << (t - 0xde), &n) < 0)
			return NULL;
		return decode_map(rd, n, depth);
	}
	return malformed("msgpack"); /* 0xc1 is never used */
}

/* ---- the kernel operations ------------------------------------------- */

static void
init_error(struct cohort_error *err, const char *what)
{
	PyObject *type, *value, *tb, *s = NULL;
	const char *text = NULL;

	PyErr_Fetch(&type, &value, &tb);
	if (value && (s = PyObject_Str(value)))
		text = PyUnicode_AsUTF8(s);
	if (err)
		snprintf(err->text, sizeof(err->text), "python kernel: %s%s%s",
		         what, text ? ": " : "", text ? text : "");
	PyErr_Clear();
	Py_XDECREF(s);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}

static void
drop_state(void)
{
	int i;

	for (i = 0; i < H_COUNT; i++)
		Py_CLEAR(helper[i]);
	Py_CLEAR(helper_ns);
	Py_CLEAR(main_ns);
	Py_CLEAR(np_ndarray);
	Py_CLEAR(np_generic);
	Py_CLEAR(np_float32);
}

static int
python_init(const char *argv0, struct cohort_error *err)
{
	PyObject *mod, *code = NULL, *res = NULL, *arg = NULL;
	int i;

	if (main_tstate) {
		if (err)
			snprintf(err->text, sizeof(err->text),
			         "python kernel: already started");
		return -1;
	}
	/* 1: install Python's signal handlers; interrupt() relies on SIGINT. */
	Py_InitializeEx(1);
	mod = PyImport_AddModule("__main__"); /* borrowed */
	if (!mod)
		goto error;
	main_ns = PyModule_GetDict(mod);
	Py_INCREF(main_ns);
	if (PyType_Ready(&block_type) < 0)
		goto error;
	helper_ns = PyDict_New();
	if (!helper_ns || PyDict_SetItemString(helper_ns, "__builtins__",
	                                       PyEval_GetBuiltins()) < 0)
		goto error;
	code = Py_CompileString(helper_src, HELPER_FILE, Py_file_input);
	if (!code || !(res = PyEval_EvalCode(code, helper_ns, helper_ns)))
		goto error;
	for (i = 0; i < H_COUNT; i++) {
		helper[i] = PyDict_GetItemString(helper_ns, helper_names[i]);
		if (!helper[i])
			goto error;
		Py_INCREF(helper[i]);
	}
	Py_CLEAR(res);
	arg = PyUnicode_DecodeFSDefault(argv0 ? argv0 : "");
	if (!arg || !(res = PyObject_CallOneArg(helper[H_SETUP], arg)))
		goto error;
	Py_CLEAR(res);
	Py_CLEAR(arg);
	Py_DECREF(code);
	main_thread = pthread_self();
	kernel_up = 1;
	main_tstate = PyEval_SaveThread();
	where_tstate = main_tstate;
	return 0;
error:
	init_error(err, "cannot start the interpreter");
	Py_XDECREF(res);
	Py_XDECREF(arg);
	Py_XDECREF(code);
	drop_state();
	Py_FinalizeEx();
	return -1;
}

static void
python_execute(const char *code, size_t len, struct kernel_reply *r)
{
	PyObject *src = NULL, *fname = NULL, *res = NULL;

	kernel_enter(r);
	r->execution_count = ++execution_count;
	if (len > PY_SSIZE_T_MAX)
		PyErr_NoMemory();
	else
		src = PyUnicode_DecodeUTF8(code, (Py_ssize_t)len, NULL);
	if (src)
		fname = PyUnicode_FromFormat("<cell-%d>", execution_count);
	if (fname)
		res = PyObject_CallFunctionObjArgs(helper[H_RUN], src, fname,
		                                   main_ns, NULL);
	if (res) {
		r->ok = 1;
		r->result = str_dup(res); /* NULL for None */
	} else {
		reply_error(r, 1);
	}
	Py_XDECREF(res);
	Py_XDECREF(fname);
	Py_XDECREF(src);
	kernel_leave();
}

static void
python_push(const char *name, const void *data, size_t len,
            struct kernel_reply *r)
{
	struct reader rd = {data,
	                    data ? (const unsigned char *)data + len : NULL};
	PyObject *key, *res = NULL, *val = NULL;

	kernel_enter(r);
	key = PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name),
	                           "surrogateescape");
	if (key)
		res = PyObject_CallOneArg(helper[H_CHECK_NAME], key);
	if (res)
		val = decode_value(&rd, 0);
	if (val && rd.p != rd.end) {
		Py_CLEAR(val);
		PyErr_Format(PyExc_ValueError,
		             "malformed msgpack value: "
		             "%zu more bytes after it",
		             left(&rd));
	}
	if (val && PyDict_SetItem(main_ns, key, val) == 0)
		r->ok = 1;
	else
		reply_error(r, 0);
	Py_XDECREF(val);
	Py_XDECREF(res);
	Py_XDECREF(key);
	kernel_leave();
}

static void
python_push_owned(const char *name, void *mem, const void *data, size_t len,
                  struct kernel_reply *r)
{
	struct kernel_reply scratch;
	struct block *b;

	kernel_enter(r);
	b = PyObject_New(struct block, &block_type);
	if (b == NULL) {
		reply_error(r, 0);
		free(mem);
		kernel_leave();
		return;
	}
	b->mem = mem;
	b->len = (Py_ssize_t)((const char *)data - (const char *)mem) +
	         (Py_ssize_t)len;
	inplace.block = (PyObject *)b;
	inplace.base = mem;
	kernel_leave();
	python_push(name, data, len, r);
	inplace.block = NULL;
	inplace.base = NULL;
	kernel_enter(&scratch); /* r holds the push's answer */
	Py_DECREF(b); /* the array keeps it if it views it */
	kernel_leave();
}

static void
pull_value(const char *name, bool may_lend, struct kernel_reply *r)
{
	struct pull p = {.key = NULL, .may_lend = may_lend};
	msgpack_sbuffer sb;
	PyObject *v = NULL;

	kernel_enter(r);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&p.pk, &sb, msgpack_sbuffer_write);
	p.key = PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name),
	                             "surrogateescape");
	if (p.key && !(v = PyDict_GetItemWithError(main_ns, p.key)) &&
	    !PyErr_Occurred())
		PyErr_Format(PyExc_NameError, "name %R is not defined", p.key);
	Py_XINCREF(v); /* user code may run (numpy); keep it alive */
	if (v && pack_obj(&p, v, 0) == 0) {
		r->ok = 1;
		r->len = sb.size;
		r->data = msgpack_sbuffer_release(&sb);
		if (p.lent != NULL) {
			r->lent = p.lent->view.buf;
			r->lent_len = (size_t)p.lent->view.len;
			r->lender = p.lent;
		}
	} else {
		reply_error(r, 0);
	}
	msgpack_sbuffer_destroy(&sb);
	Py_XDECREF(v);
	Py_XDECREF(p.key);
	kernel_leave();
}

static void
python_pull(const char *name, struct kernel_reply *r)
{
	pull_value(name, false, r);
}

static void
python_pull_lend(const char *name, struct kernel_reply *r)
{
	pull_value(name, true, r);
}

static void
python_give_back(void *lender)
{
	struct lent *l = lender;

	PyEval_RestoreThread(main_tstate);
	PyBuffer_Release(&l->view);
	Py_DECREF(l->t);
	kernel_leave();
	free(l);
}

static void
python_flush(void)
{
	PyObject *res;

	if (main_tstate) {
		PyEval_RestoreThread(main_tstate);
		res = PyObject_CallNoArgs(helper[H_FLUSH]);
		if (!res)
			PyErr_Clear();
		Py_XDECREF(res);
		kernel_leave();
	}
	fflush(NULL);
}

/* Called from the engine's I/O thread, without the GIL. PyErr_SetInterrupt()
 * alone is not enough: it only sets flags, a main thread blocked in a
 * system call (time.sleep, a socket read) would not look at them until the
 * call returns, and on Python 3.11 (Linux) a call from a thread other than
 * the main one does not even set the eval loop's "look at signals" flag, so
 * a pure-Python loop runs on. A real SIGINT delivered to the main thread
 * does both: Python's C handler runs there, the system call fails with
 * EINTR and the next bytecode raises KeyboardInterrupt. So the engine needs
 * no signal of its own, and must not block SIGINT in the main thread. */
static void
python_interrupt(void)
{
	/* Before init and after finalize SIGINT is not Python's, and
	 * PyErr_SetInterrupt() would touch an interpreter that is gone. */
	if (kernel_up && pthread_kill(main_thread, SIGINT) != 0)
		PyErr_SetInterrupt();
}

static void
python_finalize(void)
{
	if (!main_tstate)
		return;
	kernel_up = 0; /* Py_FinalizeEx() gives SIGINT back to SIG_DFL */
	PyEval_RestoreThread(main_tstate);
	main_tstate = NULL;
	drop_state();
	Py_FinalizeEx(); /* errors at exit change nothing for the engine */
}

/* The Python kernel: CPython embedded in the engine process. */
/* Dump the main thread's Python stack (from a signal handler). */
static void
python_where(int fd)
{
	if (where_tstate != NULL)
		_Py_DumpTraceback(fd, where_tstate);
}

const struct kernel_ops kernel_python = {
    .name = "python",
    .init = python_init,
    .execute = python_execute,
    .push = python_push,
    .push_owned = python_push_owned,
    .pull = python_pull,
    .pull_lend = python_pull_lend,
    .give_back = python_give_back,
    .flush = python_flush,
    .interrupt = python_interrupt,
    .where = python_where,
    .finalize = python_finalize,
};
