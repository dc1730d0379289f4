#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t4004-soak: 100,000 small requests (10 clients x 10,000 px '1') on 4
# engines, all answered correctly, without the controller or the engines
# growing: VmRSS is measured after a warm-up of 2,000 requests (which fills
# the controller's bounded table of recent jobs: 1,000 jobs) and after
# the soak; the controller may grow by less than 8 MiB, engine 0 by less
# than 30 MiB. All figures are printed as diagnostics.
# About 1 min on 2 cores (~2,000-4,000 requests/s).
. "$(dirname "$0")/lib.sh"

LOADGEN="$COHORT_BIN/tests/cohort-loadgen"
CLIENTS=10
REQUESTS=10000
CTL_MAX_KIB=$((8 * 1024))
ENG_MAX_KIB=$((30 * 1024))

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

if [ ! -x "$LOADGEN" ]; then
	fail "cohort-loadgen not built at $LOADGEN"
	exit 1
fi

start_controller
start_engines 4
ENGINE_PIDS=($(cohort engines --json | json_get '" ".join(str(e["pid"]) for e in sorted(d["engines"], key=lambda e: e["id"]))'))
check "4 engine pids known (${ENGINE_PIDS[*]})" test "${#ENGINE_PIDS[@]}" -eq 4

# Warm-up: more requests than the job table holds, so it is full.
out=$(timeout 120 "$LOADGEN" --clients $CLIENTS --requests 200 --code 1 \
	--expect 1 2>&1)
expect_match "warm-up: 2000 requests answered" "$out" \
	'^requests=2000 replies=8000 errors=0 mismatches=0 '
sleep 1
ctl_before=$(rss_kib "$CONTROLLER_PID")
eng_before=()
for pid in "${ENGINE_PIDS[@]}"; do eng_before+=("$(rss_kib "$pid")"); done
log "before the soak: controller RSS $(mib "$ctl_before") MiB," \
	"engines $(for k in "${eng_before[@]}"; do printf '%s ' "$(mib "$k")"; done)MiB"

out=$(timeout 600 "$LOADGEN" --clients $CLIENTS --requests $REQUESTS \
	--code 1 --expect 1 2>"$T/loadgen.log")
rc=$?
log "soak: $out"
if [ -s "$T/loadgen.log" ]; then
	head -20 "$T/loadgen.log" | sed 's/^/#   loadgen: /'
fi
want=$((CLIENTS * REQUESTS))
check "soak loadgen exits 0 (rc $rc)" test "$rc" -eq 0
expect_match "all $want requests answered by 4 engines, all correct" "$out" \
	"^requests=$want replies=$((want * 4)) errors=0 mismatches=0 "

sleep 1
ctl_after=$(rss_kib "$CONTROLLER_PID")
eng_after=()
for pid in "${ENGINE_PIDS[@]}"; do eng_after+=("$(rss_kib "$pid")"); done
log "after the soak:  controller RSS $(mib "$ctl_after") MiB," \
	"engines $(for k in "${eng_after[@]}"; do printf '%s ' "$(mib "$k")"; done)MiB"
ctl_growth=$((ctl_after - ctl_before))
eng_growth=$((eng_after[0] - eng_before[0]))
log "growth over $want requests: controller $(mib "$ctl_growth") MiB," \
	"engine 0 $(mib "$eng_growth") MiB"
# The Python kernel keeps each cell's source in linecache (for tracebacks):
# one entry per execute, never dropped, a steady part of engine growth.
ncells=$(cohort px --json --targets 0 'import linecache as _lc; len(_lc.cache)' |
	json_get 'd["engines"][0]["result"]' 2>&1)
log "engine 0: $ncells linecache entries after $((want + 2000)) executes" \
	"($(awk -v g="$eng_growth" -v n="$want" 'BEGIN { printf "%.0f", g * 1024 / n }') bytes of growth per request)"
check "controller grew by less than $(mib $CTL_MAX_KIB) MiB ($(mib "$ctl_growth") MiB)" \
	test "$ctl_growth" -lt "$CTL_MAX_KIB"
check "engine 0 grew by less than $(mib $ENG_MAX_KIB) MiB ($(mib "$eng_growth") MiB)" \
	test "$eng_growth" -lt "$ENG_MAX_KIB"

out=$(cohort px --json 1+1 2>&1 |
	json_get '[(e["id"], e["status"], e.get("result")) for e in d["engines"]]' 2>&1)
expect_eq "px 1+1 answers afterwards" "$out" \
	"[(0, 'ok', '2'), (1, 'ok', '2'), (2, 'ok', '2'), (3, 'ok', '2')]"
check "all 4 engines still live" live_engines_are 4
check "controller is alive" kill -0 "$CONTROLLER_PID"
check "controller logged no error-level line" \
	bash -c "! grep -Eq 'cohort-controller\[[0-9]+\] error:' '$T/controller.log'"
