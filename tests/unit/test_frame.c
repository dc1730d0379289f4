/* SPDX-License-Identifier: BSD-3-Clause */
/* test_frame.c - unit tests for frame prefixes and log samples. */
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "tap.h"

static struct cohort_error *
fresh(struct cohort_error *err)
{
	err->text[0] = '\0';
	return err;
}

static void
round_trip(uint32_t h, uint64_t p, const char *what)
{
	struct cohort_error err;
	uint8_t buf[FRAME_PREFIX_LEN];
	uint32_t h2 = 0;
	uint64_t p2 = 0;
	int rc;

	frame_prefix_encode(buf, h, p);
	rc = frame_prefix_decode(buf, UINT64_MAX, &h2, &p2, fresh(&err));
	if (!ok(rc == 0, "round trip %s", what))
		diag("error: %s", err.text);
	is_int(h2, h, "header_len survives");
	ok(p2 == p, "payload_len survives (%llu)", (unsigned long long)p2);
}

static void
test_prefix(void)
{
	static const uint8_t want[FRAME_PREFIX_LEN] = {
		0x01, 0x02, 0x03, 0x04,
		0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
	};
	struct cohort_error err;
	uint8_t buf[FRAME_PREFIX_LEN];
	uint32_t h = 7;
	uint64_t p = 7;

	round_trip(1, 0, "minimal");
	round_trip(300, 70000, "small");
	round_trip(42, 5ull * 1024 * 1024 * 1024 + 3, "payload > 4 GiB");
	round_trip(FRAME_MAX_HEADER, UINT64_MAX, "header at FRAME_MAX_HEADER");

	frame_prefix_encode(buf, 0x01020304u, 0x05060708090a0b0cull);
	ok(memcmp(buf, want, sizeof(want)) == 0, "prefix is big-endian");

	frame_prefix_encode(buf, 0, 10);
	is_int(frame_prefix_decode(buf, 100, &h, &p, fresh(&err)), -1,
	       "empty header refused");
	ok(strstr(err.text, "empty") != NULL, "message: %s", err.text);
	is_int(h, 7, "header_len untouched on error");

	frame_prefix_encode(buf, FRAME_MAX_HEADER + 1, 0);
	is_int(frame_prefix_decode(buf, 100, &h, &p, fresh(&err)), -1,
	       "header over FRAME_MAX_HEADER refused");
	ok(strstr(err.text, "exceeds") != NULL, "message: %s", err.text);

	frame_prefix_encode(buf, 10, 101);
	is_int(frame_prefix_decode(buf, 100, &h, &p, fresh(&err)), -1,
	       "payload over the limit refused");
	ok(strstr(err.text, "exceeds") != NULL, "message: %s", err.text);

	frame_prefix_encode(buf, 10, 100);
	is_int(frame_prefix_decode(buf, 100, &h, &p, fresh(&err)), 0,
	       "payload at the limit accepted");
	ok(h == 10 && p == 100, "lengths at the limit");
}

static void
test_sample(void)
{
	char out[64], small[5];
	char big[40];

	frame_sample("ab\x01\n\xff" "c", 6, out, sizeof(out));
	is_str(out, "ab...c", "non-printables become '.'");

	memset(big, 'x', sizeof(big));
	frame_sample(big, sizeof(big), out, sizeof(out));
	is_int(strlen(out), 32, "sample truncated at 32 bytes");

	memset(small, '#', sizeof(small));
	frame_sample("abcdefgh", 8, small, sizeof(small));
	is_str(small, "abcd", "sample respects a small buffer");

	memcpy(small, "zzzz", 5);
	frame_sample("abc", 3, small, 0);
	is_str(small, "zzzz", "size 0 writes nothing");

	frame_sample("abc", 3, small, 1);
	is_str(small, "", "size 1 gives an empty string");

	frame_sample("", 0, out, sizeof(out));
	is_str(out, "", "empty input gives an empty string");
}

int
main(void)
{
	test_prefix();
	test_sample();
	return done_testing();
}
