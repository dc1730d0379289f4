#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t2002-values-scatter-gather: scatter splits along the first axis into
# contiguous parts (the first engines get the extra rows); gather joins the
# parts in engine order and is scatter's inverse.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

# Run a command with its standard output discarded.
quiet() { "$@" >/dev/null; }

# result_of CODE [TARGETS]: each engine's repr of CODE, one per line.
result_of() {
	cohort px --json --targets "${2:-all}" "$1" |
		json_get '"\n".join("%d: %s" % (e["id"], e["result"] if e["status"] == "ok" else e["error"]["ename"]) for e in d["engines"])'
}

check "import numpy on the engines" cohort px 'import numpy as np, hashlib'

# --- 10,000,000 float64 over 4 engines: 2,500,000 each -------------------
N=10000000
$PYTHON - "$T/big.npy" "$N" <<'EOF' >"$T/big.expect"
import hashlib, sys
import numpy as np
n = int(sys.argv[2])
a = np.random.default_rng(2002).random(n)
a[::1000003] = [-0.0, np.nan, np.inf, -np.inf, 1e-310, 0.0, 1, 2, 3, 4][:len(a[::1000003])]
np.save(sys.argv[1], a)
k = n // 4
for i in range(4):
    w = a[i * k:(i + 1) * k]
    print(f"{i}: ((2500000,), '{w[0].hex()}', '{w[-1].hex()}', '{hashlib.sha256(w.tobytes()).hexdigest()}')")
EOF
out=$(cohort scatter w "@$T/big.npy" 2>&1)
expect_eq "scatter 10,000,000 float64 over 4 engines" "$?:$out" "0:"
expect_eq "each engine holds its contiguous 2,500,000 (shape, first, last, sha256)" \
	"$(result_of '(w.shape, w[0].hex(), w[-1].hex(), hashlib.sha256(w.tobytes()).hexdigest())')" \
	"$(cat "$T/big.expect")"
expect_eq "the parts are float64, C-contiguous, and own their data" \
	"$(result_of '(str(w.dtype), w.flags.c_contiguous, w.flags.writeable)' | sed 's/^[0-9]: //' | sort -u)" \
	"('float64', True, True)"
check "gather --out big2.npy" quiet cohort gather --out "$T/big2.npy" w
expect_eq "gather returns the same array (dtype, shape, bytes)" \
	"$($PYTHON -c "
import numpy as np
a, b = np.load('$T/big.npy'), np.load('$T/big2.npy')
print(a.dtype == b.dtype, a.shape == b.shape, a.tobytes() == b.tobytes())")" \
	"True True True"
check "free the big parts" cohort px 'globals().pop("w", None)'
rm -f "$T/big.npy" "$T/big2.npy"

# Gather on its own: 2,500,000-element parts made on the engines.
check "make 2,500,000 float64 on each engine" cohort px \
	'import os; r = int(os.environ["OMPI_COMM_WORLD_RANK"]); u = np.arange(r * 2500000, (r + 1) * 2500000, dtype=np.float64)'
check "gather them (80 MB)" quiet cohort gather --out "$T/u.npy" u
expect_eq "gathered: arange(10,000,000)" \
	"$($PYTHON -c "
import numpy as np
b = np.load('$T/u.npy')
print(b.dtype, b.shape, b.tobytes() == np.arange(10000000, dtype=np.float64).tobytes())")" \
	"float64 (10000000,) True"
check "free them" cohort px 'del u'
rm -f "$T/u.npy"

# --- a chunked value with fewer rows than engines: empty parts ------------
# Two rows of 3,000,000 float64 (48 MB, sent in chunks): engines 0 and 1
# get one row each, engines 2 and 3 a (0, 3000000) array.
$PYTHON -c "import numpy as np; np.save('$T/rows.npy', np.arange(6000000, dtype=np.float64).reshape(2, 3000000))"
check "scatter a (2, 3000000) float64 over 4 engines" cohort scatter r "@$T/rows.npy"
expect_eq "two one-row parts, two empty ones, with their trailing shape" \
	"$(result_of '(r.shape, float(r.sum()))')" \
	"0: ((1, 3000000), 4499998500000.0)
1: ((1, 3000000), 13499998500000.0)
2: ((0, 3000000), 0.0)
3: ((0, 3000000), 0.0)"
check "gather the rows" quiet cohort gather --out "$T/rows2.npy" r
expect_eq "gather returns the (2, 3000000) array" \
	"$($PYTHON -c "
import numpy as np
a, b = np.load('$T/rows.npy'), np.load('$T/rows2.npy')
print(a.shape == b.shape, a.tobytes() == b.tobytes())")" "True True"
check "free the rows" cohort px 'del r'
rm -f "$T/rows.npy" "$T/rows2.npy"

# --- a value under one chunk (PROTO_CHUNK, 4 MiB) goes in one message ------
$PYTHON -c "import numpy as np; np.save('$T/mid.npy', np.arange(400001, dtype=np.float64) * 0.5)"
check "scatter 400,001 float64 (3.2 MB)" cohort scatter v "@$T/mid.npy"
expect_eq "parts of 100,001, 100,000, 100,000, 100,000 at the right offsets" \
	"$(result_of '(v.shape, float(v[0]), float(v[-1]))')" \
	"0: ((100001,), 0.0, 50000.0)
