#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t2001-values-roundtrip: values pushed from files come back bit for bit.
#
# Arrays of every supported dtype and awkward shapes (0-d, empty, 3-d),
# with NaN (including a signalling NaN's payload), inf and -0.0, are pushed
# from .npy files and pulled back into .npy files; the bytes must be
# identical, not merely equal. Also: Fortran-ordered and non-contiguous
# arrays, nested JSON, raw bytes, and one output file per engine.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

# Run a command with its standard output discarded.
quiet() { "$@" >/dev/null; }

# Make one .npy per dtype and shape in $T/rt/, plus a listing of what each
# one holds (name, dtype, shape, sha256; tab-separated) the engines must
# reproduce.
mkdir -p "$T/rt"
$PYTHON - "$T/rt" <<'EOF' >"$T/rt/expect.txt"
import hashlib, sys
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(2001)
shapes = {"s0": (), "e0": (0,), "e03": (0, 3), "d1": (37,), "d3": (2, 3, 4)}

def make(dtype, shape):
    n = int(np.prod(shape, dtype=np.int64))
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal(n).astype(dt) * 1e3
        specials = [np.nan, np.inf, -np.inf, -0.0, 0.0,
                    np.finfo(dt).max, np.finfo(dt).tiny, -np.finfo(dt).eps]
        for i, v in enumerate(specials[:n]):
            a[(i * 5) % n] = v
        if n >= 2:
            # A NaN with a payload (signalling NaN): only a byte copy keeps it.
            bits = {4: np.uint32(0x7f800001), 8: np.uint64(0x7ff0000000000001)}
            a.view(bits[dt.itemsize].dtype)[n - 1] = bits[dt.itemsize]
        if n == 1:
            a[0] = -0.0
    elif dt.kind == "c":
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
        specials = [complex(np.nan, 1), complex(-0.0, np.inf),
                    complex(1, -0.0), complex(np.nan, np.nan)]
        for i, v in enumerate(specials[:n]):
            a[(i * 7) % n] = v
    elif dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        if n >= 2:
            a[0], a[1] = info.min, info.max
    return a.reshape(shape)

for dtype in sys.argv[2:] or "float64 float32 int64 int32 uint8 bool complex128".split():
    for sname, shape in shapes.items():
        a = make(dtype, shape)
        name = f"{dtype}_{sname}"
        np.save(f"{out}/{name}.npy", a)
        print(name, str(a.dtype), repr(a.shape),
              hashlib.sha256(a.tobytes()).hexdigest(), sep="\t")

# A Fortran-ordered array, saved as such (fortran_order: True in the header).
f = np.asfortranarray(rng.standard_normal((5, 7)))
assert f.flags.f_contiguous and not f.flags.c_contiguous
np.save(f"{out}/fortran.npy", f)
EOF
check "made the test arrays" test -s "$T/rt/expect.txt"

# The engines' view of an array: (dtype, shape, sha256 of its bytes).
ENGINE_DIGEST='import hashlib; (str(_v.dtype), _v.shape, hashlib.sha256(_v.tobytes()).hexdigest())'
check "import numpy on the engines" cohort px 'import numpy as np'

while IFS=$'\t' read -r name dtype shape sha; do
	out=$(cohort push --targets 0 "a=@$T/rt/$name.npy" 2>&1)
	expect_eq "push $name.npy" "$?:$out" "0:"
	got=$(cohort px --json --targets 0 "_v = a; $ENGINE_DIGEST" |
		json_get 'd["engines"][0]["result"]')
	expect_eq "engine 0 holds $name with its dtype, shape and bytes" \
		"$got" "('$dtype', $shape, '$sha')"
	rm -f "$T/back.npy"
	out=$(cohort pull --targets 0 --out "$T/back.npy" a 2>&1)
	expect_eq "pull $name to .npy" "$?:$out" "0:[0] a -> $T/back.npy"
	got=$($PYTHON - "$T/rt/$name.npy" "$T/back.npy" <<'EOF'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print(a.dtype == b.dtype, a.shape == b.shape, a.tobytes() == b.tobytes(),
      b.flags.c_contiguous)
EOF
)
	expect_eq "$name comes back with the same dtype, shape and bytes" \
		"$got" "True True True True"
done <"$T/rt/expect.txt"
expect_eq "all $((7 * 5)) dtype/shape combinations were tried" \
	"$(wc -l <"$T/rt/expect.txt")" 35

