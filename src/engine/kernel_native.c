/* SPDX-License-Identifier: BSD-3-Clause */
/* kernel_native.c - the native kernel: C and Fortran plugins, no interpreter.
 *
 * The namespace holds values exactly as push, pull, scatter and gather move
 * them: one encoded msgpack object each, plus a decoded view of its top
 * level (the kind, a scalar, where a string's bytes or an array's data
 * are). Values are stored so that an array's data starts on a 64-byte
 * boundary, which lets plugins read it as double * without a copy.
 *
 * px code is a list of statements (docs/native.md):
 *
 *   load PATH            dlopen a plugin
 *   NAME = FUNC(ARG, ...) call a plugin function, bind its result
 *   FUNC(ARG, ...)       call it; a trailing call's result is shown
 *   NAME                 show a value (value_format)
 *   del NAME, ...        unbind names
 *
 * separated by newlines or ';'. A cell is parsed whole before anything
 * runs, so a syntax error anywhere runs nothing. Plugin functions are
 * `int fn(struct cohort_call *)` (include/cohort/plugin.h); they reach the
 * engine only through the ops table below.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <msgpack.h>

#include "cohort/kernel.h"
#include "cohort/plugin.h"
#include "log.h"
#include "util.h"
#include "value.h"

#define ALIGN 64             /* array data alignment in stored values */
#define SHOW_MAX_CHARS 10000 /* longest text a shown value renders to */
#define VERSION_SYMBOL "cohort_plugin_abi_version"
/* An ELF symbol's type (STT_FUNC, ...): the same macro in ELF32 and ELF64. */
#define SYM_TYPE(info) ELF64_ST_TYPE(info)

/* ---- dtypes ---------------------------------------------------------- */

static const struct {
	const char *descr, *name;
	size_t size;
} dtypes[] = {
    [COHORT_DTYPE_BOOL] = {"|b1", "bool", 1},
    [COHORT_DTYPE_INT8] = {"|i1", "int8", 1},
    [COHORT_DTYPE_UINT8] = {"|u1", "uint8", 1},
    [COHORT_DTYPE_INT16] = {"<i2", "int16", 2},
    [COHORT_DTYPE_UINT16] = {"<u2", "uint16", 2},
    [COHORT_DTYPE_INT32] = {"<i4", "int32", 4},
    [COHORT_DTYPE_UINT32] = {"<u4", "uint32", 4},
    [COHORT_DTYPE_INT64] = {"<i8", "int64", 8},
    [COHORT_DTYPE_UINT64] = {"<u8", "uint64", 8},
    [COHORT_DTYPE_FLOAT32] = {"<f4", "float32", 4},
    [COHORT_DTYPE_FLOAT64] = {"<f8", "float64", 8},
    [COHORT_DTYPE_COMPLEX64] = {"<c8", "complex64", 8},
    [COHORT_DTYPE_COMPLEX128] = {"<c16", "complex128", 16},
};
#define NDTYPES ((int)(sizeof(dtypes) / sizeof(dtypes[0])))

static int
dtype_valid(int d)
{
	return d >= 0 && d < NDTYPES;
}

static const char *
dtype_name(enum cohort_dtype d)
{
	return dtype_valid((int)d) ? dtypes[d].name : "unknown";
}

static const char *
kind_name(enum cohort_kind k)
{
	switch (k) {
	case COHORT_KIND_NIL:
		return "None";
	case COHORT_KIND_BOOL:
		return "bool";
	case COHORT_KIND_INT:
		return "int";
	case COHORT_KIND_FLOAT:
		return "float";
	case COHORT_KIND_STRING:
		return "str";
	case COHORT_KIND_ARRAY:
		return "array";
	case COHORT_KIND_OTHER:
		break;
	}
	return "other";
}

/* "an array", "a str", ... for "must be X" messages. */
static const char *
kind_article(enum cohort_kind k)
{
	switch (k) {
	case COHORT_KIND_NIL:
		return "None";
	case COHORT_KIND_BOOL:
		return "a bool";
	case COHORT_KIND_INT:
		return "an int";
	case COHORT_KIND_FLOAT:
		return "a float";
	case COHORT_KIND_STRING:
		return "a str";
	case COHORT_KIND_ARRAY:
		return "an array";
	case COHORT_KIND_OTHER:
		break;
	}
	return "a value of another kind";
}

/* ---- values ---------------------------------------------------------- */

/* One value: its encoded bytes and a view of its top level. */
struct nval {
	void *mem;           /* the allocation; data lies inside it */
	unsigned char *data; /* the encoded msgpack value */
	size_t len;
	enum cohort_kind kind;
	const char *type; /* "int", "list", ... for messages */
	int64_t i;
	uint64_t u; /* an int above INT64_MAX (then big is set) */
	double f;
	int b;
	int big;
	size_t off, n; /* str body or array data: offset in data, bytes */
	enum cohort_dtype dtype;
	int ndim;
	size_t *shape;
	size_t count;
};

static void
nval_free(struct nval *v)
{
	if (!v)
		return;
	free(v->mem);
	free(v->shape);
	memset(v, 0, sizeof(*v));
}

/* A bounds-checked reader over one encoded value. The values it reads
 * have passed value_check() (or were made here), so it only needs the
 * top level, but it never trusts a length. */
struct rd {
	const unsigned char *p, *end;
};

static int
rd_uint(struct rd *rd, unsigned n, uint64_t *v)
{
	if ((size_t)(rd->end - rd->p) < n)
		return -1;
	for (*v = 0; n; n--)
		*v = *v << 8 | *rd->p++;
	return 0;
}

enum item_type {
	I_NIL,
	I_BOOL,
	I_INT,
	I_UINT,
	I_FLOAT,
	I_STR,
	I_BIN,
	I_ARRAY,
	I_MAP,
	I_EXT
};

struct item {
	enum item_type t;
	int64_t i;
	uint64_t u;
	double f;
	int b;
	const unsigned char *p; /* str, bin, ext body */
	uint64_t n;             /* body length or element count */
	int ext;
};

static int
rd_body(struct rd *rd, struct item *it)
{
	if ((uint64_t)(rd->end - rd->p) < it->n)
		return -1;
	it->p = rd->p;
	rd->p += it->n;
	return 0;
}

