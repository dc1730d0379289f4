#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t0002-px-psum: the MPI guide's walk-through on 4 MPI engines via cohort px.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

out=$(cohort engines --json)
expect_eq "engine ids are MPI ranks" \
	"$(echo "$out" | json_get '[(e["id"], e["rank"]) for e in d["engines"]]')" \
	"[(0, 0), (1, 1), (2, 2), (3, 3)]"
expect_eq "one MPI job" "$(echo "$out" | json_get 'len({e["job"] for e in d["engines"]})')" 1

check "import numpy" cohort px 'import numpy as np'
check "make a random array per engine" cohort px 'a = np.random.rand(100)'
check "import psum from the engines' directory" cohort px 'from psum import psum'
check "s = psum(a)" cohort px 's = psum(a)'
out=$(cohort px 'print(s)')
expect_eq "print(s) prints on all four engines" \
	"$(echo "$out" | grep -c '^\[stdout:[0-3]\] ')" 4
sums=$(echo "$out" | sed -n 's/^\[stdout:[0-3]\] //p' | sort -u)
expect_eq "all four sums are equal" "$(echo "$sums" | wc -l)" 1

# The sum must equal the total of the four arrays, computed here.
total=$(cohort px --json 'a.tolist()' | json_get \
	'repr(sum(sum(eval(e["result"])) for e in d["engines"]))')
check "psum equals the total of the arrays ($total vs $sums)" \
	$PYTHON -c "import sys; s, t = float('$sums'), float($total); sys.exit(abs(s - t) > 1e-9 * abs(t))"

# Targets: only ranks 1 and 3 answer, with their own pids.
out=$(cohort px --json --targets 1,3 'import os; os.getpid()')
expect_eq "--targets 1,3 answers from 1 and 3 only" \
	"$(echo "$out" | json_get '[e["id"] for e in d["engines"]]')" "[1, 3]"
pids=$(cohort engines --json | json_get '[e["pid"] for e in d["engines"] if e["id"] in (1, 3)]')
expect_eq "the pids are the engines' own" \
	"$(echo "$out" | json_get '[int(e["result"]) for e in d["engines"]]')" "$pids"

# An exception on one engine is that engine's error; the others print.
out=$(cohort px 'import os; r = 1 / (int(os.environ["OMPI_COMM_WORLD_RANK"]) - 2); print("r =", r)')
rc=$?
expect_eq "px exits 1 when one engine fails" "$rc" 1
expect_match "rank 2 reports ZeroDivisionError" "$out" '^\[2\] ZeroDivisionError: division by zero'
expect_match "its traceback shows the cell" "$out" 'File "<cell-[0-9]+>", line 1'
expect_match "rank 0 still prints" "$out" '^\[stdout:0\] r = -0.5'
expect_match "rank 3 still prints" "$out" '^\[stdout:3\] r = 1.0'
out=$(cohort px --json '1/0 if rank == 1 else rank' 2>&1)
status=$(echo "$out" | json_get '[e["status"] for e in d["engines"]]')
expect_eq "NameError everywhere (rank undefined)" "$status" "['error', 'error', 'error', 'error']"
out=$(cohort px --json 'from mpi4py import MPI; rank = MPI.COMM_WORLD.rank; 1/0 if rank == 1 else rank')
expect_eq "--json statuses per engine" \
	"$(echo "$out" | json_get '[e["status"] for e in d["engines"]]')" "['ok', 'error', 'ok', 'ok']"
expect_eq "--json error fields" \
	"$(echo "$out" | json_get 'd["engines"][1]["error"]["ename"]')" ZeroDivisionError
expect_eq "--json results" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" "['0', None, '2', '3']"

# Output at the file-descriptor level: C stdio and subprocesses too.
out=$(cohort px --targets 0 'import os, sys; os.write(1, b"fd1\n"); os.system("echo child"); print("err", file=sys.stderr)')
expect_match "fd-level stdout captured" "$out" '^\[stdout:0\] fd1'
expect_match "child process output captured" "$out" '^\[stdout:0\] child'
expect_match "stderr captured" "$out" '^\[stderr:0\] err'

# Code from standard input; state persists; Out numbering counts.
out=$(printf 'x = 20\nx + 1\n' | cohort px --targets 2 -)
expect_match "code from stdin, trailing expression" "$out" '^\[2\] Out\[[0-9]+\]: 21$'
out=$(cohort px --targets 2 'exit(3)' 2>&1)
expect_match "exit() is an error, not an engine exit" "$out" 'SystemExit'
expect_match "engine 2 still alive after exit()" "$(cohort px --targets 2 'x')" '^\[2\] Out\[[0-9]+\]: 20$'

# Unknown engines and bad target specs are refused before anything runs.
out=$(cohort px --targets 7 1 2>&1)
expect_match "unknown engine refused" "$out" "no engine 7 \(engines: 0-3\)"
out=$(cohort px --targets 3-1 1 2>&1)
expect_match "bad range refused" "$out" "end is before the start"

# Working directory is the one the engines started in.
expect_match "cwd is the engines' directory" "$(cohort px --targets 0 'import os; os.getcwd()')" "examples/psum'$"
