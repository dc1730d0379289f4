#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t2006-client-submit: libcohort's asynchronous submission. 300 executes
# are sent with cohort_submit() without waiting for each acknowledgement
# (a blocking request among them), with a refused one and an 8 MiB push;
# cohort_collect() hands out every job id in submission order, and every
# job completes with its own correct result on all 4 engines
# (tests/integration/submit_client.c). A pulled array, whose elements the
# engine sends from where they are, is not changed by the task queued
# behind the pull while its bytes are still going out to a slow client. A
# large push refused at once returns only when no chunk still points into
# the caller's value.
. "$(dirname "$0")/lib.sh"

# Build the client against this build's libcohort, sanitized like it.
cflags=()
if grep -q '^COHORT_SANITIZE:BOOL=ON' "$COHORT_BIN/CMakeCache.txt" 2>/dev/null; then
	cflags=(-fsanitize=address,undefined -fno-omit-frame-pointer)
fi
# shellcheck disable=SC2046
if ! cc -O1 -g -Wall -Wextra -Werror "${cflags[@]}" -I"$COHORT_SRC/include" \
	-o "$T/submit_client" "$COHORT_SRC/tests/integration/submit_client.c" \
	"$COHORT_BIN/libcohort.a" $(pkg-config --libs libevent_core libevent_openssl \
	libevent_pthreads msgpack jansson openssl) -lpthread -lm \
	>"$T/cc.log" 2>&1; then
	sed 's/^/# /' "$T/cc.log"
	fail "submit_client.c builds against libcohort"
	exit 1
fi
ok "submit_client.c builds against libcohort"

start_controller
start_engines 4

out=$(timeout 300 "$T/submit_client" "$PROFILE" 300)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
expect_eq "submit_client exits 0" "$rc" 0
expect_match "301 executes submitted" "$out" '^ok 301 executes submitted'
expect_match "collect: every submission answered, the bad one refused" \
	"$out" '^ok collect: 303 acknowledged, 1 refused \(.*999'
expect_match "tickets and job ids in order" "$out" '^ok tickets and job ids'
expect_match "every job done with its own result" "$out" \
	'^ok all 300 counter jobs done, job k saw k on all 4 engines'
expect_match "the pushed value arrived whole" "$out" '^ok the pushed value'
expect_match "nothing left to collect" "$out" '^ok a second collect is empty'
expect_match "a lent array is sent whole before the next task runs" "$out" \
	'^ok a pulled array is sent whole'
expect_match "a refused large push leaves nothing pointing into the value" \
	"$out" '^ok a refused 64 MiB push returns'
expect_match "all ok" "$out" '^all ok$'
# The engines ran the 300 steps, once each, in order.
expect_eq "each engine's counter is 300" \
	"$(cohort px --json 'k' | json_get '[e["result"] for e in d["engines"]]')" \
	"['300', '300', '300', '300']"
