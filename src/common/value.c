/* SPDX-License-Identifier: BSD-3-Clause */
/* value.c - client-side values: JSON, .npy and .bin to msgpack and back.
 *
 * Encoded values are read with a small bounds-checked reader rather than
 * msgpack_unpack_next(): msgpack-c refuses values nested deeper than 32
 * (the kernel allows 64) and allocates a container's declared element count
 * up front, so five bytes can ask for 96 GB. Every count here is checked
 * against the bytes left first. Values are written with msgpack-c's packer.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cohort/kernel.h"
#include "util.h"
#include "value.h"

#define MAX_DEPTH 64         /* nesting of lists, dicts and arrays */
#define MAX_NDIM 64          /* dimensions of an array, as in numpy 2 */
_Static_assert(MAX_NDIM == VALUE_MAX_NDIM, "value.h agrees");
#define MAX_DIM (1ULL << 62) /* one dimension of an array */
#define NPY_MAX_HEADER (1u << 20)
#define ELIDE 3                   /* items shown at each end of a long list */
#define JSON_MAX_EMPTY (1u << 20) /* lists made for an array of size 0 */

struct dtype {
	const char *descr, *name;
	unsigned size;
	char kind; /* b, i, u, f or c */
};

static const struct dtype dtypes[] = {
    {"|b1", "bool", 1, 'b'},         {"|i1", "int8", 1, 'i'},
    {"|u1", "uint8", 1, 'u'},        {"<i2", "int16", 2, 'i'},
    {"<u2", "uint16", 2, 'u'},       {"<i4", "int32", 4, 'i'},
    {"<u4", "uint32", 4, 'u'},       {"<i8", "int64", 8, 'i'},
    {"<u8", "uint64", 8, 'u'},       {"<f4", "float32", 4, 'f'},
    {"<f8", "float64", 8, 'f'},      {"<c8", "complex64", 8, 'c'},
    {"<c16", "complex128", 16, 'c'},
};

/* Whether text from a value or file is fit to show in a message. */
static bool
printable(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)p)[i] < 0x20 ||
		    ((const uint8_t *)p)[i] > 0x7e)
			return false;
	return true;
}

static const struct dtype *
dtype_find(const void *s, size_t n)
{
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (strlen(dtypes[i].descr) == n &&
		    memcmp(dtypes[i].descr, s, n) == 0)
			return &dtypes[i];
	return NULL;
}

/* ---- reading encoded values ------------------------------------------ */

enum kind {
	K_NIL,
	K_BOOL,
	K_INT,
	K_UINT,
	K_F32,
	K_F64,
	K_STR,
	K_BIN,
	K_ARRAY,
	K_MAP,
	K_EXT
};

/* One item: a scalar, the body of a str, bin or ext, or the header of a
 * list or dict (whose elements follow in the reader). */
struct item {
	enum kind kind;
	bool b;
	int64_t i;        /* K_INT */
	uint64_t u;       /* K_UINT: only above INT64_MAX */
	double f;         /* K_F32, K_F64 */
	const uint8_t *p; /* body of str, bin, ext */
	size_t n;         /* body length or element count */
	int ext;          /* extension type */
};

struct rd {
	const uint8_t *p, *end;
};

/* An ndarray, pointing into its encoded value. */
struct nd {
	const struct dtype *dt;
	unsigned ndim;
	uint64_t shape[MAX_NDIM];
	uint64_t count;
	const uint8_t *data;
	size_t nbytes;
};

static size_t
left(const struct rd *rd)
{
	return (size_t)(rd->end - rd->p);
}

static const uint8_t *
take(struct rd *rd, size_t n)
{
	const uint8_t *b = rd->p;

	if (n > left(rd))
		return NULL;
	rd->p += n;
	return b;
}

static uint64_t
load_be(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *b++;
	return v;
}

static uint64_t
load_le(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | b[n];
	return v;
}

static int
too_deep(struct cohort_error *err)
{
	return errprintf(err, "value nested too deeply (more than %d levels)",
	                 MAX_DEPTH);
}

static int
read_item(struct rd *rd, struct item *it, struct cohort_error *err)
{
	const uint8_t *b;
	unsigned t, w = 0;
	uint64_t n = 0, v;
	uint32_t u32;
	float f;

	memset(it, 0, sizeof(*it));
	if (!(b = take(rd, 1)))
		return errprintf(err, "truncated");
	t = *b;
	if (t <= 0x7f || t >= 0xe0) { /* positive and negative fixint */
		it->kind = K_INT;
		it->i = t >= 0xe0 ? (int)t - 256 : (int)t;
		return 0;
	}
	if (t <= 0xbf) {
		it->kind = t <= 0x8f ? K_MAP : t <= 0x9f ? K_ARRAY : K_STR;
		n = t & (it->kind == K_STR ? 0x1f : 0x0f);
	}
	switch (t) {
	case 0x80 ... 0xbf:
		break;
	case 0xc0:
		it->kind = K_NIL;
		return 0;
	case 0xc2:
	case 0xc3:
		it->kind = K_BOOL;
		it->b = t == 0xc3;
		return 0;
	case 0xc4 ... 0xc6:
		it->kind = K_BIN;
		w = 1u << (t - 0xc4);
		break;
	case 0xc7 ... 0xc9:
		it->kind = K_EXT;
		w = 1u << (t - 0xc7);
		break;
	case 0xca:
	case 0xcb:
		if (!(b = take(rd, t == 0xca ? 4 : 8)))
			return errprintf(err, "truncated");
		v = load_be(b, t == 0xca ? 4 : 8);
		if (t == 0xca) {
			u32 = (uint32_t)v;
			memcpy(&f, &u32, sizeof(f));
			it->kind = K_F32;
			it->f = f;
		} else {
			it->kind = K_F64;
			memcpy(&it->f, &v, sizeof(it->f));
		}
		return 0;
	case 0xcc ... 0xd3: /* uint and int of 1, 2, 4, 8 bytes */
		w = 1u << ((t - 0xcc) & 3);
		if (!(b = take(rd, w)))
			return errprintf(err, "truncated");
		v = load_be(b, w);
		if (t >= 0xd0 && w < 8 && v >> (w * 8 - 1))
			v |= ~0ULL << (w * 8); /* sign-extend */
		it->kind = K_INT;
		it->i = (int64_t)v;
		if (t < 0xd0 && v > INT64_MAX) {
			it->kind = K_UINT;
			it->u = v;
		}
		return 0;
	case 0xd4 ... 0xd8:
		it->kind = K_EXT;
		n = 1u << (t - 0xd4);
		break;
	case 0xd9 ... 0xdb:
		it->kind = K_STR;
		w = 1u << (t - 0xd9);
		break;
	case 0xdc ... 0xdf:
		it->kind = t <= 0xdd ? K_ARRAY : K_MAP;
		w = 2u << ((t - 0xdc) & 1);
		break;
	default:
		return errprintf(err, "invalid msgpack type byte 0x%02x", t);
	}
	if (w) {
		if (!(b = take(rd, w)))
			return errprintf(err, "truncated");
		n = load_be(b, w);
	}
	if (it->kind == K_ARRAY || it->kind == K_MAP) {
		/* every element takes at least one byte */
		if (n > left(rd) / (it->kind == K_MAP ? 2 : 1))
			return errprintf(err, "%s of %llu items in %zu bytes",
			                 it->kind == K_MAP ? "dict" : "list",
			                 (unsigned long long)n, left(rd));
		it->n = (size_t)n;
		return 0;
	}
	if (it->kind == K_EXT) {
		if (!(b = take(rd, 1)))
			return errprintf(err, "truncated");
		it->ext = (int8_t)*b;
	}
	if (n > left(rd) || !(it->p = take(rd, (size_t)n)))
		return errprintf(err, "truncated");
	it->n = (size_t)n;
	return 0;
}

