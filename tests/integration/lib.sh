# SPDX-License-Identifier: BSD-3-Clause
# lib.sh - helpers for Cohort's integration tests.
#
# Each test script sources this file, which makes a scratch directory with
# its own profile (COHORT_DIR), and starts real daemons on 127.0.0.1:
#
#   start_controller [ARGS...]   cohort-controller, waits for client.json
#   start_engines N [DIR]        mpiexec -n N cohort-engine --mpi, in DIR,
#                                waits until N engines are registered
#   cohort ARGS...               the CLI, wrapped in a timeout
#
# Everything started is killed on exit, pass or fail; on failure the logs
# are printed (and kept if COHORT_KEEP=1). Set COHORT_WRAP to run the
# controller under a tool, e.g. COHORT_WRAP="valgrind --error-exitcode=9".

set -u

: "${COHORT_BIN:?COHORT_BIN must point at the build directory}"
COHORT_BIN=$(cd "$COHORT_BIN" && pwd)
: "${COHORT_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PYTHON=/usr/bin/python3

# Open MPI refuses root without these, and more ranks than cores without
# oversubscription; tests run as root in CI on 2 cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Keep Open MPI from probing for networks it does not need on one host.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none

T=$(mktemp -d "${TMPDIR:-/tmp}/cohort-test.XXXXXX")
export COHORT_DIR="$T/cohort"
PROFILE="$COHORT_DIR/profile_default"
TEST_NAME=$(basename "$0" .sh)
PIDS=()
NFAIL=0
NPASS=0

log() { printf '# %s\n' "$*"; }

ok() {
	NPASS=$((NPASS + 1))
	printf 'ok %d - %s\n' $((NPASS + NFAIL)) "$*"
}

fail() {
	NFAIL=$((NFAIL + 1))
	printf 'not ok %d - %s\n' $((NPASS + NFAIL)) "$*"
}

# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

# expect_eq DESCRIPTION GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		fail "$1"
		printf '#   got:  %s\n#   want: %s\n' "$2" "$3"
	fi
}

# expect_match DESCRIPTION TEXT REGEX (grep -E)
expect_match() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then
		ok "$1"
	else
		fail "$1"
		printf '#   no match for /%s/ in:\n' "$3"
		printf '%s\n' "$2" | sed 's/^/#   | /' | head -40
	fi
}

cohort() {
	timeout 60 "$COHORT_BIN/cohort" "$@"
}

# Kill a process and its children (mpiexec's ranks are its children).
kill_tree() {
	local pid=$1 sig=${2:-TERM} child
	for child in $(pgrep -P "$pid" 2>/dev/null); do
		kill_tree "$child" "$sig"
	done
	kill -s "$sig" "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill_tree "$pid" TERM
	done
	sleep 0.2
	for pid in "${PIDS[@]}"; do
		kill_tree "$pid" KILL
		wait "$pid" 2>/dev/null || true
	done
	if [ "$NFAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			printf '# ---- %s ----\n' "$(basename "$f")"
			tail -n 60 "$f" | sed 's/^/# /'
		done
	fi
	if [ "${COHORT_KEEP:-0}" = 1 ]; then
		log "kept $T"
	else
		rm -rf "$T"
	fi
	echo "$TEST_NAME: $NPASS passed, $NFAIL failed"
	if [ "$NFAIL" -gt 0 ] && [ "$rc" -eq 0 ]; then
		rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

CONTROLLER_PID=
start_controller() {
	${COHORT_WRAP:-} "$COHORT_BIN/cohort-controller" --log-level debug "$@" \
		>"$T/controller.log" 2>&1 &
	CONTROLLER_PID=$!
	PIDS+=("$CONTROLLER_PID")
	if ! wait_for 30 test -f "$PROFILE/client.json"; then
		fail "controller did not write its connection file"
		exit 1
	fi
}

# The number of engines the controller lists as live.
live_engines() {
	cohort engines --json 2>/dev/null | $PYTHON -c '
import json, sys
print(sum(e["state"] != "dead" for e in json.load(sys.stdin)["engines"]))'
}

live_engines_are() {
	test "$(live_engines)" = "$1"
}

MPIEXEC_PID=
start_engines() {
	local n=$1 dir=${2:-$COHORT_SRC/examples/psum} want
	want=$(( $(live_engines 2>/dev/null || echo 0) + n ))
	(cd "$dir" && exec mpiexec -n "$n" "$COHORT_BIN/cohort-engine" --mpi) \
		>>"$T/engines.log" 2>&1 &
	MPIEXEC_PID=$!
	PIDS+=("$MPIEXEC_PID")
	if ! wait_for 60 live_engines_are "$want"; then
		fail "$n engines did not register (want $want live)"
		exit 1
	fi
}

# json_get EXPR: evaluate a Python expression over the JSON on stdin (d).
json_get() {
	$PYTHON -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

# wait_pid SECONDS PID: wait for a background job; its exit status lands
# in $wrc, or "timeout" (and the job is killed) if it outlives SECONDS.
wrc=
wait_pid() {
	local secs=$1 pid=$2 i
	for ((i = 0; i < secs * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill_tree "$pid" KILL
		wait "$pid" 2>/dev/null
		wrc=timeout
		return 1
	fi
	wait "$pid"
	wrc=$?
	return 0
}
