#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# build.sh - build the libFuzzer targets with clang, outside the source tree.
#
#   tests/fuzz/build.sh [BUILD_DIR]      (default: ${FUZZ_BUILD:-/tmp/cohort-fuzz})
#
# Needs clang and its libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev)
# and the project's libraries (libmsgpack-dev, libjansson-dev, libevent-dev).
# CC, CFLAGS and LDFLAGS add to / override the defaults.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=${1:-${FUZZ_BUILD:-/tmp/cohort-fuzz}}
cc=${CC:-clang}

# UBSan must not just print and carry on: make every report fatal, so
# libFuzzer saves the input.
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-g -O1 -fno-omit-frame-pointer -std=gnu11 -Wall -Wextra \
-Wno-unused-parameter -D_GNU_SOURCE -I$src/include -I$src/src/common \
-I$here $san ${CFLAGS:-}"
libs="-lmsgpackc -ljansson -levent -lm"
lib_sources="frame proto util log value"
fuzzers="fuzz_frame fuzz_proto fuzz_value"

mkdir -p "$out/obj"
objs=
for s in $lib_sources; do
	# instrumented for coverage, but without libFuzzer's main()
	$cc $cflags -fsanitize=fuzzer-no-link -c "$src/src/common/$s.c" \
		-o "$out/obj/$s.o"
	objs="$objs $out/obj/$s.o"
done
for f in $fuzzers; do
	$cc $cflags -fsanitize=fuzzer "$here/$f.c" $objs -o "$out/$f" \
		${LDFLAGS:-} $libs
	echo "built $out/$f"
done