/* Elements and bytes of an array of this shape, refusing sizes that numpy
 * could not hold (the product of the non-zero dimensions times itemsize
 * must fit in an int64). */
static int
shape_size(const struct dtype *dt, unsigned ndim, const uint64_t *shape,
           uint64_t *count, uint64_t *nbytes)
{
	uint64_t nz = 1, limit = INT64_MAX / dt->size;
	bool zero = false;

	for (unsigned i = 0; i < ndim; i++) {
		if (shape[i] > MAX_DIM)
			return -1;
		if (shape[i] == 0)
			zero = true;
		else if (nz > limit / shape[i])
			return -1;
		else
			nz *= shape[i];
	}
	*count = zero ? 0 : nz;
	*nbytes = *count * dt->size;
	return 0;
}

static int
nd_parse(const struct item *ext, struct nd *a, struct cohort_error *err)
{
	struct rd rd = {ext->p, ext->p + ext->n};
	struct item it;
	uint64_t nbytes;

	if (read_item(&rd, &it, NULL) < 0 || it.kind != K_ARRAY || it.n != 2 ||
	    read_item(&rd, &it, NULL) < 0 || it.kind != K_STR)
		return errprintf(err, "array header is not [dtype, shape]");
	if (!(a->dt = dtype_find(it.p, it.n)))
		return errprintf(
		    err, "unsupported array dtype '%.*s'",
		    printable(it.p, it.n) && it.n < 32 ? (int)it.n : 1,
		    printable(it.p, it.n) && it.n < 32 ? (const char *)it.p
		                                       : "?");
	if (read_item(&rd, &it, NULL) < 0 || it.kind != K_ARRAY)
		return errprintf(err, "array shape is not a list");
	if (it.n > MAX_NDIM)
		return errprintf(err, "array has %zu dimensions (at most %d)",
		                 it.n, MAX_NDIM);
	a->ndim = (unsigned)it.n;
	for (unsigned i = 0; i < a->ndim; i++) {
		if (read_item(&rd, &it, NULL) < 0 || it.kind != K_INT ||
		    it.i < 0)
			return errprintf(err, "array shape is not a list of "
			                      "non-negative ints");
		a->shape[i] = (uint64_t)it.i;
	}
	if (shape_size(a->dt, a->ndim, a->shape, &a->count, &nbytes) < 0)
		return errprintf(err, "array shape is too large");
	if (nbytes != left(&rd))
		return errprintf(err,
		                 "array data is %zu bytes, its shape needs "
		                 "%llu",
		                 left(&rd), (unsigned long long)nbytes);
	a->data = rd.p;
	a->nbytes = (size_t)nbytes;
	return 0;
}

/* Skip one whole value, checking it on the way. */
static int
check_value(struct rd *rd, int depth, struct cohort_error *err)
{
	struct item it;
	struct nd a;
	size_t n;

	if (read_item(rd, &it, err) < 0)
		return -1;
	switch (it.kind) {
	case K_ARRAY:
	case K_MAP:
		if (depth >= MAX_DEPTH)
			return too_deep(err);
		for (n = it.kind == K_MAP ? 2 * it.n : it.n; n; n--)
			if (check_value(rd, depth + 1, err) < 0)
				return -1;
		break;
	case K_EXT:
		if (it.ext == COHORT_EXT_NDARRAY)
			return nd_parse(&it, &a, err);
		break;
	default:
		break;
	}
	return 0;
}

/* Check that data holds exactly one valid value; rd is left at its start. */
static int
value_open(const void *data, size_t len, struct rd *rd,
           struct cohort_error *err)
{
	static const uint8_t none;

	rd->p = data ? data : &none;
	rd->end = rd->p + (data ? len : 0);
	if (check_value(rd, 0, err) < 0)
		return -1;
	if (rd->p != rd->end)
		return errprintf(err, "%zu bytes after the value", left(rd));
	rd->p = data ? data : &none;
	return 0;
}

/* Check that data holds exactly one well-formed msgpack value whose
 * declared sizes fit in the bytes present. */
int
value_check(const void *data, size_t len, struct cohort_error *err)
{
	struct rd rd;

	return value_open(data, len, &rd, err);
}

static bool
is_nd(const struct item *it)
{
	return it->kind == K_EXT && it->ext == COHORT_EXT_NDARRAY;
}

static const char *
kind_name(const struct item *it)
{
	switch (it->kind) {
	case K_NIL:
		return "None";
	case K_BOOL:
		return "a bool";
	case K_INT:
	case K_UINT:
		return "an int";
	case K_F32:
	case K_F64:
		return "a float";
	case K_STR:
		return "a str";
	case K_BIN:
		return "bytes";
	case K_ARRAY:
		return "a list";
	case K_MAP:
		return "a dict";
	case K_EXT:
		break;
	}
	return is_nd(it) ? "an array" : "an extension value";
}

/* ---- text output ----------------------------------------------------- */

/* A growing string that stops at limit bytes and remembers it did. */
struct out {
	char *s;
	size_t n, cap, limit;
	bool full;
};

static void
out_init(struct out *o, size_t limit)
{
	o->cap = 64;
	o->s = xmalloc(o->cap);
	o->s[0] = '\0';
	o->n = 0;
	o->limit = limit;
	o->full = false;
}

