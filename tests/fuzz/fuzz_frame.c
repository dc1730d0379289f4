/* SPDX-License-Identifier: BSD-3-Clause */
/* fuzz_frame.c - libFuzzer target: frame prefix, then the header it frames.
 *
 * The input is what a peer would send: a 12-byte prefix followed by the
 * header (and perhaps some payload, which is never decoded). When the prefix
 * is accepted and the whole header is present, the header goes through
 * msg_decode(); a header that decodes is encoded again with msg_encode() and
 * decoded once more, and the two decoded messages must agree: same type,
 * same fields present (has), and every field's value, checked by encoding
 * the second message too and comparing the bytes (encoding is a function
 * of the present fields, so this covers fields added later). A
 * disagreement aborts.
 */
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"
#include "fuzz_common.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cohort_error err;
	uint8_t prefix[FRAME_PREFIX_LEN];
	uint32_t hlen, hlen2;
	uint64_t plen, plen2;
	struct msg m, m2;
	msgpack_sbuffer sb, sb2;
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
	FUZZ_CHECK(m2.type == m.type, "type %s became %s",
		   msg_type_name(m.type), msg_type_name(m2.type));
	FUZZ_CHECK(m2.has == m.has, "fields %#llx became %#llx",
		   (unsigned long long)m.has, (unsigned long long)m2.has);
	FUZZ_CHECK(m2.ntarget_list == m.ntarget_list &&
		   m2.nparts == m.nparts && m2.nengines == m.nengines &&
		   m2.njobs == m.njobs, "list lengths changed");
	/* Decoded strings must point into m2's own copy of the header. */
	memset(sb.data, 0xa5, sb.size);
	msgpack_sbuffer_init(&sb2);
	FUZZ_CHECK(msg_encode(&m2, &sb2) == 0, "second encoding failed");
	msgpack_sbuffer_clear(&sb);
	FUZZ_CHECK(msg_encode(&m, &sb) == 0, "encoding again failed");
	FUZZ_CHECK(sb2.size == sb.size &&
		   memcmp(sb2.data, sb.data, sb.size) == 0,
		   "a %s changed in the round trip", msg_type_name(m.type));
	msgpack_sbuffer_destroy(&sb2);
	msgpack_sbuffer_destroy(&sb);
	msg_clear(&m2);
	msg_clear(&m);
	return 0;
}
