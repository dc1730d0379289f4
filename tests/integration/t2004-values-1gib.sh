#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t2004-values-1gib: a 1 GiB float64 array pushed to 4 engines and pulled
# back from one, byte for byte. Reports (as TAP diagnostics, without
# asserting on them) the wall time of the push and the pull and the
# controller's peak resident memory while they run: the controller is
# meant to forward the bulk bytes, not hold the value.
. "$(dirname "$0")/lib.sh"

N=134217728 # 1 GiB of float64

# The array file, its copy and the client's buffers need room in $T.
free_kib=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
if [ "$free_kib" -lt $((3 * 1024 * 1024)) ]; then
	ok "# SKIP not enough space in $T ($((free_kib / 1024)) MiB free, want 3 GiB)"
	exit 0
fi

start_controller
start_engines 4

# Big transfers get more than lib.sh's 60 s.
cohort_long() { timeout 150 "$COHORT_BIN/cohort" "$@"; }

# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# The controller's VmRSS, sampled every 0.05 s into FILE (kB, one a line)
# until stop_sampler; start_sampler FILE sets SAMPLER.
SAMPLER=
start_sampler() {
	local file=$1
	: >"$file"
	(
		while :; do
			awk '/^VmRSS:/ { print $2 }' "/proc/$CONTROLLER_PID/status" \
				>>"$file" 2>/dev/null || exit 0
			sleep 0.05
		done
	) &
	SAMPLER=$!
}
stop_sampler() {
	kill "$SAMPLER" 2>/dev/null
	wait "$SAMPLER" 2>/dev/null
	SAMPLER=
}
# The largest sample in FILE, in MiB, and the number of samples.
peak_mib() {
	sort -n "$1" | tail -n 1 | awk '{ printf "%.1f", $1 / 1024 }'
}
nsamples() { wc -l <"$1" | tr -d ' '; }
status_mib() {
	awk -v k="$1:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$CONTROLLER_PID/status"
}

# Make the array here: 1 GiB of random float64 with a few specials.
t0=$(now)
sum=$($PYTHON - "$T/big.npy" "$N" <<'EOF'
import sys
import numpy as np
n = int(sys.argv[2])
a = np.random.default_rng(2004).standard_normal(n)
a[1::4096 * 1024] = 0.5
a[7] = np.nan
np.save(sys.argv[1], a)
print(repr(float(a[::4096].sum())))
EOF
)
check "made a 1 GiB .npy ($(awk "BEGIN { printf \"%.1f\", $(now) - $t0 }") s)" \
	test "$(stat -c %s "$T/big.npy")" -eq $((N * 8 + 128))
log "controller before: VmRSS $(status_mib VmRSS) MiB, VmHWM $(status_mib VmHWM) MiB"

# Push to all four engines.
start_sampler "$T/rss-push.txt"
t0=$(now)
out=$(cohort_long push "a=@$T/big.npy" 2>&1)
rc=$?
t1=$(now)
stop_sampler
expect_eq "push a=@big.npy to 4 engines" "$rc:$out" "0:"
push_s=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
log "push 1 GiB to 4 engines: ${push_s} s wall" \
	"($(awk "BEGIN { printf \"%.0f\", 4096 / ($t1 - $t0) }") MiB/s delivered)"
log "controller peak VmRSS during push: $(peak_mib "$T/rss-push.txt") MiB" \
	"($(nsamples "$T/rss-push.txt") samples)"

expect_eq "every engine has shape (134217728,), float64, and the checksum" \
	"$(cohort px --json '(a.shape, str(a.dtype), repr(float(a[::4096].sum())))' |
		json_get 'sorted({e["result"] for e in d["engines"]})')" \
	"[\"((134217728,), 'float64', '$sum')\"]"
expect_eq "and the NaN and the markers are where they were put" \
	"$(cohort px --json 'import numpy as np; (bool(np.isnan(a[7])), int(np.isnan(a).sum()), int((a[1::4096 * 1024] == 0.5).sum()))' |
		json_get 'sorted({e["result"] for e in d["engines"]})')" \
	"['(True, 1, 32)']"

# Pull from engine 2.
start_sampler "$T/rss-pull.txt"
t0=$(now)
out=$(cohort_long pull --targets 2 --out "$T/big2.npy" a 2>&1)
rc=$?
t1=$(now)
stop_sampler
expect_eq "pull --targets 2 --out big2.npy" "$rc:$out" "0:[2] a -> $T/big2.npy"
pull_s=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
log "pull 1 GiB from engine 2: ${pull_s} s wall" \
	"($(awk "BEGIN { printf \"%.0f\", 1024 / ($t1 - $t0) }") MiB/s)"
log "controller peak VmRSS during pull: $(peak_mib "$T/rss-pull.txt") MiB" \
	"($(nsamples "$T/rss-pull.txt") samples)"
check "big2.npy is identical to big.npy (cmp)" cmp "$T/big.npy" "$T/big2.npy"
log "controller after: VmRSS $(status_mib VmRSS) MiB, VmHWM (peak) $(status_mib VmHWM) MiB"

rm -f "$T/big2.npy"
check "free the arrays" cohort px 'del a; import gc; _ = gc.collect()'
expect_eq "a is gone on every engine" \
	"$(cohort px --json '"a" in globals()' | json_get '[e["result"] for e in d["engines"]]')" \
	"['False', 'False', 'False', 'False']"
