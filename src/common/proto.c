/* SPDX-License-Identifier: BSD-3-Clause */
/* proto.c - table-driven encoding and decoding of Cohort message headers. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "util.h"
#include "value.h"

enum ftype { FT_INT, FT_DOUBLE, FT_STR, FT_INTLIST, FT_ENGINES, FT_JOBS };

struct field {
	const char *key;
	enum ftype type;
	size_t off;
};

#define FLD(k, t, member) { k, t, offsetof(struct msg, member) }

/* Indexed by enum msg_field. */
_Static_assert(F_FIELD_MAX <= 64, "msg.has is a 64-bit mask");

static const struct field fields[F_FIELD_MAX] = {
	[F_VERSION] = FLD("v", FT_INT, version),
	[F_ID] = FLD("id", FT_INT, id),
	[F_ROLE] = FLD("role", FT_STR, role),
	[F_OP] = FLD("op", FT_STR, op),
	[F_CODE] = FLD("code", FT_STR, code),
	[F_NAME] = FLD("name", FT_STR, name),
	[F_TARGETS] = FLD("targets", FT_INTLIST, targets),
	[F_TIMEOUT] = FLD("timeout", FT_DOUBLE, timeout),
	[F_ENGINE] = FLD("engine", FT_INT, engine),
	[F_RANK] = FLD("rank", FT_INT, rank),
	[F_SIZE] = FLD("size", FT_INT, size),
	[F_PID] = FLD("pid", FT_INT, pid),
	[F_HOST] = FLD("host", FT_STR, host),
	[F_KERNEL] = FLD("kernel", FT_STR, kernel),
	[F_JOB] = FLD("job", FT_STR, job),
	[F_STATE] = FLD("state", FT_STR, state),
	[F_STATUS] = FLD("status", FT_STR, status),
	[F_STDOUT] = FLD("stdout", FT_STR, out),
	[F_STDERR] = FLD("stderr", FT_STR, err),
	[F_RESULT] = FLD("result", FT_STR, result),
	[F_ENAME] = FLD("ename", FT_STR, ename),
	[F_EVALUE] = FLD("evalue", FT_STR, evalue),
	[F_TRACEBACK] = FLD("traceback", FT_STR, traceback),
	[F_COUNT] = FLD("count", FT_INT, count),
	[F_ELAPSED] = FLD("elapsed", FT_DOUBLE, elapsed),
	[F_MESSAGE] = FLD("message", FT_STR, message),
	[F_NTARGETS] = FLD("ntargets", FT_INT, ntargets),
	[F_NFAILED] = FLD("nfailed", FT_INT, nfailed),
	[F_ENGINES] = FLD("engines", FT_ENGINES, engines),
	[F_UPTIME] = FLD("uptime", FT_DOUBLE, uptime),
	[F_PARTS] = FLD("parts", FT_INTLIST, parts),
	[F_RANKS] = FLD("ranks", FT_INTLIST, ranks),
	[F_PARTIAL] = FLD("partial", FT_INT, partial),
	[F_CHUNKED] = FLD("chunked", FT_INT, chunked),
	[F_LAST] = FLD("last", FT_INT, last),
	[F_STREAM] = FLD("stream", FT_INT, stream),
	[F_TEXT] = FLD("text", FT_STR, text),
	[F_HEARTBEAT] = FLD("heartbeat", FT_DOUBLE, heartbeat),
	[F_TOLERANCE] = FLD("tolerance", FT_INT, tolerance),
	[F_ONTIMEOUT] = FLD("on_timeout", FT_STR, on_timeout),
	[F_JOBID] = FLD("jobid", FT_INT, jobid),
	[F_NONBLOCK] = FLD("nonblock", FT_INT, nonblock),
	[F_JOBS] = FLD("jobs", FT_JOBS, jobs),
	[F_ROOT] = FLD("root", FT_INT, root),
	[F_AS] = FLD("as", FT_STR, as),
	[F_GRACE] = FLD("grace", FT_DOUBLE, grace),
	[F_ESCALATION] = FLD("escalation", FT_STR, escalation),
};

#define BIT(f) (1ull << (f))