# A plain sum as the engine sees it, against numpy here.
$PYTHON -c "import numpy as np; np.save('$T/sum.npy', np.arange(1000, dtype=np.float32).reshape(10, 10, 10) / 8)"
check "push a float32 3-d array" cohort push --targets 0 "a=@$T/sum.npy"
expect_eq "engine-side dtype, shape and sum" \
	"$(cohort px --json --targets 0 '(str(a.dtype), a.shape, float(a.sum()))' |
		json_get 'd["engines"][0]["result"]')" \
	"$($PYTHON -c "import numpy as np; a = np.load('$T/sum.npy'); print((str(a.dtype), a.shape, float(a.sum())))")"

# Fortran order: the values arrive; the engine's array and the pulled file
# are C order.
check "push a Fortran-ordered .npy" cohort push --targets 0 "f=@$T/rt/fortran.npy"
expect_eq "engine holds the Fortran array's values (C order)" \
	"$(cohort px --json --targets 0 'import hashlib; f.shape, f.flags.c_contiguous, float(f[1, 2]), float(f[4, 6]), hashlib.sha256(f.tobytes()).hexdigest()' |
		json_get 'd["engines"][0]["result"]')" \
	"$($PYTHON -c "
import hashlib
import numpy as np
f = np.load('$T/rt/fortran.npy')
print((f.shape, True, float(f[1, 2]), float(f[4, 6]), hashlib.sha256(np.ascontiguousarray(f).tobytes()).hexdigest()))")"
check "pull it back" quiet cohort pull --targets 0 --out "$T/fback.npy" f
expect_eq "pulled Fortran array: C order, equal values, same bytes in C order" \
	"$($PYTHON -c "
import numpy as np
a, b = np.load('$T/rt/fortran.npy'), np.load('$T/fback.npy')
print(b.flags.c_contiguous, a.dtype == b.dtype, a.shape == b.shape,
      np.array_equal(a, b), np.ascontiguousarray(a).tobytes() == b.tobytes())")" \
	"True True True True True"

# Arrays made on the engine that are not C-contiguous.
check "make a strided and a Fortran array on the engine" cohort px --targets 0 \
	'x = np.arange(20.).reshape(4,5)[:, ::2]; y = np.asfortranarray(np.arange(12.).reshape(3,4) ** 1.5); assert not x.flags.contiguous and not y.flags.c_contiguous'
check "pull the strided view" quiet cohort pull --targets 0 --out "$T/x.npy" x
check "pull the Fortran array" quiet cohort pull --targets 0 --out "$T/y.npy" y
expect_eq "strided view pulled with the right values" \
	"$($PYTHON -c "
import numpy as np
b = np.load('$T/x.npy'); a = np.arange(20.).reshape(4,5)[:, ::2]
print(b.shape, b.dtype, np.array_equal(a, b), a.tobytes() == b.tobytes())")" \
	"(4, 3) float64 True True"
expect_eq "Fortran array pulled with the right values" \
	"$($PYTHON -c "
import numpy as np
b = np.load('$T/y.npy'); a = np.asfortranarray(np.arange(12.).reshape(3,4) ** 1.5)
print(b.shape, b.dtype, np.array_equal(a, b), a.tobytes() == b.tobytes())")" \
	"(3, 4) float64 True True"

# Nested JSON, with non-ASCII text.
JSON='{"a": [1, 2.5, null, true, "x", {"b": []}], "c": -7, "u": "üñï"}'
check "push nested JSON" cohort push "j=$JSON"
out=$(cohort px --json 'j == {"a": [1, 2.5, None, True, "x", {"b": []}], "c": -7, "u": "üñï"}')
expect_eq "every engine has the same dict" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]')" \
	"['True', 'True', 'True', 'True']"
expect_eq "types on the engine: int, float, None, bool, str, dict, list" \
	"$(cohort px --json --targets 3 '[type(v).__name__ for v in j["a"]] + [type(j["c"]).__name__]' |
		json_get 'd["engines"][0]["result"]')" \
	"['int', 'float', 'NoneType', 'bool', 'str', 'dict', 'int']"
out=$(cohort pull --json --targets 2 j)
expect_eq "pull --json gives the same structure" \
	"$(echo "$out" | JSON="$JSON" json_get 'd["engines"][0]["value"] == json.loads(__import__("os").environ["JSON"])')" \
	True
rm -f "$T/j.json"
check "pull --out j.json" quiet cohort pull --targets 1 --out "$T/j.json" j
expect_eq "j.json holds the same document" \
	"$(JSON="$JSON" $PYTHON -c "
