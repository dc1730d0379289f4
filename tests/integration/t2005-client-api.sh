#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t2005-client-api: examples/client/client_demo.c drives 4 engines through
# libcohort: execute, push, pull, scatter, gather.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

out=$(timeout 120 "$COHORT_BIN/cohort-client-demo" "$PROFILE")
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
expect_eq "the demo exits 0" "$rc" 0
expect_match "execute reached 4 engines" "$out" '^execute: 4 of 4 engines ok$'
expect_match "each engine summed the pushed array" "$out" '^sum of a: 4 of 4 engines ok$'
expect_match "the pulled array is the pushed one, bit for bit" "$out" '^pull a: 4 of 4 engines ok$'
expect_match "scatter parts are 3,3,2,2" "$out" "$(printf '\\[0\\] Out\\[[0-9]+\\]: 3')"
expect_match "gather returns the scattered list" "$out" '^gather b: 4 of 4 engines ok$'
expect_match "all steps ok" "$out" '^all steps ok$'
expect_eq "the engines hold the parts" \
	"$(cohort px --json 'b' | json_get '[e["result"] for e in d["engines"]]')" \
	"['[0, 1, 4]', '[9, 16, 25]', '[36, 49]', '[64, 81]']"
