#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t2003-values-errors: bad values get clear errors and lose nothing.
#
# Engine-side failures (undefined names, values with no msgpack form) are
# per-engine errors; client-side failures (missing or malformed files, bad
# JSON, bad names, unknown suffixes) are refused before anything is sent.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

# The number of client connections the controller has accepted so far.
connections() { grep -c 'client connected' "$T/controller.log"; }
# Run a command with its standard output discarded.
quiet() { "$@" >/dev/null; }

# engines_saying REGEX TEXT: the engine ids (comma-separated, sorted) of
# the lines "[ID] ..." of TEXT whose rest matches REGEX. A line for several
# engines that agree ("[0-3] ...", "[0,2] ...") counts for each of them.
engines_saying() {
	printf '%s\n' "$2" | $PYTHON -c '
import re, sys
ids = set()
for line in sys.stdin:
    m = re.match(r"^\[([0-9,-]+)\] (.*)$", line.rstrip("\n"))
    if not m or not re.search(sys.argv[1], m.group(2)):
        continue
    for part in m.group(1).split(","):
        lo, _, hi = part.partition("-")
        ids.update(range(int(lo), int(hi or lo) + 1))
print(",".join(map(str, sorted(ids))))' "$1"
}

# --- pulling what is not there or has no msgpack form ----------------------
out=$(cohort pull nope 2>&1)
rc=$?
expect_eq "pull of an undefined name exits 1" "$rc" 1
expect_eq "a NameError for each of the four engines" \
	"$(engines_saying "^NameError: name 'nope' is not defined$" "$out")" "0,1,2,3"
out=$(cohort pull --json nope)
expect_eq "--json: four errors, ok false, exit 1" \
	"$?:$(echo "$out" | json_get '(d["ok"], [(e["status"], e["error"]["ename"], e["value"]) for e in d["engines"]])')" \
	"1:(False, [('error', 'NameError', None), ('error', 'NameError', None), ('error', 'NameError', None), ('error', 'NameError', None)])"

check "import os on the engines" cohort px 'import os'
out=$(cohort pull os 2>&1)
rc=$?
expect_eq "pull of a module exits 1" "$rc" 1
expect_eq "TypeError naming 'module' on all four engines" \
	"$(engines_saying "^TypeError: .*\bmodule\b" "$out")" "0,1,2,3"
expect_match "the message says what cannot be pulled" "$out" \
	"^\[[0-9,-]+\] TypeError: cannot pull 'os': values of type module have no msgpack form"
out=$(cohort px --json 1)
expect_eq "px 1 still works on every engine" \
	"$?:$(echo "$out" | json_get '[(e["status"], e["result"]) for e in d["engines"]]')" \
	"0:[('ok', '1'), ('ok', '1'), ('ok', '1'), ('ok', '1')]"

# One engine's value cannot be pulled; the others' values still arrive.
check "z is a module on engine 1 only" cohort px \
	'r = int(os.environ["OMPI_COMM_WORLD_RANK"]); z = os if r == 1 else r * 10'
out=$(cohort pull z 2>&1)
rc=$?
expect_eq "pull z exits 1" "$rc" 1
expect_eq "engine 1 fails" "$(engines_saying '^TypeError: ' "$out")" 1
expect_eq "0, 2 and 3 answer" "$(engines_saying '^z = ' "$out")" "0,2,3"
expect_match "engine 2's value" "$out" '^\[2\] z = 20$'
expect_eq "--json keeps the good values" \
	"$(cohort pull --json z | json_get '[(e["status"], e["value"]) for e in d["engines"]]')" \
	"[('ok', 0), ('error', None), ('ok', 20), ('ok', 30)]"

check "define a function" cohort px 'def f(): pass'
out=$(cohort pull f 2>&1)
rc=$?
expect_eq "pull of a function exits 1" "$rc" 1
expect_eq "TypeError naming 'function' on all four engines" \
	"$(engines_saying "^TypeError: .*\bfunction\b" "$out")" "0,1,2,3"
check "a set, a class instance and a dict with int keys" cohort px --targets 0 \
	'st = {1, 2}
class C: pass
c = C(); di = {1: 2}'
expect_match "set refused" "$(cohort pull --targets 0 st)" "^\[0\] TypeError: .*\bset\b"
expect_match "instance refused" "$(cohort pull --targets 0 c)" "^\[0\] TypeError: .*\bC\b"
expect_match "int dict keys refused" "$(cohort pull --targets 0 di)" "^\[0\] TypeError: .*keys must be str"
check "px still works after all that" quiet cohort px 'r'

# --- client-side refusals: nothing is sent -----------------------------------
check "push a=5" cohort push a=5
before=$(connections)
out=$(cohort push "a=@$T/missing.npy" 2>&1)
expect_eq "push of a missing file exits 1" "$?" 1
expect_match "it says No such file" "$out" "^cohort: error: a: cannot open .*missing\.npy: No such file or directory$"
out=$(cohort push a=6 "b=@$T/missing.npy" 2>&1)
expect_match "a bad second value refuses the whole push" "$?:$out" \
	"^1:cohort: error: b: cannot open .*missing\.npy: No such file"
expect_eq "the refused pushes never connected" "$(connections)" "$before"
expect_eq "a is still 5 on every engine" \
	"$(cohort px --json 'a' | json_get '[e["result"] for e in d["engines"]]')" \
	"['5', '5', '5', '5']"
expect_eq "b was not bound" \
	"$(cohort px --json 'b' | json_get '[e["error"]["ename"] for e in d["engines"]]')" \
	"['NameError', 'NameError', 'NameError', 'NameError']"

