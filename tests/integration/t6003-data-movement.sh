#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t6003-data-movement: bcast, move, allgather and redistribute move values
# among the engines of one MPI job over MPI, exactly (arrays and a dict);
# failures are errors on every engine, never a hang; across MPI jobs the
# request is refused.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

# Results of px --json, one Python value per engine in id order.
results() { echo "$1" | json_get '[e["result"] for e in d["engines"]]'; }
statuses() { echo "$1" | json_get '[e["status"] for e in d["engines"]]'; }

# Every engine can rebuild every rank's value (seeded by rank), so each
# checks what it received against what the sender had, bit for bit.
check "set up values on all four" cohort px --timeout 60 '
import hashlib, numpy as np
from mpi4py import MPI
rank = MPI.COMM_WORLD.rank
def arr(r): return np.random.default_rng(r).random((1000 + 37 * r, 3))
def obj(r): return {"rank": r, "name": "x" * r, "list": [r, 1.5, None, True], "nested": {"b": b"\x00\xff" * r}}
def digest(a): return (a.dtype.str, a.shape, hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest())
a = arr(rank); d = obj(rank)
big = np.random.default_rng(99).random(5_000_000) if rank == 2 else None'

# bcast: arrays, a dict, a big array from a rank other than 0.
out=$(cohort bcast a --root 1)
expect_match "bcast reports what each engine did" "$out" \
	"^\[0,2-3\] received 'a' \(.*\) from rank 1"
out=$(cohort px --json --timeout 60 'digest(a) == digest(arr(1))')
expect_eq "bcast of an array: bit-exact on every engine" "$(results "$out")" \
	"['True', 'True', 'True', 'True']"
check "bcast of a dict" cohort bcast d --root 3
out=$(cohort px --json --timeout 60 'd == obj(3)')
expect_eq "bcast of a dict: equal on every engine" "$(results "$out")" \
	"['True', 'True', 'True', 'True']"
check "bcast of a 40 MB array" cohort bcast big --root 2
out=$(cohort px --json --timeout 60 'digest(big) == digest(np.random.default_rng(99).random(5_000_000))')
expect_eq "bcast of 40 MB: bit-exact everywhere" "$(results "$out")" \
	"['True', 'True', 'True', 'True']"

# bcast to some targets: the root takes part even if not named.
check "reset" cohort px --timeout 60 'a = arr(rank); d = obj(rank)'
check "bcast to targets 2,3 from root 0" cohort bcast a --root 0 --targets 2,3
out=$(cohort px --json --timeout 60 'digest(a) == digest(arr(0))')
expect_eq "only the targets (and the root) got it" "$(results "$out")" \
	"['True', 'False', 'True', 'True']"

# move: point to point, with and without --as; onto itself.
check "reset" cohort px --timeout 60 'a = arr(rank); d = obj(rank)'
out=$(cohort move d --from 3 --to 1 --as d3)
expect_match "move reports the sender and the receiver" "$out" \
	"\[1\] received 'd' as 'd3' .* from rank 3"
out=$(cohort px --json --targets 1 --timeout 60 'd3 == obj(3) and d == obj(1)')
expect_eq "move of a dict with --as: exact, the old name kept" "$(results "$out")" "['True']"
check "move of an array" cohort move a --from 0 --to 2
out=$(cohort px --json --timeout 60 'digest(a) == digest(arr(0))')
expect_eq "move of an array: only the receiver changed" "$(results "$out")" \
	"['True', 'False', 'True', 'False']"
check "move onto the same engine copies" cohort move a --from 3 --to 3 --as a_copy
out=$(cohort px --json --targets 3 --timeout 60 'digest(a_copy) == digest(a)')
expect_eq "local move" "$(results "$out")" "['True']"

# allgather: arrays concatenate in rank order, other values make a list.
check "reset" cohort px --timeout 60 'a = arr(rank); d = obj(rank)'
check "allgather of arrays" cohort allgather a --as all_a
out=$(cohort px --json --timeout 60 'digest(all_a) == digest(np.concatenate([arr(r) for r in range(4)]))')
expect_eq "allgather of arrays: the concatenation, bit-exact" "$(results "$out")" \
	"['True', 'True', 'True', 'True']"
