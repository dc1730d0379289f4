#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t5001-native-errors: on 4 native MPI engines, every kind of mistake gets a
# clear per-engine error and loses nothing: syntax errors with their
# column, unknown functions and names, wrong argument types, plugins for
# another ABI or none; plus values in and out, plugin output, return
# values and interrupts through the plugin ABI (examples/native/demo.c).
. "$(dirname "$0")/lib.sh"

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

# errors CODE...: "N x ENAME: EVALUE" for each distinct error of a px
# (N engines had it), one per line; "ok" lines for engines that passed.
errors() {
	cohort px --json "$@" | json_get '"\n".join("%d x %s" % (n, k) for k, n in sorted(__import__("collections").Counter(
	"%s: %s" % (e["error"]["ename"], e["error"]["evalue"]) if e["status"] == "error" else e["status"]
	for e in d["engines"]).items()))'
}

quiet() { "$@" >/dev/null; }

mkdir -p "$T/run"
for p in psum demo old noabi; do cp "$COHORT_BIN/lib$p.so" "$T/run/"; done
start_controller
start_native_engines 4 "$T/run"
PIDS_ENGINES=$(cohort engines --json | json_get '" ".join(str(e["pid"]) for e in d["engines"])')

# ---- syntax errors: the column, the line with a caret, nothing runs ----
expect_eq "syntax error names line and column, on every engine" \
	"$(errors 's = psum a')" \
	"4 x SyntaxError: line 1, column 10: expected '(' after function name"
out=$(cohort px 's = psum a')
expect_match "text: collapsed error line" "$out" \
	"^\[0-3\] SyntaxError: line 1, column 10: expected '\(' after function name$"
expect_match "text: the source line" "$out" '^    s = psum a$'
expect_match "text: a caret under column 10" "$out" '^             \^$'
expect_eq "an error on line 2 is reported there" \
	"$(errors $'load ./libpsum.so\ns = psum(a')" \
	"4 x SyntaxError: line 2, column 11: expected ',' or ')' after an argument"
expect_eq "...and line 1 did not run (nothing is loaded)" \
	"$(errors 'psum(a)')" \
	"4 x NameError: no function 'psum': no plugins are loaded (use 'load PATH')"
expect_eq "unterminated string" "$(errors 'f("abc')" \
	"4 x SyntaxError: line 1, column 3: unterminated string"
expect_eq "unknown escape" "$(errors 'f("a\qb")')" \
	"4 x SyntaxError: line 1, column 5: unknown escape in a string (use \\\\, \\\", \\n, \\t, \\r or \\0)"
expect_eq "bad number" "$(errors 'f(12x)')" \
	"4 x SyntaxError: line 1, column 3: invalid number"
expect_eq "two names" "$(errors 'x = f(1); y z')" \
	"4 x SyntaxError: line 1, column 13: expected '=', '(' or the end of the statement after a name"
expect_eq "no nesting" "$(errors 'g(f(1))')" \
	"4 x SyntaxError: line 1, column 4: a call cannot be an argument: bind its result to a name first (x = f(...); g(x))"
expect_eq "not a statement" "$(errors '1 + 2')" \
	"4 x SyntaxError: line 1, column 1: expected a statement: load PATH, NAME = FUNC(...), FUNC(...), NAME or del NAME"
expect_eq "unexpected character" "$(errors 'x = f(1) + 2')" \
	"4 x SyntaxError: line 1, column 10: unexpected character '+'"
expect_eq "reserved word as a name" "$(errors 'class = f()')" \
	"4 x SyntaxError: line 1, column 1: 'class' is a reserved word, not a name"
expect_eq "load without a path" "$(errors 'load')" \
	"4 x SyntaxError: line 1, column 5: expected a path after 'load'"
expect_eq "integer out of range" "$(errors 'f(99999999999999999999)')" \
	"4 x SyntaxError: line 1, column 3: integer literal out of range (64-bit)"
expect_eq "comments and blank statements are fine" "$(errors $'# nothing\n;;  # at all\n')" "4 x ok"

# ---- loading: missing files, other ABIs, no ABI ----
expect_eq "a missing file gives dlerror's text" "$(errors 'load ./nothere.so')" \
	"4 x ImportError: cannot load ./nothere.so: ./nothere.so: cannot open shared object file: No such file or directory"