before=$(connections)
head -c 200 /dev/urandom >"$T/bad.npy"
out=$(cohort push "a=@$T/bad.npy" 2>&1)
expect_match "garbage .npy refused: not a valid .npy" "$?:$out" "^1:cohort: error: a: .*bad\.npy is not a valid \.npy file"
$PYTHON -c "
import numpy as np
np.save('$T/t.npy', np.arange(100.))
d = open('$T/t.npy', 'rb').read()
open('$T/trunc.npy', 'wb').write(d[:-8])
open('$T/long.npy', 'wb').write(d + b'xx')
open('$T/hdr.npy', 'wb').write(d[:10] + b'{garbage' + d[18:])
np.save('$T/str.npy', np.array(['ab', 'c']))
"
out=$(cohort push "a=@$T/trunc.npy" 2>&1)
expect_match "truncated .npy refused" "$?:$out" "^1:cohort: error: a: .*trunc\.npy is not a valid \.npy file: 792 data bytes, the header says 800"
out=$(cohort push "a=@$T/long.npy" 2>&1)
expect_match ".npy with trailing bytes refused" "$?:$out" "^1:cohort: error: a: .*long\.npy is not a valid \.npy file"
out=$(cohort push "a=@$T/hdr.npy" 2>&1)
expect_match ".npy with a garbled header refused" "$?:$out" "^1:cohort: error: a: .*hdr\.npy is not a valid \.npy file"
out=$(cohort push "a=@$T/str.npy" 2>&1)
expect_match "unsupported dtype refused, naming it" "$?:$out" "^1:cohort: error: a: .*'<U2'.* not supported"

out=$(cohort push a='{"x": }' 2>&1)
expect_match "malformed JSON literal refused with a JSON error" "$?:$out" \
	"^1:cohort: error: a: JSON error at line 1 column [0-9]+: "
printf '{"a": [1,\n' >"$T/bad.json"
out=$(cohort push "a=@$T/bad.json" 2>&1)
expect_match "malformed JSON file refused with a JSON error" "$?:$out" \
	"^1:cohort: error: a: .*bad\.json: JSON error at line [0-9]+"
out=$(cohort push a= 2>&1)
expect_match "empty value refused" "$?:$out" "^1:cohort: error: a: empty value"

for arg in 1a=3 class=1 'a-b=1' '=1' 'é=1'; do
	out=$(cohort push "$arg" 2>&1)
	expect_match "push $arg: not a valid name" "$?:$out" "^1:cohort: error: '.*' is not a valid name"
done
for name in a-b 1a None ''; do
	out=$(cohort pull "$name" 2>&1)
	expect_match "pull '$name': not a valid name" "$?:$out" "^1:cohort: error: '$name' is not a valid name"
done
out=$(cohort scatter for '[1]' 2>&1)
expect_match "scatter for: not a valid name" "$?:$out" "^1:cohort: error: 'for' is not a valid name"
out=$(cohort gather 2x 2>&1)
expect_match "gather 2x: not a valid name" "$?:$out" "^1:cohort: error: '2x' is not a valid name"
out=$(cohort push a 2>&1)
expect_match "push without = is a usage error" "$?:$out" "^2:cohort: 'a' is not NAME=VALUE"

echo hello >"$T/f.txt"
out=$(cohort push "a=@$T/f.txt" 2>&1)
expect_match "unknown file suffix refused" "$?:$out" \
	"^1:cohort: error: a: unknown file type for @.*f\.txt \(use \.npy, \.json or \.bin\)"
expect_eq "none of these refusals connected" "$(connections)" "$before"
expect_eq "a is still 5" \
	"$(cohort px --json 'a' | json_get 'sorted({e["result"] for e in d["engines"]})')" "['5']"

# --- writing pulled values: refusals -----------------------------------------
check "a list, a dict and a str on engine 0" cohort px --targets 0 'l = [1, 2]; di = {"k": 1}; s = "text"'
out=$(cohort pull --targets 0 --out "$T/x.txt" a 2>&1)
expect_match "pull --out with an unknown suffix refused" "$?:$out" \
	"^1:cohort: error: unknown file type for .*x\.txt"
out=$(cohort pull --targets 0 --out "$T/x.npy" l 2>&1)
expect_match "a list cannot be written to .npy" "$?:$out" \
	"^1:cohort: error: cannot write a list to .*x\.npy: only arrays can be written to \.npy; use \.json"
out=$(cohort pull --targets 0 --out "$T/x.bin" di 2>&1)
expect_match "a dict cannot be written to .bin" "$?:$out" \
	"^1:cohort: error: cannot write a dict to .*x\.bin"
out=$(cohort pull --targets 0 --out "$T/no/such/dir/x.json" di 2>&1)
expect_match "unwritable path refused" "$?:$out" \
	"^1:cohort: error: cannot write .*x\.json: No such file or directory"
out=$(cohort pull --targets 0 --out "$T/s.bin" s 2>&1)
expect_eq "a str can be written to .bin" "$?:$out:$(cat "$T/s.bin")" "0:[0] s -> $T/s.bin:text"

# A value sent in chunks to an unknown engine: the refusal is the error
# shown, not what the chunks already on their way drew after it ("chunk
# without a chunked request"). Ten tries: it was a race.
$PYTHON -c "import numpy as np; np.save('$T/m64.npy', np.arange(1 << 23, dtype=np.float64))"
msgs=$(for i in $(seq 10); do cohort push --targets 99 x=@"$T/m64.npy" 2>&1 | head -1; done | sort | uniq -c)
expect_match "a 64 MiB push to engine 99 says so, all 10 times" "$msgs" \
	"^ *10 cohort: error: no engine 99 "
rm -f "$T/m64.npy"