check "allgather of a dict" cohort allgather d --as all_d
out=$(cohort px --json --timeout 60 'all_d == [obj(r) for r in range(4)]')
expect_eq "allgather of dicts: the list in rank order" "$(results "$out")" \
	"['True', 'True', 'True', 'True']"
check "allgather on targets 1,3" cohort allgather d --as some --targets 1,3
out=$(cohort px --json --targets 1,3 --timeout 60 'some == [obj(1), obj(3)]')
expect_eq "allgather on a subset" "$(results "$out")" "['True', 'True']"

# redistribute: uneven parts become even, in rank order.
check "uneven int32 parts" cohort px --timeout 60 \
	'r = np.arange(7 * rank * (rank + 1), dtype=np.int32).reshape(-1, 7) + 1000 * rank; r_all = np.concatenate([np.arange(7 * q * (q + 1), dtype=np.int32).reshape(-1, 7) + 1000 * q for q in range(4)])'
check "redistribute" cohort redistribute r
out=$(cohort px --json --timeout 60 'n = len(r_all); lo = rank * (n // 4) + min(rank, n % 4); hi = lo + n // 4 + (rank < n % 4); (r.shape, r.dtype.str, bool((r == r_all[lo:hi]).all()))')
expect_eq "redistribute: even, in order, exact" "$(results "$out")" \
	"[\"((5, 7), '<i4', True)\", \"((5, 7), '<i4', True)\", \"((5, 7), '<i4', True)\", \"((5, 7), '<i4', True)\"]"

# Errors: on every engine, and the job keeps working.
out=$(cohort bcast nothing --root 2)
check "bcast of an undefined name fails" test $? -ne 0
expect_match "the root says NameError" "$out" "\[2\] NameError: name 'nothing' is not defined"
expect_match "the others say which rank had nothing" "$out" \
	"\[0-1,3\] BcastError: rank 2 has no value to broadcast: NameError"
out=$(cohort redistribute d)
expect_match "redistribute of a dict is refused on every engine" "$out" \
	"\[0\] ValueError: 'd' is not an array"
expect_match "... naming the rank" "$out" \
	"\[1-3\] AbortedError: redistribute of 'd' not done: rank 0: 'd' is not an array"
check "mismatched dtypes" cohort px --timeout 60 'm = np.zeros((2, 3), dtype=np.float32 if rank == 1 else np.float64)'
out=$(cohort redistribute m)
expect_match "redistribute of mismatched dtypes is refused" "$out" \
	"rank 1: its dtype differs from the first rank's"
out=$(cohort move nothing --from 0 --to 1)
expect_match "move of an undefined name" "$out" \
	"\[1\] MoveError: rank 0 has no value to send: NameError"
out=$(cohort bcast a --root 17 2>&1)
expect_match "an unknown root is refused" "$out" "no engine 17 \(engines: 0-3\)"
out=$(cohort move a --from 0 2>&1)
expect_match "move without --to is a usage error" "$out" "move needs --from R1 and --to R2"
out=$(cohort px --json --timeout 60 'MPI.COMM_WORLD.allreduce(1)')
expect_eq "after the errors the job still works" "$(results "$out")" "['4', '4', '4', '4']"

# Across MPI jobs: refused, with the way out.
start_engines 2
check "value on the second job" cohort px --targets 4,5 --timeout 60 'x = 1'
out=$(cohort bcast x --root 4 --targets 0-5 2>&1)
expect_match "bcast across jobs is refused" "$out" \
	"bcast runs over MPI within one MPI job, but engines 0 and 4 were started by different mpiexec runs; move values between jobs with pull and push"
out=$(cohort bcast x --root 4)
expect_match "bcast without targets stays in the root's job" "$out" \
	"\[5\] received 'x'"
