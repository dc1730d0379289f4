#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t1004-cluster-two-jobs: a cluster of 4 engines started by 'cohort cluster
# start', plus 2 engines of a second mpiexec job started by hand: ids 0-5,
# two MPI jobs, the second one's ranks 0-1 get ids 4-5.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
# Keep lib.sh's Open MPI variables for the hand-started mpiexec; the
# launcher itself runs without them.
OMPI_ENV=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	OMPI_MCA_rmaps_base_oversubscribe=1)
cluster_unset_ompi_env

cd "$COHORT_SRC/examples/psum" || exit 1

out=$(cohort cluster start -n 4 --daemon 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/#   start: /'
expect_eq "cluster start -n 4 --daemon exits 0" "$rc" 0
[ "$rc" -eq 0 ] || exit 1
mapfile -t pids < <(cluster_pids)
track_pids "${pids[@]}"
expect_eq "7 pids recorded (supervisor, controller, mpiexec, 4 engines)" "${#pids[@]}" 7

# A second MPI job, by hand, on the same profile (COHORT_DIR's default).
(cd "$COHORT_SRC/examples/psum" &&
	exec env "${OMPI_ENV[@]}" mpiexec -n 2 "$COHORT_BIN/cohort-engine" --mpi) \
	>>"$T/engines.log" 2>&1 &
MPIEXEC_PID=$!
PIDS+=("$MPIEXEC_PID")
if wait_for 60 live_engines_are 6; then
	ok "6 live engines"
else
	fail "6 live engines (have $(live_engines))"
	exit 1
fi

eng=$(cohort engines --json)
expect_eq "engine ids are exactly 0-5" \
	"$(echo "$eng" | json_get 'sorted(e["id"] for e in d["engines"])')" "[0, 1, 2, 3, 4, 5]"
expect_eq "two distinct MPI jobs" \
	"$(echo "$eng" | json_get 'len({e["job"] for e in d["engines"]})')" 2
expect_eq "the cluster's job: ids 0-3 are ranks 0-3 of 4" \
	"$(echo "$eng" | json_get '[(e["id"], e["rank"], e["size"]) for e in sorted(d["engines"], key=lambda e: e["id"]) if e["job"] == min(d["engines"], key=lambda e: e["id"])["job"]]')" \
	"[(0, 0, 4), (1, 1, 4), (2, 2, 4), (3, 3, 4)]"
expect_eq "the second job: ranks 0,1 of 2 have ids 4,5" \
	"$(echo "$eng" | json_get '[(e["id"], e["rank"], e["size"]) for e in sorted(d["engines"], key=lambda e: e["id"]) if e["job"] != min(d["engines"], key=lambda e: e["id"])["job"]]')" \
	"[(4, 0, 2), (5, 1, 2)]"
expect_eq "engines 0-3 are the cluster's (their pids are mpiexec's children)" \
	"$(echo "$eng" | json_get '[e["pid"] for e in sorted(d["engines"], key=lambda e: e["id"])][:4]')" \
	"[$(pgrep -P "${pids[2]}" | sort -n | paste -sd, | sed 's/,/, /g')]"
expect_eq "engines 4-5 are the hand-started job's" \
	"$(echo "$eng" | json_get '[e["pid"] for e in sorted(d["engines"], key=lambda e: e["id"])][4:]')" \
	"[$(pgrep -P "$MPIEXEC_PID" | sort -n | paste -sd, | sed 's/,/, /g')]"

out=$(cohort px --json 'import os; os.getpid()')
expect_eq "px answers from 6 engines, all ok" \
	"$(echo "$out" | json_get '[(e["id"], e["status"]) for e in d["engines"]]')" \
	"[(0, 'ok'), (1, 'ok'), (2, 'ok'), (3, 'ok'), (4, 'ok'), (5, 'ok')]"
expect_eq "their pids match the listing" \
	"$(echo "$out" | json_get '[int(e["result"]) for e in d["engines"]]')" \
	"$(echo "$eng" | json_get '[e["pid"] for e in sorted(d["engines"], key=lambda e: e["id"])]')"
out=$(cohort px --json 'from mpi4py import MPI; (MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size)')
expect_eq "each job has its own MPI_COMM_WORLD" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" \
	"['(0, 4)', '(1, 4)', '(2, 4)', '(3, 4)', '(0, 2)', '(1, 2)']"
out=$(cohort px --json --targets 4-5 'from mpi4py import MPI; MPI.COMM_WORLD.allreduce(1)')
expect_eq "an Allreduce within the second job" \
	"$(echo "$out" | json_get '[(e["id"], e["result"]) for e in d["engines"]]')" \
	"[(4, '2'), (5, '2')]"

text=$(cohort engines)
expect_match "text listing has the MPI JOB column" "$text" '^ID +RANK +MPI JOB +HOST +PID +STATE'
jobs=$(echo "$eng" | json_get '" ".join(sorted({e["job"] for e in d["engines"]}))')
for j in $jobs; do
	expect_eq "text listing shows job $j" "$(echo "$text" | grep -c " $j ")" \
		"$(echo "$eng" | json_get "sum(e['job'] == '$j' for e in d['engines'])")"
done
expect_match "text listing: engine 5 is rank 1/2" "$text" '^5 +1/2 '

status=$(cohort cluster status --json)
expect_eq "cluster status counts the live engines it sees (6 of 4 expected)" \
	"$(echo "$status" | json_get '(d["engines_up"], d["engines_expected"])')" "(6, 4)"

out=$(cohort cluster stop 2>&1)
expect_eq "cluster stop exits 0" "$?" 0
if wait_for 10 all_gone "${pids[@]}"; then
	ok "the cluster's processes are gone after stop"
else
	fail "the cluster's processes are gone after stop"
	log "still alive: $(alive_of "${pids[@]}")"
fi
check "no connection files left ($(conn_files))" no_conn_files
# The hand-started job is not the cluster's, but its engines lose their
# controller and exit (after a grace period), and so does its mpiexec.
if wait_for 20 eval '! pid_alive "$MPIEXEC_PID"'; then
	ok "the hand-started job ends once its controller is gone"
else
	fail "the hand-started job ends once its controller is gone"
	log "mpiexec $MPIEXEC_PID still alive, engines: $(pgrep -P "$MPIEXEC_PID" | tr '\n' ' ')"
fi
expect_eq "no process names this profile" "$(profile_procs)" ""
