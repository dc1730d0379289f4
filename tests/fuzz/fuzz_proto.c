/* SPDX-License-Identifier: BSD-3-Clause */
/* fuzz_proto.c - libFuzzer target: msg_decode() on arbitrary header bytes.
 *
 * The decoder is table-driven over every message type and field, so one
 * target covers every message parser. A header that decodes must satisfy
 * what callers rely on: a known type, its required fields present, list
 * lengths within PROTO_MAX_LIST, and non-negative targets and parts.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cohort_error err;
	struct msg m;
	char *s;

	err.text[0] = '\0';
	if (msg_decode(&m, data, size, &err) < 0) {
		FUZZ_CHECK(err.text[0] != '\0', "decode failed without a reason");
		FUZZ_CHECK(!m.decoded && m.raw == NULL && m.targets == NULL &&
			   m.parts == NULL && m.engines == NULL,
			   "a failed decode left storage behind");
		msg_clear(&m);
		return 0;
	}
	FUZZ_CHECK(m.type > 0 && m.type < MSG_TYPE_MAX, "decoded type %d",
		   (int)m.type);
	FUZZ_CHECK(strcmp(msg_type_name(m.type), "unknown") != 0,
		   "type %d has no name", (int)m.type);
	FUZZ_CHECK(m.ntarget_list <= PROTO_MAX_LIST &&
		   m.nparts <= PROTO_MAX_LIST && m.nengines <= PROTO_MAX_LIST &&
		   m.njobs <= PROTO_MAX_LIST,
		   "list longer than PROTO_MAX_LIST");
	FUZZ_CHECK(msg_has(&m, F_JOBS) || m.njobs == 0,
		   "jobs listed but not marked present");
	for (size_t i = 0; i < m.ntarget_list; i++)
		FUZZ_CHECK(m.targets[i] >= 0, "negative target");
	for (size_t i = 0; i < m.nparts; i++)
		FUZZ_CHECK(m.parts[i] >= 0, "negative part");
	switch (m.type) {
	case MSG_HELLO:
		FUZZ_CHECK(msg_has(&m, F_VERSION) && msg_has(&m, F_ROLE),
			   "hello without v/role");
		break;
	case MSG_REQUEST:
	case MSG_TASK:
		FUZZ_CHECK(msg_has(&m, F_ID) && msg_has(&m, F_OP),
			   "request/task without id/op");
		break;
	case MSG_STREAM:
		FUZZ_CHECK(msg_has(&m, F_ID) && msg_has(&m, F_NAME) &&
			   msg_has(&m, F_TEXT), "stream without id/name/text");
		s = str_dup(m.text);
		free(s);
		break;
	case MSG_CHUNK:
		FUZZ_CHECK(msg_has(&m, F_ID), "chunk without id");
		break;
	case MSG_ENGINES:
		FUZZ_CHECK(msg_has(&m, F_ENGINES), "engines without a list");
		for (size_t i = 0; i < m.nengines; i++) {
			/* what the client does with each listing entry */
			s = str_dup(m.engines[i].host);
			free(s);
		}
		for (size_t i = 0; i < m.njobs; i++) {
			s = str_dup(m.jobs[i].targets);
			free(s);
		}
		break;
	default:
		break;
	}
	/* Touch every string as a caller would. */
	s = str_dup(m.code);
	free(s);
	(void)str_eq(m.op, "execute");
	msg_clear(&m);
	return 0;
}
