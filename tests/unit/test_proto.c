/* SPDX-License-Identifier: BSD-3-Clause */
/* test_proto.c - unit tests for encoding and decoding message headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"
#include "tap.h"

/* Code with a NUL byte, "é" and "€": the lengths must survive exactly. */
static const char odd[] = "a\0b\xc3\xa9\xe2\x82\xac";
#define ODD_LEN (sizeof(odd) - 1)

static struct cohort_error *
fresh(struct cohort_error *err)
{
	err->text[0] = '\0';
	return err;
}

static int
str_is(struct str s, const char *p, size_t n)
{
	return s.p != NULL && s.n == n && memcmp(s.p, p, n) == 0;
}

/* Encode in, decode into out; the encoded bytes are freed before returning
 * so that decoded strings must point into out's own copy. */
static int
round_trip(const struct msg *in, struct msg *out)
{
	struct cohort_error err;
	msgpack_sbuffer sb;
	int rc;

	msgpack_sbuffer_init(&sb);
	if (!ok(msg_encode(in, &sb) == 0, "encode %s", msg_type_name(in->type))) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	rc = msg_decode(out, sb.data, sb.size, fresh(&err));
	memset(sb.data, 0xa5, sb.size);
	msgpack_sbuffer_destroy(&sb);
	if (!ok(rc == 0, "decode %s", msg_type_name(in->type))) {
		diag("error: %s", err.text);
		return -1;
	}
	is_int(out->type, in->type, "type survives");
	ok(out->has == in->has, "same fields present (%#llx, %#llx)",
	   (unsigned long long)out->has, (unsigned long long)in->has);
	return 0;
}

static void
test_hello_welcome(void)
{
	struct msg m, d;

	msg_init(&m, MSG_HELLO);
	msg_set_int(&m, F_VERSION, PROTO_VERSION);
	msg_set_str(&m, F_ROLE, "engine");
	msg_set_int(&m, F_RANK, 3);
	msg_set_int(&m, F_SIZE, 8);
	msg_set_int(&m, F_PID, 4242);
	msg_set_str(&m, F_HOST, "node-\xc3\xa9");
	msg_set_str(&m, F_KERNEL, "python");
	msg_set_str(&m, F_JOB, "job-17");
	if (round_trip(&m, &d) == 0) {
		ok(d.version == PROTO_VERSION && d.rank == 3 && d.size == 8 &&
		   d.pid == 4242, "hello integers");
		ok(str_eq(d.role, "engine") && str_eq(d.host, "node-\xc3\xa9") &&
		   str_eq(d.kernel, "python") && str_eq(d.job, "job-17"),
		   "hello strings");
		ok(!msg_has(&d, F_ID) && !msg_has(&d, F_TARGETS),
		   "absent fields stay absent");
	}
	msg_clear(&d);
	ok(d.raw == NULL && !d.decoded && d.has == 0, "msg_clear resets");

	msg_init(&m, MSG_WELCOME);
	msg_set_int(&m, F_VERSION, PROTO_VERSION);
	msg_set_int(&m, F_ENGINE, 5);
	if (round_trip(&m, &d) == 0)
		ok(d.version == PROTO_VERSION && d.engine == 5, "welcome fields");
	msg_clear(&d);
}

