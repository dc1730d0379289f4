/* SPDX-License-Identifier: BSD-3-Clause */
/* frame.c - encoding and bound-checking of frame prefixes. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "frame.h"
#include "util.h"

/* Write the 12-byte prefix. */
void
frame_prefix_encode(uint8_t out[FRAME_PREFIX_LEN], uint32_t header_len,
		    uint64_t payload_len)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(header_len >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
}

/* Parse a prefix, refusing empty or oversized headers and payloads. */
int
frame_prefix_decode(const uint8_t in[FRAME_PREFIX_LEN], uint64_t max_payload,
		    uint32_t *header_len, uint64_t *payload_len,
		    struct cohort_error *err)
{
	uint32_t h = 0;
	uint64_t p = 0;

	for (int i = 0; i < 4; i++)
		h = (h << 8) | in[i];
	for (int i = 0; i < 8; i++)
		p = (p << 8) | in[4 + i];
	if (h == 0)
		return errprintf(err, "frame with an empty header");
	if (h > FRAME_MAX_HEADER)
		return errprintf(err, "frame header of %" PRIu32
				 " bytes exceeds the limit of %u", h,
				 FRAME_MAX_HEADER);
	if (p > max_payload)
		return errprintf(err, "frame payload of %" PRIu64
				 " bytes exceeds the limit of %" PRIu64, p,
				 max_payload);
	*header_len = h;
	*payload_len = p;
	return 0;
}

/* Render a short sample of bytes for a log line. */
void
frame_sample(const void *data, size_t len, char *out, size_t size)
{
	const unsigned char *b = data;
	size_t n = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < len && i < 32 && n + 1 < size; i++)
		out[n++] = isprint(b[i]) ? (char)b[i] : '.';
	out[n] = '\0';
}