expect_eq "a plugin for ABI 0 is refused" "$(errors 'load ./libold.so')" \
	"4 x ImportError: plugin ./libold.so was built for Cohort plugin ABI 0, this engine speaks 1: rebuild it against include/cohort/plugin.h"
open=0
for pid in $PIDS_ENGINES; do grep -q libold.so "/proc/$pid/maps" && open=$((open + 1)); done
expect_eq "...and closed again (not mapped in any engine)" "$open" 0
expect_eq "a library without an ABI version is refused" "$(errors 'load ./libnoabi.so')" \
	"4 x ImportError: plugin ./libnoabi.so does not say which Cohort plugin ABI it was built for (no cohort_plugin_abi_version), this engine speaks 1: rebuild it against include/cohort/plugin.h"
expect_eq "load ./libpsum.so and ./libdemo.so" "$(errors 'load ./libpsum.so; load "./libdemo.so"')" "4 x ok"
expect_eq "loading again is harmless" "$(errors 'load ./libpsum.so')" "4 x ok"

# ---- unknown functions and names ----
expect_eq "unknown function lists the loaded plugins" "$(errors 'foo(1)')" \
	"4 x NameError: no function 'foo' in the loaded plugins (loaded: libpsum.so, libdemo.so)"
expect_eq "libc's free is not reachable through a plugin" "$(errors 'free(1)')" \
	"4 x NameError: no function 'free' in the loaded plugins (loaded: libpsum.so, libdemo.so)"
expect_eq "an exported variable is not a function" "$(errors 'counter()')" \
	"4 x TypeError: 'counter' in libdemo.so is not a function"
expect_eq "nor is the ABI version" "$(errors 'cohort_plugin_abi_version()')" \
	"4 x TypeError: 'cohort_plugin_abi_version' is not a plugin function"
expect_eq "unknown argument name" "$(errors 'psum(b)')" \
	"4 x NameError: name 'b' is not defined"
expect_eq "unknown name shown" "$(errors 'b')" "4 x NameError: name 'b' is not defined"
expect_eq "del of an unknown name" "$(errors 'del b')" "4 x NameError: name 'b' is not defined"

# ---- wrong argument types (cohort_call_expect and friends) ----
$PYTHON -c "import numpy as np; np.save('$T/ints.npy', np.arange(8)); np.save('$T/f.npy', np.ones(8))"
check "push ints, a list, a float array" quiet cohort push i=@"$T/ints.npy" l='[1, 2]' f=@"$T/f.npy"
expect_eq "psum(\"text\")" "$(errors 'psum("text")')" \
	"4 x TypeError: psum() argument 1 must be an array, not str"
expect_eq "psum(1)" "$(errors 'psum(1)')" "4 x TypeError: psum() argument 1 must be an array, not int"
expect_eq "psum(l), a list" "$(errors 'psum(l)')" "4 x TypeError: psum() argument 1 must be an array, not list"
expect_eq "psum(i), an int64 array" "$(errors 'psum(i)')" \
	"4 x TypeError: psum() argument 1 must be a float64 array, not int64"
expect_eq "psum()" "$(errors 'psum()')" "4 x TypeError: psum() takes 1 argument (0 given)"
expect_eq "greet(2.5)" "$(errors 'greet(2.5)')" "4 x TypeError: greet() argument 1 must be a str, not float"
expect_eq "scale(f) misses its 2nd argument" "$(errors 'scale(f)')" \
	"4 x TypeError: scale() takes at least 2 arguments (1 given)"
expect_eq "plugin's own named error" "$(errors 'fail(1, 2)')" \
	"4 x ValueError: fail() always fails (2 arguments)"
expect_eq "an error without a message" "$(errors 'quiet_fail()')" \
	"4 x PluginError: quiet_fail() failed (returned 3) without saying why"
check "push n: -1 on engine 0, 3 elsewhere" quiet cohort push --targets 0 n=-1
check "..." quiet cohort push --targets 1-3 n=3
expect_eq "an error on one engine is that engine's only" "$(errors 'x = arange(n); x')" \
	"1 x ValueError: arange() needs n >= 0, not -1
3 x ok"
out=$(cohort px --json $'load ./libdemo.so\nfail()')
expect_eq "in a longer cell, the traceback names the statement" \
	"$(echo "$out" | json_get 'd["engines"][0]["error"]["traceback"]')" "line 2: fail()"

