#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t4001-load: 200 concurrent clients, each connected once, run 100 px
# requests apiece on 4 engines: 20,000 requests, 80,000 engine replies,
# every one ok and carrying the result of its own request (the code is
# "K + 1" with K unique per request), none lost. Reports the request rate
# and the controller's resident memory before and after (diagnostics),
# and checks the controller still serves afterwards.
# About 10-20 s on 2 cores (the run itself ~8 s).
. "$(dirname "$0")/lib.sh"

LOADGEN="$COHORT_BIN/tests/cohort-loadgen"
CLIENTS=200
REQUESTS=100

# rss_mib PID: VmRSS of a process, in MiB.
rss_mib() {
	awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

if [ ! -x "$LOADGEN" ]; then
	fail "cohort-loadgen not built at $LOADGEN"
	exit 1
fi

# 200 clients each hold a socket on the controller: make sure it may.
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt 4096 ]; then
	ulimit -Sn 4096 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
fi
log "open-file limit for the controller: $(ulimit -n)"

start_controller
start_engines 4

# px_results ARGS...: "[(id, status, result), ...]" of a px --json run.
px_results() {
	cohort px --json "$@" 2>&1 |
		json_get '[(e["id"], e["status"], e.get("result")) for e in d["engines"]]' 2>&1
}
ALL_TWO="[(0, 'ok', '2'), (1, 'ok', '2'), (2, 'ok', '2'), (3, 'ok', '2')]"

expect_eq "warm-up: px 1+1 answers 2 on all 4 engines" "$(px_results 1+1)" "$ALL_TWO"
rss_before=$(rss_mib "$CONTROLLER_PID")
log "controller RSS before the load: $rss_before MiB"

out=$(timeout 170 "$LOADGEN" --clients $CLIENTS --requests $REQUESTS \
	--timeout 120 2>"$T/loadgen.log")
rc=$?
log "loadgen: $out"
if [ -s "$T/loadgen.log" ]; then
	head -20 "$T/loadgen.log" | sed 's/^/#   loadgen: /'
fi
check "loadgen exits 0 (rc $rc)" test "$rc" -eq 0
want_req=$((CLIENTS * REQUESTS))
expect_match "all $want_req requests sent" "$out" "(^| )requests=$want_req( |$)"
expect_match "all $((want_req * 4)) replies received" "$out" \
	"(^| )replies=$((want_req * 4))( |$)"
expect_match "no errors" "$out" '(^| )errors=0( |$)'
expect_match "no mismatched results" "$out" '(^| )mismatches=0( |$)'
expect_match "all $CLIENTS clients connected" "$out" "(^| )clients=$CLIENTS( |$)"
rate=$(printf '%s\n' "$out" | sed -n 's/.* rate=\([0-9.]*\)\/s.*/\1/p')
elapsed=$(printf '%s\n' "$out" | sed -n 's/.* elapsed=\([0-9.]*\) .*/\1/p')
log "load: ${rate:-?} req/s ($want_req requests x 4 engines in ${elapsed:-?} s," \
	"$CLIENTS concurrent clients)"

rss_after=$(rss_mib "$CONTROLLER_PID")
log "controller RSS after the load: $rss_after MiB (before: $rss_before MiB)"

# Still serving: the CLI, and a second, small loadgen run.
expect_eq "px 1+1 still answers 2 on all 4 engines" "$(px_results 1+1)" "$ALL_TWO"
out=$(timeout 60 "$LOADGEN" --clients 4 --requests 10 --code 'sum(range(10))' \
	--expect 45 2>&1)
expect_match "a small load afterwards is served too" "$out" \
	'^requests=40 replies=160 errors=0 mismatches=0 '
check "controller is alive" kill -0 "$CONTROLLER_PID"
check "all 4 engines still live" live_engines_are 4
check "controller logged no error-level line" \
	bash -c "! grep -Eq 'cohort-controller\[[0-9]+\] error:' '$T/controller.log'"
