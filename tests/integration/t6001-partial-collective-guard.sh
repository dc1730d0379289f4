#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t6001-partial-collective-guard: a request on some ranks of an MPI job that
# calls a collective over all of them fails at once, and leaves the job
# working.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

elapsed() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }

for round in 1 2; do
	t0=$(date +%s.%N)
	out=$(cohort px --json --targets 0,1 --timeout 30 \
		'from mpi4py import MPI; MPI.COMM_WORLD.allreduce(1)')
	took=$(elapsed "$t0")
	check "[$round] partial lowercase allreduce returns within 5 s ($took s)" \
		awk -v t="$took" 'BEGIN { exit !(t < 5) }'
	expect_eq "[$round] ranks 0 and 1 report the guard's error" \
		"$(echo "$out" | json_get '[(e["id"], e["error"]["ename"]) for e in d["engines"]]')" \
		"[(0, 'PartialCollectiveError'), (1, 'PartialCollectiveError')]"
	expect_match "[$round] the error names the call, the size and the missing ranks" \
		"$(echo "$out" | json_get 'd["engines"][0]["error"]["evalue"]')" \
		"^MPI_[A-Za-z_]+ on a communicator of 4 ranks needs ranks 2-3, .*runs on ranks 0-1"
	out=$(cohort px --json --timeout 30 'from mpi4py import MPI; MPI.COMM_WORLD.allreduce(1)')
	expect_eq "[$round] afterwards allreduce on all four returns 4" \
		"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" \
		"['4', '4', '4', '4']"
done

# Buffer (uppercase) collectives and barriers are caught at MPI_Allreduce.
out=$(cohort px --json --targets 3 --timeout 30 \
	'import numpy as np; b = np.zeros(1); MPI.COMM_WORLD.Allreduce(np.ones(1), b)')
expect_match "uppercase Allreduce on one rank is refused" \
	"$(echo "$out" | json_get 'd["engines"][0]["error"]["evalue"]')" \
	"^MPI_Allreduce on a communicator of 4 ranks needs ranks 0-2"
out=$(cohort px --json --targets 1 --timeout 30 'MPI.COMM_WORLD.Barrier()')
expect_match "Barrier on one rank is refused" \
	"$(echo "$out" | json_get 'd["engines"][0]["error"]["evalue"]')" "^MPI_Barrier"

# A communicator of just the targeted ranks is fine, without the opt-out.
check "split into halves on all ranks" cohort px --timeout 30 \
	'half = MPI.COMM_WORLD.Split(MPI.COMM_WORLD.rank // 2)'
out=$(cohort px --json --targets 2,3 --timeout 30 'half.allreduce(MPI.COMM_WORLD.rank)')
expect_eq "allreduce on a sub-communicator of the targeted ranks works" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" "['5', '5']"

# The opt-out lets a call through (here on a communicator the guard would
# refuse, with all its ranks targeted so it completes).
out=$(cohort px --json --targets 0-3 --allow-partial-collectives --timeout 30 \
	'MPI.COMM_WORLD.allreduce(2)')
expect_eq "--allow-partial-collectives passes through" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" "['8', '8', '8', '8']"
out=$(cohort px --json --targets 0,1 --allow-partial-collectives --timeout 2 \
	'MPI.COMM_WORLD.Barrier()')
expect_eq "with the opt-out a partial barrier waits (and times out)" \
	"$(echo "$out" | json_get '[e["status"] for e in d["engines"]]')" "['timeout', 'timeout']"
check "the other ranks complete that barrier" cohort px --targets 2,3 --timeout 30 \
	--allow-partial-collectives 'MPI.COMM_WORLD.Barrier()'
out=$(cohort px --json --timeout 30 'from mpi4py import MPI; MPI.COMM_WORLD.allreduce(1)')
expect_eq "the job still works" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" "['4', '4', '4', '4']"