static void
test_request_task(void)
{
	int64_t targets[] = { 0, 2, 7, 1000000 };
	struct msg m, d;
	char *s;

	msg_init(&m, MSG_REQUEST);
	msg_set_int(&m, F_ID, 12);
	msg_set_str(&m, F_OP, "execute");
	msg_set_targets(&m, targets, 4);
	msg_set_strn(&m, F_CODE, odd, ODD_LEN);
	msg_set_double(&m, F_TIMEOUT, 2.5);
	if (round_trip(&m, &d) == 0) {
		is_int(d.id, 12, "request id");
		ok(str_eq(d.op, "execute"), "request op");
		is_int(d.ntarget_list, 4, "request target count");
		ok(d.ntarget_list == 4 && d.targets != targets &&
		   memcmp(d.targets, targets, sizeof(targets)) == 0,
		   "request targets");
		is_int(d.code.n, ODD_LEN, "code length with NUL and UTF-8");
		ok(str_is(d.code, odd, ODD_LEN), "code bytes");
		ok(d.timeout == 2.5, "request timeout");
		s = str_dup(d.code);
		ok(memcmp(s, odd, ODD_LEN + 1) == 0, "str_dup copies and ends "
		   "with NUL");
		free(s);
	}
	msg_clear(&d);

	msg_init(&m, MSG_REQUEST);
	msg_set_int(&m, F_ID, 13);
	msg_set_str(&m, F_OP, "engines");
	msg_set_targets(&m, NULL, 0);
	if (round_trip(&m, &d) == 0)
		ok(msg_has(&d, F_TARGETS) && d.ntarget_list == 0,
		   "empty target list survives");
	msg_clear(&d);

	msg_init(&m, MSG_TASK);
	msg_set_int(&m, F_ID, -1);
	msg_set_str(&m, F_OP, "push");
	msg_set_str(&m, F_NAME, "x");
	msg_set_strn(&m, F_CODE, "", 0);
	msg_set_int(&m, F_ENGINE, 2);
	if (round_trip(&m, &d) == 0) {
		ok(d.id == -1 && d.engine == 2, "task integers");
		ok(str_eq(d.op, "push") && str_eq(d.name, "x"), "task strings");
		ok(msg_has(&d, F_CODE) && d.code.n == 0, "empty code survives");
	}
	msg_clear(&d);
}

static void
test_reply_done_error(void)
{
	struct msg m, d;

	msg_init(&m, MSG_REPLY);
	msg_set_int(&m, F_ID, 99);
	msg_set_str(&m, F_STATUS, "error");
	msg_set_int(&m, F_ENGINE, 1);
	msg_set_strn(&m, F_STDOUT, odd, ODD_LEN);
	msg_set_str(&m, F_STDERR, "warn\n");
	msg_set_str(&m, F_RESULT, "42");
	msg_set_str(&m, F_ENAME, "ZeroDivisionError");
	msg_set_str(&m, F_EVALUE, "division by zero");
	msg_set_str(&m, F_TRACEBACK, "Traceback...\n  line 1\n");
	msg_set_int(&m, F_COUNT, INT64_MAX);
	msg_set_double(&m, F_ELAPSED, 0.125);
	if (round_trip(&m, &d) == 0) {
		ok(d.id == 99 && d.engine == 1 && d.count == INT64_MAX,
		   "reply integers");
		ok(str_eq(d.status, "error"), "reply status");
		ok(str_is(d.out, odd, ODD_LEN), "reply stdout with NUL");
		ok(str_eq(d.err, "warn\n") && str_eq(d.result, "42"),
		   "reply stderr and result");
		ok(str_eq(d.ename, "ZeroDivisionError") &&
		   str_eq(d.evalue, "division by zero") &&
		   str_eq(d.traceback, "Traceback...\n  line 1\n"),
		   "reply exception");
		ok(d.elapsed == 0.125, "reply elapsed");
	}
	msg_clear(&d);

	msg_init(&m, MSG_DONE);
	msg_set_int(&m, F_ID, 99);
	msg_set_int(&m, F_NTARGETS, 4);
	msg_set_int(&m, F_NFAILED, 1);
	if (round_trip(&m, &d) == 0)
		ok(d.id == 99 && d.ntargets == 4 && d.nfailed == 1,
		   "done fields");
	msg_clear(&d);

	msg_init(&m, MSG_ERROR);
	msg_set_int(&m, F_ID, 7);
	msg_set_str(&m, F_MESSAGE, "engine 3: gone");
	if (round_trip(&m, &d) == 0)
		ok(d.id == 7 && str_eq(d.message, "engine 3: gone"),
		   "error fields");
	msg_clear(&d);
}