1: ((100000,), 50000.5, 100000.0)
2: ((100000,), 100000.5, 150000.0)
3: ((100000,), 150000.5, 200000.0)"
check "gather it back" quiet cohort gather --out "$T/mid2.npy" v
expect_eq "same bytes" \
	"$($PYTHON -c "
import numpy as np
a, b = np.load('$T/mid.npy'), np.load('$T/mid2.npy')
print(a.dtype == b.dtype, a.shape == b.shape, a.tobytes() == b.tobytes())")" \
	"True True True"
check "free them" cohort px 'del v'

# --- lengths that do not divide: 10 over 4 -> 3, 3, 2, 2 ------------------
check "scatter a 10-element list" cohort scatter l '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]'
expect_eq "list parts are 3, 3, 2, 2 in engine order" "$(result_of 'l')" \
	"0: [0, 1, 2]
1: [3, 4, 5]
2: [6, 7]
3: [8, 9]"
expect_eq "list parts are lists on the engines" \
	"$(result_of 'type(l).__name__' | sed 's/^[0-9]: //' | sort -u)" "'list'"
expect_eq "gather the list" "$(cohort gather --json l | json_get 'd')" \
	"[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
expect_eq "gather --targets 1-2 gives just those parts" \
	"$(cohort gather --targets 1-2 --json l | json_get 'd')" "[3, 4, 5, 6, 7]"

$PYTHON -c "import numpy as np; np.save('$T/m.npy', np.arange(30, dtype=np.int32).reshape(10, 3) * 7 - 50)"
check "scatter a (10, 3) int32 array" cohort scatter m "@$T/m.npy"
expect_eq "rows 3, 3, 2, 2 with the right contents" \
	"$(result_of '(str(m.dtype), m.shape, m.tolist())')" \
	"$($PYTHON -c "
import numpy as np
m = np.load('$T/m.npy')
for i, (a, b) in enumerate([(0, 3), (3, 6), (6, 8), (8, 10)]):
    p = m[a:b]
    print(f'{i}: {(str(p.dtype), p.shape, p.tolist())}')")"
check "gather the (10, 3) array" quiet cohort gather --out "$T/m2.npy" m
expect_eq "gathered array equals the scattered one" \
	"$($PYTHON -c "
import numpy as np
a, b = np.load('$T/m.npy'), np.load('$T/m2.npy')
print(a.dtype == b.dtype, a.shape == b.shape, a.tobytes() == b.tobytes())")" \
	"True True True"
check "gather --targets 1-2 of the array" quiet cohort gather --targets 1-2 --out "$T/m12.npy" m
expect_eq "just rows 3..7" \
	"$($PYTHON -c "
import numpy as np
a, b = np.load('$T/m.npy'), np.load('$T/m12.npy')
print(b.shape, np.array_equal(a[3:8], b), a.dtype == b.dtype)")" \
	"(5, 3) True True"
expect_eq "gather --json of the array" \
	"$(cohort gather --targets 3 --json m | json_get 'd')" \
	"{'dtype': 'int32', 'shape': [2, 3], 'data': [[118, 125, 132], [139, 146, 153]]}"

# More engines than rows: the last engines get empty parts.
check "scatter a 2-element list over 4 engines" cohort scatter s '[1.5, "x"]'
expect_eq "parts [1.5], ['x'], [], []" "$(result_of 's')" \
	"0: [1.5]
1: ['x']
2: []
3: []"
expect_eq "gather joins them back" "$(cohort gather --json s | json_get 'd')" "[1.5, 'x']"

# --- a subset of engines ---------------------------------------------------
check "scatter --targets 0,2" cohort scatter --targets 0,2 q '[1, 2, 3]'
expect_eq "engine 0 has [1, 2], engine 2 has [3], 1 and 3 nothing" "$(result_of 'q')" \
	"0: [1, 2]
1: NameError
2: [3]
3: NameError"
expect_eq "gather --targets 0,2" "$(cohort gather --targets 0,2 --json q | json_get 'd')" "[1, 2, 3]"

# --- what cannot be scattered is refused before anything is sent ----------
out=$(cohort scatter x 3 2>&1)
expect_eq "scatter of a scalar exits 1" "$?" 1
expect_match "with a clear message" "$out" "^cohort: error: cannot split an int: only lists and arrays can be split$"
expect_eq "nothing was bound" "$(result_of 'x')" \
	"0: NameError
1: NameError
2: NameError
3: NameError"
out=$(cohort scatter x '{"a": 1}' 2>&1)
expect_match "scatter of a dict is refused" "$?:$out" "^1:cohort: error: cannot split a dict"
$PYTHON -c "import numpy as np; np.save('$T/zero.npy', np.float64(2))"
out=$(cohort scatter x "@$T/zero.npy" 2>&1)
expect_match "scatter of a 0-d array is refused" "$?:$out" "^1:cohort: error: cannot split a 0-d array"
expect_eq "still nothing bound" "$(result_of 'x' | sed 's/^[0-9]: //' | sort -u)" NameError

# --- gather mismatches are errors that name the part ------------------------
check "per-engine arrays of different widths" cohort px \
	'import os; r = int(os.environ["OMPI_COMM_WORLD_RANK"]); g = np.zeros((2, 3 if r != 2 else 4))'
out=$(cohort gather g 2>&1)
expect_match "gather refuses mismatched trailing shapes, naming part 2" "$?:$out" \
	"^1:cohort: error: part 2 has shape \(2, 4\), part 0 has \(2, 3\)"