# ---- values: push, show, pull, del; results; literals ----
check "push a nested value" quiet cohort push v='{"a": [1, 2.5, "s", null, true]}'
expect_match "show it" "$(cohort px --targets 0 'v')" "^\[0\] Out\[[0-9]+\]: \{'a': \[1, 2.5, 's', None, True\]\}$"
expect_eq "pull it back" "$(cohort pull --json --targets 1 v | json_get 'd["engines"][0]["value"]')" \
	"{'a': [1, 2.5, 's', None, True]}"
expect_eq "pull of an unknown name" "$(cohort pull --json --targets 1 nothere | json_get '(d["engines"][0]["error"]["ename"], d["engines"][0]["error"]["evalue"])')" \
	"('NameError', \"name 'nothere' is not defined\")"
out=$(cohort px --targets 2 'describe(v, i, -3, 2.5e3, "a\"b\\c", f)')
expect_match "describe sees a dict" "$out" '^\[stdout:2\] 0: other \(.* bytes of msgpack\)$'
expect_match "an int64 array, 64-byte aligned" "$out" '^\[stdout:2\] 1: array int64 shape \(8,\) count 8 itemsize 8 aligned 1$'
expect_match "an int literal" "$out" '^\[stdout:2\] 2: int -3$'
expect_match "a float literal" "$out" '^\[stdout:2\] 3: float 2500$'
expect_match "a string literal with escapes" "$out" '^\[stdout:2\] 4: str .a"b\\c. \(5 bytes\)$'
expect_match "a float64 array" "$out" '^\[stdout:2\] 5: array float64 shape \(8,\) count 8'
expect_match "a returned array" "$(cohort px --targets 3 'b = arange(4); c = scale(b, 0.5); c')" \
	'^\[3\] Out\[[0-9]+\]: array\(\[0.0, 0.5, 1.0, 1.5\], shape=\(4,\), dtype=float64\)$'
check "pull the returned array to .npy" quiet cohort pull --targets 3 --out "$T/c.npy" c
check "...which numpy reads" $PYTHON -c "
import numpy as np, sys; sys.exit(not np.array_equal(np.load('$T/c.npy'), np.arange(4) * 0.5))"
expect_match "a returned string" "$(cohort px --targets 0 'greet("you")')" "^\[0\] Out\[[0-9]+\]: 'hello, you'$"
expect_match "the last result is _" "$(cohort px --targets 0 '_')" "^\[0\] Out\[[0-9]+\]: 'hello, you'$"
expect_match "ints stay ints" "$(cohort px --targets 0 'add(1, 2)')" '^\[0\] Out\[[0-9]+\]: 3$'
expect_match "floats" "$(cohort px --targets 0 'add(1, 2.5)')" '^\[0\] Out\[[0-9]+\]: 3.5$'
expect_match "bools" "$(cohort px --targets 0 'is_even(3)')" '^\[0\] Out\[[0-9]+\]: False$'
expect_eq "the communicator is MPI_COMM_WORLD" \
	"$(cohort px --json 'rank()' | json_get '[e["result"] for e in d["engines"]]')" "['0', '1', '2', '3']"
out=$(cohort px --targets 1 'say("hi")')
expect_match "plugin stdout is captured" "$out" '^\[stdout:1\] out: hi$'
expect_match "plugin stderr is captured" "$out" '^\[stderr:1\] err: hi$'
expect_eq "del" "$(errors 'del v, i; i')" "4 x NameError: name 'i' is not defined"

# ---- interrupt: a plugin that polls cohort_call_interrupted() stops ----
t0=$(date +%s)
(sleep 1; cohort interrupt --targets 2 >/dev/null) &
ipid=$!
out=$(cohort px --targets 2 'spin(30)' 2>&1)
wait "$ipid"
expect_match "interrupt stops a polling plugin" "$out" '^\[2\] KeyboardInterrupt: spin\(\) interrupted$'
check "...within a few seconds" test $(( $(date +%s) - t0 )) -lt 10
expect_match "the engine goes on" "$(cohort px --targets 2 'spin(0)')" '^\[2\] Out\[[0-9]+\]: True$'
expect_eq "all four engines still live" "$(live_engines)" 4

# Stop the way users do: the engines leave when their controller goes,
# and mpiexec with them.
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
kill "$CONTROLLER_PID"
check "engines and mpiexec exit when the controller stops" wait_for 30 gone "$MPIEXEC_PID"