static const struct {
	const char *name;
	uint64_t required;
} types[MSG_TYPE_MAX] = {
	[MSG_HELLO] = { "hello", BIT(F_VERSION) | BIT(F_ROLE) },
	[MSG_WELCOME] = { "welcome", BIT(F_VERSION) },
	[MSG_REQUEST] = { "request", BIT(F_ID) | BIT(F_OP) },
	[MSG_TASK] = { "task", BIT(F_ID) | BIT(F_OP) },
	[MSG_REPLY] = { "reply", BIT(F_ID) | BIT(F_STATUS) },
	[MSG_DONE] = { "done", BIT(F_ID) },
	[MSG_ERROR] = { "error", BIT(F_MESSAGE) },
	[MSG_ENGINES] = { "engines", BIT(F_ID) | BIT(F_ENGINES) },
	[MSG_PING] = { "ping", 0 },
	[MSG_PONG] = { "pong", 0 },
	[MSG_CHUNK] = { "chunk", BIT(F_ID) },
	[MSG_INTERRUPT] = { "interrupt", 0 },
	[MSG_STREAM] = { "stream", BIT(F_ID) | BIT(F_NAME) | BIT(F_TEXT) },
	[MSG_ACCEPTED] = { "accepted", BIT(F_ID) | BIT(F_NTARGETS) },
	[MSG_WHERE] = { "where", BIT(F_ID) },
	[MSG_SIGNAL] = { "signal", BIT(F_NAME) },
};

/* Listing entries (engines, jobs) are maps described by these tables. */
struct rec_field {
	const char *key;
	enum ftype type;
	size_t off;
};

static const struct rec_field engine_fields[] = {
	{ "id", FT_INT, offsetof(struct msg_engine, id) },
	{ "rank", FT_INT, offsetof(struct msg_engine, rank) },
	{ "size", FT_INT, offsetof(struct msg_engine, size) },
	{ "pid", FT_INT, offsetof(struct msg_engine, pid) },
	{ "host", FT_STR, offsetof(struct msg_engine, host) },
	{ "kernel", FT_STR, offsetof(struct msg_engine, kernel) },
	{ "job", FT_STR, offsetof(struct msg_engine, job) },
	{ "state", FT_STR, offsetof(struct msg_engine, state) },
	{ "uptime", FT_DOUBLE, offsetof(struct msg_engine, uptime) },
	{ NULL, 0, 0 },
};

static const struct rec_field job_fields[] = {
	{ "jobid", FT_INT, offsetof(struct msg_job, jobid) },
	{ "ntargets", FT_INT, offsetof(struct msg_job, ntargets) },
	{ "ndone", FT_INT, offsetof(struct msg_job, ndone) },
	{ "nfailed", FT_INT, offsetof(struct msg_job, nfailed) },
	{ "op", FT_STR, offsetof(struct msg_job, op) },
	{ "code", FT_STR, offsetof(struct msg_job, code) },
	{ "state", FT_STR, offsetof(struct msg_job, state) },
	{ "targets", FT_STR, offsetof(struct msg_job, targets) },
	{ "age", FT_DOUBLE, offsetof(struct msg_job, age) },
	{ "elapsed", FT_DOUBLE, offsetof(struct msg_job, elapsed) },
	{ NULL, 0, 0 },
};

/* The wire name of a message type, or "unknown". */
const char *
msg_type_name(enum msg_type type)
{
	if (type <= 0 || type >= MSG_TYPE_MAX || types[type].name == NULL)
		return "unknown";
	return types[type].name;
}

