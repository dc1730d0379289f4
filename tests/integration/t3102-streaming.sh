#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3102-streaming: px prints engines' output lines as they are written, not
# at the end (unless --no-stream); the streamed output is complete and in
# order per engine; identical results collapse to one line; no colour on a
# pipe.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

now() { date +%s.%N; }
# Prefix each line read with the time it arrived.
stamp() { while IFS= read -r l; do echo "$(now) $l"; done; }
# ge A B: succeeds if A >= B (floats).
ge() { $PYTHON -c "import sys; sys.exit(not ($1 >= $2))"; }
sub() { $PYTHON -c "print('%.3f' % ($1 - $2))"; }

TICK='import time
for i in range(10): print(i, flush=True); time.sleep(0.2)'

# --- streamed: the first line arrives long before the end ------------------
cohort px "$TICK" | stamp >"$T/stream.txt"
tend=$(now)
first=$(grep -m1 -E '^[0-9.]+ \[stdout:[0-3]\] 0$' "$T/stream.txt" | cut -d' ' -f1)
lastl=$(tail -n1 "$T/stream.txt" | cut -d' ' -f1)
if [ -z "$first" ]; then
	fail "streamed px printed a [stdout:N] 0 line"
	sed 's/^/#   | /' "$T/stream.txt"
else
	lead=$(sub "$tend" "$first")
	span=$(sub "$lastl" "$first")
	log "streamed: first line $lead s before the end, $span s before the last line"
	check "streamed: first line >= 1.0 s before the end (got $lead s)" ge "$lead" 1.0
	check "streamed: first line >= 1.0 s before the last line (got $span s)" ge "$span" 1.0
fi
for e in 0 1 2 3; do
	expect_eq "streamed: engine $e printed 0..9 in order" \
		"$(sed -n "s/^[0-9.]* \[stdout:$e\] //p" "$T/stream.txt" | tr '\n' ' ')" \
		"0 1 2 3 4 5 6 7 8 9 "
done
expect_eq "streamed: 40 output lines, nothing else" "$(wc -l <"$T/stream.txt")" 40

# --- --no-stream: everything at the end ------------------------------------
cohort px --no-stream "$TICK" | stamp >"$T/nostream.txt"
tend=$(now)
first=$(head -n1 "$T/nostream.txt" | cut -d' ' -f1)
lag=$(sub "$tend" "${first:-0}")
log "--no-stream: first line $lag s before the end"
check "--no-stream: first line within 0.5 s of the end (got $lag s)" ge 0.5 "$lag"
expect_eq "--no-stream: identical output collapses to [stdout:0-3], 0..9" \
	"$(sed -n 's/^[0-9.]* \[stdout:0-3\] //p' "$T/nostream.txt" | tr '\n' ' ')" \
	"0 1 2 3 4 5 6 7 8 9 "

# --- --json: the full stdout per engine ------------------------------------
out=$(cohort px --json "$TICK")
expect_eq "--json: full stdout on each engine" \
	"$(echo "$out" | json_get '[e["stdout"] for e in d["engines"]] == ["".join("%d\n" % i for i in range(10))] * 4')" \
	True
expect_match "--json: only JSON on stdout" "$(echo "$out" | head -n1)" '^\{$'

# --- C-level output (file descriptor 1) streams too ------------------------
cohort px 'import os, time
for i in range(6): os.write(1, b"c%d\n" % i); time.sleep(0.3)' | stamp >"$T/fd.txt"
tend=$(now)
first=$(grep -m1 -E '^[0-9.]+ \[stdout:[0-3]\] c0$' "$T/fd.txt" | cut -d' ' -f1)
lead=$(sub "$tend" "${first:-$tend}")
log "fd-level: first line $lead s before the end"
check "os.write(1, ...) streams: first line >= 0.8 s before the end (got $lead s)" ge "$lead" 0.8
expect_eq "os.write output complete: 24 lines" \
	"$(grep -cE '^[0-9.]+ \[stdout:[0-3]\] c[0-5]$' "$T/fd.txt")" 24

