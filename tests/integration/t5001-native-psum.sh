#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t5001-native-psum: the C psum walk-through (examples/psum/README.md, "In
# C, without Python") on 4 native MPI engines: load ./libpsum.so, scatter
# an array, psum it with MPI_Allreduce, show it; the Fortran psum_f too.
. "$(dirname "$0")/lib.sh"

# start_native_engines N DIR: like start_engines, with --kernel native.
start_native_engines() {
	local n=$1 dir=$2 want
	want=$(( $(live_engines 2>/dev/null || echo 0) + n ))
	(cd "$dir" && exec mpiexec -n "$n" "$COHORT_BIN/cohort-engine" --mpi \
		--kernel native) >>"$T/engines.log" 2>&1 &
	MPIEXEC_PID=$!
	PIDS+=("$MPIEXEC_PID")
	if ! wait_for 60 live_engines_are "$want"; then
		fail "$n native engines did not register (want $want live)"
		exit 1
	fi
}

quiet() { "$@" >/dev/null; }

# The engines run in $T/run, where the plugins are copied, as a user
# following the README would do.
mkdir -p "$T/run"
cp "$COHORT_BIN/libpsum.so" "$T/run/"
[ -f "$COHORT_BIN/libpsumf.so" ] && cp "$COHORT_BIN/libpsumf.so" "$T/run/"
$PYTHON -c "import numpy as np; np.save('$T/data.npy', np.random.default_rng(5).random(1001))"
total=$($PYTHON -c "import numpy as np; print(repr(float(np.load('$T/data.npy').sum())))")

start_controller
start_native_engines 4 "$T/run"

out=$(cohort engines --json)
expect_eq "four engines, all with the native kernel" \
	"$(echo "$out" | json_get '[(e["id"], e["rank"], e["kernel"]) for e in d["engines"]]')" \
	"[(0, 0, 'native'), (1, 1, 'native'), (2, 2, 'native'), (3, 3, 'native')]"

# The walk-through, step by step.
check "px 'load ./libpsum.so'" cohort px 'load ./libpsum.so'
check "scatter a @data.npy" cohort scatter a "@$T/data.npy"
out=$(cohort px --json 'a')
expect_eq "each engine holds its part of a (1001 = 251+250+250+250)" \
	"$(echo "$out" | json_get '[e["result"].split("shape=")[1] for e in d["engines"]]')" \
	"['(251,), dtype=float64)', '(250,), dtype=float64)', '(250,), dtype=float64)', '(250,), dtype=float64)']"
out=$(cohort px 's = psum(a)')
expect_eq "s = psum(a) runs everywhere, no output" "$?:$out" "0:"
out=$(cohort px --json 's')
sums=$(echo "$out" | json_get '" ".join(e["result"] for e in d["engines"])')
expect_eq "px 's' answers on all four" "$(echo "$sums" | wc -w)" 4
expect_eq "the same sum everywhere" "$(echo "$sums" | tr ' ' '\n' | sort -u | wc -l)" 1
s=$(echo "$sums" | cut -d' ' -f1)
check "psum equals the total of data.npy computed here ($s vs $total)" \
	$PYTHON -c "import sys; s, t = $s, $total; sys.exit(abs(s - t) > 1e-9 * abs(t))"
out=$(cohort px 's')
expect_match "text output is collapsed to one line" "$out" '^\[0-3\] Out\[[0-9]+\]: [0-9.]+$'

# s is an ordinary value: pull and gather move it like any other.
out=$(cohort pull --targets 2 s)
expect_match "pull s from engine 2" "$out" "^\[2\] s = $s\$"
check "gather a back" quiet cohort gather --out "$T/back.npy" a
check "the gathered array is data.npy" $PYTHON -c "
import numpy as np, sys
sys.exit(not np.array_equal(np.load('$T/back.npy'), np.load('$T/data.npy')))"

# Several statements in one px; the last one's value is shown.
out=$(cohort px 'load ./libpsum.so
t = psum(a); t')
expect_match "multi-statement cell shows its last value" "$out" "^\[0-3\] Out\[[0-9]+\]: $s\$"

# A collective on part of the job is refused by the engine's MPI guard
# (it would wait for ever), in C plugins as in Python.
out=$(cohort px --timeout 20 --targets 0 'psum(a)' 2>&1)
expect_match "psum on engine 0 alone is refused, not hung" "$out" \
	'^\[0\] PartialCollectiveError: MPI_Allreduce '

# The Fortran version (bind(C) subroutine, MPI from Fortran).
if [ -f "$T/run/libpsumf.so" ]; then
	check "load ./libpsumf.so" cohort px 'load ./libpsumf.so'
	out=$(cohort px --json 'sf = psum_f(a); sf')
	sf=$(echo "$out" | json_get '" ".join(e["result"] or "-" for e in d["engines"])')
	expect_eq "psum_f gives one sum everywhere" "$(echo "$sf" | tr ' ' '\n' | sort -u | wc -l)" 1
	check "psum_f equals the total too ($(echo "$sf" | cut -d' ' -f1))" \
		$PYTHON -c "import sys; s, t = $(echo "$sf" | cut -d' ' -f1), $total; sys.exit(abs(s - t) > 1e-9 * abs(t))"
	out=$(cohort px --targets 0 'psum_fortran(a)' 2>&1)
	expect_match "the Fortran routine itself is not a plugin function" "$out" \
		"NameError: no function 'psum_fortran' in the loaded plugins \(loaded: libpsum.so, libpsumf.so\)"
else
	log "libpsumf.so not built (no Fortran compiler): skipping psum_f"
fi

# Stop the way users do: the engines leave when their controller goes,
# and mpiexec with them.
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
kill "$CONTROLLER_PID"
check "engines and mpiexec exit when the controller stops" wait_for 30 gone "$MPIEXEC_PID"