/* Start an empty message. */
void
msg_init(struct msg *m, enum msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

/* Free what a decoded message owns. */
void
msg_clear(struct msg *m)
{
	if (m->decoded) {
		msgpack_unpacked_destroy(&m->unpacked);
		free(m->targets);
		free(m->parts);
		free(m->ranks);
		free(m->engines);
		free(m->jobs);
		free(m->raw);
	}
	memset(m, 0, sizeof(*m));
}

/* Set an integer field. */
void
msg_set_int(struct msg *m, enum msg_field f, int64_t v)
{
	*(int64_t *)((char *)m + fields[f].off) = v;
	m->has |= BIT(f);
}

/* Set a floating-point field. */
void
msg_set_double(struct msg *m, enum msg_field f, double v)
{
	*(double *)((char *)m + fields[f].off) = v;
	m->has |= BIT(f);
}

/* Set a string field (borrowed). */
void
msg_set_strn(struct msg *m, enum msg_field f, const char *s, size_t n)
{
	struct str *p = (struct str *)((char *)m + fields[f].off);

	p->p = s;
	p->n = n;
	m->has |= BIT(f);
}

/* Set a NUL-terminated string field (borrowed). */
void
msg_set_str(struct msg *m, enum msg_field f, const char *s)
{
	msg_set_strn(m, f, s, strlen(s));
}

/* Set the target list (borrowed). */
void
msg_set_targets(struct msg *m, int64_t *targets, size_t n)
{
	m->targets = targets;
	m->ntarget_list = n;
	m->has |= BIT(F_TARGETS);
}

/* Set the scatter part sizes (borrowed). */
void
msg_set_parts(struct msg *m, int64_t *parts, size_t n)
{
	m->parts = parts;
	m->nparts = n;
	m->has |= BIT(F_PARTS);
}

/* Set the targeted ranks of a task (borrowed). */
void
msg_set_ranks(struct msg *m, int64_t *ranks, size_t n)
{
	m->ranks = ranks;
	m->nranks = n;
	m->has |= BIT(F_RANKS);
}

/* Set the job listing (borrowed). */
void
msg_set_jobs(struct msg *m, struct msg_job *jobs, size_t n)
{
	m->jobs = jobs;
	m->njobs = n;
	m->has |= BIT(F_JOBS);
}

/* Set the engine listing (borrowed). */
void
msg_set_engines(struct msg *m, struct msg_engine *engines, size_t n)
{
	m->engines = engines;
	m->nengines = n;
	m->has |= BIT(F_ENGINES);
}

/* Where an integer-list field lives in struct msg. */
static void
intlist_ref(struct msg *m, enum msg_field f, int64_t ***v, size_t **n)
{
	switch (f) {
	case F_PARTS:
		*v = &m->parts;
		*n = &m->nparts;
		break;
	case F_RANKS:
		*v = &m->ranks;
		*n = &m->nranks;
		break;
	default:
		*v = &m->targets;
		*n = &m->ntarget_list;
		break;
	}
}

static void
intlist(struct msg *m, enum msg_field f, int64_t **v, size_t *n)
{
	int64_t **pv;
	size_t *pn;

	intlist_ref(m, f, &pv, &pn);
	*v = *pv;
	*n = *pn;
}

static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pack_key(msgpack_packer *pk, const char *key)
{
	pack_str(pk, key, strlen(key));
}

static void
pack_record(msgpack_packer *pk, const struct rec_field *rf, const void *rec)
{
	size_t n = 0;

	while (rf[n].key != NULL)
		n++;
	msgpack_pack_map(pk, n);
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)rec + rf[i].off;

		pack_key(pk, rf[i].key);
		if (rf[i].type == FT_INT) {
			msgpack_pack_int64(pk, *(const int64_t *)p);
		} else if (rf[i].type == FT_DOUBLE) {
			msgpack_pack_double(pk, *(const double *)p);
		} else {
			const struct str *s = (const struct str *)p;

			pack_str(pk, s->p ? s->p : "", s->n);
		}
	}
}

