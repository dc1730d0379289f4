#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3101-jobs: every request is a job. px --nonblock returns a job id at
# once; cohort result shows what is pending, then the results; cohort jobs
# lists states and timing; the controller keeps only its last --jobs N
# results and says so for older ones.
. "$(dirname "$0")/lib.sh"

# A small table so eviction is cheap to reach; the checks before the
# eviction part use at most 3 finished jobs.
start_controller --jobs 3
start_engines 4

now() { date +%s.%N; }
# elapsed T0 T1: T1 - T0 in seconds.
elapsed() { $PYTHON -c "print('%.3f' % ($2 - $1))"; }
# less A B: succeeds if A < B (floats).
less() { $PYTHON -c "import sys; sys.exit(not ($1 < $2))"; }

# --- px --nonblock returns at once with a job id --------------------------
t0=$(now)
out=$(cohort px --nonblock 'import time; time.sleep(2); 42')
rc=$?
t1=$(now)
dt=$(elapsed "$t0" "$t1")
log "px --nonblock returned in $dt s"
expect_eq "px --nonblock exits 0" "$rc" 0
expect_match "px --nonblock prints 'job N submitted'" "$out" '^job [0-9]+ submitted'
check "px --nonblock returns in < 1.5 s (took $dt s)" less "$dt" 1.5
job=$(echo "$out" | sed -n 's/^job \([0-9][0-9]*\) submitted.*/\1/p')
if [ -z "$job" ]; then
	fail "no job id in px --nonblock output"
	exit 1
fi

# --- while it runs: result is pending (exit 3), jobs says running ---------
out=$(cohort result "$job" 2>&1)
rc=$?
expect_eq "cohort result of a running job exits 3" "$rc" 3
expect_match "cohort result shows the engines pending" "$out" '^\[0-3\] pending'

out=$(cohort jobs)
expect_match "cohort jobs lists the job as running with DONE 0/4" "$out" \
	"^$job +running +execute +0-3 +0/4 "
out=$(cohort jobs --json)
expect_eq "cohort jobs --json: running, 0 of 4 done" \
	"$(echo "$out" | json_get "[(j['state'], j['ndone'], j['ntargets']) for j in d['jobs'] if j['id'] == $job]")" \
	"[('running', 0, 4)]"

# --- after it finishes -----------------------------------------------------
finished() {
	cohort jobs --json | json_get "[j['state'] for j in d['jobs'] if j['id'] == $job] == ['done'] or sys.exit(1)" >/dev/null
}
check "the job finishes within 10 s" wait_for 10 finished

out=$(cohort result "$job" 2>&1)
rc=$?
expect_eq "cohort result of a finished job exits 0" "$rc" 0
expect_match "cohort result prints the collapsed result" "$out" '^\[0-3\] Out\[[0-9]+\]: 42$'

out=$(cohort result --json "$job")
expect_eq "cohort result --json: 4 ok entries with result 42" \
	"$(echo "$out" | json_get '[(e["id"], e["status"], e["result"]) for e in d["engines"]]')" \
	"[(0, 'ok', '42'), (1, 'ok', '42'), (2, 'ok', '42'), (3, 'ok', '42')]"
expect_eq "cohort result --json: ok is true" "$(echo "$out" | json_get 'd["ok"]')" True

# A failing job.
cohort px '1/0' >/dev/null 2>&1
fjob=$(cohort jobs --json | json_get 'max(j["id"] for j in d["jobs"])')
out=$(cohort jobs --json)
expect_eq "cohort jobs --json: the sleeping job is done" \
	"$(echo "$out" | json_get "[j['state'] for j in d['jobs'] if j['id'] == $job]")" "['done']"
expect_eq "cohort jobs --json: the failing job is failed, 4 of 4 failed" \
	"$(echo "$out" | json_get "[(j['state'], j['ndone'], j['nfailed']) for j in d['jobs'] if j['id'] == $fjob]")" \
	"[('failed', 4, 4)]"
el=$(echo "$out" | json_get "[j['elapsed'] for j in d['jobs'] if j['id'] == $job][0]")
check "cohort jobs --json: elapsed of the sleeping job >= 2 s (got $el)" \
	$PYTHON -c "import sys; sys.exit(not (2.0 <= $el < 10))"
age=$(echo "$out" | json_get "[j['age'] for j in d['jobs'] if j['id'] == $job][0]")
check "cohort jobs --json: age >= elapsed (age $age)" \
	$PYTHON -c "import sys; sys.exit(not ($age >= $el))"
out=$(cohort result "$fjob" 2>&1)
rc=$?
expect_eq "cohort result of the failed job exits 1" "$rc" 1
expect_match "cohort result of the failed job shows the error" "$out" \
	'^\[0-3\] ZeroDivisionError: division by zero'

# --- eviction: --jobs 3 keeps the last three -------------------------------
first=
last=
for i in 1 2 3 4 5; do
	out=$(cohort px --nonblock "$i * 100")
	id=$(echo "$out" | sed -n 's/^job \([0-9][0-9]*\) submitted.*/\1/p')
	[ -z "$first" ] && first=$id
	last=$id
	# One at a time, so the order of completion is the order of ids.
	wait_for 10 eval "cohort result $id >/dev/null 2>&1"
done
log "eviction jobs: $first..$last"
out=$(cohort result "$first" 2>&1)
rc=$?
expect_eq "result of an evicted job exits 1" "$rc" 1
expect_match "result of an evicted job says evicted" "$out" "job $first was evicted"
out=$(cohort result "$last" 2>&1)
rc=$?
expect_eq "result of the last job exits 0" "$rc" 0
expect_match "result of the last job works" "$out" '^\[0-3\] Out\[[0-9]+\]: 500$'
out=$(cohort jobs --json)
expect_eq "cohort jobs keeps only the last 3" \
	"$(echo "$out" | json_get '[j["id"] for j in d["jobs"]]')" \
	"[$((last - 2)), $((last - 1)), $last]"
expect_match "the first (sleeping) job is evicted too" \
	"$(cohort result "$job" 2>&1)" "job $job was evicted"
out=$(cohort result 999 2>&1)
rc=$?
expect_eq "result of an unknown job exits 1" "$rc" 1
expect_match "result of an unknown job says no job 999" "$out" 'no job 999'
