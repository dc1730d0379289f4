/* SPDX-License-Identifier: BSD-3-Clause */
/* fuzz_frame.c - libFuzzer target: frame prefix, then the header it frames.
 *
 * The input is what a peer would send: a 12-byte prefix followed by the
 * header (and perhaps some payload, which is never decoded). When the prefix
 * is accepted and the whole header is present, the header goes through
 * msg_decode(); a header that decodes is encoded again with msg_encode() and
 * decoded once more, and the two decoded messages must agree (type, fields
 * present, and every field's value). A disagreement aborts.
 */
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"
#include "fuzz_common.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
str_same(struct str a, struct str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static int
list_same(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

/* Doubles are compared bit for bit, so a NaN survives as itself. */
static int
dbl_same(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

static int
engine_same(const struct msg_engine *a, const struct msg_engine *b)
{
	return a->id == b->id && a->rank == b->rank && a->size == b->size &&
	       a->pid == b->pid && str_same(a->host, b->host) &&
	       str_same(a->kernel, b->kernel) && str_same(a->job, b->job) &&
	       str_same(a->state, b->state) && dbl_same(a->uptime, b->uptime);
}

/* Field values of two decoded messages with the same fields present. */
static void
check_same(const struct msg *a, const struct msg *b)
{
	const struct str *sa[] = { &a->role, &a->op, &a->code, &a->name,
				   &a->host, &a->kernel, &a->job, &a->state,
				   &a->status, &a->out, &a->err, &a->result,
				   &a->ename, &a->evalue, &a->traceback,
				   &a->message };
	const struct str *sb[] = { &b->role, &b->op, &b->code, &b->name,
				   &b->host, &b->kernel, &b->job, &b->state,
				   &b->status, &b->out, &b->err, &b->result,
				   &b->ename, &b->evalue, &b->traceback,
				   &b->message };
	const int64_t ia[] = { a->version, a->id, a->engine, a->rank, a->size,
			       a->pid, a->count, a->ntargets, a->nfailed };
	const int64_t ib[] = { b->version, b->id, b->engine, b->rank, b->size,
			       b->pid, b->count, b->ntargets, b->nfailed };

	for (size_t i = 0; i < sizeof(sa) / sizeof(sa[0]); i++)
		FUZZ_CHECK(str_same(*sa[i], *sb[i]), "string field #%zu", i);
	FUZZ_CHECK(memcmp(ia, ib, sizeof(ia)) == 0, "integer fields differ");
	FUZZ_CHECK(dbl_same(a->timeout, b->timeout) &&
		   dbl_same(a->elapsed, b->elapsed) &&
		   dbl_same(a->uptime, b->uptime), "float fields differ");
	FUZZ_CHECK(list_same(a->targets, a->ntarget_list, b->targets,
			     b->ntarget_list), "targets differ");
	FUZZ_CHECK(list_same(a->parts, a->nparts, b->parts, b->nparts),
		   "parts differ");
	FUZZ_CHECK(a->nengines == b->nengines, "engine counts differ");
	for (size_t i = 0; i < a->nengines; i++)
		FUZZ_CHECK(engine_same(&a->engines[i], &b->engines[i]),
			   "engine #%zu differs", i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cohort_error err;
	uint8_t prefix[FRAME_PREFIX_LEN];
	uint32_t hlen, hlen2;
	uint64_t plen, plen2;
	struct msg m, m2;
	msgpack_sbuffer sb;
	char sample[40];

	if (size < FRAME_PREFIX_LEN)
		return 0;
	if (frame_prefix_decode(data, FRAME_DEFAULT_MAX_PAYLOAD, &hlen, &plen,
				&err) < 0)
		return 0;
	/* The prefix must read back exactly as it was written. */
	frame_prefix_encode(prefix, hlen, plen);
	FUZZ_CHECK(memcmp(prefix, data, FRAME_PREFIX_LEN) == 0,
		   "prefix %u/%llu does not re-encode to itself", hlen,
		   (unsigned long long)plen);
	if (hlen > size - FRAME_PREFIX_LEN)
		return 0;
	frame_sample(data + FRAME_PREFIX_LEN, hlen, sample, sizeof(sample));

	if (msg_decode(&m, data + FRAME_PREFIX_LEN, hlen, &err) < 0) {
		FUZZ_CHECK(err.text[0] != '\0', "decode failed without a reason");
		msg_clear(&m);
		return 0;
	}
	FUZZ_CHECK(m.type > 0 && m.type < MSG_TYPE_MAX, "decoded type %d",
		   (int)m.type);

	msgpack_sbuffer_init(&sb);
	FUZZ_CHECK(msg_encode(&m, &sb) == 0, "re-encoding a %s failed",
		   msg_type_name(m.type));
	/* The re-encoded header must fit a frame of its own. */
	FUZZ_CHECK(sb.size > 0 && sb.size <= FRAME_MAX_HEADER,
		   "re-encoded header of %zu bytes", sb.size);
	frame_prefix_encode(prefix, (uint32_t)sb.size, plen);
	FUZZ_CHECK(frame_prefix_decode(prefix, FRAME_DEFAULT_MAX_PAYLOAD,
				       &hlen2, &plen2, &err) == 0 &&
		   hlen2 == sb.size && plen2 == plen,
		   "re-encoded prefix refused");

	FUZZ_CHECK(msg_decode(&m2, sb.data, sb.size, &err) == 0,
		   "re-encoded %s does not decode: %s", msg_type_name(m.type),
		   err.text);
	/* Decoded strings must point into m2's own copy of the header. */
	memset(sb.data, 0xa5, sb.size);
	msgpack_sbuffer_destroy(&sb);
	FUZZ_CHECK(m2.type == m.type, "type %s became %s",
		   msg_type_name(m.type), msg_type_name(m2.type));
	FUZZ_CHECK(m2.has == m.has, "fields %#llx became %#llx",
		   (unsigned long long)m.has, (unsigned long long)m2.has);
	check_same(&m, &m2);
	msg_clear(&m2);
	msg_clear(&m);
	return 0;
}
