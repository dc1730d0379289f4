/* SPDX-License-Identifier: BSD-3-Clause */
/* frame.h - the length-prefixed frame that carries every Cohort message.
 *
 * A frame is a 12-byte prefix, a msgpack header and an optional payload:
 *
 *   u32 header_len (big-endian)   1 .. FRAME_MAX_HEADER
 *   u64 payload_len (big-endian)  0 .. the receiver's payload limit
 *   header_len bytes of msgpack   one map, see proto.h
 *   payload_len bytes             opaque (values), never decoded in transit
 *
 * These functions do no I/O so they can be unit-tested and fuzzed.
 */
#ifndef COHORT_FRAME_H
#define COHORT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "cohort/error.h"

#define FRAME_PREFIX_LEN 12
#define FRAME_MAX_HEADER (16u * 1024 * 1024)
/* Largest payload of one frame. Bigger values travel as chunk messages
 * (proto.h), so this bounds what a peer buffers for one message. */
#define FRAME_MAX_PAYLOAD (64ull * 1024 * 1024)
#define FRAME_DEFAULT_MAX_PAYLOAD FRAME_MAX_PAYLOAD

/* Write the prefix for a header and payload of the given sizes. */
void frame_prefix_encode(uint8_t out[FRAME_PREFIX_LEN], uint32_t header_len,
			 uint64_t payload_len);

/* Parse and bound-check a prefix. -1 with err if a length is out of range. */
int frame_prefix_decode(const uint8_t in[FRAME_PREFIX_LEN],
			uint64_t max_payload, uint32_t *header_len,
			uint64_t *payload_len, struct cohort_error *err);

/* Describe up to 32 bytes as printable text (non-printables as '.') for logs. */
void frame_sample(const void *data, size_t len, char *out, size_t size);

#endif
