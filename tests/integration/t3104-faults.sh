#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3104-faults: dead and hung engines are reported dead (not waited on
# forever) while the controller stays up; engines whose controller dies or
# hangs exit by themselves, and clients then fail fast.
. "$(dirname "$0")/lib.sh"

# Fast heartbeats: an engine silent for 5 x 0.2 s = 1 s is dead.
start_controller --heartbeat 0.2 --heartbeat-tolerance 5

now() { date +%s.%N; }
sub() { $PYTHON -c "print('%.3f' % ($1 - $2))"; }
less() { $PYTHON -c "import sys; sys.exit(not ($1 < $2))"; }

# A process is gone once it no longer exists or is a zombie nobody reaped.
proc_gone() {
	local pid=$1 st
	[ -e "/proc/$pid" ] || return 0
	st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}
all_gone() {
	local pid
	for pid in "$@"; do proc_gone "$pid" || return 1; done
	return 0
}
# wait_gone SECS PID...: poll until every process is gone; prints the time.
wait_gone() {
	local secs=$1 t0 i
	shift
	t0=$(now)
	for ((i = 0; i < secs * 20; i++)); do
		all_gone "$@" && { sub "$(now)" "$t0"; return 0; }
		sleep 0.05
	done
	echo timeout
	return 1
}
# Engine processes of this test (by their COHORT_DIR), zombies excepted.
my_engines() {
	local d pid
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		grep -q cohort-engine "$d/cmdline" 2>/dev/null || continue
		tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qxF "COHORT_DIR=$COHORT_DIR" || continue
		proc_gone "$pid" || printf '%s ' "$pid"
	done
}
engines_json() { cohort engines --json; }
# live_field FIELD: that field of every live engine, space-separated.
live_field() {
	engines_json | json_get "' '.join(str(e['$1']) for e in d['engines'] if e['state'] != 'dead')"
}
engine_state() {
	engines_json | json_get "[e['state'] for e in d['engines'] if e['id'] == $1][0]"
}
engine_is_dead() { test "$(engine_state "$1")" = dead; }
# Stop an engine set's mpiexec and wait until the controller has no live
# engines, so that start_engines counts from zero.
stop_set() {
	kill_tree "$1" TERM
	wait_for 10 live_engines_are 0 || fail "engines of the stopped set still live"
}

# --- (a) an engine killed with SIGKILL while running code -------------------
start_engines 4
A_MPIEXEC=$MPIEXEC_PID
A_PIDS=$(live_field pid)
pid2=$(engines_json | json_get '[e["pid"] for e in d["engines"] if e["id"] == 2][0]')
"$COHORT_BIN/cohort" px --json 'import time; time.sleep(4); 1' >"$T/a.json" 2>"$T/a.err" &
pxpid=$!
sleep 1
t0=$(now)
kill -9 "$pid2"
if wait_pid 10 "$pxpid"; then
	ok "(a) px returns after engine 2 is SIGKILLed ($(sub "$(now)" "$t0") s after the kill)"
else
	fail "(a) px returns within 10 s after engine 2 is SIGKILLed"
fi
expect_eq "(a) px exits 1" "$wrc" 1
expect_eq "(a) engine 2 is reported dead" \
	"$(json_get '[e["status"] for e in d["engines"] if e["id"] == 2]' <"$T/a.json" 2>&1)" "['dead']"
others=$(json_get '[(e["id"], e["status"], e["result"]) for e in d["engines"] if e["id"] != 2]' <"$T/a.json" 2>&1)
log "(a) diag: the other engines after rank 2 was killed: $others"
log "(a) diag: their error texts: $(json_get '[e["error"]["evalue"] for e in d["engines"] if e["error"]]' <"$T/a.json" 2>&1)"
# Open MPI aborts the whole job when one rank is killed, so the others may
# die too: then they must be reported dead, else they finish with 1.
expect_eq "(a) each other engine is either ok with 1 or dead, none hangs" \
	"$(json_get 'all((e["status"], e["result"]) in (("ok", "1"), ("dead", None)) for e in d["engines"] if e["id"] != 2) and len(d["engines"]) == 4' <"$T/a.json" 2>&1)" \
	True
expect_match "(a) the dead engine's error names it" "$(cat "$T/a.json")" \
	'engine 2 \(rank 2, pid [0-9]+ on [^)]*\) died'
check "(a) the controller is still running" kill -0 "$CONTROLLER_PID"
out=$(cohort engines 2>&1)
expect_match "(a) cohort engines works and shows engine 2 dead" "$out" '^2 +2/4 .* dead '
dt=$(wait_gone 10 $A_PIDS)
log "(a) diag: all 4 engine processes gone ${dt} s after the result"
stop_set "$A_MPIEXEC"

# --- (b) a stopped engine (SIGSTOP): open connection, no heartbeats ---------
start_engines 2
B_MPIEXEC=$MPIEXEC_PID
read -r idA idB <<<"$(live_field id)"
read -r pidA pidB <<<"$(live_field pid)"
log "(b) engines $idA (pid $pidA) and $idB (pid $pidB); stopping $idB"
t0=$(now)
kill -STOP "$pidB"
# A request sent now still targets it: it must end with the engine dead.
"$COHORT_BIN/cohort" px --json 'import time; time.sleep(0.5); 1' >"$T/b.json" 2>"$T/b.err" &
pxpid=$!
if wait_for 4 engine_is_dead "$idB"; then
	dt=$(sub "$(now)" "$t0")
	ok "(b) the stopped engine is dead within 4 s (took $dt s)"
	check "(b) ... not before the tolerance of ~1 s (took $dt s)" less 0.7 "$dt"