static void
put(struct out *o, const void *s, size_t n)
{
	if (o->full)
		return;
	if (n > o->limit - o->n) {
		n = o->limit - o->n;
		o->full = true;
	}
	if (o->cap - o->n <= n) {
		while (o->cap - o->n <= n)
			o->cap *= 2;
		o->s = xrealloc(o->s, o->cap);
	}
	memcpy(o->s + o->n, s, n);
	o->n += n;
	o->s[o->n] = '\0';
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
putf(struct out *o, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, buf,
		    (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Python's tuple repr: (), (3,), (2, 3). */
static void
put_shape(struct out *o, unsigned ndim, const uint64_t *shape)
{
	puts_(o, "(");
	for (unsigned i = 0; i < ndim; i++)
		putf(o, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
	puts_(o, ndim == 1 ? ",)" : ")");
}

static char *
shape_str(unsigned ndim, const uint64_t *shape)
{
	struct out o;

	out_init(&o, 200);
	put_shape(&o, ndim, shape);
	return o.s;
}

/* Python's float repr: the shortest digits that read back as the same
 * number, positional for exponents -4..15, else scientific. With bare, no
 * ".0" is added to whole numbers (as in a complex repr). */
static void
fmt_real(char *buf, size_t size, double d, bool single, bool bare)
{
	char e[48], dig[24];
	const char *s;
	int p, x, nd = 0;
	bool neg;

	if (isnan(d) || isinf(d)) {
		snprintf(buf, size, "%s",
		         isnan(d) ? "nan"
		         : d < 0  ? "-inf"
		                  : "inf");
		return;
	}
	for (p = 0; p < 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p, d);
		if (single ? strtof(e, NULL) == (float)d : strtod(e, NULL) == d)
			break;
	}
	neg = e[0] == '-';
	for (s = e + neg; *s && *s != 'e'; s++)
		if (isdigit((unsigned char)*s) && nd < (int)sizeof(dig) - 1)
			dig[nd++] = *s;
	x = *s ? atoi(s + 1) : 0;
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	dig[nd] = '\0';
	if (x < -4 || x >= 16)
		snprintf(buf, size, "%s%c%s%se%c%02d", neg ? "-" : "", dig[0],
		         nd > 1 ? "." : "", dig + 1, x < 0 ? '-' : '+', abs(x));
	else if (x < 0)
		snprintf(buf, size, "%s0.%.*s%s", neg ? "-" : "", -x - 1,
		         "0000", dig);
	else if (nd <= x + 1)
		snprintf(buf, size, "%s%s%.*s%s", neg ? "-" : "", dig,
		         x + 1 - nd, "0000000000000000", bare ? "" : ".0");
	else
		snprintf(buf, size, "%s%.*s.%s", neg ? "-" : "", x + 1, dig,
		         dig + x + 1);
}

static double
load_real(const uint8_t *p, unsigned size)
{
	uint64_t v = load_le(p, size);
	uint32_t u32 = (uint32_t)v;
	double d;
	float f;

	if (size == 4) {
		memcpy(&f, &u32, sizeof(f));
		return f;
	}
	memcpy(&d, &v, sizeof(d));
	return d;
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t
utf8_len(const uint8_t *p, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (len > n)
		return 0;
	c = p[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/* Python's str or bytes repr. */
static void
fmt_str(struct out *o, const uint8_t *p, size_t n, bool bytes)
{
	size_t i, k, scan = n < o->limit ? n : o->limit;
	bool sq = false, dq = false;
	char q;

	for (i = 0; i < scan; i++) {
		sq |= p[i] == '\'';
		dq |= p[i] == '"';
	}
	q = sq && !dq ? '"' : '\'';
	if (bytes)
		puts_(o, "b");
	put(o, &q, 1);
	for (i = 0; i < n && !o->full; i++) {
		if (p[i] == q || p[i] == '\\')
			putf(o, "\\%c", p[i]);
		else if (p[i] == '\n')
			puts_(o, "\\n");
		else if (p[i] == '\r')
			puts_(o, "\\r");
		else if (p[i] == '\t')
			puts_(o, "\\t");
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			put(o, p + i, 1);
		else if (!bytes && (k = utf8_len(p + i, n - i))) {
			put(o, p + i, k);
			i += k - 1;
		} else
			putf(o, "\\x%02x", p[i]);
	}
	put(o, &q, 1);
}

static void
fmt_elem(struct out *o, const struct dtype *dt, const uint8_t *p)
{
	unsigned s = dt->size, bits = s * 8;
	char re[48], im[48];
	uint64_t v;
	double d;

	switch (dt->kind) {
	case 'b':
		puts_(o, *p ? "True" : "False");
		break;
	case 'i':
		v = load_le(p, s);
		if (bits < 64 && v >> (bits - 1))
			v |= ~0ULL << bits;
		putf(o, "%lld", (long long)v);
		break;
	case 'u':
		putf(o, "%llu", (unsigned long long)load_le(p, s));
		break;
	case 'f':
		fmt_real(re, sizeof(re), load_real(p, s), s == 4, false);
		puts_(o, re);
		break;
	default: /* complex: (re+imj) */
		fmt_real(re, sizeof(re), load_real(p, s / 2), s == 8, true);
		d = load_real(p + s / 2, s / 2);
		fmt_real(im, sizeof(im), isnan(d) ? d : fabs(d), s == 8, true);
		putf(o, "(%s%c%sj)", re, signbit(d) && !isnan(d) ? '-' : '+',
		     im);
		break;
	}
}

static void
fmt_nd(struct out *o, const struct nd *a)
{
	size_t s = a->dt->size;

	puts_(o, "array(");
	if (a->ndim == 0) {
		fmt_elem(o, a->dt, a->data);
	} else {
		puts_(o, "[");
		for (uint64_t i = 0; i < a->count && !o->full; i++) {
			if (i)
				puts_(o, ", ");
			if (i == ELIDE && a->count > 2 * ELIDE) {
				puts_(o, "..., ");
				i = a->count - ELIDE;
			}
			fmt_elem(o, a->dt, a->data + i * s);
		}
		puts_(o, "]");
	}
	puts_(o, ", shape=");
	put_shape(o, a->ndim, a->shape);
	putf(o, ", dtype=%s)", a->dt->name);
}

/* Format one value that check_value() has accepted. */
static void
fmt_value(struct rd *rd, struct out *o, int depth)
{
	struct item it;
	struct nd a;
	char buf[48];
	size_t i;

	if (o->full || read_item(rd, &it, NULL) < 0)
		return;
	switch (it.kind) {
	case K_NIL:
		puts_(o, "None");
		break;
	case K_BOOL:
		puts_(o, it.b ? "True" : "False");
		break;
	case K_INT:
		putf(o, "%lld", (long long)it.i);
		break;
	case K_UINT:
		putf(o, "%llu", (unsigned long long)it.u);
		break;
	case K_F32:
	case K_F64:
		fmt_real(buf, sizeof(buf), it.f, it.kind == K_F32, false);
		puts_(o, buf);
		break;
	case K_STR:
	case K_BIN:
		fmt_str(o, it.p, it.n, it.kind == K_BIN);
		break;
	case K_ARRAY:
		puts_(o, "[");
		for (i = 0; i < it.n && !o->full; i++) {
			if (i)
				puts_(o, ", ");
			if (i == ELIDE && it.n > 2 * ELIDE) {
				puts_(o, "..., ");
				for (; i < it.n - ELIDE; i++)
					check_value(rd, depth + 1, NULL);
			}
			fmt_value(rd, o, depth + 1);
		}
		puts_(o, "]");
		break;
	case K_MAP:
		puts_(o, "{");
		for (i = 0; i < it.n && !o->full; i++) {
			if (i)
				puts_(o, ", ");
			fmt_value(rd, o, depth + 1);
			puts_(o, ": ");
			fmt_value(rd, o, depth + 1);
		}
		puts_(o, "}");
		break;
	case K_EXT:
		if (is_nd(&it) && nd_parse(&it, &a, NULL) == 0)
			fmt_nd(o, &a);
		else
			putf(o, "<extension type %d, %zu bytes>", it.ext, it.n);
		break;
	}
}

/* Render a value as one line of Python-like text, elided to max_chars. */
char *
value_format(const void *data, size_t len, size_t max_chars)
{
	struct cohort_error err;
	struct rd rd;
	struct out o;
	size_t keep;

	if (value_open(data, len, &rd, &err) < 0)
		return xasprintf("<malformed value: %s>", err.text);
	out_init(&o, max_chars ? max_chars : SIZE_MAX - 1);
	fmt_value(&rd, &o, 0);
	if (o.full) {
		/* end with "...", not inside a UTF-8 sequence */
		keep = o.limit > 3 ? o.limit - 3 : 0;
		while (keep > 0 && ((unsigned char)o.s[keep] & 0xc0) == 0x80)
			keep--;
		o.n = keep;
		o.full = false;
		o.limit = SIZE_MAX - 1;
		puts_(&o, "...");
	}
	return o.s;
}

/* ---- writing encoded values ------------------------------------------ */

/* Append an ndarray's extension header and [dtype, shape]; the caller
 * appends exactly nbytes of data. */
static int
nd_pack_head(msgpack_packer *pk, const struct dtype *dt, unsigned ndim,
             const uint64_t *shape, uint64_t nbytes, struct cohort_error *err)
{
	msgpack_sbuffer hs;
	msgpack_packer hp;
	int rc = 0;

	msgpack_sbuffer_init(&hs);
	msgpack_packer_init(&hp, &hs, msgpack_sbuffer_write);
	msgpack_pack_array(&hp, 2);
	msgpack_pack_str_with_body(&hp, dt->descr, strlen(dt->descr));
	msgpack_pack_array(&hp, ndim);
	for (unsigned i = 0; i < ndim; i++)
		msgpack_pack_uint64(&hp, shape[i]);
	if (nbytes > UINT32_MAX - hs.size)
		rc = errprintf(err,
		               "an array of %llu bytes is too large for "
		               "one value (at most 4 GiB)",
		               (unsigned long long)nbytes);
	else if (msgpack_pack_ext(pk, hs.size + nbytes, COHORT_EXT_NDARRAY) ||
	         msgpack_pack_ext_body(pk, hs.data, hs.size))
		rc = errprintf(err, "out of memory");
	msgpack_sbuffer_destroy(&hs);
	return rc;
}

/* An ndarray value's dtype, shape and elements, for the engines' data
 * movement (which cuts and joins arrays without decoding them). */
int
value_array_open(const void *data, size_t len, struct value_array *a,
                 struct cohort_error *err)
{
	struct cohort_error e;
	struct item it;
	struct nd nd;
	struct rd rd;

	if (value_open(data, len, &rd, &e) < 0 || read_item(&rd, &it, &e) < 0)
		return errprintf(err, "malformed value: %s", e.text);
	if (!is_nd(&it))
		return 0;
	if (nd_parse(&it, &nd, &e) < 0)
		return errprintf(err, "malformed value: %s", e.text);
	a->descr = nd.dt->descr;
	a->name = nd.dt->name;
	a->itemsize = nd.dt->size;
	a->ndim = nd.ndim;
	memcpy(a->shape, nd.shape, nd.ndim * sizeof(uint64_t));
	a->data = nd.data;
	a->nbytes = nd.nbytes;
	return 1;
}

size_t
value_array_offset(const void *prefix, size_t n)
{
	const uint8_t *b = prefix;
	struct rd rd;
	struct item it;
	size_t w, k;

	if (n < 3 || b[0] < 0xc7 || b[0] > 0xc9)
		return 0;
	w = (size_t)1 << (b[0] - 0xc7);
	if (n < 2 + w || b[1 + w] != COHORT_EXT_NDARRAY)
		return 0;
	rd.p = b + 2 + w;
	rd.end = b + n;
	if (read_item(&rd, &it, NULL) < 0 || it.kind != K_ARRAY || it.n != 2 ||
	    read_item(&rd, &it, NULL) < 0 || it.kind != K_STR ||
	    read_item(&rd, &it, NULL) < 0 || it.kind != K_ARRAY)
		return 0;
	for (k = it.n; k > 0; k--)
		if (read_item(&rd, &it, NULL) < 0 || it.kind != K_INT)
			return 0;
	return (size_t)(rd.p - b);
}

int
value_array_head(msgpack_sbuffer *out, const char *descr, unsigned ndim,
                 const uint64_t *shape, struct cohort_error *err)
{
	const struct dtype *dt = dtype_find(descr, strlen(descr));
	uint64_t count, nbytes;
	msgpack_packer pk;

	if (dt == NULL || ndim > MAX_NDIM)
		return errprintf(err, "bad array dtype or rank");
	if (shape_size(dt, ndim, shape, &count, &nbytes) < 0)
		return errprintf(err, "array shape is too large");
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	return nd_pack_head(&pk, dt, ndim, shape, nbytes, err);
}

/* Make room for n more bytes at the end of sb without copying them. */
static void *
sbuf_reserve(msgpack_sbuffer *sb, size_t n)
{
	char *p;

	if (sb->alloc - sb->size < n) {
		if (n > SIZE_MAX - sb->size ||
		    !(p = realloc(sb->data, sb->size + n)))
			return NULL;
		sb->data = p;
		sb->alloc = sb->size + n;
	}
	return sb->data + sb->size;
}

static int
pack_json(msgpack_packer *pk, json_t *j, int depth, struct cohort_error *err)
{
	const char *s;
	size_t i, n;
	void *it;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (depth >= MAX_DEPTH)
			return too_deep(err);
		if (json_is_array(j)) {
			n = json_array_size(j);
			msgpack_pack_array(pk, n);
			for (i = 0; i < n; i++)
				if (pack_json(pk, json_array_get(j, i),
				              depth + 1, err) < 0)
					return -1;
			return 0;
		}
		msgpack_pack_map(pk, json_object_size(j));
		for (it = json_object_iter(j); it;
		     it = json_object_iter_next(j, it)) {
			msgpack_pack_str_with_body(
			    pk, json_object_iter_key(it),
			    json_object_iter_key_len(it));
			if (pack_json(pk, json_object_iter_value(it), depth + 1,
			              err) < 0)
				return -1;
		}
		return 0;
	case JSON_STRING:
		s = json_string_value(j);
		n = json_string_length(j);
		if (n > UINT32_MAX)
			return errprintf(err,
			                 "a string of %zu bytes is too "
			                 "long (at most 4 GiB)",
			                 n);
		return msgpack_pack_str_with_body(pk, s, n);
	case JSON_INTEGER:
		return msgpack_pack_int64(pk, json_integer_value(j));
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(j));
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	case JSON_NULL:
		return msgpack_pack_nil(pk);
	}
	return errprintf(err, "unknown JSON type");
}

static int
from_json(msgpack_packer *pk, json_t *j, const char *path,
          const json_error_t *jerr, struct cohort_error *err)
{
	int rc;

	if (!j)
		return errprintf(err, "%s%sJSON error at line %d column %d: %s",
		                 path ? path : "", path ? ": " : "", jerr->line,
		                 jerr->column, jerr->text);
	rc = pack_json(pk, j, 0, err);
	json_decref(j);
	return rc < 0 ? -1 : 0;
}

static int
open_file(const char *path, FILE **fp, uint64_t *size, bool regular,
          struct cohort_error *err)
{
	struct stat st = {0};

	if (!(*fp = fopen(path, "rb")))
		return errprintf(err, "cannot open %s: %s", path,
		                 strerror(errno));
	if (fstat(fileno(*fp), &st) < 0 || S_ISDIR(st.st_mode) ||
	    (regular && !S_ISREG(st.st_mode))) {
		fclose(*fp);
		return errprintf(err, "cannot read %s: %s", path,
		                 S_ISDIR(st.st_mode) ? "it is a directory"
		                                     : "not a regular file");
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
read_exact(FILE *fp, void *buf, size_t n)
{
	return n == 0 || fread(buf, 1, n, fp) == n ? 0 : -1;
}

static int
read_error(FILE *fp, const char *path, struct cohort_error *err)
{
	return errprintf(err, "cannot read %s: %s", path,
	                 ferror(fp) ? strerror(errno)
	                            : "file is shorter "
	                              "than it was");
}

static int
from_bin(const char *path, msgpack_sbuffer *out, msgpack_packer *pk,
         struct cohort_error *err)
{
	uint64_t size;
	void *p;
	FILE *fp;
	int rc = -1;

	if (open_file(path, &fp, &size, true, err) < 0)
		return -1;
	if (size > UINT32_MAX)
		errprintf(err, "%s is too large: %llu bytes (at most 4 GiB)",
		          path, (unsigned long long)size);
	else if (msgpack_pack_bin(pk, size) || !(p = sbuf_reserve(out, size)))
		errprintf(err, "out of memory reading %s", path);
	else if (read_exact(fp, p, size) < 0)
		read_error(fp, path, err);
	else {
		out->size += size;
		rc = 0;
	}
	fclose(fp);
	return rc;
}

/* ---- .npy files ------------------------------------------------------ */

struct npy {
	char descr[16];
	bool fortran;
	unsigned ndim;
	uint64_t shape[MAX_NDIM];
};

/* A cursor over the Python dict literal of a .npy header. */
struct pyc {
	const char *p, *end;
};

static int __attribute__((format(printf, 3, 4)))
bad_npy(struct cohort_error *err, const char *path, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return errprintf(err, "%s is not a valid .npy file: %s", path, why);
}

static void
py_ws(struct pyc *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
	                         *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static bool
py_eat(struct pyc *c, char ch)
{
	py_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/* A quoted string without escapes, into buf. */
static int
py_str(struct pyc *c, char *buf, size_t size)
{
	size_t n = 0;
	char q;

	if (!py_eat(c, '\'') && !py_eat(c, '"'))
		return -1;
	q = c->p[-1];
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\' || !printable(c->p, 1) || n + 1 >= size)
			return -1;
		buf[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return -1;
	c->p++;
	buf[n] = '\0';
	return 0;
}

static int
py_bool(struct pyc *c, bool *v)
{
	py_ws(c);
	for (int i = 0; i < 2; i++) {
		const char *w = i ? "True" : "False";
		size_t n = strlen(w);

		if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0 &&
		    (c->p + n == c->end || !isalnum((unsigned char)c->p[n]))) {
			c->p += n;
			*v = i;
			return 0;
		}
	}
	return -1;
}

/* A tuple of non-negative ints, as Python writes it. */
static int
py_shape(struct pyc *c, struct npy *np)
{
	uint64_t v;

	if (!py_eat(c, '('))
		return -1;
	np->ndim = 0;
	while (!py_eat(c, ')')) {
		if (np->ndim == MAX_NDIM)
			return -1;
		py_ws(c);
		if (c->p >= c->end || !isdigit((unsigned char)*c->p))
			return -1;
		for (v = 0; c->p < c->end && isdigit((unsigned char)*c->p);) {
			v = v * 10 + (uint64_t)(*c->p++ - '0');
			if (v > MAX_DIM)
				return -1;
		}
		if (c->p < c->end && *c->p == 'L') /* Python 2 long */
			c->p++;
		np->shape[np->ndim++] = v;
		if (!py_eat(c, ',')) {
			/* (3) is an int, not a tuple */
			if (np->ndim == 1 || !py_eat(c, ')'))
				return -1;
			break;
		}
	}
	return 0;
}

static int
npy_header(const char *path, const char *h, size_t n, struct npy *np,
           struct cohort_error *err)
{
	struct pyc c = {h, h + n};
	unsigned seen = 0, bit;
	const char *s;
	char key[16];
	int depth;
	size_t k;

	if (!py_eat(&c, '{'))
		return bad_npy(err, path, "the header is not a dict");
	while (!py_eat(&c, '}')) {
		if (py_str(&c, key, sizeof(key)) < 0 || !py_eat(&c, ':'))
			return bad_npy(err, path, "malformed header");
		if (strcmp(key, "descr") == 0) {
			bit = 1;
			if (py_eat(&c, '[')) { /* a structured dtype */
				s = c.p - 1;
				for (depth = 1; c.p < c.end && depth; c.p++)
					depth += (*c.p == '[') - (*c.p == ']');
				k = (size_t)(c.p - s);
				if (!printable(s, k < 60 ? k : 60))
					s = "[...]", k = 5;
				return errprintf(err,
				                 "%s: arrays of dtype %.*s%s "
				                 "are not supported",
				                 path, (int)(k < 60 ? k : 60),
				                 s, k > 60 ? "..." : "");
			}
			if (py_str(&c, np->descr, sizeof(np->descr)) < 0)
				return bad_npy(err, path, "malformed 'descr'");
		} else if (strcmp(key, "fortran_order") == 0) {
			bit = 2;
			if (py_bool(&c, &np->fortran) < 0)
				return bad_npy(err, path,
				               "malformed 'fortran_order'");
		} else if (strcmp(key, "shape") == 0) {
			bit = 4;
			if (py_shape(&c, np) < 0)
				return bad_npy(err, path, "malformed 'shape'");
		} else {
			return bad_npy(err, path, "unexpected key in header");
		}
		if (seen & bit)
			return bad_npy(err, path, "repeated key in header");
		seen |= bit;
		if (!py_eat(&c, ',')) {
			if (!py_eat(&c, '}'))
				return bad_npy(err, path, "malformed header");
			break;
		}
	}
	if (seen != 7)
		return bad_npy(err, path,
		               "the header lacks 'descr', "
		               "'fortran_order' or 'shape'");
	py_ws(&c);
	if (c.p != c.end)
		return bad_npy(err, path, "junk after the header dict");
	return 0;
}

/* Our dtype for a .npy descr; *swap if the data is big-endian. */
static const struct dtype *
npy_dtype(const char *descr, bool *swap)
{
	const struct dtype *dt;
	size_t n = strlen(descr);
	char le[16];

	if (n < 3 || n >= sizeof(le) || !strchr("<>|", descr[0]))
		return NULL;
	memcpy(le, descr, n + 1);
	le[0] = '<';
	if (!(dt = dtype_find(le, n))) {
		le[0] = '|';
		dt = dtype_find(le, n);
	}
	if (!dt || (descr[0] == '|' && dt->size > 1))
		return NULL;
	*swap = descr[0] == '>' && dt->size > 1;
	return dt;
}

/* Copy Fortran-order src to C-order dst, walking dst in order. */
static void
transpose(uint8_t *dst, const uint8_t *src, const struct npy *np, unsigned size,
          uint64_t count)
{
	uint64_t idx[MAX_NDIM] = {0}, stride[MAX_NDIM], off = 0;
	int k;

	for (k = 0; k < (int)np->ndim; k++)
		stride[k] = k ? stride[k - 1] * np->shape[k - 1] : size;
	for (uint64_t e = 0; e < count; e++, dst += size) {
		memcpy(dst, src + off, size);
		for (k = (int)np->ndim - 1; k >= 0; k--) {
			off += stride[k];
			if (++idx[k] < np->shape[k])
				break;
			off -= idx[k] * stride[k];
			idx[k] = 0;
		}
	}
}

static void
byteswap(uint8_t *p, uint64_t count, const struct dtype *dt)
{
	unsigned s = dt->kind == 'c' ? dt->size / 2 : dt->size;
	uint8_t t;

	count *= dt->size / s;
	for (uint64_t e = 0; e < count; e++, p += s)
		for (unsigned i = 0; i < s / 2; i++) {
			t = p[i];
			p[i] = p[s - 1 - i];
			p[s - 1 - i] = t;
		}
}

static int
from_npy(const char *path, msgpack_sbuffer *out, msgpack_packer *pk,
         struct cohort_error *err)
{
	uint64_t fsize, hlen, off, count, nbytes;
	const struct dtype *dt;
	uint8_t pre[12], *dst, *tmp = NULL;
	struct npy np = {0};
	char *hdr = NULL;
	bool swap, fortran;
	FILE *fp;
	int rc = -1;

	if (open_file(path, &fp, &fsize, true, err) < 0)
		return -1;
	if (fsize < 10 || read_exact(fp, pre, 10) < 0 ||
	    memcmp(pre, "\x93NUMPY", 6) != 0) {
		bad_npy(err, path, "it does not start with \\x93NUMPY");
		goto out;
	}
	if (pre[6] == 1) {
		hlen = load_le(pre + 8, 2);
		off = 10;
	} else if (pre[6] == 2 || pre[6] == 3) {
		if (fsize < 12 || read_exact(fp, pre + 10, 2) < 0) {
			bad_npy(err, path, "truncated header");
			goto out;
		}
		hlen = load_le(pre + 8, 4);
		off = 12;
	} else {
		bad_npy(err, path, "unknown format version %u.%u", pre[6],
		        pre[7]);
		goto out;
	}
	if (hlen > NPY_MAX_HEADER || fsize - off < hlen) {
		bad_npy(err, path, "header of %llu bytes %s",
		        (unsigned long long)hlen,
		        hlen > NPY_MAX_HEADER ? "is too long"
		                              : "goes past the end");
		goto out;
	}
	hdr = xmalloc(hlen);
	if (read_exact(fp, hdr, hlen) < 0) {
		read_error(fp, path, err);
		goto out;
	}
	if (npy_header(path, hdr, hlen, &np, err) < 0)
		goto out;
	if (!(dt = npy_dtype(np.descr, &swap))) {
		errprintf(err, "%s: arrays of dtype '%s' are not supported",
		          path, np.descr);
		goto out;
	}
	if (shape_size(dt, np.ndim, np.shape, &count, &nbytes) < 0) {
		bad_npy(err, path, "shape is too large");
		goto out;
	}
	if (fsize - off - hlen != nbytes) {
		bad_npy(err, path, "%llu data bytes, the header says %llu",
		        (unsigned long long)(fsize - off - hlen),
		        (unsigned long long)nbytes);
		goto out;
	}
	if (nd_pack_head(pk, dt, np.ndim, np.shape, nbytes, err) < 0)
		goto out;
	fortran = np.fortran && np.ndim > 1 && count > 1;
	if (!(dst = sbuf_reserve(out, nbytes)) ||
	    (fortran && !(tmp = malloc(nbytes)))) {
		errprintf(err, "out of memory reading %s", path);
		goto out;
	}
	if (read_exact(fp, fortran ? tmp : dst, nbytes) < 0) {
		read_error(fp, path, err);
		goto out;
	}
	if (fortran)
		transpose(dst, tmp, &np, dt->size, count);
	if (swap)
		byteswap(dst, count, dt);
	out->size += nbytes;
	rc = 0;
out:
	free(tmp);
	free(hdr);
	fclose(fp);
	return rc;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Encode a JSON literal or an @file as one msgpack value in out. */
int
value_from_arg(const char *arg, msgpack_sbuffer *out, struct cohort_error *err)
{
	const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	size_t size0 = out->size;
	const char *path = arg + 1;
	msgpack_packer pk;
	json_error_t jerr;
	FILE *fp;
	int rc;

	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	if (arg[0] == '\0') {
		return errprintf(err,
		                 "empty value (an empty string is '\"\"')");
	} else if (arg[0] != '@') {
		rc = from_json(&pk, json_loads(arg, flags, &jerr), NULL, &jerr,
		               err);
		if (rc < 0 && isalpha((unsigned char)arg[0]) && err)
			snprintf(err->text + strlen(err->text),
			         sizeof(err->text) - strlen(err->text),
			         " (a string needs JSON quotes: '\"text\"')");
	} else if (has_suffix(path, ".npy")) {
		rc = from_npy(path, out, &pk, err);
	} else if (has_suffix(path, ".bin")) {
		rc = from_bin(path, out, &pk, err);
	} else if (has_suffix(path, ".json")) {
		if (!(fp = fopen(path, "rb")))
			return errprintf(err, "cannot open %s: %s", path,
			                 strerror(errno));
		rc = from_json(&pk, json_loadf(fp, flags, &jerr), path, &jerr,
		               err);
		fclose(fp);
	} else {
		return errprintf(err,
		                 "unknown file type for %s (use .npy, "
		                 ".json or .bin)",
		                 arg);
	}
	if (rc < 0)
		out->size = size0;
	return rc;
}

/* ---- JSON ------------------------------------------------------------ */

static json_t *
real_json(double d)
{
	return isfinite(d) ? json_real(d)
	                   : json_string(isnan(d) ? "nan"
	                                 : d < 0  ? "-inf"
	                                          : "inf");
}

static json_t *
b64_json(const uint8_t *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char *s = xmalloc(n / 3 * 4 + 5), *q = s;
	json_t *j;
	uint32_t v;

	for (size_t i = 0; i < n; i += 3) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*q++ = tab[v >> 18];
		*q++ = tab[v >> 12 & 63];
		*q++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*q++ = i + 2 < n ? tab[v & 63] : '=';
	}
	if ((j = json_object()))
		json_object_set_new(j, "bytes_b64",
		                    json_stringn(s, (size_t)(q - s)));
	free(s);
	return j;
}

static json_t *
elem_json(const struct dtype *dt, const uint8_t *p)
{
	unsigned s = dt->size, bits = s * 8;
	uint64_t v = load_le(p, s);

	switch (dt->kind) {
	case 'b':
		return json_boolean(*p);
	case 'i':
		if (bits < 64 && v >> (bits - 1))
			v |= ~0ULL << bits;
		return json_integer((json_int_t)v);
	case 'u':
		return v > INT64_MAX ? json_real((double)v)
		                     : json_integer((json_int_t)v);
	case 'f':
		return real_json(load_real(p, s));
	}
	return json_pack("[oo]", real_json(load_real(p, s / 2)),
	                 real_json(load_real(p + s / 2, s / 2)));
}

static json_t *
nd_nest(const struct nd *a, unsigned k, const uint8_t **p)
{
	json_t *list, *v;

	if (k == a->ndim) {
		v = elem_json(a->dt, *p);
		*p += a->dt->size;
		return v;
	}
	if (!(list = json_array()))
		return NULL;
	for (uint64_t i = 0; i < a->shape[k]; i++)
		if (json_array_append_new(list, nd_nest(a, k + 1, p)) < 0) {
			json_decref(list);
			return NULL;
		}
	return list;
}

/* Empty lists value_to_json may still make for the value at hand. */
static uint64_t json_empty_budget;

static json_t *
nd_json(const struct nd *a, struct cohort_error *err)
{
	const uint8_t *p = a->data;
	json_t *shape, *j;
	uint64_t lists = 1;

	/* (1 << 60, 0) has no elements but would make 2^60 empty lists;
	 * the budget spans the whole value, not one array. */
	for (unsigned k = 0; k < a->ndim && a->shape[k]; k++)
		if ((lists *= a->shape[k]) > JSON_MAX_EMPTY && !a->count) {
			errprintf(err, "an empty array of this shape is too "
			               "large for JSON");
			return NULL;
		}
	if (!a->count) {
		if (lists > json_empty_budget) {
			errprintf(err, "too many empty arrays for JSON");
			return NULL;
		}
		json_empty_budget -= lists;
	}
	if (!(shape = json_array()))
		return NULL;
	for (unsigned k = 0; k < a->ndim; k++)
		json_array_append_new(shape,
		                      json_integer((json_int_t)a->shape[k]));
	j = json_pack("{s:s,s:o,s:o}", "dtype", a->dt->name, "shape", shape,
	              "data", nd_nest(a, 0, &p));
	if (!j)
		errprintf(err, "out of memory");
	return j;
}

static json_t *
to_json(struct rd *rd, int depth, struct cohort_error *err)
{
	struct item it, key;
	json_t *j = NULL, *v;
	struct nd a;
	size_t i;

	if (read_item(rd, &it, err) < 0)
		return NULL;
	switch (it.kind) {
	case K_NIL:
		return json_null();
	case K_BOOL:
		return json_boolean(it.b);
	case K_INT:
		return json_integer(it.i);
	case K_UINT:
		return json_real((double)it.u);
	case K_F32:
	case K_F64:
		return real_json(it.f);
	case K_STR:
		if (!(j = json_stringn((const char *)it.p, it.n)))
			errprintf(err, "a str is not valid UTF-8");
		return j;
	case K_BIN:
		return b64_json(it.p, it.n);
	case K_ARRAY:
	case K_MAP:
		if (depth >= MAX_DEPTH) {
			too_deep(err);
			return NULL;
		}
		j = it.kind == K_MAP ? json_object() : json_array();
		for (i = 0; j && i < it.n; i++) {
			if (it.kind == K_MAP && (read_item(rd, &key, err) < 0 ||
			                         key.kind != K_STR)) {
				errprintf(err,
				          "dict keys must be str for "
				          "JSON, not %s",
				          kind_name(&key));
				goto fail;
			}
			if (!(v = to_json(rd, depth + 1, err)))
				goto fail;
			if (it.kind == K_ARRAY
			        ? json_array_append_new(j, v)
			        : json_object_setn_new(j, (const char *)key.p,
			                               key.n, v)) {
				errprintf(err, "a dict key is not valid UTF-8");
				goto fail;
			}
		}
		return j;
	case K_EXT:
		if (!is_nd(&it)) {
			errprintf(err, "extension type %d has no JSON form",
			          it.ext);
			return NULL;
		}
		if (nd_parse(&it, &a, err) < 0)
			return NULL;
		return nd_json(&a, err);
	}
fail:
	json_decref(j);
	return NULL;
}

/* Convert one encoded value to a new JSON reference. */
json_t *
value_to_json(const void *data, size_t len, struct cohort_error *err)
{
	struct cohort_error e = {""};
	struct rd rd;
	json_t *j;

	if (value_open(data, len, &rd, &e) < 0) {
		errprintf(err, "malformed value: %s", e.text);
		return NULL;
	}
	json_empty_budget = JSON_MAX_EMPTY;
	if (!(j = to_json(&rd, 0, &e)))
		errprintf(err, "%s", e.text[0] ? e.text : "out of memory");
	return j;
}

/* ---- files, split, concat, names ------------------------------------- */

/* A version 1.0 .npy header, padded to 64 bytes as numpy does. */
static void
npy_head(struct out *o, const struct nd *a)
{
	size_t hlen;

	out_init(o, SIZE_MAX - 1);
	put(o, "\x93NUMPY\x01\x00\x00\x00", 10);
	putf(o,
	     "{'descr': '%s', 'fortran_order': False, 'shape': ", a->dt->descr);
	put_shape(o, a->ndim, a->shape);
	puts_(o, ", }");
	while ((o->n + 1) % 64)
		puts_(o, " ");
	puts_(o, "\n");
	hlen = o->n - 10;
	o->s[8] = (char)(hlen & 0xff);
	o->s[9] = (char)(hlen >> 8);
}

/* Write a value to a .npy, .json or .bin file, by suffix. */
int
value_write_file(const void *data, size_t len, const char *path,
                 struct cohort_error *err)
{
	struct out head = {0};
	struct cohort_error e;
	const void *body = NULL;
	size_t blen = 0;
	json_t *j = NULL;
	struct item it;
	struct nd a;
	struct rd rd;
	FILE *fp;
	int rc;

	if (!has_suffix(path, ".npy") && !has_suffix(path, ".json") &&
	    !has_suffix(path, ".bin"))
		return errprintf(err,
		                 "unknown file type for %s (use .npy, "
		                 ".json or .bin)",
		                 path);
	if (value_open(data, len, &rd, &e) < 0 || read_item(&rd, &it, &e) < 0)
		return errprintf(err, "malformed value: %s", e.text);
	if (is_nd(&it) && nd_parse(&it, &a, &e) < 0)
		return errprintf(err, "malformed value: %s", e.text);
	if (has_suffix(path, ".json")) {
		if (!(j = value_to_json(data, len, err)))
			return -1;
	} else if (has_suffix(path, ".bin")) {
		if (!is_nd(&it) && it.kind != K_STR && it.kind != K_BIN)
			return errprintf(err,
			                 "cannot write %s to %s: only "
			                 "bytes, str and arrays can be written "
			                 "to .bin",
			                 kind_name(&it), path);
		body = is_nd(&it) ? a.data : it.p;
		blen = is_nd(&it) ? a.nbytes : it.n;
	} else {
		if (!is_nd(&it))
			return errprintf(err,
			                 "cannot write %s to %s: only "
			                 "arrays can be written to .npy; use "
			                 ".json",
			                 kind_name(&it), path);
		npy_head(&head, &a);
		body = a.data;
		blen = a.nbytes;
	}
	if (!(fp = fopen(path, "wb"))) {
		rc = errprintf(err, "cannot write %s: %s", path,
		               strerror(errno));
		goto out;
	}
	if (j)
		rc = json_dumpf(j, fp, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0 ||
		     fputc('\n', fp) == EOF;
	else
		rc = (head.n && fwrite(head.s, 1, head.n, fp) != head.n) ||
		     (blen && fwrite(body, 1, blen, fp) != blen);
	if (fclose(fp) != 0)
		rc = 1;
	if (rc)
		rc = errprintf(err, "cannot write %s: %s", path,
		               strerror(errno));
out:
	json_decref(j);
	free(head.s);
	return rc;
}

/* Split a list or an array along its first axis into n parts: each part's
 * head is appended to heads[i], its body is a slice of data. */
int
value_split_ref(const void *data, size_t len, size_t n,
                msgpack_sbuffer *heads, struct value_slice *bodies,
                struct cohort_error *err)
{
	uint64_t shape[MAX_NDIM], rows, rowbytes = 0, k, c;
	struct cohort_error e;
	const uint8_t *start;
	msgpack_packer pk;
	struct item it;
	struct nd a;
	struct rd rd;
	size_t i, j;

	if (n == 0)
		return errprintf(err, "cannot split a value into 0 parts");
	if (value_open(data, len, &rd, &e) < 0 || read_item(&rd, &it, &e) < 0)
		return errprintf(err, "malformed value: %s", e.text);
	if (it.kind == K_ARRAY) {
		for (i = 0; i < n; i++) {
			k = it.n / n + (i < it.n % n);
			start = rd.p;
			for (j = 0; j < k; j++)
				check_value(&rd, 1, NULL);
			msgpack_packer_init(&pk, &heads[i],
			                    msgpack_sbuffer_write);
			msgpack_pack_array(&pk, k);
			bodies[i].p = start;
			bodies[i].n = (size_t)(rd.p - start);
		}
		return 0;
	}
	if (!is_nd(&it))
		return errprintf(err,
		                 "cannot split %s: only lists and arrays "
		                 "can be split",
		                 kind_name(&it));
	if (nd_parse(&it, &a, &e) < 0)
		return errprintf(err, "malformed value: %s", e.text);
	if (a.ndim == 0)
		return errprintf(err, "cannot split a 0-d array");
	memcpy(shape, a.shape, sizeof(shape));
	rows = a.shape[0];
	shape[0] = 1;
	shape_size(a.dt, a.ndim, shape, &c, &rowbytes); /* fits: a did */
	for (i = 0, start = a.data; i < n; i++) {
		shape[0] = rows / n + (i < rows % n);
		bodies[i].p = start;
		bodies[i].n = (size_t)(shape[0] * rowbytes);
		start += bodies[i].n;
		msgpack_packer_init(&pk, &heads[i], msgpack_sbuffer_write);
		if (nd_pack_head(&pk, a.dt, a.ndim, shape, bodies[i].n, err) <
		    0)
			return -1;
	}
	return 0;
}

/* The same, each part whole in parts[i]. */
int
value_split(const void *data, size_t len, size_t n, msgpack_sbuffer *parts,
            struct cohort_error *err)
{
	struct value_slice *bodies = xcalloc(n ? n : 1, sizeof(*bodies));
	int rc = value_split_ref(data, len, n, parts, bodies, err);

	for (size_t i = 0; rc == 0 && i < n; i++)
		msgpack_sbuffer_write(&parts[i], (const char *)bodies[i].p,
		                      bodies[i].n);
	free(bodies);
	return rc;
}

/* Concatenate lists, or arrays of one dtype and trailing shape, into out. */
int
value_concat(const void *const *data, const size_t *len, size_t n,
             msgpack_sbuffer *out, struct cohort_error *err)
{
	uint64_t total = 0, shape[MAX_NDIM], c, nb;
	struct cohort_error e;
	struct item it, first = {0};
	struct nd a = {0}, a0 = {0};
	msgpack_packer pk;
	struct rd rd;
	char *s0, *s1;
	size_t i;

	if (n == 0)
		return errprintf(err, "nothing to concatenate");
	for (i = 0; i < n; i++) {
		if (value_open(data[i], len[i], &rd, &e) < 0 ||
		    read_item(&rd, &it, &e) < 0 ||
		    (is_nd(&it) && nd_parse(&it, &a, &e) < 0))
			return errprintf(err, "part %zu: malformed value: %s",
			                 i, e.text);
		if (i == 0) {
			first = it;
			a0 = a;
			if (it.kind != K_ARRAY && !is_nd(&it))
				return errprintf(err,
				                 "cannot concatenate %s: "
				                 "only lists and arrays can be "
				                 "concatenated",
				                 kind_name(&it));
		}
		if (is_nd(&it) && a.ndim == 0)
			return errprintf(err,
			                 "part %zu is a 0-d array, which "
			                 "cannot be concatenated",
			                 i);
		if (it.kind != first.kind || is_nd(&it) != is_nd(&first))
			return errprintf(err, "part %zu is %s, part 0 is %s", i,
			                 kind_name(&it), kind_name(&first));
		if (it.kind == K_ARRAY) {
			total += it.n;
			continue;
		}
		if (a.dt != a0.dt)
			return errprintf(err,
			                 "part %zu has dtype %s, part 0 "
			                 "has %s",
			                 i, a.dt->name, a0.dt->name);
		if (a.ndim != a0.ndim ||
		    memcmp(a.shape + 1, a0.shape + 1,
		           (a.ndim - 1) * sizeof(uint64_t))) {
			s0 = shape_str(a0.ndim, a0.shape);
			s1 = shape_str(a.ndim, a.shape);
			errprintf(err,
			          "part %zu has shape %s, part 0 has %s "
			          "(all but the first axis must match)",
			          i, s1, s0);
			free(s0);
			free(s1);
			return -1;
		}
		total += a.shape[0];
		if (total > MAX_DIM)
			return errprintf(err, "the concatenated array is too "
			                      "large");
	}
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	if (first.kind == K_ARRAY) {
		if (total > UINT32_MAX)
			return errprintf(err,
			                 "the concatenated list has too "
			                 "many items (%llu)",
			                 (unsigned long long)total);
		msgpack_pack_array(&pk, total);
		for (i = 0; i < n; i++) {
			value_open(data[i], len[i], &rd, NULL);
			read_item(&rd, &it, NULL);
			msgpack_sbuffer_write(out, (const char *)rd.p,
			                      left(&rd));
		}
		return 0;
	}
	memcpy(shape, a0.shape, sizeof(shape));
	shape[0] = total;
	if (shape_size(a0.dt, a0.ndim, shape, &c, &nb) < 0)
		return errprintf(err, "the concatenated array is too large");
	if (nd_pack_head(&pk, a0.dt, a0.ndim, shape, nb, err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		value_open(data[i], len[i], &rd, NULL);
		read_item(&rd, &it, NULL);
		nd_parse(&it, &a, NULL);
		msgpack_pack_ext_body(&pk, a.data, a.nbytes);
	}
	return 0;
}

/* True if name is a Python identifier (ASCII) and not a keyword. */
bool
value_name_ok(const char *name)
{
	static const char *const kw[] = {
	    "False",  "None",     "True",  "and",    "as",       "assert",
	    "async",  "await",    "break", "class",  "continue", "def",
	    "del",    "elif",     "else",  "except", "finally",  "for",
	    "from",   "global",   "if",    "import", "in",       "is",
	    "lambda", "nonlocal", "not",   "or",     "pass",     "raise",
	    "return", "try",      "while", "with",   "yield",
	};
	const char *p;

	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return false;
	for (p = name; *p; p++)
		if (!(*p == '_' || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (strcmp(name, kw[i]) == 0)
			return false;
	return true;
}

/* Refuse a name that is not a Python identifier, with the reason. */
int
value_check_name(const char *name, struct cohort_error *err)
{
	if (value_name_ok(name))
		return 0;
	return errprintf(err, "'%s' is not a valid name (use a Python "
			 "identifier)", name);
}
