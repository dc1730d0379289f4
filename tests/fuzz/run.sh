#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# run.sh - build the fuzzers and run each for a while against its corpus.
#
#   tests/fuzz/run.sh SECONDS [FUZZER...]
#
# Builds with build.sh into ${FUZZ_BUILD:-/tmp/cohort-fuzz}, then runs each
# fuzzer (default: all three) for SECONDS on a copy of tests/fuzz/corpus/<name>
# (the committed corpus is never modified), prints executions and coverage,
# and exits 1 if any fuzzer found a crash, a leak, a timeout or an
# out-of-memory; the message names the saved input.
#
# Environment:
#   FUZZ_BUILD         build and work directory (default /tmp/cohort-fuzz)
#   FUZZ_ARGS          extra libFuzzer flags, e.g. "-jobs=4 -workers=4"
#   FUZZ_STRICT_MALLOC=0  let ASan return NULL for allocations over
#                      FUZZ_MAX_ALLOC_MB (1024) instead of reporting them
#                      as out-of-memory (the default, 1, reports them:
#                      msg_decode checks declared sizes before msgpack-c
#                      allocates, so no small input may ask for gigabytes;
#                      see crashes/README.md).
set -u

if [ $# -lt 1 ] || ! [ "$1" -gt 0 ] 2>/dev/null; then
	echo "usage: $0 SECONDS [fuzz_frame|fuzz_proto|fuzz_value ...]" >&2
	exit 2
fi
secs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
build=${FUZZ_BUILD:-/tmp/cohort-fuzz}
fuzzers=${*:-fuzz_frame fuzz_proto fuzz_value}

"$here/build.sh" "$build" || { echo "run.sh: build failed" >&2; exit 2; }

# Inputs that once crashed a fuzzer must not any more.
for f in "$here"/crashes/*-*; do
	[ -f "$f" ] || continue
	name=fuzz_$(basename "$f" | cut -d- -f1)
	[ -x "$build/$name" ] || continue
	if ! "$build/$name" -rss_limit_mb=2048 "$f" >"$build/replay.log" 2>&1; then
		echo "run.sh: regression: $name crashes on $f (log: $build/replay.log)" >&2
		exit 1
	fi
	echo "replayed $(basename "$f") with $name: ok"
done

asan="detect_leaks=1:abort_on_error=0"
if [ "${FUZZ_STRICT_MALLOC:-1}" != 1 ]; then
	asan="$asan:allocator_may_return_null=1"
	asan="$asan:max_allocation_size_mb=${FUZZ_MAX_ALLOC_MB:-1024}"
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}$asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1"

failed=0
summary=()
for f in $fuzzers; do
	name=${f#fuzz_}
	work="$build/run/$name"
	rm -rf "$work"
	mkdir -p "$work/artifacts"
	cp -R "$here/corpus/$name" "$work/corpus"
	echo "== $f: ${secs}s on $(ls "$work/corpus" | wc -l) seeds"
	# shellcheck disable=SC2086
	"$build/$f" -max_total_time="$secs" -print_final_stats=1 \
		-max_len=65536 -timeout=25 -artifact_prefix="$work/artifacts/" \
		${FUZZ_ARGS:-} "$work/corpus" >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" |
		tail -1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$work/log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
	line="$f: execs ${execs:-?} cov ${cov:-?} ft ${ft:-?} corpus ${corp:-?}"
	# slow units are worth a look but are not failures
	slow=$(sed -n 's/.*Test unit written to \(.*slow-unit-.*\)/\1/p' \
		"$work/log")
	found=$(sed -n 's/.*Test unit written to //p' "$work/log" |
		grep -v 'slow-unit-')
	for a in $slow; do
		echo "   note: slow input ($(sed -n \
			's/^stat::slowest_unit_time_sec: *//p' "$work/log") s): $a"
	done
	if [ $rc -ne 0 ] || [ -n "$found" ]; then
		failed=1
		line="$line  FAILED (exit $rc)"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz check failed|==[0-9]+== ERROR: libFuzzer)' \
			"$work/log" | head -5 | sed 's/^/   /'
		for a in $found; do
			echo "   crash input: $a"
			line="$line; input $a"
		done
		echo "   full log: $work/log"
	fi
	echo "   $line"
	summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
	echo "run.sh: a fuzzer found a problem (inputs saved as listed above)" >&2
	exit 1
fi
exit 0
