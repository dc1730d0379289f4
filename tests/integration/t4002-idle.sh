#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t4002-idle: 1,000 idle client connections do not get in the way. With
# 1,000 clients connected and silent, px still answers at once on 4
# engines; the controller's resident memory with them is reported
# (diagnostic), and it lets go of them when they close.
# About 40 s (the connections are held 30 s).
. "$(dirname "$0")/lib.sh"

LOADGEN="$COHORT_BIN/tests/cohort-loadgen"
NIDLE=1000
HOLD=30

rss_mib() {
	awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
now() { date +%s.%N; }
# since T0: seconds from T0 (a now) to now, to the millisecond.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
px_results() {
	cohort px --json "$@" 2>&1 |
		json_get '[(e["id"], e["status"], e.get("result")) for e in d["engines"]]' 2>&1
}
ALL_TWO="[(0, 'ok', '2'), (1, 'ok', '2'), (2, 'ok', '2'), (3, 'ok', '2')]"

if [ ! -x "$LOADGEN" ]; then
	fail "cohort-loadgen not built at $LOADGEN"
	exit 1
fi

# The controller inherits this shell's limit: room for 1,000 clients.
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt 4096 ]; then
	ulimit -Sn 4096 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
fi
log "open-file limit: soft $(ulimit -Sn), hard $(ulimit -Hn)"
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt $((NIDLE + 100)) ]; then
	ok "# SKIP the open-file limit ($(ulimit -Sn)) is too low for $NIDLE clients"
	exit 0
fi

start_controller
start_engines 4
expect_eq "px 1+1 answers before" "$(px_results 1+1)" "$ALL_TWO"
rss_base=$(rss_mib "$CONTROLLER_PID")
fds_base=$(nfds "$CONTROLLER_PID")
log "controller before: RSS $rss_base MiB, $fds_base open files"

t0=$(now)
"$LOADGEN" --idle $NIDLE --hold $HOLD >"$T/idle.out" 2>"$T/idle.log" &
idle=$!
PIDS+=("$idle")
check "$NIDLE idle clients connected" \
	wait_for 60 grep -q "^held $NIDLE " "$T/idle.out"
log "loadgen: $(head -n 1 "$T/idle.out") (wall $(since "$t0") s)"
if [ -s "$T/idle.log" ]; then
	head -5 "$T/idle.log" | sed 's/^/#   loadgen: /'
fi

# Meanwhile: px answers within a few seconds.
t0=$(now)
res=$(timeout 5 "$COHORT_BIN/cohort" px --json 1+1 2>&1 |
	json_get '[(e["id"], e["status"], e.get("result")) for e in d["engines"]]' 2>&1)
secs=$(since "$t0")
expect_eq "px 1+1 answers within 5 s with $NIDLE idle clients" "$res" "$ALL_TWO"
log "px 1+1 with $NIDLE idle clients took $secs s"
check "  ... within 3 s ($secs s)" awk -v s="$secs" 'BEGIN { exit !(s < 3) }'
out=$(timeout 60 "$LOADGEN" --clients 4 --requests 50 2>&1)
expect_match "a 4x50 load is served with $NIDLE idle clients" "$out" \
	'^requests=200 replies=800 errors=0 mismatches=0 '
log "  $out"
check "cohort engines lists 4 live engines" live_engines_are 4

rss_idle=$(rss_mib "$CONTROLLER_PID")
fds_idle=$(nfds "$CONTROLLER_PID")
log "controller with $NIDLE idle clients: RSS $rss_idle MiB (before: $rss_base MiB)," \
	"$fds_idle open files"
check "the controller holds $NIDLE more connections ($fds_idle open files)" \
	test "$fds_idle" -ge $((fds_base + NIDLE))

# The clients close at the end of the hold; the controller lets them go.
check "loadgen released its clients" wait_for $((HOLD + 30)) \
	grep -q "^released $NIDLE$" "$T/idle.out"
wait "$idle"
rc=$?
check "idle loadgen exits 0 (rc $rc)" test "$rc" -eq 0
fds_gone() { test "$(nfds "$CONTROLLER_PID")" -le $((fds_base + 5)); }
check "the controller closed the $NIDLE connections" wait_for 15 fds_gone
log "controller after they closed: RSS $(rss_mib "$CONTROLLER_PID") MiB," \
	"$(nfds "$CONTROLLER_PID") open files"
expect_eq "px 1+1 answers after" "$(px_results 1+1)" "$ALL_TWO"
check "controller is alive" kill -0 "$CONTROLLER_PID"
check "controller logged no error-level line" \
	bash -c "! grep -Eq 'cohort-controller\[[0-9]+\] error:' '$T/controller.log'"
