#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# run.sh - the MPI walk-through of IPython's parallel MPI guide, on Cohort.
#
# Starts a 4-engine MPI cluster in this directory (so engines can import
# psum.py), runs the guide's steps with 'cohort px', printing each step's
# per-engine output, checks that every engine got the same sum and that it
# equals the total of the arrays, then stops the cluster.
#
# Uses the cohort on PATH, or the one in ../../build. A scratch profile is
# used unless COHORT_PROFILE names one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [ -x "$here/../../build/cohort" ]; then
	PATH="$(cd "$here/../../build" && pwd):$PATH"
fi
command -v cohort >/dev/null || { echo "run.sh: cohort not found; build it first (scripts/build)" >&2; exit 1; }

scratch=
if [ -z "${COHORT_PROFILE:-}" ]; then
	scratch=$(mktemp -d)
	COHORT_PROFILE="$scratch/profile"
fi
P=(--profile "$COHORT_PROFILE")
stop() {
	cohort "${P[@]}" cluster stop >/dev/null 2>&1 || true
	[ -z "$scratch" ] || rm -rf "$scratch"
}
trap stop EXIT

bold= plain=
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() {
	printf "\n%s\$ cohort px '%s'%s\n" "$bold" "$1" "$plain"
	# --no-stream: print once every engine has answered, in engine order,
	# with agreeing engines collapsed ([stdout:0-3] ...).
	cohort "${P[@]}" px --no-stream "$1"
}

echo "$ cohort cluster start -n 4 --daemon"
cohort "${P[@]}" cluster start -n 4 --daemon
echo
cohort "${P[@]}" engines

step 'import numpy as np'
step 'from mpi4py import MPI'
step 'a = np.random.rand(100)'
step 'from psum import psum'
step 's = psum(a)'
step 'print(s)'
step 'print(MPI.COMM_WORLD.rank, a.sum())'

# Check: four equal sums, equal to the total of the four arrays.
json=$(cohort "${P[@]}" px --json '(float(s), float(a.sum()))')
/usr/bin/python3 - "$json" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
pairs = [eval(e["result"]) for e in d["engines"]]
sums = {p[0] for p in pairs}
total = sum(p[1] for p in pairs)
assert len(pairs) == 4, pairs
assert len(sums) == 1, "engines disagree: %r" % sums
s = sums.pop()
assert abs(s - total) <= 1e-9 * abs(total), (s, total)
print("\nOK: all 4 engines have s = %r, the total of their arrays (%r)." % (s, total))
PY
echo
echo "$ cohort cluster stop"