import json, os
print(json.load(open('$T/j.json', encoding='utf-8')) == json.loads(os.environ['JSON']))")" \
	True
check "push the pulled j.json back as @file.json" cohort push "k=@$T/j.json"
expect_eq "k == j on every engine" \
	"$(cohort px --json 'k == j and k is not j' | json_get '[e["result"] for e in d["engines"]]')" \
	"['True', 'True', 'True', 'True']"

# Integers at the edges of int64, and floats that must keep every bit.
check "push int64 extremes and awkward floats" cohort push --targets 0 \
	'n=[9223372036854775807, -9223372036854775808, 0.1, 1e308, 5e-324, -0.0]'
expect_eq "engine has them exactly" \
	"$(cohort px --json --targets 0 '[x.hex() if isinstance(x, float) else x for x in n]' |
		json_get 'd["engines"][0]["result"]')" \
	"[9223372036854775807, -9223372036854775808, '0x1.999999999999ap-4', '0x1.1ccf385ebc8a0p+1023', '0x0.0000000000001p-1022', '-0x0.0p+0']"
expect_eq "pull --json gives them back exactly" \
	"$(cohort pull --json --targets 0 n |
		json_get '[x.hex() if isinstance(x, float) else x for x in d["engines"][0]["value"]]')" \
	"[9223372036854775807, -9223372036854775808, '0x1.999999999999ap-4', '0x1.1ccf385ebc8a0p+1023', '0x0.0000000000001p-1022', '-0x0.0p+0']"

# Bytes.
head -c 1000 /dev/urandom >"$T/r.bin"
sha=$(sha256sum "$T/r.bin" | cut -d' ' -f1)
check "push b=@r.bin" cohort push "b=@$T/r.bin"
expect_eq "every engine has bytes with the file's sha256" \
	"$(cohort px --json 'import hashlib; (type(b).__name__, len(b), hashlib.sha256(b).hexdigest())' |
		json_get 'sorted({e["result"] for e in d["engines"]})')" \
	"[\"('bytes', 1000, '$sha')\"]"
check "pull --out back.bin" quiet cohort pull --targets 3 --out "$T/back.bin" b
check "back.bin is identical" cmp "$T/r.bin" "$T/back.bin"

# Several engines and --out: one file per engine, the id before the suffix
# (output_engine_path); a dot in a directory name is not a suffix.
check "a different array on each engine" cohort px \
	'import os; r = int(os.environ["OMPI_COMM_WORLD_RANK"]); v = np.full((2, 2), r, dtype=np.int16)'
mkdir -p "$T/d.x"
out=$(cohort pull --out "$T/d.x/out.npy" v)
expect_eq "pull --out with 4 engines names four files" "$?:$out" "0:[0] v -> $T/d.x/out.0.npy
[1] v -> $T/d.x/out.1.npy
[2] v -> $T/d.x/out.2.npy
[3] v -> $T/d.x/out.3.npy"
expect_eq "exactly those files exist" "$(cd "$T/d.x" && ls | tr '\n' ' ')" \
	"out.0.npy out.1.npy out.2.npy out.3.npy "
expect_eq "each file holds its engine's array" \
	"$($PYTHON -c "
import numpy as np
print([(str(a.dtype), a.shape, sorted(set(a.ravel().tolist())))
       for a in (np.load(f'$T/d.x/out.{i}.npy') for i in range(4))])")" \
	"[('int16', (2, 2), [0]), ('int16', (2, 2), [1]), ('int16', (2, 2), [2]), ('int16', (2, 2), [3])]"
out=$(cohort pull --targets 1,3 --out "$T/d.x/two.json" v)
expect_eq "--targets 1,3 --out two.json gives two.1.json and two.3.json" \
	"$?:$out" "0:[1] v -> $T/d.x/two.1.json
[3] v -> $T/d.x/two.3.json"
expect_eq "the JSON files hold the arrays" \
	"$($PYTHON -c "
import json
print([json.load(open(f'$T/d.x/two.{i}.json')) for i in (1, 3)])")" \
	"[{'dtype': 'int16', 'shape': [2, 2], 'data': [[1, 1], [1, 1]]}, {'dtype': 'int16', 'shape': [2, 2], 'data': [[3, 3], [3, 3]]}]"
out=$(cohort pull --targets 2 --out "$T/d.x/one.npy" v)
expect_eq "one engine: the file name is used as given" "$?:$out" "0:[2] v -> $T/d.x/one.npy"