/* Encode m as one msgpack map appended to sbuf. */
int
msg_encode(const struct msg *m, msgpack_sbuffer *sbuf)
{
	msgpack_packer pk;
	size_t n = 1, before = sbuf->size;

	if (m->type <= 0 || m->type >= MSG_TYPE_MAX)
		return -1;
	for (int f = 0; f < F_FIELD_MAX; f++)
		n += msg_has(m, f);
	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	pack_key(&pk, "t");
	pack_key(&pk, types[m->type].name);
	for (int f = 0; f < F_FIELD_MAX; f++) {
		const char *p = (const char *)m + fields[f].off;

		if (!msg_has(m, f))
			continue;
		pack_key(&pk, fields[f].key);
		switch (fields[f].type) {
		case FT_INT:
			msgpack_pack_int64(&pk, *(const int64_t *)p);
			break;
		case FT_DOUBLE:
			msgpack_pack_double(&pk, *(const double *)p);
			break;
		case FT_STR: {
			const struct str *s = (const struct str *)p;

			pack_str(&pk, s->p ? s->p : "", s->n);
			break;
		}
		case FT_INTLIST: {
			int64_t *v;
			size_t len;

			intlist((struct msg *)m, f, &v, &len);
			msgpack_pack_array(&pk, len);
			for (size_t i = 0; i < len; i++)
				msgpack_pack_int64(&pk, v[i]);
			break;
		}
		case FT_ENGINES:
			msgpack_pack_array(&pk, m->nengines);
			for (size_t i = 0; i < m->nengines; i++)
				pack_record(&pk, engine_fields, &m->engines[i]);
			break;
		case FT_JOBS:
			msgpack_pack_array(&pk, m->njobs);
			for (size_t i = 0; i < m->njobs; i++)
				pack_record(&pk, job_fields, &m->jobs[i]);
			break;
		}
	}
	/* msgpack_sbuffer_write reports allocation failure by return value,
	 * which the packer drops; a short buffer is how we see it. */
	return sbuf->size > before ? 0 : -1;
}

static int
get_int(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return -1;
		*v = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return 0;
	}
	return -1;
}

static int
get_double(const msgpack_object *o, double *v)
{
	int64_t i;

	if (o->type == MSGPACK_OBJECT_FLOAT32 ||
	    o->type == MSGPACK_OBJECT_FLOAT64) {
		*v = o->via.f64;
		return 0;
	}
	if (get_int(o, &i) == 0) {
		*v = (double)i;
		return 0;
	}
	return -1;
}

static int
get_str(const msgpack_object *o, struct str *s)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return -1;
	s->p = o->via.str.ptr;
	s->n = o->via.str.size;
	return 0;
}

static bool
key_is(const msgpack_object *k, const char *key)
{
	size_t n = strlen(key);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, key, n) == 0;
}

static int
decode_record(const msgpack_object *o, const struct rec_field *rf, void *rec,
	      const char *what, struct cohort_error *err)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return errprintf(err, "field '%s' must hold maps", what);
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		for (size_t j = 0; rf[j].key != NULL; j++) {
			char *p = (char *)rec + rf[j].off;
			int rc;

			if (!key_is(&kv->key, rf[j].key))
				continue;
			if (rf[j].type == FT_INT)
				rc = get_int(&kv->val, (int64_t *)p);
			else if (rf[j].type == FT_DOUBLE)
				rc = get_double(&kv->val, (double *)p);
			else
				rc = get_str(&kv->val, (struct str *)p);
			if (rc < 0)
				return errprintf(err, "%s field '%s' has the "
						 "wrong type", what, rf[j].key);
		}
	}
	return 0;
}

static int
decode_list(const msgpack_object *v, const struct rec_field *rf,
	    size_t size, void **list, size_t *n, const char *key,
	    struct cohort_error *err)
{
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return errprintf(err, "field '%ss' must be an array", key);
	if (v->via.array.size > PROTO_MAX_LIST)
		return errprintf(err, "field '%ss' is too long", key);
	free(*list);
	*list = xcalloc(v->via.array.size, size);
	*n = v->via.array.size;
	for (uint32_t i = 0; i < v->via.array.size; i++)
		if (decode_record(&v->via.array.ptr[i], rf,
				  (char *)*list + i * size, key, err) < 0)
			return -1;
	return 0;
}

static int
decode_field(struct msg *m, enum msg_field f, const msgpack_object *v,
	     struct cohort_error *err)
{
	char *p = (char *)m + fields[f].off;
	const char *key = fields[f].key;