# stderr streams as [stderr:N].
cohort px 'import sys, time
for i in range(6): print("e%d" % i, file=sys.stderr, flush=True); time.sleep(0.3)' | stamp >"$T/err.txt"
tend=$(now)
first=$(grep -m1 -E '^[0-9.]+ \[stderr:[0-3]\] e0$' "$T/err.txt" | cut -d' ' -f1)
lead=$(sub "$tend" "${first:-$tend}")
check "stderr streams: first line >= 0.8 s before the end (got $lead s)" ge "$lead" 0.8
expect_eq "stderr output complete: 24 lines" \
	"$(grep -cE '^[0-9.]+ \[stderr:[0-3]\] e[0-5]$' "$T/err.txt")" 24

# A partial last line is printed at the end, not lost.
out=$(cohort px 'print("a", end=""); print("b", end="")')
expect_eq "partial lines are printed at the end, one per engine" \
	"$(echo "$out" | grep -cE '^\[stdout:[0-3]\] ab$')" 4

# --- collapse -----------------------------------------------------------------
out=$(cohort px '6 * 7')
expect_match "four identical results print as one line" "$out" '^\[0-3\] Out\[[0-9]+\]: 42$'
expect_eq "... and only that line" "$(echo "$out" | wc -l)" 1
out=$(cohort px --no-collapse '6 * 7')
expect_eq "--no-collapse prints 4 lines" "$(echo "$out" | grep -cE '^\[[0-3]\] Out\[[0-9]+\]: 42$')" 4
expect_eq "--no-collapse prints nothing else" "$(echo "$out" | wc -l)" 4
out=$(cohort px 'from mpi4py import MPI; MPI.COMM_WORLD.rank // 2')
expect_eq "results collapse by equal value: [0-1] and [2-3]" \
	"$(echo "$out" | sed 's/Out\[[0-9]*\]/Out/')" "$(printf '[0-1] Out: 0\n[2-3] Out: 1')"

# --- no colour on a pipe, even with NO_COLOR unset ---------------------------
out=$(env -u NO_COLOR "$COHORT_BIN/cohort" px 'import sys; print("o"); print("e", file=sys.stderr); 1' 2>&1)
out2=$(env -u NO_COLOR "$COHORT_BIN/cohort" px --no-stream --no-collapse '1/0' 2>&1)
out3=$(env -u NO_COLOR "$COHORT_BIN/cohort" px --no-stream 'print("o"); 1' 2>&1)
expect_match "(sanity) the output has stdout, stderr and Out lines" "$out" '^\[0-3\] Out'
if printf '%s\n%s\n%s\n' "$out" "$out2" "$out3" | grep -q $'\033'; then
	fail "no escape codes in output to a pipe"
	printf '%s\n' "$out" "$out2" "$out3" | cat -v | sed 's/^/#   | /' | head -20
else
	ok "no escape codes in output to a pipe"
fi

# On a terminal there is colour, unless NO_COLOR is set (script(1) gives
# the command a pseudo-terminal).
if command -v script >/dev/null 2>&1; then
	out=$(script -qec "env -u NO_COLOR '$COHORT_BIN/cohort' px 'print(1); 1'" /dev/null </dev/null)
	expect_match "on a terminal, output is coloured" "$out" $'\033\\['
	out=$(script -qec "env NO_COLOR=1 '$COHORT_BIN/cohort' px 'print(1); 1'" /dev/null </dev/null)
	if printf '%s\n' "$out" | grep -q $'\033'; then
		fail "NO_COLOR=1 on a terminal: no escape codes"
	else
		ok "NO_COLOR=1 on a terminal: no escape codes"
	fi
	expect_match "(sanity) NO_COLOR output is there" "$out" 'Out\[[0-9]+\]: 1'
else
	log "script(1) not found: terminal colour checks skipped"
fi