static void
test_engines_ping(void)
{
	struct msg_engine e[2] = {
		{ .id = 0, .rank = 0, .size = 2, .pid = 100, .uptime = 1.5,
		  .host = { "h0", 2 }, .kernel = { "python", 6 },
		  .job = { "j", 1 }, .state = { "idle", 4 } },
		{ .id = 1, .rank = 1, .size = 2, .pid = 101, .uptime = 0,
		  .host = { odd, ODD_LEN }, .kernel = { "python", 6 },
		  .job = { "j", 1 }, .state = { "busy", 4 } },
	};
	struct msg m, d;

	msg_init(&m, MSG_ENGINES);
	msg_set_int(&m, F_ID, 5);
	msg_set_engines(&m, e, 2);
	if (round_trip(&m, &d) == 0 && ok(d.nengines == 2, "two engines")) {
		const struct msg_engine *a = &d.engines[0], *b = &d.engines[1];

		ok(a->id == 0 && a->rank == 0 && a->size == 2 &&
		   a->pid == 100 && a->uptime == 1.5, "engine 0 numbers");
		ok(str_eq(a->host, "h0") && str_eq(a->kernel, "python") &&
		   str_eq(a->job, "j") && str_eq(a->state, "idle"),
		   "engine 0 strings");
		ok(b->id == 1 && b->rank == 1 && b->pid == 101 &&
		   b->uptime == 0, "engine 1 numbers");
		ok(str_is(b->host, odd, ODD_LEN) && str_eq(b->state, "busy"),
		   "engine 1 strings");
	}
	msg_clear(&d);

	msg_init(&m, MSG_PING);
	round_trip(&m, &d);
	msg_clear(&d);
	msg_init(&m, MSG_PONG);
	round_trip(&m, &d);
	msg_clear(&d);

	msg_init(&m, 0);
	{
		msgpack_sbuffer sb;

		msgpack_sbuffer_init(&sb);
		is_int(msg_encode(&m, &sb), -1, "encoding type 0 fails");
		msgpack_sbuffer_destroy(&sb);
	}
	is_str(msg_type_name(MSG_REPLY), "reply", "msg_type_name");
	is_str(msg_type_name(MSG_TYPE_MAX), "unknown", "msg_type_name bound");
}

/* A packer over a fresh buffer, for hand-made headers. */
struct pk {
	msgpack_sbuffer sb;
	msgpack_packer p;
};

static msgpack_packer *
pk_start(struct pk *k)
{
	msgpack_sbuffer_init(&k->sb);
	msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
	return &k->p;
}

static void
pk_str(msgpack_packer *p, const char *s)
{
	msgpack_pack_str(p, strlen(s));
	msgpack_pack_str_body(p, s, strlen(s));
}

/* Decode the packed bytes expecting failure with needle in the message. */
static void
pk_fails(struct pk *k, const char *needle, const char *what)
{
	struct cohort_error err;
	struct msg m;

	is_int(msg_decode(&m, k->sb.data, k->sb.size, fresh(&err)), -1, what);
	if (!ok(strstr(err.text, needle) != NULL, "%s: message has '%s'", what,
		needle))
		diag("message: '%s'", err.text);
	ok(m.raw == NULL && m.targets == NULL && !m.decoded,
	   "%s: message cleared", what);
	msgpack_sbuffer_destroy(&k->sb);
}

