#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t6002-where: cohort where shows each engine's place, blocked in MPI too.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

out=$(cohort where)
expect_eq "idle engines say so" "$out" "[0-3] idle"

# Ranks 1-3 wait in a barrier that rank 0, asleep, never joins.
cohort px --timeout 1 'import time; from mpi4py import MPI; MPI.COMM_WORLD.Barrier() if MPI.COMM_WORLD.rank else time.sleep(30)' >/dev/null
in_place() {
	out=$(cohort where)
	printf '%s\n' "$out" | grep -q '^\[1-3\] in MPI_Barrier <- <cell>$' &&
		printf '%s\n' "$out" | grep -Eq '^\[0\] in [a-z_]*sleep <- <cell>$'
}
if wait_for 10 in_place; then
	ok "where: ranks 1-3 in the barrier, rank 0 in sleep"
else
	fail "where: ranks 1-3 in the barrier, rank 0 in sleep"
	printf '%s\n' "$out" | sed 's/^/#   | /'
fi
out=$(cohort where --targets 2 --verbose)
expect_match "--verbose shows the C stack" "$out" 'MPI_Barrier\+0x'
expect_match "--verbose shows the Python stack" "$out" 'File "<cell-[0-9]+>", line 1 in <module>'
out=$(cohort where --json --targets 1,3)
expect_eq "--json answers per engine" \
	"$(echo "$out" | json_get '[(e["id"], e["result"]) for e in d["engines"]]')" \
	"[(1, 'in MPI_Barrier <- <cell>'), (3, 'in MPI_Barrier <- <cell>')]"