/* Read one item; containers leave their elements in the reader. */
static int
rd_item(struct rd *rd, struct item *it)
{
	uint64_t n;
	uint32_t u32;
	float f32;
	int t;

	memset(it, 0, sizeof(*it));
	if (rd->p >= rd->end)
		return -1;
	t = *rd->p++;
	if (t <= 0x7f || t >= 0xe0) {
		it->t = I_INT;
		it->i = t >= 0xe0 ? t - 256 : t;
		return 0;
	}
	if (t <= 0x8f || (t >= 0x90 && t <= 0x9f)) {
		it->t = t <= 0x8f ? I_MAP : I_ARRAY;
		it->n = t & 0x0f;
		return 0;
	}
	if (t <= 0xbf) {
		it->t = I_STR;
		it->n = t & 0x1f;
		return rd_body(rd, it);
	}
	switch (t) {
	case 0xc0:
		it->t = I_NIL;
		return 0;
	case 0xc2:
	case 0xc3:
		it->t = I_BOOL;
		it->b = t == 0xc3;
		return 0;
	case 0xc4 ... 0xc6:
		it->t = I_BIN;
		if (rd_uint(rd, 1u << (t - 0xc4), &it->n) < 0)
			return -1;
		return rd_body(rd, it);
	case 0xc7 ... 0xc9:
		it->t = I_EXT;
		if (rd_uint(rd, 1u << (t - 0xc7), &it->n) < 0 ||
		    rd_uint(rd, 1, &n) < 0)
			return -1;
		it->ext = (int8_t)n;
		return rd_body(rd, it);
	case 0xca:
		if (rd_uint(rd, 4, &n) < 0)
			return -1;
		u32 = (uint32_t)n;
		memcpy(&f32, &u32, sizeof(f32));
		it->t = I_FLOAT;
		it->f = f32;
		return 0;
	case 0xcb:
		if (rd_uint(rd, 8, &n) < 0)
			return -1;
		it->t = I_FLOAT;
		memcpy(&it->f, &n, sizeof(it->f));
		return 0;
	case 0xcc ... 0xcf:
		if (rd_uint(rd, 1u << (t - 0xcc), &n) < 0)
			return -1;
		if (n > INT64_MAX) {
			it->t = I_UINT;
			it->u = n;
		} else {
			it->t = I_INT;
			it->i = (int64_t)n;
		}
		return 0;
	case 0xd0 ... 0xd3:
		if (rd_uint(rd, 1u << (t - 0xd0), &n) < 0)
			return -1;
		it->t = I_INT;
		it->i = t == 0xd0   ? (int8_t)n
		        : t == 0xd1 ? (int16_t)n
		        : t == 0xd2 ? (int32_t)n
		                    : (int64_t)n;
		return 0;
	case 0xd4 ... 0xd8:
		it->t = I_EXT;
		it->n = 1u << (t - 0xd4);
		if (rd_uint(rd, 1, &n) < 0)
			return -1;
		it->ext = (int8_t)n;
		return rd_body(rd, it);
	case 0xd9 ... 0xdb:
		it->t = I_STR;
		if (rd_uint(rd, 1u << (t - 0xd9), &it->n) < 0)
			return -1;
		return rd_body(rd, it);
	case 0xdc ... 0xdd:
	case 0xde ... 0xdf:
		it->t = t <= 0xdd ? I_ARRAY : I_MAP;
		return rd_uint(rd,
		               t <= 0xdd ? 2u << (t - 0xdc) : 2u << (t - 0xde),
		               &it->n);
	}
	return -1;
}

/* Decode an ndarray extension body: [dtype, shape] then the data. */
static int
decode_ndarray(const unsigned char *base, const struct item *ext,
               struct nval *v)
{
	struct rd rd = {ext->p, ext->p + ext->n};
	struct item it;
	uint64_t count = 1;
	int d, i;

	if (rd_item(&rd, &it) < 0 || it.t != I_ARRAY || it.n != 2 ||
	    rd_item(&rd, &it) < 0 || it.t != I_STR)
		return -1;
	for (d = 0; d < NDTYPES; d++)
		if (strlen(dtypes[d].descr) == it.n &&
		    memcmp(dtypes[d].descr, it.p, it.n) == 0)
			break;
	if (d == NDTYPES || rd_item(&rd, &it) < 0 || it.t != I_ARRAY ||
	    it.n > COHORT_MAX_NDIM)
		return -1;
	v->dtype = (enum cohort_dtype)d;
	v->ndim = (int)it.n;
	v->shape = v->ndim ? calloc((size_t)v->ndim, sizeof(size_t)) : NULL;
	if (v->ndim && !v->shape)
		return -1;
	for (i = 0; i < v->ndim; i++) {
		if (rd_item(&rd, &it) < 0 || it.t != I_INT || it.i < 0)
			return -1;
		v->shape[i] = (size_t)it.i;
		/* value_check() has bounded the product by the data size */
		count = it.i == 0 || count == 0 ? 0 : count * (uint64_t)it.i;
	}
	if (count > SIZE_MAX / dtypes[d].size ||
	    count * dtypes[d].size != (uint64_t)(rd.end - rd.p))
		return -1;
	v->count = (size_t)count;
	v->off = (size_t)(rd.p - base);
	v->n = (size_t)(rd.end - rd.p);
	v->kind = COHORT_KIND_ARRAY;
	v->type = "array";
	return 0;
}

/* Fill v's view from its top-level item (data may be anywhere: offsets
 * are relative to its start). */
static int
decode_top(const unsigned char *data, size_t len, struct nval *v)
{
	struct rd rd = {data, data + len};
	struct item it;

	if (rd_item(&rd, &it) < 0)
		return -1;
	v->kind = COHORT_KIND_OTHER;
	switch (it.t) {
	case I_NIL:
		v->kind = COHORT_KIND_NIL;
		v->type = "None";
		break;
	case I_BOOL:
		v->kind = COHORT_KIND_BOOL;
		v->type = "bool";
		v->b = it.b;
		break;
	case I_INT:
	case I_UINT:
		v->kind = COHORT_KIND_INT;
		v->type = "int";
		v->i = it.i;
		v->u = it.u;
		v->big = it.t == I_UINT;
		break;
	case I_FLOAT:
		v->kind = COHORT_KIND_FLOAT;
		v->type = "float";
		v->f = it.f;
		break;
	case I_STR:
		v->kind = COHORT_KIND_STRING;
		v->type = "str";
		v->off = (size_t)(it.p - data);
		v->n = (size_t)it.n;
		break;
	case I_BIN:
		v->type = "bytes";
		break;
	case I_ARRAY:
		v->type = "list";
		break;
	case I_MAP:
		v->type = "dict";
		break;
	case I_EXT:
		if (it.ext == COHORT_EXT_NDARRAY)
			return decode_ndarray(data, &it, v);
		v->type = "extension value";
		break;
	}
	return 0;
}

/* Memory for len encoded bytes, placed so that byte off (an array's
 * data) is ALIGN-aligned. */
static unsigned char *
place(size_t len, size_t off, int zero, void **mem)
{
	unsigned char *m;
	size_t pad;

	if (len > SIZE_MAX - ALIGN)
		return NULL;
	m = zero ? calloc(1, len + ALIGN) : malloc(len + ALIGN);
	if (!m)
		return NULL;
	pad = (ALIGN - ((uintptr_t)(m + off) % ALIGN)) % ALIGN;
	*mem = m;
	return m + pad;
}

/* Make v a stored copy of an encoded value (already checked). */
static int
nval_from_bytes(const void *data, size_t len, struct nval *v)
{
	memset(v, 0, sizeof(*v));
	if (decode_top(data, len, v) < 0)
		goto error;
	v->data =
	    place(len, v->kind == COHORT_KIND_ARRAY ? v->off : 0, 0, &v->mem);
	if (!v->data)
		goto error;
	if (len)
		memcpy(v->data, data, len);
	v->len = len;
	return 0;
error:
	nval_free(v);
	return -1;
}

/* Make v from what a packer wrote into sb. */
static int
nval_from_sbuffer(msgpack_sbuffer *sb, struct nval *v)
{
	int rc = nval_from_bytes(sb->data, sb->size, v);

	msgpack_sbuffer_destroy(sb);
	return rc;
}

static int
nval_int(int64_t i, struct nval *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_int64(&pk, i);
	return nval_from_sbuffer(&sb, v);
}

static int
nval_float(double f, struct nval *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_double(&pk, f);
	return nval_from_sbuffer(&sb, v);
}