static void
test_decode_errors(void)
{
	struct cohort_error err;
	msgpack_packer *p;
	struct pk k;
	struct msg m;

	is_int(msg_decode(&m, "\xc1\xc1\xc1", 3, fresh(&err)), -1, "garbage");
	ok(strstr(err.text, "not valid msgpack") != NULL, "garbage: %s",
	   err.text);
	is_int(msg_decode(&m, "", 0, fresh(&err)), -1, "empty input");
	ok(err.text[0] != '\0', "empty input: %s", err.text);

	p = pk_start(&k);
	msgpack_pack_map(p, 1);
	pk_str(p, "t");
	pk_str(p, "ping");
	msgpack_pack_nil(p);
	pk_fails(&k, "after the value", "trailing bytes");

	p = pk_start(&k);
	msgpack_pack_array(p, 2);
	pk_str(p, "t");
	pk_str(p, "ping");
	pk_fails(&k, "not a map", "header is an array");

	p = pk_start(&k);
	msgpack_pack_map(p, 1);
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_fails(&k, "no message type", "missing t");

	p = pk_start(&k);
	msgpack_pack_map(p, 1);
	pk_str(p, "t");
	msgpack_pack_int(p, 3);
	pk_fails(&k, "'t' must be a string", "t is an integer");

	p = pk_start(&k);
	msgpack_pack_map(p, 1);
	pk_str(p, "t");
	pk_str(p, "bogus");
	pk_fails(&k, "unknown message type 'bogus'", "unknown type");

	p = pk_start(&k);
	msgpack_pack_map(p, 3);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "id");
	pk_str(p, "12");
	pk_str(p, "op");
	pk_str(p, "execute");
	pk_fails(&k, "field 'id' must be an integer", "id is a string");

	p = pk_start(&k);
	msgpack_pack_map(p, 3);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "id");
	msgpack_pack_uint64(p, UINT64_MAX);
	pk_str(p, "op");
	pk_str(p, "execute");
	pk_fails(&k, "field 'id' must be an integer", "id over INT64_MAX");

	p = pk_start(&k);
	msgpack_pack_map(p, 2);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_fails(&k, "request message lacks field 'op'", "request without op");

	p = pk_start(&k);
	msgpack_pack_map(p, 4);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_str(p, "op");
	pk_str(p, "execute");
	pk_str(p, "timeout");
	pk_str(p, "soon");
	pk_fails(&k, "field 'timeout' must be a number", "timeout is a string");

	p = pk_start(&k);
	msgpack_pack_map(p, 4);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_str(p, "op");
	pk_str(p, "execute");
	pk_str(p, "targets");
	msgpack_pack_array(p, 3);
	msgpack_pack_int(p, 0);
	msgpack_pack_int(p, -2);
	msgpack_pack_int(p, 1);
	pk_fails(&k, "non-negative", "negative target");

	p = pk_start(&k);
	msgpack_pack_map(p, 2);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "targets");
	msgpack_pack_int(p, 1);
	pk_fails(&k, "field 'targets' must be an array", "targets not a list");

	p = pk_start(&k);
	msgpack_pack_map(p, 4);
	pk_str(p, "t");
	pk_str(p, "request");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_str(p, "op");
	pk_str(p, "execute");
	pk_str(p, "targets");
	msgpack_pack_array(p, PROTO_MAX_LIST + 1);
	for (int i = 0; i <= PROTO_MAX_LIST; i++)
		msgpack_pack_int(p, i);
	pk_fails(&k, "too many values", "targets over PROTO_MAX_LIST");

	p = pk_start(&k);
	msgpack_pack_map(p, 3);
	pk_str(p, "t");
	pk_str(p, "engines");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_str(p, "engines");
	msgpack_pack_array(p, 2);
	msgpack_pack_map(p, 0);
	msgpack_pack_int(p, 5);
	pk_fails(&k, "must hold maps", "engine entry not a map");

	p = pk_start(&k);
	msgpack_pack_map(p, 3);
	pk_str(p, "t");
	pk_str(p, "engines");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_str(p, "engines");
	msgpack_pack_array(p, 1);
	msgpack_pack_map(p, 1);
	pk_str(p, "rank");
	pk_str(p, "zero");
	pk_fails(&k, "engine field 'rank' has the wrong type",
		 "engine field type");
}

