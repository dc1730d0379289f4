# SPDX-License-Identifier: BSD-3-Clause
# cluster-lib.sh - helpers for the tests of 'cohort cluster' (area 1000).
#
# Source after lib.sh. It replaces lib.sh's EXIT trap with one that first
# runs 'cohort cluster stop' for the test's profile (and kills every pid
# recorded with track_pids), then runs lib.sh's cleanup.
#
#   cluster_unset_ompi_env      drop lib.sh's root/oversubscribe variables,
#                               so the launcher must handle them itself
#   cluster_pids [DIR]          supervisor, controller, mpiexec (from
#                               cluster.json) and live engine pids (from
#                               'cohort engines'), one a line
#   track_pids PID...           kill these on exit too (lib's PIDS)
#   all_gone PID...             true if none of the pids is alive
#   alive_of PID...             the ones still alive, on one line
#   profile_procs [DIR]         pids of processes whose command line names
#                               the profile directory (controller, mpiexec,
#                               engines started with --profile DIR)
#   no_conn_files [DIR]         true if DIR has no client.json, engine.json
#                               or cluster.json (conn_files lists them)
#   status_shows_up N           'cohort cluster status' says N/N up

# What to run to stop the cluster at exit, and the cohort to ask for the
# engines; tests may override them (e.g. for a cluster of another user).
CLUSTER_STOP_CMD=(cohort cluster stop --profile "$PROFILE")
CLUSTER_ENGINES_CMD=(cohort)

cluster_unset_ompi_env() {
	unset OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
		OMPI_MCA_rmaps_base_oversubscribe
}

__cluster_set_rc() { return "$1"; }

cluster_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	"${CLUSTER_STOP_CMD[@]}" >/dev/null 2>&1 || true
	__cluster_set_rc "$rc"
	cleanup
}
trap cluster_cleanup EXIT

track_pids() {
	local pid
	for pid in "$@"; do
		case $pid in
		'' | *[!0-9]*) ;;
		*) PIDS+=("$pid") ;;
		esac
	done
}

cluster_pids() {
	local dir=${1:-$PROFILE}
	$PYTHON -c '
import json, sys
d = json.load(open(sys.argv[1] + "/cluster.json"))
for k in ("supervisor", "controller", "mpiexec"):
    print(d[k])' "$dir" 2>/dev/null
	"${CLUSTER_ENGINES_CMD[@]}" engines --json 2>/dev/null |
		$PYTHON -c '
import json, sys
for e in json.load(sys.stdin)["engines"]:
    if e["state"] != "dead":
        print(e["pid"])' 2>/dev/null
}

pid_alive() {
	kill -0 "$1" 2>/dev/null
}

all_gone() {
	local pid
	for pid in "$@"; do
		if pid_alive "$pid"; then return 1; fi
	done
	return 0
}

# The pids still alive among the arguments, on one line.
alive_of() {
	local pid out=
	for pid in "$@"; do
		if pid_alive "$pid"; then out="$out $pid"; fi
	done
	echo "${out# }"
}

profile_procs() {
	local dir=${1:-$PROFILE}
	pgrep -f -- "--profile $dir( |\$)" | tr '\n' ' ' | sed 's/ $//'
}

no_conn_files() {
	local dir=${1:-$PROFILE}
	! [ -e "$dir/client.json" ] && ! [ -e "$dir/engine.json" ] &&
		! [ -e "$dir/cluster.json" ]
}

conn_files() {
	local dir=${1:-$PROFILE} f out=
	for f in client.json engine.json cluster.json; do
		if [ -e "$dir/$f" ]; then out="$out $f"; fi
	done
	echo "${out# }"
}

status_shows_up() {
	cohort cluster status 2>/dev/null | grep -q "engines  *$1/$1 up"
}

# now: seconds since the epoch, with fractions.
now() { date +%s.%N; }
# elapsed START: seconds since START (from now), rounded to 0.1.
elapsed() { $PYTHON -c "import sys; print('%.1f' % ($(now) - $1))"; }
# lt A B: A < B as numbers.
lt() { $PYTHON -c "import sys; sys.exit(not ($1 < $2))"; }
