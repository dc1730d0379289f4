#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t5001-native-crash: a plugin function that segfaults takes down its own
# engine only; the controller reports that engine dead, in the px reply
# and in 'cohort engines', and the other engines go on.
#
# The crashing engine runs alone, without --mpi: when a rank of an mpiexec
# job dies, mpiexec kills the rest of that job, which is MPI's business,
# not Cohort's. The 4-engine MPI job beside it must not notice.
. "$(dirname "$0")/lib.sh"

start_native_engines() {
	local n=$1 dir=$2 want
	want=$(( $(live_engines 2>/dev/null || echo 0) + n ))
	(cd "$dir" && exec mpiexec -n "$n" "$COHORT_BIN/cohort-engine" --mpi \
		--kernel native) >>"$T/engines.log" 2>&1 &
	MPIEXEC_PID=$!
	PIDS+=("$MPIEXEC_PID")
	if ! wait_for 60 live_engines_are "$want"; then
		fail "$n native engines did not register (want $want live)"
		exit 1
	fi
}

mkdir -p "$T/run"
for p in demo crash; do cp "$COHORT_BIN/lib$p.so" "$T/run/"; done
start_controller
start_native_engines 4 "$T/run"

# One engine on its own. The subshell waits for it, so its death by
# signal is logged there (and no core file is left behind). In a
# sanitizer build, the signal must kill it as in any other.
(
	cd "$T/run" && ulimit -c 0
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0"
	"$COHORT_BIN/cohort-engine" --kernel native &
	wait $!
	echo "engine exit status $?"
) >>"$T/single.log" 2>&1 &
PIDS+=("$!")
wait_for 60 live_engines_are 5 || { fail "the single engine did not register"; exit 1; }
id=$(cohort engines --json | json_get '[e["id"] for e in d["engines"] if e["size"] == 1][0]')
pid=$(cohort engines --json | json_get "[e['pid'] for e in d['engines'] if e['id'] == $id][0]")
log "the single engine is engine $id, pid $pid"

check "every engine loads the plugins" cohort px 'load ./libdemo.so; load ./libcrash.so'
out=$(cohort px --json --targets "$id" 'crash()')
rc=$?
expect_eq "px exits 1" "$rc" 1
expect_eq "the crashed engine's reply is 'dead'" \
	"$(echo "$out" | json_get '[(e["id"], e["status"]) for e in d["engines"]]')" "[($id, 'dead')]"
out=$(cohort px --targets "$id" 'rank()' 2>&1)
expect_match "text output says dead" "$out" "^\[$id\] dead"
out=$(cohort engines)
expect_match "cohort engines shows it dead" "$out" "^$id +0/1 .* dead "
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
check "the process is gone" wait_for 10 gone "$pid"
check "it died of SIGSEGV (status 139)" wait_for 10 grep -q "engine exit status 139" "$T/single.log"

# The others did not notice.
expect_eq "the MPI job's four engines are live" "$(live_engines)" 4
expect_eq "and answer" "$(cohort px --json --targets 0-3 'rank()' | json_get '[e["result"] for e in d["engines"]]')" \
	"['0', '1', '2', '3']"
out=$(cohort px --json 'rank()')
expect_eq "px on all engines runs on the live ones" \
	"$(echo "$out" | json_get '[(e["id"], e["status"]) for e in d["engines"]]')" \
	"[(0, 'ok'), (1, 'ok'), (2, 'ok'), (3, 'ok')]"

# Stop the way users do: the engines leave when their controller goes,
# and mpiexec with them.
kill "$CONTROLLER_PID"
check "the MPI job exits when the controller stops" wait_for 30 gone "$MPIEXEC_PID"
