#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t4003-slow-reader: a client that asks for a 512 MiB value and then stops
# reading does not make the controller's memory grow without bound: the
# controller forwards the value in 4 MiB chunks and stops reading the
# engine once 32 MiB wait for the client (CONN_HIGH_WATER). Its VmRSS is
# sampled every 0.2 s for 20 s and must stay under 200 MB; meanwhile the
# other engine answers px. When the slow client is killed, its stream is
# dropped and engine 0 answers again within a few seconds.
# About 35 s.
. "$(dirname "$0")/lib.sh"

SLOWPULL="$COHORT_SRC/tests/integration/slowpull.py"
STALL=20       # seconds the client sits on the stream
LIMIT_MB=200   # bound on the controller's VmRSS meanwhile (MB = 10^6 B)

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
px_results() {
	cohort px --json "$@" 2>&1 |
		json_get '[(e["id"], e["status"], e.get("result")) for e in d["engines"]]' 2>&1
}

start_controller
start_engines 2

out=$(cohort px --json --targets 0 \
	'import numpy as np; big = np.ones(64*1024*1024); big.nbytes' 2>&1)
expect_eq "a 512 MiB array is made on engine 0" \
	"$(echo "$out" | json_get '[(e["status"], e.get("result")) for e in d["engines"]]' 2>&1)" \
	"[('ok', '536870912')]"
base=$(rss_kib "$CONTROLLER_PID")
log "controller RSS before: $((base / 1024)) MiB"

# Sample the controller's VmRSS every 0.2 s.
: >"$T/rss.txt"
(
	while :; do
		rss_kib "$CONTROLLER_PID" >>"$T/rss.txt" 2>/dev/null || exit 0
		sleep 0.2
	done
) &
sampler=$!
PIDS+=("$sampler")

# No timeout wrapper: $! must be the client itself, to kill it below.
$PYTHON "$SLOWPULL" --profile "$PROFILE" --name big \
	--target 0 --sleep $((STALL + 40)) >"$T/slowpull.out" 2>"$T/slowpull.log" &
slow=$!
PIDS+=("$slow")
t0=$(now)
check "the slow client is welcomed and sends its pull" \
	wait_for 15 grep -qx sent "$T/slowpull.out"

# Let the stream back up, then: the other engine still answers.
sleep 3
t1=$(now)
expect_eq "px --targets 1 1+1 answers while the stream is stalled" \
	"$(px_results --targets 1 1+1)" "[(1, 'ok', '2')]"
log "px --targets 1 took $(since "$t1") s while the stream is stalled"
jobs=$(cohort jobs --json 2>&1)
expect_match "the pull is still running on engine 0" \
	"$(echo "$jobs" | json_get '[(j["op"], j["state"]) for j in d["jobs"] if j["op"] == "pull"]' 2>&1)" \
	"\('pull', 'running'\)"
check "the controller paused engine 0 (engine still live)" live_engines_are 2

# Sit out the rest of the stall, then kill the client.
while awk -v a="$t0" -v b="$(now)" -v s="$STALL" 'BEGIN { exit !(b - a < s) }'; do
	sleep 0.5
done
kill -KILL "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
check "the slow client was still sleeping when killed" \
	bash -c "! grep -q woke '$T/slowpull.out'"

n=$(wc -l <"$T/rss.txt")
peak=$(sort -n "$T/rss.txt" | tail -n 1)
log "slow reader: controller VmRSS peak $((peak / 1024)) MiB ($((peak * 1024 / 1000000)) MB)" \
	"over $n samples in $STALL s (before: $((base / 1024)) MiB)"
check "at least 50 samples were taken ($n)" test "$n" -ge 50
check "the controller's VmRSS stayed under $LIMIT_MB MB (peak $((peak * 1024 / 1000000)) MB)" \
	test $((peak * 1024)) -lt $((LIMIT_MB * 1000000))

# Killed: the stream is dropped, and engine 0 answers again soon.
t1=$(now)
res=$(timeout 30 "$COHORT_BIN/cohort" px --json --targets 0 1 2>&1 |
	json_get '[(e["id"], e["status"], e.get("result")) for e in d["engines"]]' 2>&1)
secs=$(since "$t1")
expect_eq "px --targets 0 1 answers after the slow client is gone" \
	"$res" "[(0, 'ok', '1')]"
log "engine 0 answered again $secs s after the slow client was killed"
check "  ... within 10 s ($secs s)" awk -v s="$secs" 'BEGIN { exit !(s < 10) }'
pull_state() {
	cohort jobs --json 2>&1 |
		json_get '[(j["op"], j["state"], j["ndone"]) for j in d["jobs"] if j["op"] == "pull"]' 2>&1
}
expect_eq "the pull job completed (its stream drained and dropped)" \
	"$(pull_state)" "[('pull', 'done', 1)]"
log "controller RSS after: $(( $(rss_kib "$CONTROLLER_PID") / 1024 )) MiB"
expect_eq "both engines answer px 1+1" "$(px_results 1+1)" \
	"[(0, 'ok', '2'), (1, 'ok', '2')]"
check "both engines still live" live_engines_are 2
check "controller is alive" kill -0 "$CONTROLLER_PID"
check "controller logged no error-level line" \
	bash -c "! grep -Eq 'cohort-controller\[[0-9]+\] error:' '$T/controller.log'"