static int
nval_bool(int b, struct nval *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (b)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	return nval_from_sbuffer(&sb, v);
}

static int
nval_nil(struct nval *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_nil(&pk);
	return nval_from_sbuffer(&sb, v);
}

static int
nval_str(const char *s, size_t n, struct nval *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	if (n > UINT32_MAX)
		return -1;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_str_with_body(&pk, s, n);
	return nval_from_sbuffer(&sb, v);
}

/* ---- the namespace --------------------------------------------------- */

struct entry {
	char *name;
	struct nval v;
	struct entry *next;
};

static struct entry **ns_tab;
static size_t ns_cap, ns_count;

static size_t
ns_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static struct entry *
ns_find(const char *name)
{
	struct entry *e;

	if (!ns_cap)
		return NULL;
	for (e = ns_tab[ns_hash(name) % ns_cap]; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static void
ns_grow(void)
{
	size_t cap = ns_cap ? ns_cap * 2 : 64, i, h;
	struct entry **tab = xcalloc(cap, sizeof(*tab)), *e, *next;

	for (i = 0; i < ns_cap; i++)
		for (e = ns_tab[i]; e; e = next) {
			next = e->next;
			h = ns_hash(e->name) % cap;
			e->next = tab[h];
			tab[h] = e;
		}
	free(ns_tab);
	ns_tab = tab;
	ns_cap = cap;
}

/* Bind name to v, which the namespace takes over (v is left empty). */
static void
ns_set(const char *name, struct nval *v)
{
	struct entry *e = ns_find(name);
	size_t h;

	if (e) {
		nval_free(&e->v);
	} else {
		if (ns_count >= ns_cap)
			ns_grow();
		e = xcalloc(1, sizeof(*e));
		e->name = xstrdup(name);
		h = ns_hash(name) % ns_cap;
		e->next = ns_tab[h];
		ns_tab[h] = e;
		ns_count++;
	}
	e->v = *v;
	memset(v, 0, sizeof(*v));
}

static int
ns_del(const char *name)
{
	struct entry **pp, *e;

	if (!ns_cap)
		return -1;
	for (pp = &ns_tab[ns_hash(name) % ns_cap]; (e = *pp); pp = &e->next)
		if (strcmp(e->name, name) == 0) {
			*pp = e->next;
			nval_free(&e->v);
			free(e->name);
			free(e);
			ns_count--;
			return 0;
		}
	return -1;
}

static void
ns_clear(void)
{
	struct entry *e, *next;
	size_t i;

	for (i = 0; i < ns_cap; i++)
		for (e = ns_tab[i]; e; e = next) {
			next = e->next;
			nval_free(&e->v);
			free(e->name);
			free(e);
		}
	free(ns_tab);
	ns_tab = NULL;
	ns_cap = ns_count = 0;
}

/* ---- replies --------------------------------------------------------- */

static void __attribute__((format(printf, 3, 4)))
reply_error(struct kernel_reply *r, const char *ename, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	free(r->ename);
	free(r->evalue);
	r->ok = 0;
	r->ename = xstrdup(ename);
	r->evalue = text ? text : xstrdup("");
}

/* ---- plugins --------------------------------------------------------- */

struct plugin {
	void *handle;
	struct link_map *map;
	char *path; /* as given to load */
};

static struct plugin *plugins;
static int nplugins;

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The ELF symbol of the object that defines addr, and that object's link
 * map; 0 if addr is not in a loaded object. */
static int
symbol_of(void *addr, const ElfW(Sym) * *sym, struct link_map **map)
{
	Dl_info info;
	void *extra = NULL;

	*sym = NULL;
	*map = NULL;
	if (!dladdr1(addr, &info, &extra, RTLD_DL_SYMENT))
		return 0;
	*sym = extra;
	if (!dladdr1(addr, &info, &extra, RTLD_DL_LINKMAP))
		return 0;
	*map = extra;
	return 1;
}

/* Look name up in plugin p itself, not in the libraries it depends on:
 * dlsym() on a handle also searches those, and a px call to "free" must
 * not reach libc. */
static void *
plugin_symbol(const struct plugin *p, const char *name, const ElfW(Sym) * *sym)
{
	struct link_map *map;
	void *addr;

	dlerror();
	addr = dlsym(p->handle, name);
	if (!addr || !symbol_of(addr, sym, &map) || map != p->map)
		return NULL;
	return addr;
}

/* The ABI version a plugin declares, -1 if it declares none. */
static int
plugin_version(const struct plugin *p)
{
	const ElfW(Sym) * sym;
	void *addr = plugin_symbol(p, VERSION_SYMBOL, &sym);
	int v;

	if (!addr)
		return -1;
	if (sym && (SYM_TYPE(sym->st_info) == STT_FUNC ||
	            SYM_TYPE(sym->st_info) == STT_GNU_IFUNC))
		return ((int (*)(void))addr)();
	if (sym && SYM_TYPE(sym->st_info) == STT_OBJECT &&
	    sym->st_size >= sizeof(int)) {
		memcpy(&v, addr, sizeof(v));
		return v;
	}
	return -1;
}

/* load PATH */
static int
do_load(const char *path, struct kernel_reply *r)
{
	struct plugin p = {0};
	const char *why;
	int i, v;

	dlerror();
	p.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p.handle) {
		why = dlerror();
		reply_error(r, "ImportError", "cannot load %s: %s", path,
		            why ? why : "unknown error");
		return -1;
	}
	for (i = 0; i < nplugins; i++)
		if (plugins[i].handle == p.handle) {
			dlclose(p.handle); /* drop the second reference */
			return 0;
		}
	if (dlinfo(p.handle, RTLD_DI_LINKMAP, &p.map) < 0) {
		why = dlerror();
		reply_error(r, "ImportError", "cannot load %s: %s", path,
		            why ? why : "no link map");
		dlclose(p.handle);
		return -1;
	}
	v = plugin_version(&p);
	if (v != COHORT_PLUGIN_ABI_VERSION) {
		if (v < 0)
			reply_error(r, "ImportError",
			            "plugin %s does not say which Cohort "
			            "plugin ABI it was built for (no %s), "
			            "this engine speaks %d: rebuild it "
			            "against include/cohort/plugin.h",
			            path, VERSION_SYMBOL,
			            COHORT_PLUGIN_ABI_VERSION);
		else
			reply_error(r, "ImportError",
			            "plugin %s was built for Cohort plugin "
			            "ABI %d, this engine speaks %d: rebuild "
			            "it against include/cohort/plugin.h",
			            path, v, COHORT_PLUGIN_ABI_VERSION);
		dlclose(p.handle);
		return -1;
	}
	p.path = xstrdup(path);
	plugins = xrealloc(plugins, (size_t)(nplugins + 1) * sizeof(*plugins));
	plugins[nplugins++] = p;
	log_info("loaded plugin %s", path);
	return 0;
}

typedef int (*plugin_fn)(struct cohort_call *);

/* The function name in the plugins, the latest load first. */
static plugin_fn
find_function(const char *name, struct kernel_reply *r)
{
	const ElfW(Sym) * sym;
	char *list = NULL, *s;
	void *addr;
	int i, t;

	if (strcmp(name, VERSION_SYMBOL) == 0) {
		reply_error(r, "TypeError", "'%s' is not a plugin function",
		            name);
		return NULL;
	}
	for (i = nplugins - 1; i >= 0; i--) {
		addr = plugin_symbol(&plugins[i], name, &sym);
		if (!addr)
			continue;
		t = sym ? SYM_TYPE(sym->st_info) : STT_FUNC;
		if (t != STT_FUNC && t != STT_GNU_IFUNC) {
			reply_error(r, "TypeError",
			            "'%s' in %s is not a function", name,
			            base_name(plugins[i].path));
			return NULL;
		}
		return (plugin_fn)addr;
	}
	if (nplugins == 0) {
		reply_error(r, "NameError",
		            "no function '%s': no plugins are loaded (use "
		            "'load PATH')",
		            name);
		return NULL;
	}
	for (i = 0; i < nplugins; i++) {
		s = xasprintf("%s%s%s", list ? list : "", list ? ", " : "",
		              base_name(plugins[i].path));
		free(list);
		list = s;
	}
	reply_error(r, "NameError",
	            "no function '%s' in the loaded plugins (loaded: %s)", name,
	            list);
	free(list);
	return NULL;
}

/* ---- calls: the engine's side of plugin.h ---------------------------- */

static atomic_int interrupted;

struct arg {
	const struct nval *v;
	char *cstr; /* NUL-terminated copy of a string, made on demand */
};

struct call_state {
	struct cohort_call call;
	struct arg *args;
	struct nval result;
	int has_result;
	char *ename, *evalue;
};

static struct call_state *
state_of(const struct cohort_call *call)
{
	return call->engine;
}

static int __attribute__((format(printf, 3, 4)))
call_fail(struct cohort_call *call, const char *ename, const char *fmt, ...)
{
	struct call_state *cs = state_of(call);
	va_list ap;
	char *text;

	if (cs->ename) /* the first error is the cause */
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	cs->ename = xstrdup(ename);
	cs->evalue = text ? text : xstrdup("");
	return -1;
}

static const struct nval *
arg_value(const struct cohort_call *call, int i)
{
	if (i < 0 || i >= call->argc)
		return NULL;
	return state_of(call)->args[i].v;
}

static int
op_kind(const struct cohort_call *call, int i)
{
	const struct nval *v = arg_value(call, i);

	return v ? (int)v->kind : -1;
}

static int
missing(struct cohort_call *call, int i)
{
	return call_fail(call, "TypeError",
	                 "%s() takes at least %d argument%s (%d given)",
	                 call->name, i + 1, i ? "s" : "", call->argc);
}

static int
wrong_kind(struct cohort_call *call, int i, const char *want)
{
	return call_fail(call, "TypeError",
	                 "%s() argument %d must be %s, not %s", call->name,
	                 i + 1, want, arg_value(call, i)->type);
}

static int
op_expect(struct cohort_call *call, int i, enum cohort_kind kind)
{
	const struct nval *v = arg_value(call, i);

	if (!v)
		return i < 0 ? call_fail(call, "TypeError",
		                         "%s(): no argument %d", call->name,
		                         i + 1)
		             : missing(call, i);
	if (v->kind == kind ||
	    (kind == COHORT_KIND_FLOAT && v->kind == COHORT_KIND_INT))
		return 0;
	return wrong_kind(call, i, kind_article(kind));
}

static int
op_expect_dtype(struct cohort_call *call, int i, enum cohort_dtype dtype)
{
	const struct nval *v = arg_value(call, i);
	char want[64];

	snprintf(want, sizeof(want), "a %s array", dtype_name(dtype));
	if (!v)
		return op_expect(call, i, COHORT_KIND_ARRAY);
	if (v->kind != COHORT_KIND_ARRAY)
		return wrong_kind(call, i, want);
	if (v->dtype != dtype)
		return call_fail(call, "TypeError",
		                 "%s() argument %d must be %s, not %s",
		                 call->name, i + 1, want, dtype_name(v->dtype));
	return 0;
}

static int
op_get_array(struct cohort_call *call, int i, struct cohort_array *out)
{
	const struct nval *v = arg_value(call, i);

	if (!out || op_expect(call, i, COHORT_KIND_ARRAY) < 0)
		return -1;
	out->dtype = v->dtype;
	out->itemsize = dtypes[v->dtype].size;
	out->ndim = v->ndim;
	out->shape = v->shape;
	out->data = v->data + v->off;
	out->count = v->count;
	return 0;
}

static int
op_get_int(struct cohort_call *call, int i, int64_t *out)
{
	const struct nval *v = arg_value(call, i);

	if (!out || op_expect(call, i, COHORT_KIND_INT) < 0)
		return -1;
	if (v->big)
		return call_fail(call, "OverflowError",
		                 "%s() argument %d does not fit in an int64",
		                 call->name, i + 1);
	*out = v->i;
	return 0;
}

static int
op_get_float(struct cohort_call *call, int i, double *out)
{
	const struct nval *v = arg_value(call, i);

	if (!out || op_expect(call, i, COHORT_KIND_FLOAT) < 0)
		return -1;
	if (v->kind == COHORT_KIND_FLOAT)
		*out = v->f;
	else
		*out = v->big ? (double)v->u : (double)v->i;
	return 0;
}

static int
op_get_bool(struct cohort_call *call, int i, int *out)
{
	const struct nval *v = arg_value(call, i);

	if (!out || op_expect(call, i, COHORT_KIND_BOOL) < 0)
		return -1;
	*out = v->b;
	return 0;
}

static const char *
op_get_string(struct cohort_call *call, int i, size_t *len)
{
	const struct nval *v = arg_value(call, i);
	struct arg *a;

	if (op_expect(call, i, COHORT_KIND_STRING) < 0)
		return NULL;
	a = &state_of(call)->args[i];
	if (!a->cstr) {
		a->cstr = malloc(v->n + 1);
		if (!a->cstr) {
			call_fail(call, "MemoryError",
			          "no memory for a string of %zu bytes", v->n);
			return NULL;
		}
		memcpy(a->cstr, v->data + v->off, v->n);
		a->cstr[v->n] = '\0';
	}
	if (len)
		*len = v->n;
	return a->cstr;
}

static const void *
op_get_value(struct cohort_call *call, int i, size_t *len)
{
	const struct nval *v = arg_value(call, i);

	if (!v) {
		missing(call, i);
		return NULL;
	}
	if (len)
		*len = v->len;
	return v->data;
}

/* Whether the n bytes at s look like an error's name: "TypeError",
 * "KeyboardInterrupt", "mylib.SolverException". */
static int
error_name(const char *s, size_t n)
{
	static const char *const ends[] = {"Error", "Exception", "Interrupt",
	                                   "Warning"};
	size_t i, k;

	if (n == 0 || n > 64 || !isupper((unsigned char)s[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.')
			return 0;
	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		k = strlen(ends[i]);
		if (n >= k && memcmp(s + n - k, ends[i], k) == 0)
			return 1;
	}
	return 0;
}

/* "TypeError: text" names its error; other messages are PluginError. */
static int __attribute__((format(printf, 2, 0)))
op_verror(struct cohort_call *call, const char *fmt, va_list ap)
{
	struct call_state *cs = state_of(call);
	char *text, *colon;
	size_t n;

	if (cs->ename)
		return -1;
	if (!fmt || vasprintf(&text, fmt, ap) < 0)
		text = xstrdup(fmt ? fmt : "");
	colon = strstr(text, ": ");
	n = colon ? (size_t)(colon - text) : 0;
	if (colon && error_name(text, n)) {
		cs->ename = xstrndup(text, n);
		cs->evalue = xstrdup(colon + 2);
		free(text);
	} else {
		cs->ename = xstrdup("PluginError");
		cs->evalue = text;
	}
	return -1;
}

/* Replace the call's result with v (taken over). */
static int
set_result(struct cohort_call *call, struct nval *v, int rc)
{
	struct call_state *cs = state_of(call);

	if (rc < 0)
		return call_fail(call, "MemoryError",
		                 "%s(): no memory for the result", call->name);
	nval_free(&cs->result);
	cs->result = *v;
	cs->has_result = 1;
	return 0;
}

static int
op_return_int(struct cohort_call *call, int64_t i)
{
	struct nval v;

	return set_result(call, &v, nval_int(i, &v));
}

static int
op_return_float(struct cohort_call *call, double f)
{
	struct nval v;

	return set_result(call, &v, nval_float(f, &v));
}

static int
op_return_bool(struct cohort_call *call, int b)
{
	struct nval v;

	return set_result(call, &v, nval_bool(b != 0, &v));
}

static int
op_return_string(struct cohort_call *call, const char *s, size_t len)
{
	struct nval v;

	if (!s)
		return call_fail(call, "ValueError",
		                 "%s() returned a NULL string", call->name);
	if (len == (size_t)-1)
		len = strlen(s);
	if (len > UINT32_MAX)
		return call_fail(call, "ValueError",
		                 "%s() returned a string of %zu bytes, more "
		                 "than msgpack holds",
		                 call->name, len);
	return set_result(call, &v, nval_str(s, len, &v));
}

static void *
op_return_array(struct cohort_call *call, enum cohort_dtype dtype, int ndim,
                const size_t *shape)
{
	msgpack_sbuffer hs, es;
	msgpack_packer hp, ep;
	struct nval v = {0};
	uint64_t count = 1, nbytes, body;
	int i;

	if (!dtype_valid((int)dtype)) {
		call_fail(call, "ValueError",
		          "%s() returned an array of "
		          "unknown dtype %d",
		          call->name, (int)dtype);
		return NULL;
	}
	if (ndim < 0 || ndim > COHORT_MAX_NDIM || (ndim > 0 && !shape)) {
		call_fail(call, "ValueError",
		          "%s() returned an array of %d "
		          "dimensions (0 to %d)",
		          call->name, ndim, COHORT_MAX_NDIM);
		return NULL;
	}
	for (i = 0; i < ndim; i++) {
		if (shape[i] > (1ULL << 62)) {
			call_fail(call, "ValueError",
			          "%s() returned an array with a dimension "
			          "of %zu",
			          call->name, shape[i]);
			return NULL;
		}
		if (shape[i] == 0)
			count = 0;
	}
	/* UINT64_MAX: more than a value can hold (checked below) */
	for (i = 0; i < ndim && count && count != UINT64_MAX; i++)
		count = count > UINT32_MAX / shape[i] ? UINT64_MAX
		                                      : count * shape[i];
	nbytes = count == UINT64_MAX ? UINT64_MAX : count * dtypes[dtype].size;
	msgpack_sbuffer_init(&hs);
	msgpack_packer_init(&hp, &hs, msgpack_sbuffer_write);
	msgpack_pack_array(&hp, 2);
	msgpack_pack_str_with_body(&hp, dtypes[dtype].descr,
	                           strlen(dtypes[dtype].descr));
	msgpack_pack_array(&hp, (size_t)ndim);
	for (i = 0; i < ndim; i++)
		msgpack_pack_uint64(&hp, shape[i]);
	if (nbytes > UINT32_MAX - hs.size) {
		msgpack_sbuffer_destroy(&hs);
		call_fail(call, "ValueError",
		          "%s() returned an array too large for one value "
		          "(at most 4 GiB)",
		          call->name);
		return NULL;
	}
	body = hs.size + nbytes;
	msgpack_sbuffer_init(&es);
	msgpack_packer_init(&ep, &es, msgpack_sbuffer_write);
	msgpack_pack_ext(&ep, (size_t)body, COHORT_EXT_NDARRAY);
	v.len = es.size + hs.size + (size_t)nbytes;
	v.data = place(v.len, es.size + hs.size, 1, &v.mem);
	if (!v.data) {
		msgpack_sbuffer_destroy(&hs);
		msgpack_sbuffer_destroy(&es);
		call_fail(call, "MemoryError",
		          "%s(): no memory for an array of %llu bytes",
		          call->name, (unsigned long long)nbytes);
		return NULL;
	}
	memcpy(v.data, es.data, es.size);
	memcpy(v.data + es.size, hs.data, hs.size);
	msgpack_sbuffer_destroy(&hs);
	msgpack_sbuffer_destroy(&es);
	if (decode_top(v.data, v.len, &v) < 0) { /* cannot happen */
		nval_free(&v);
		call_fail(call, "SystemError", "%s(): bad array header",
		          call->name);
		return NULL;
	}
	set_result(call, &v, 0);
	return state_of(call)->result.data + state_of(call)->result.off;
}

static int
op_return_value(struct cohort_call *call, const void *data, size_t len)
{
	struct cohort_error err;
	struct nval v;

	if (value_check(data, len, &err) < 0)
		return call_fail(call, "ValueError",
		                 "%s() returned a malformed value: %s",
		                 call->name, err.text);
	return set_result(call, &v, nval_from_bytes(data, len, &v));
}

static int
op_interrupted(const struct cohort_call *call)
{
	return atomic_load(&interrupted);
}

static long
op_comm_f(const struct cohort_call *call)
{
	int init = 0, fin = 0;

	MPI_Initialized(&init);
	MPI_Finalized(&fin);
	if (!init || fin)
		return -1;
	return (long)MPI_Comm_c2f(MPI_COMM_WORLD);
}

static const struct cohort_call_ops call_ops = {
    .size = sizeof(struct cohort_call_ops),
    .kind = op_kind,
    .get_array = op_get_array,
    .get_int = op_get_int,
    .get_float = op_get_float,
    .get_bool = op_get_bool,
    .get_string = op_get_string,
    .get_value = op_get_value,
    .expect = op_expect,
    .expect_dtype = op_expect_dtype,
    .verror = op_verror,
    .return_int = op_return_int,
    .return_float = op_return_float,
    .return_bool = op_return_bool,
    .return_string = op_return_string,
    .return_array = op_return_array,
    .return_value = op_return_value,
    .interrupted = op_interrupted,
    .comm_f = op_comm_f,
    .kind_name = kind_name,
    .dtype_name = dtype_name,
};

/* ---- the statement parser -------------------------------------------- */

enum tok {
	T_EOF,
	T_NL, /* newline or ';' */
	T_NAME,
	T_INT,
	T_FLOAT,
	T_STR,
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_EQ,
	T_BAD,
};

struct lexer {
	const char *src, *p, *end;
	const char *line_start;
	int line;
	/* the current token */
	enum tok t;
	const char *tp; /* where it starts */
	size_t tn;      /* its length in the source */
	int64_t i;
	double f;
	char *s; /* T_STR body (malloc'd) */
	size_t slen;
	/* the first error */
	int err_line, err_col;
	char *err;
	const char *err_line_start;
};

static int
column_of(const struct lexer *lx, const char *line_start, const char *at)
{
	int col = 1;

	for (; line_start < at; line_start++)
		if (((unsigned char)*line_start & 0xc0) != 0x80)
			col++;
	return col;
}

static int __attribute__((format(printf, 3, 4)))
syntax_error(struct lexer *lx, const char *at, const char *fmt, ...)
{
	va_list ap;

	if (lx->err)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&lx->err, fmt, ap) < 0)
		lx->err = xstrdup("syntax error");
	va_end(ap);
	lx->err_line = lx->line;
	lx->err_line_start = lx->line_start;
	lx->err_col = column_of(lx, lx->line_start, at);
	return -1;
}

static int
is_name_start(int c)
{
	return isalpha(c) || c == '_';
}

static int
is_name_char(int c)
{
	return isalnum(c) || c == '_';
}

/* A double-quoted string at lx->p with \\ \" \n \t \r \0 escapes. */
static int
lex_string(struct lexer *lx)
{
	const char *q = lx->p + 1;
	char *out = xmalloc((size_t)(lx->end - lx->p) + 1);
	size_t n = 0;

	for (;;) {
		if (q >= lx->end || *q == '\n') {
			free(out);
			return syntax_error(lx, lx->p, "unterminated string");
		}
		if (*q == '"')
			break;
		if (*q != '\\') {
			out[n++] = *q++;
			continue;
		}
		switch (q + 1 < lx->end ? q[1] : '\0') {
		case '\\':
			out[n++] = '\\';
			break;
		case '"':
			out[n++] = '"';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case '0':
			out[n++] = '\0';
			break;
		default:
			free(out);
			return syntax_error(lx, q,
			                    "unknown escape in a string (use "
			                    "\\\\, \\\", \\n, \\t, \\r or "
			                    "\\0)");
		}
		q += 2;
	}
	out[n] = '\0';
	lx->t = T_STR;
	lx->s = out;
	lx->slen = n;
	lx->tn = (size_t)(q + 1 - lx->p);
	return 0;
}

/* A number: [+-] digits [. digits] [e [+-] digits]. */
static int
lex_number(struct lexer *lx)
{
	const char *q = lx->p;
	int digits = 0, is_float = 0;
	char buf[128], *e;

	if (*q == '+' || *q == '-')
		q++;
	while (q < lx->end && isdigit((unsigned char)*q))
		q++, digits++;
	if (q < lx->end && *q == '.') {
		is_float = 1;
		q++;
		while (q < lx->end && isdigit((unsigned char)*q))
			q++, digits++;
	}
	if (!digits)
		return syntax_error(lx, lx->p, "invalid number");
	if (q < lx->end && (*q == 'e' || *q == 'E')) {
		is_float = 1;
		q++;
		if (q < lx->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= lx->end || !isdigit((unsigned char)*q))
			return syntax_error(lx, lx->p, "invalid number");
		while (q < lx->end && isdigit((unsigned char)*q))
			q++;
	}
	if (q < lx->end && (is_name_char((unsigned char)*q) || *q == '.'))
		return syntax_error(lx, lx->p, "invalid number");
	if ((size_t)(q - lx->p) >= sizeof(buf))
		return syntax_error(lx, lx->p, "number too long");
	memcpy(buf, lx->p, (size_t)(q - lx->p));
	buf[q - lx->p] = '\0';
	errno = 0;
	if (is_float) {
		lx->f = strtod(buf, &e);
		lx->t = T_FLOAT;
		if (errno == ERANGE && (lx->f > 1 || lx->f < -1))
			return syntax_error(lx, lx->p,
			                    "float literal out of range");
	} else {
		lx->i = strtoll(buf, &e, 10);
		lx->t = T_INT;
		if (errno == ERANGE)
			return syntax_error(lx, lx->p,
			                    "integer literal out of range "
			                    "(64-bit)");
	}
	lx->tn = (size_t)(q - lx->p);
	return 0;
}

/* Read the next token into lx; -1 on a lexical error. */
static int
lex_next(struct lexer *lx)
{
	free(lx->s);
	lx->s = NULL;
	/* a newline token ends at the newline: the next line starts after */
	if (lx->t == T_NL && lx->tn == 1 && *lx->tp == '\n') {
		lx->line++;
		lx->line_start = lx->tp + 1;
	}
	while (lx->p < lx->end &&
	       (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r' ||
	        *lx->p == '\f' || *lx->p == '\v'))
		lx->p++;
	if (lx->p < lx->end && *lx->p == '#') /* a comment */
		while (lx->p < lx->end && *lx->p != '\n')
			lx->p++;
	lx->tp = lx->p;
	lx->tn = 1;
	if (lx->p >= lx->end) {
		lx->t = T_EOF;
		lx->tn = 0;
		return 0;
	}
	switch (*lx->p) {
	case '\n':
	case ';':
		lx->t = T_NL;
		break;
	case '(':
		lx->t = T_LPAREN;
		break;
	case ')':
		lx->t = T_RPAREN;
		break;
	case ',':
		lx->t = T_COMMA;
		break;
	case '=':
		lx->t = T_EQ;
		break;
	case '"':
		if (lex_string(lx) < 0)
			return -1;
		break;
	default:
		if (is_name_start((unsigned char)*lx->p)) {
			const char *q = lx->p;

			while (q < lx->end && is_name_char((unsigned char)*q))
				q++;
			lx->t = T_NAME;
			lx->tn = (size_t)(q - lx->p);
		} else if (isdigit((unsigned char)*lx->p) ||
		           ((*lx->p == '.' || *lx->p == '-' || *lx->p == '+') &&
		            lx->p + 1 < lx->end &&
		            (isdigit((unsigned char)lx->p[1]) ||
		             lx->p[1] == '.'))) {
			if (lex_number(lx) < 0)
				return -1;
		} else {
			lx->t = T_BAD;
			if ((unsigned char)*lx->p < 0x20 ||
			    (unsigned char)*lx->p >= 0x7f)
				return syntax_error(lx, lx->p,
				                    "unexpected character "
				                    "(byte 0x%02x)",
				                    (unsigned char)*lx->p);
			return syntax_error(
			    lx, lx->p, "unexpected character '%c'", *lx->p);
		}
	}
	lx->p += lx->tn;
	return 0;
}

static char *
tok_text(const struct lexer *lx)
{
	return xstrndup(lx->tp, lx->tn);
}

static int
tok_is(const struct lexer *lx, const char *word)
{
	return lx->t == T_NAME && strlen(word) == lx->tn &&
	       memcmp(lx->tp, word, lx->tn) == 0;
}

enum stmt_type { S_LOAD, S_CALL, S_SHOW, S_DEL };

struct parg {
	char *name;      /* a name, or NULL for a literal */
	struct nval lit; /* a literal */
};

struct stmt {
	enum stmt_type t;
	int line;
	const char *text; /* the statement's source, for tracebacks */
	size_t text_len;
	char *target; /* S_CALL: NAME = ..., or NULL */
	char *func;   /* S_CALL */
	struct parg *args;
	int nargs;
	char *path;   /* S_LOAD */
	char **names; /* S_DEL, S_SHOW (one) */
	int nnames;
};

static void
stmt_free(struct stmt *s)
{
	int i;

	free(s->target);
	free(s->func);
	for (i = 0; i < s->nargs; i++) {
		free(s->args[i].name);
		nval_free(&s->args[i].lit);
	}
	free(s->args);
	free(s->path);
	for (i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
}

/* A name that values can have (so that push and pull reach it too). */
static int
check_name(struct lexer *lx)
{
	char *name = tok_text(lx);
	int ok = value_name_ok(name);

	free(name);
	if (ok)
		return 0;
	return syntax_error(lx, lx->tp, "'%.*s' is a reserved word, not a name",
	                    (int)lx->tn, lx->tp);
}

/* load PATH: the rest of the statement, or a quoted string. */
static int
parse_load(struct lexer *lx, struct stmt *s)
{
	const char *q;

	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
		lx->p++;
	if (lx->p < lx->end && *lx->p == '"') {
		if (lex_next(lx) < 0)
			return -1;
		if (lx->slen == 0 || memchr(lx->s, '\0', lx->slen))
			return syntax_error(lx, lx->tp,
			                    "expected a path after 'load'");
		s->path = xstrdup(lx->s);
		return lex_next(lx);
	}
	q = lx->p;
	while (q < lx->end && *q != '\n' && *q != ';' && *q != '#')
		q++;
	while (q > lx->p && isspace((unsigned char)q[-1]))
		q--;
	if (q == lx->p || *lx->p == '=' || *lx->p == '(')
		return syntax_error(lx, lx->p, "expected a path after 'load'");
	s->path = xstrndup(lx->p, (size_t)(q - lx->p));
	lx->p = q;
	return lex_next(lx);
}

/* del NAME [, NAME ...] */
static int
parse_del(struct lexer *lx, struct stmt *s)
{
	for (;;) {
		if (lex_next(lx) < 0)
			return -1;
		if (lx->t != T_NAME)
			return syntax_error(lx, lx->tp,
			                    "expected a name after '%s'",
			                    s->nnames ? "," : "del");
		if (check_name(lx) < 0)
			return -1;
		s->names = xrealloc(s->names,
		                    (size_t)(s->nnames + 1) * sizeof(char *));
		s->names[s->nnames++] = tok_text(lx);
		if (lex_next(lx) < 0)
			return -1;
		if (lx->t != T_COMMA)
			return 0;
	}
}

/* FUNC ( ARG, ... ): lx is at the '('. */
static int
parse_args(struct lexer *lx, struct stmt *s)
{
	struct parg a;
	int rc;

	if (lex_next(lx) < 0)
		return -1;
	while (lx->t != T_RPAREN) {
		memset(&a, 0, sizeof(a));
		switch (lx->t) {
		case T_NAME:
			a.name = tok_text(lx);
			rc = 0;
			break;
		case T_INT:
			rc = nval_int(lx->i, &a.lit);
			break;
		case T_FLOAT:
			rc = nval_float(lx->f, &a.lit);
			break;
		case T_STR:
			rc = nval_str(lx->s, lx->slen, &a.lit);
			break;
		default:
			return syntax_error(lx, lx->tp,
			                    "expected an argument (a name, "
			                    "a number or a string) or ')'");
		}
		if (rc < 0)
			return syntax_error(lx, lx->tp, "out of memory");
		s->args = xrealloc(s->args,
		                   (size_t)(s->nargs + 1) * sizeof(*s->args));
		s->args[s->nargs++] = a;
		if (lex_next(lx) < 0)
			return -1;
		if (lx->t == T_LPAREN && a.name)
			return syntax_error(lx, lx->tp,
			                    "a call cannot be an argument: "
			                    "bind its result to a name first "
			                    "(x = f(...); g(x))");
		if (lx->t == T_COMMA) {
			if (lex_next(lx) < 0)
				return -1;
		} else if (lx->t != T_RPAREN) {
			return syntax_error(lx, lx->tp,
			                    "expected ',' or ')' after an "
			                    "argument");
		}
	}
	return lex_next(lx);
}

/* One statement; lx is at its first token, which is a name. */
static int
parse_stmt(struct lexer *lx, struct stmt *s)
{
	char *first;

	s->line = lx->line;
	s->text = lx->tp;
	if (tok_is(lx, "load")) {
		s->t = S_LOAD;
		return parse_load(lx, s);
	}
	if (tok_is(lx, "del")) {
		s->t = S_DEL;
		return parse_del(lx, s);
	}
	first = tok_text(lx);
	if (lex_next(lx) < 0) {
		free(first);
		return -1;
	}
	switch (lx->t) {
	case T_EQ:
		s->t = S_CALL;
		s->target = first;
		if (!value_name_ok(first))
			return syntax_error(lx, s->text,
			                    "'%s' is a reserved word, not a "
			                    "name",
			                    first);
		if (lex_next(lx) < 0)
			return -1;
		if (lx->t != T_NAME)
			return syntax_error(lx, lx->tp,
			                    "expected a function call after "
			                    "'='");
		if (tok_is(lx, "load") || tok_is(lx, "del"))
			return syntax_error(lx, lx->tp,
			                    "'%.*s' is a statement, not a "
			                    "function",
			                    (int)lx->tn, lx->tp);
		s->func = tok_text(lx);
		if (lex_next(lx) < 0)
			return -1;
		if (lx->t != T_LPAREN)
			return syntax_error(lx, lx->tp,
			                    "expected '(' after function name");
		return parse_args(lx, s);
	case T_LPAREN:
		s->t = S_CALL;
		s->func = first;
		return parse_args(lx, s);
	case T_NL:
	case T_EOF:
		s->t = S_SHOW;
		s->names = xmalloc(sizeof(char *));
		s->names[0] = first;
		s->nnames = 1;
		return 0;
	default:
		free(first);
		return syntax_error(lx, lx->tp,
		                    "expected '=', '(' or the end of the "
		                    "statement after a name");
	}
}

/* Parse a cell into statements; -1 with lx->err on a syntax error. */
static int
parse_cell(struct lexer *lx, struct stmt **out, int *nout)
{
	struct stmt s, *v = NULL;
	int n = 0;

	*out = NULL;
	*nout = 0;
	if (lex_next(lx) < 0)
		return -1;
	for (;;) {
		if (lx->t == T_NL) {
			if (lex_next(lx) < 0)
				goto error;
			continue;
		}
		if (lx->t == T_EOF)
			break;
		if (lx->t != T_NAME) {
			syntax_error(lx, lx->tp,
			             "expected a statement: load PATH, "
			             "NAME = FUNC(...), FUNC(...), NAME or "
			             "del NAME");
			goto error;
		}
		memset(&s, 0, sizeof(s));
		if (parse_stmt(lx, &s) < 0) {
			stmt_free(&s);
			goto error;
		}
		s.text_len = (size_t)(lx->tp - s.text);
		while (s.text_len > 0 &&
		       isspace((unsigned char)s.text[s.text_len - 1]))
			s.text_len--;
		v = xrealloc(v, (size_t)(n + 1) * sizeof(*v));
		v[n++] = s;
		if (lx->t != T_NL && lx->t != T_EOF) {
			syntax_error(lx, lx->tp,
			             "expected the end of the statement (a "
			             "newline or ';')");
			goto error;
		}
	}
	*out = v;
	*nout = n;
	return 0;
error:
	while (n > 0)
		stmt_free(&v[--n]);
	free(v);
	return -1;
}

/* ---- execution ------------------------------------------------------- */

static int execution_count;

/* A SyntaxError reply: the message, and the line with a caret under the
 * column as the traceback. */
static void
reply_syntax_error(struct lexer *lx, struct kernel_reply *r)
{
	const char *e = lx->err_line_start;
	char *caret;
	int i;

	reply_error(r, "SyntaxError", "line %d, column %d: %s", lx->err_line,
	            lx->err_col, lx->err);
	while (e < lx->end && *e != '\n')
		e++;
	caret = xmalloc((size_t)lx->err_col + 1);
	for (i = 0; i < lx->err_col - 1; i++)
		caret[i] = ' ';
	caret[i++] = '^';
	caret[i] = '\0';
	if (e - lx->err_line_start <= 200)
		r->traceback =
		    xasprintf("%.*s\n%s", (int)(e - lx->err_line_start),
		              lx->err_line_start, caret);
	free(caret);
}

static const struct nval *
lookup(const char *name, struct kernel_reply *r)
{
	struct entry *e = ns_find(name);

	if (!e) {
		reply_error(r, "NameError", "name '%s' is not defined", name);
		return NULL;
	}
	return &e->v;
}

/* Run one call statement; on success, *res gets the result (nil if the
 * function set none). */
static int
run_call(const struct stmt *s, struct nval *res, struct kernel_reply *r)
{
	struct call_state cs = {0};
	plugin_fn fn;
	int i, rc;

	if (!(fn = find_function(s->func, r)))
		return -1;
	cs.args = xcalloc((size_t)s->nargs + 1, sizeof(*cs.args));
	for (i = 0; i < s->nargs; i++) {
		cs.args[i].v = s->args[i].name ? lookup(s->args[i].name, r)
		                               : &s->args[i].lit;
		if (!cs.args[i].v) {
			free(cs.args);
			return -1;
		}
	}
	cs.call.abi_version = COHORT_PLUGIN_ABI_VERSION;
	cs.call.argc = s->nargs;
	cs.call.name = s->func;
	cs.call.ops = &call_ops;
	cs.call.engine = &cs;
	log_debug("calling %s() with %d arguments", s->func, s->nargs);
	rc = fn(&cs.call);
	for (i = 0; i < s->nargs; i++)
		free(cs.args[i].cstr);
	free(cs.args);
	if (rc != 0) {
		if (cs.ename)
			reply_error(r, cs.ename, "%s", cs.evalue);
		else
			reply_error(r, "PluginError",
			            "%s() failed (returned %d) without saying "
			            "why",
			            s->func, rc);
		nval_free(&cs.result);
		free(cs.ename);
		free(cs.evalue);
		return -1;
	}
	free(cs.ename); /* a probe that failed but was recovered from */
	free(cs.evalue);
	if (cs.has_result) {
		*res = cs.result;
		return 0;
	}
	if (nval_nil(res) < 0) {
		reply_error(r, "MemoryError", "no memory");
		return -1;
	}
	return 0;
}

/* Set r->result to the text of v, unless v is nil. */
static void
show(const struct nval *v, struct kernel_reply *r)
{
	free(r->result);
	r->result = NULL;
	if (v->kind != COHORT_KIND_NIL)
		r->result = value_format(v->data, v->len, SHOW_MAX_CHARS);
}

static int
run_stmt(const struct stmt *s, int last, struct kernel_reply *r)
{
	const struct nval *v;
	struct nval res = {0};
	int i;

	switch (s->t) {
	case S_LOAD:
		return do_load(s->path, r);
	case S_DEL:
		for (i = 0; i < s->nnames; i++)
			if (ns_del(s->names[i]) < 0) {
				reply_error(r, "NameError",
				            "name '%s' is not defined",
				            s->names[i]);
				return -1;
			}
		return 0;
	case S_SHOW:
		if (!(v = lookup(s->names[0], r)))
			return -1;
		if (last)
			show(v, r);
		return 0;
	case S_CALL:
		if (run_call(s, &res, r) < 0)
			return -1;
		if (s->target) {
			ns_set(s->target, &res);
		} else if (res.kind != COHORT_KIND_NIL) {
			/* as in Python, the last shown result is _ */
			if (last)
				show(&res, r);
			ns_set("_", &res);
		}
		nval_free(&res);
		return 0;
	}
	return 0;
}

static int
native_init(const char *argv0, struct cohort_error *err)
{
	return 0;
}

static void
native_execute(const char *code, size_t len, struct kernel_reply *r)
{
	struct lexer lx = {0};
	struct stmt *stmts = NULL;
	int n = 0, i;

	memset(r, 0, sizeof(*r));
	atomic_store(&interrupted, 0);
	r->execution_count = ++execution_count;
	lx.src = lx.p = lx.line_start = code ? code : "";
	lx.end = lx.src + (code ? len : 0);
	lx.line = 1;
	lx.t = T_EOF;
	if (parse_cell(&lx, &stmts, &n) < 0) {
		reply_syntax_error(&lx, r);
		goto out;
	}
	r->ok = 1;
	for (i = 0; i < n; i++) {
		if (atomic_load(&interrupted)) {
			reply_error(r, "KeyboardInterrupt", "%s", "");
			break;
		}
		if (run_stmt(&stmts[i], i == n - 1, r) < 0) {
			/* in a longer cell, say which statement failed */
			if (n > 1)
				r->traceback =
				    xasprintf("line %d: %.*s", stmts[i].line,
				              (int)(stmts[i].text_len > 200
				                        ? 200
				                        : stmts[i].text_len),
				              stmts[i].text);
			break;
		}
	}
	if (!r->ok) {
		free(r->result);
		r->result = NULL;
	}
out:
	for (i = 0; i < n; i++)
		stmt_free(&stmts[i]);
	free(stmts);
	free(lx.s);
	free(lx.err);
}

static void
native_push(const char *name, const void *data, size_t len,
            struct kernel_reply *r)
{
	struct cohort_error err;
	struct nval v;

	memset(r, 0, sizeof(*r));
	if (!value_name_ok(name)) {
		reply_error(r, "ValueError", "invalid name '%s'", name);
		return;
	}
	if (value_check(data, len, &err) < 0) {
		reply_error(r, "ValueError", "malformed msgpack value: %s",
		            err.text);
		return;
	}
	if (nval_from_bytes(data, len, &v) < 0) {
		reply_error(r, "MemoryError",
		            "no memory for a value of %zu bytes", len);
		return;
	}
	ns_set(name, &v);
	r->ok = 1;
}

static void
native_pull(const char *name, struct kernel_reply *r)
{
	const struct nval *v;

	memset(r, 0, sizeof(*r));
	if (!(v = lookup(name, r)))
		return;
	r->data = malloc(v->len ? v->len : 1);
	if (!r->data) {
		reply_error(r, "MemoryError",
		            "no memory to copy '%s' (%zu bytes)", name, v->len);
		return;
	}
	memcpy(r->data, v->data, v->len);
	r->len = v->len;
	r->ok = 1;
}

static void
native_flush(void)
{
	fflush(NULL);
}

/* From the I/O thread: only a flag, which plugins poll. */
static void
native_interrupt(void)
{
	atomic_store(&interrupted, 1);
}

/* Plugins stay loaded: MPI or atexit handlers may still point into
 * them until the process ends. */
static void
native_finalize(void)
{
	int i;

	ns_clear();
	for (i = 0; i < nplugins; i++)
		free(plugins[i].path);
	free(plugins);
	plugins = NULL;
	nplugins = 0;
}

/* The native kernel: plugins in shared objects, no interpreter. */
const struct kernel_ops kernel_native = {
    .name = "native",
    .init = native_init,
    .execute = native_execute,
    .push = native_push,
    .pull = native_pull,
    .flush = native_flush,
    .interrupt = native_interrupt,
    .finalize = native_finalize,
};