static void
test_decode_lenient(void)
{
	struct cohort_error err;
	msgpack_packer *p;
	struct pk k;
	struct msg m;
	int rc;

	/* Unknown keys, including non-string ones, are skipped. */
	p = pk_start(&k);
	msgpack_pack_map(p, 5);
	pk_str(p, "zzz");
	msgpack_pack_array(p, 2);
	msgpack_pack_map(p, 1);
	pk_str(p, "a");
	msgpack_pack_nil(p);
	msgpack_pack_true(p);
	msgpack_pack_int(p, 7);
	pk_str(p, "seven");
	pk_str(p, "t");
	pk_str(p, "ping");
	pk_str(p, "v");
	msgpack_pack_int(p, 9);
	msgpack_pack_nil(p);
	msgpack_pack_float(p, 1.0f);
	rc = msg_decode(&m, k.sb.data, k.sb.size, fresh(&err));
	if (!ok(rc == 0, "unknown keys are ignored"))
		diag("error: %s", err.text);
	ok(m.type == MSG_PING && m.version == 9 && m.has == (1ull << F_VERSION),
	   "known fields still decoded");
	msg_clear(&m);
	msgpack_sbuffer_destroy(&k.sb);

	/* Integers are accepted where a number is expected. */
	p = pk_start(&k);
	msgpack_pack_map(p, 4);
	pk_str(p, "t");
	pk_str(p, "reply");
	pk_str(p, "id");
	msgpack_pack_int(p, 1);
	pk_str(p, "status");
	pk_str(p, "ok");
	pk_str(p, "elapsed");
	msgpack_pack_int(p, 3);
	rc = msg_decode(&m, k.sb.data, k.sb.size, fresh(&err));
	ok(rc == 0 && m.elapsed == 3.0, "integer accepted as a number");
	msg_clear(&m);
	msgpack_sbuffer_destroy(&k.sb);

	/* Deep nesting must not crash the decoder (nor be accepted silently
	 * without a reason if refused). */
	p = pk_start(&k);
	msgpack_pack_map(p, 2);
	pk_str(p, "t");
	pk_str(p, "ping");
	pk_str(p, "deep");
	for (int i = 0; i < 10000; i++)
		msgpack_pack_array(p, 1);
	msgpack_pack_nil(p);
	rc = msg_decode(&m, k.sb.data, k.sb.size, fresh(&err));
	ok(rc == 0 || rc == -1, "deep nesting returns (%d)", rc);
	if (rc < 0)
		ok(err.text[0] != '\0', "deep nesting refused: %s", err.text);
	msg_clear(&m);
	msgpack_sbuffer_destroy(&k.sb);
}

static void
test_truncated(void)
{
	int64_t targets[] = { 1, 2, 3 };
	struct msg_engine e = { .id = 1, .host = { "h", 1 } };
	struct cohort_error err;
	msgpack_sbuffer sb;
	struct msg m, d;
	size_t bad = 0, silent = 0;

	msg_init(&m, MSG_REQUEST);
	msg_set_int(&m, F_ID, 1000);
	msg_set_str(&m, F_OP, "execute");
	msg_set_strn(&m, F_CODE, odd, ODD_LEN);
	msg_set_targets(&m, targets, 3);
	msg_set_double(&m, F_TIMEOUT, 1.5);
	msg_set_engines(&m, &e, 1);
	msgpack_sbuffer_init(&sb);
	msg_encode(&m, &sb);
	for (size_t len = 0; len < sb.size; len++) {
		/* An exact-size copy lets ASan see any read past the end. */
		char *c = malloc(len ? len : 1);

		memcpy(c, sb.data, len);
		if (msg_decode(&d, c, len, fresh(&err)) == 0) {
			if (bad++ == 0)
				diag("prefix of %zu bytes decoded", len);
		} else if (err.text[0] == '\0') {
			silent++;
		}
		msg_clear(&d);
		free(c);
	}
	ok(bad == 0, "every prefix of %zu bytes fails to decode", sb.size);
	ok(silent == 0, "every failure says why");
	ok(msg_decode(&d, sb.data, sb.size, fresh(&err)) == 0,
	   "the whole message decodes");
	msg_clear(&d);
	msgpack_sbuffer_destroy(&sb);
}

int
main(void)
{
	test_hello_welcome();
	test_request_task();
	test_reply_done_error();
	test_engines_ping();
	test_decode_errors();
	test_decode_lenient();
	test_truncated();
	return done_testing();
}
