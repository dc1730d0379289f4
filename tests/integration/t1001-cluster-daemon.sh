#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t1001-cluster-daemon: 'cohort cluster start -n 4 --daemon' in examples/psum,
# the psum walk-through on it, a refused second start, status, and a stop
# that leaves nothing behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
# The launcher must allow root and oversubscription by itself.
cluster_unset_ompi_env

cd "$COHORT_SRC/examples/psum" || exit 1

t0=$(now)
out=$(cohort cluster start -n 4 --daemon 2>&1)
rc=$?
secs=$(elapsed "$t0")
printf '%s\n' "$out" | sed 's/^/#   start: /'
expect_eq "cluster start -n 4 --daemon exits 0" "$rc" 0
check "it returns within 60 s (took $secs s)" lt "$secs" 60
expect_match "it prints 'Cluster ready'" "$out" \
	'^Cluster ready: 4 engines \(ranks 0-3\) on 127\.0\.0\.1:[0-9]+, profile '"$PROFILE"'$'
if [ "$(id -u)" = 0 ]; then
	expect_match "as root it says it allows Open MPI to run as root" "$out" \
		'running as root: allowing Open MPI to run as root'
else
	ok "# SKIP not root: no root notice expected"
fi
cores=$(nproc)
if [ "$cores" -lt 4 ]; then
	expect_match "with 4 engines on $cores cores it passes --oversubscribe" "$out" \
		"4 engines on $cores cores: passing --oversubscribe to mpiexec"
else
	check "with $cores cores it does not oversubscribe" \
		eval '! printf "%s\n" "$out" | grep -q oversubscribe'
fi
if [ "$rc" -ne 0 ]; then
	for f in cluster.log controller.log engines.log; do
		[ -f "$PROFILE/$f" ] && cp "$PROFILE/$f" "$T/$f"
	done
	exit 1
fi
check "the profile has cluster.json" test -f "$PROFILE/cluster.json"
check "the profile has client.json" test -f "$PROFILE/client.json"

# status, text and JSON
out=$(cohort cluster status 2>&1)
rc=$?
expect_eq "cluster status exits 0" "$rc" 0
expect_match "cluster status shows 4/4 up" "$out" 'engines +4/4 up'
expect_match "cluster status names the profile" "$out" "cluster running for profile $PROFILE\$"
json=$(cohort cluster status --json)
expect_eq "status --json: engines_up == 4" \
	"$(echo "$json" | json_get 'd["engines_up"]')" 4
expect_eq "status --json: running, 4 expected" \
	"$(echo "$json" | json_get '(d["running"], d["engines_expected"])')" "(True, 4)"

# Everything the cluster runs: supervisor, controller, mpiexec, engines.
mapfile -t pids < <(cluster_pids)
track_pids "${pids[@]}"
log "pids: ${pids[*]}"
expect_eq "7 pids recorded (supervisor, controller, mpiexec, 4 engines)" \
	"${#pids[@]}" 7
expect_eq "status --json pids match cluster.json" \
	"$(echo "$json" | json_get '(d["supervisor_pid"], d["controller_pid"])')" \
	"(${pids[0]}, ${pids[1]})"
expect_eq "all recorded pids are alive" "$(alive_of "${pids[@]}")" "${pids[*]}"
eng=$(cohort engines --json)
expect_eq "engine ids are ranks 0-3, one job" \
	"$(echo "$eng" | json_get '([(e["id"], e["rank"], e["size"]) for e in d["engines"]], len({e["job"] for e in d["engines"]}))')" \
	"([(0, 0, 4), (1, 1, 4), (2, 2, 4), (3, 3, 4)], 1)"

# The MPI guide's walk-through.
check "import numpy" cohort px 'import numpy as np'
check "a = np.random.rand(100)" cohort px 'a = np.random.rand(100)'
check "from psum import psum (engines run in examples/psum)" cohort px 'from psum import psum'
check "s = psum(a)" cohort px 's = psum(a)'
out=$(cohort px 'print(s)')
expect_eq "print(s) prints on all four engines" \
	"$(echo "$out" | grep -c '^\[stdout:[0-3]\] ')" 4
sums=$(echo "$out" | sed -n 's/^\[stdout:[0-3]\] //p' | sort -u)
expect_eq "all four sums are equal" "$(echo "$sums" | wc -l)" 1
total=$(cohort px --json 'a.tolist()' | json_get \
	'repr(sum(sum(eval(e["result"])) for e in d["engines"]) if len(d["engines"]) == 4 else None)')
check "psum equals the total of the 4 pulled arrays ($sums vs $total)" \
	$PYTHON -c "import sys; s, t = float('$sums'), float($total); sys.exit(abs(s - t) > 1e-9 * abs(t))"

# A second start for the same profile is refused and changes nothing.
out=$(cohort cluster start -n 2 --daemon 2>&1)
rc=$?
check "a second cluster start exits non-zero (rc $rc)" test "$rc" -ne 0
expect_match "it says a cluster is already running" "$out" 'already running'
expect_match "it names the supervisor pid" "$out" "supervisor pid ${pids[0]}"
check "the first cluster still shows 4/4 up" status_shows_up 4
expect_eq "cluster.json still names the first supervisor" \
	"$(cluster_pids | head -1)" "${pids[0]}"

# Stop: exit 0, every process gone, no connection files.
t0=$(now)
out=$(cohort cluster stop 2>&1)
rc=$?
expect_eq "cluster stop exits 0" "$rc" 0
expect_match "it says the cluster stopped" "$out" "cluster stopped \(profile $PROFILE\)"
log "stop took $(elapsed "$t0") s"
if wait_for 10 all_gone "${pids[@]}"; then
	ok "all recorded pids are gone after stop"
else
	fail "all recorded pids are gone after stop"
	log "still alive: $(alive_of "${pids[@]}")"
	ps -o pid,ppid,pgid,stat,args -p "$(alive_of "${pids[@]}" | tr ' ' ,)" | sed 's/^/#   /'
fi
left=$(pgrep -f cohort-engine | while read -r p; do
	for q in "${pids[@]}"; do [ "$p" = "$q" ] && echo "$p"; done
done)
expect_eq "pgrep -f cohort-engine finds none of this cluster's engines" "$left" ""
expect_eq "no process names this profile" "$(profile_procs)" ""
check "no client.json, engine.json or cluster.json left ($(conn_files))" no_conn_files

out=$(cohort cluster status 2>&1)
rc=$?
expect_eq "cluster status exits 1 after stop" "$rc" 1
expect_match "it says no cluster running" "$out" "no cluster running for profile $PROFILE"
expect_eq "status --json says not running" \
	"$(cohort cluster status --json | json_get 'd["running"]')" False
out=$(cohort cluster stop 2>&1)
rc=$?
expect_eq "a second cluster stop exits 1" "$rc" 1
expect_match "it says no cluster running" "$out" "no cluster running"