	switch (fields[f].type) {
	case FT_INT:
		if (get_int(v, (int64_t *)p) < 0)
			return errprintf(err, "field '%s' must be an integer",
					 key);
		break;
	case FT_DOUBLE:
		if (get_double(v, (double *)p) < 0)
			return errprintf(err, "field '%s' must be a number",
					 key);
		break;
	case FT_STR:
		if (get_str(v, (struct str *)p) < 0)
			return errprintf(err, "field '%s' must be a string",
					 key);
		break;
	case FT_INTLIST: {
		int64_t **list;
		size_t *n;

		intlist_ref(m, f, &list, &n);

		if (v->type != MSGPACK_OBJECT_ARRAY)
			return errprintf(err, "field '%s' must be an array",
					 key);
		if (v->via.array.size > PROTO_MAX_LIST)
			return errprintf(err, "field '%s' lists too many "
					 "values (%u)", key,
					 v->via.array.size);
		free(*list);
		*list = xcalloc(v->via.array.size, sizeof(int64_t));
		*n = v->via.array.size;
		for (uint32_t i = 0; i < v->via.array.size; i++)
			if (get_int(&v->via.array.ptr[i], &(*list)[i]) < 0 ||
			    (*list)[i] < 0)
				return errprintf(err, "field '%s' must hold "
						 "non-negative integers", key);
		break;
	}
	case FT_ENGINES:
		if (decode_list(v, engine_fields, sizeof(struct msg_engine),
				(void **)&m->engines, &m->nengines, "engine",
				err) < 0)
			return -1;
		break;
	case FT_JOBS:
		if (decode_list(v, job_fields, sizeof(struct msg_job),
				(void **)&m->jobs, &m->njobs, "job", err) < 0)
			return -1;
		break;
	}
	m->has |= BIT(f);
	return 0;
}

/* Decode one header map into m. */
int
msg_decode(struct msg *m, const void *data, size_t len,
	   struct cohort_error *err)
{
	const msgpack_object *o;
	struct str t = { 0 };
	size_t off = 0;
	uint64_t missing;

	memset(m, 0, sizeof(*m));
	m->decoded = true;
	msgpack_unpacked_init(&m->unpacked);
	m->raw = xmalloc(len);
	memcpy(m->raw, data, len);
	/* msgpack-c allocates what a header declares before it reads it:
	 * a few bytes could ask for gigabytes. Check sizes against the bytes
	 * present first. */
	{
		struct cohort_error why;

		if (value_check(m->raw, len, &why) < 0) {
			errprintf(err, "header is not valid msgpack (%s)",
				  why.text);
			goto error;
		}
	}
	if (msgpack_unpack_next(&m->unpacked, m->raw, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		errprintf(err, "header is not valid msgpack");
		goto error;
	}
	if (off != len) {
		errprintf(err, "header has %zu trailing bytes", len - off);
		goto error;
	}
	o = &m->unpacked.data;
	if (o->type != MSGPACK_OBJECT_MAP) {
		errprintf(err, "header is not a map");
		goto error;
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (key_is(&kv->key, "t")) {
			if (get_str(&kv->val, &t) < 0) {
				errprintf(err, "field 't' must be a string");
				goto error;
			}
			continue;
		}
		for (int f = 0; f < F_FIELD_MAX; f++) {
			if (!key_is(&kv->key, fields[f].key))
				continue;
			if (decode_field(m, f, &kv->val, err) < 0)
				goto error;
			break;
		}
	}
	if (t.p == NULL) {
		errprintf(err, "header has no message type 't'");
		goto error;
	}
	for (int ty = 1; ty < MSG_TYPE_MAX; ty++)
		if (str_eq(t, types[ty].name))
			m->type = ty;
	if (m->type == 0) {
		errprintf(err, "unknown message type '%.*s'",
			  (int)(t.n > 32 ? 32 : t.n), t.p);
		goto error;
	}
	missing = types[m->type].required & ~m->has;
	if (missing) {
		for (int f = 0; f < F_FIELD_MAX; f++)
			if (missing & BIT(f)) {
				errprintf(err, "%s message lacks field '%s'",
					  types[m->type].name, fields[f].key);
				break;
			}
		goto error;
	}
	return 0;
error:
	msg_clear(m);
	return -1;
}

/* Copy a wire string into a C string. */
char *
str_dup(struct str s)
{
	return xstrndup(s.p ? s.p : "", s.n);
}

/* True if the wire string equals c. */
bool
str_eq(struct str s, const char *c)
{
	size_t n = strlen(c);

	return s.p != NULL && s.n == n && memcmp(s.p, c, n) == 0;
}