else
	fail "(b) the stopped engine is dead within 4 s"
fi
if wait_pid 5 "$pxpid"; then
	ok "(b) px to both returns ($(sub "$(now)" "$t0") s after SIGSTOP)"
else
	fail "(b) px to both returns within 5 s of the detection"
fi
expect_eq "(b) px: running engine ok with 1, stopped engine dead" \
	"$(json_get '[(e["status"], e["result"]) for e in d["engines"]]' <"$T/b.json" 2>&1)" \
	"[('ok', '1'), ('dead', None)]"
expect_match "(b) the reason is the missed heartbeats" "$(cat "$T/b.json")" 'no heartbeat for'
out=$(cohort px --json 1)
expect_eq "(b) px to all targets only the live engine" \
	"$(echo "$out" | json_get '[(e["id"], e["status"]) for e in d["engines"]]')" "[($idA, 'ok')]"
out=$(cohort px --targets "$idB" 1 2>&1)
rc=$?
expect_eq "(b) px --targets the dead engine exits 1" "$rc" 1
expect_match "(b) px --targets the dead engine says dead" "$out" "^\[$idB\] dead"
kill -CONT "$pidB"
sleep 1
expect_eq "(b) after SIGCONT the engine stays dead for the controller" "$(engine_state "$idB")" dead
expect_match "(b) the resumed engine knows it lost the controller" \
	"$(grep "cohort-engine\[$pidB\]" "$T/engines.log")" 'lost the controller'
out=$(cohort px --targets "$idA" 2+2)
expect_match "(b) the other engine still works" "$out" "^\[$idA\] Out\[[0-9]+\]: 4$"
# It said it is shutting down, so it should be gone soon (with Open MPI,
# MPI_Finalize in it waits for the live rank of its job).
dt=$(wait_gone 8 "$pidB")
if [ "$dt" != timeout ]; then
	ok "(b) the resumed engine exits by itself ($dt s after SIGCONT + 1 s)"
else
	fail "(b) the resumed engine exits by itself within 9 s of SIGCONT"
	log "(b)   pid $pidB: $(ps -o stat=,pcpu=,wchan= -p "$pidB" 2>/dev/null)"
	if command -v gdb >/dev/null 2>&1; then
		log "(b)   its main thread: $(gdb -p "$pidB" -batch -ex bt 2>&1 | grep -oE ' in [A-Za-z_]+ ' | tr -d '\n')"
	fi
fi
stop_set "$B_MPIEXEC"
wait_gone 5 "$pidA" "$pidB" >/dev/null || fail "(b) engines gone after their mpiexec was stopped"

# --- (c) the controller stops (SIGSTOP): engines exit on missed heartbeats ---
start_engines 2
C_MPIEXEC=$MPIEXEC_PID
C_PIDS=$(live_field pid)
kill -STOP "$CONTROLLER_PID"
dt=$(wait_gone 10 $C_PIDS "$C_MPIEXEC")
log "(c) engines gone $dt s after the controller was stopped"
if [ "$dt" != timeout ]; then
	ok "(c) engines exit by themselves when the controller hangs (took $dt s)"
else
	fail "(c) engines exit within 10 s when the controller hangs"
fi
expect_match "(c) they say why" "$(cat "$T/engines.log")" 'no heartbeat from the controller'
kill -CONT "$CONTROLLER_PID"
check "(c) the resumed controller sees its engines gone" wait_for 10 live_engines_are 0
no_engines_left() { test -z "$(my_engines)"; }
wait_for 10 no_engines_left  # mpiexec itself may take a moment to go
orphans=$(my_engines)
expect_eq "(c) no engine process of this test's profile is left (orphans: ${orphans:-none})" \
	"$orphans" ""

# --- (d) the controller killed with SIGKILL ---------------------------------
start_engines 2
D_MPIEXEC=$MPIEXEC_PID
D_PIDS=$(live_field pid)
read -r idA idB <<<"$(live_field id)"
# One engine idle, one busy in code (it must leave after the grace period).
out=$(cohort px --nonblock --targets "$idA" 'import time; time.sleep(30)')
expect_match "(d) a long job runs on engine $idA" "$out" 'submitted'
sleep 0.5
t0=$(now)
kill -9 "$CONTROLLER_PID"
wait "$CONTROLLER_PID" 2>/dev/null
dt=$(wait_gone 10 $D_PIDS "$D_MPIEXEC")
log "(d) engines (one busy, one idle) gone $dt s after the controller was killed"
if [ "$dt" != timeout ]; then
	ok "(d) engines exit by themselves after the controller is killed (took $dt s)"
else
	fail "(d) engines exit within 10 s after the controller is killed"
	for p in $D_PIDS; do log "(d)   pid $p: $(ps -o stat=,pcpu=,wchan= -p "$p" 2>/dev/null)"; done
fi
orphans=$(my_engines)
expect_eq "(d) no engine process of this test's profile is left (orphans: ${orphans:-none})" \
	"$orphans" ""
t0=$(now)
out=$(cohort px 1 2>&1)
rc=$?
dt=$(sub "$(now)" "$t0")
log "(d) px without a controller failed in $dt s"
expect_eq "(d) px without a controller exits 1" "$rc" 1
check "(d) ... fast (< 5 s, took $dt s)" less "$dt" 5
expect_match "(d) ... saying the controller is unreachable" "$out" \
	'(controller unreachable|no controller running)'
# The port is closed (connect() gets ECONNREFUSED): say so, as
# include/cohort/client.h documents, not "closed during TLS handshake".
expect_match "(d) ... with the reason: Connection refused" "$out" \
	'(controller unreachable.*Connection refused|no controller running)'
