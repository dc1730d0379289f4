#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3105-client-dies-mid-push: a client that leaves while its chunked push
# is half sent does not leave the engines busy: the controller tells them
# to drop the partial value, counts their tasks as ended, and they serve
# the next request; the name was never bound.
. "$(dirname "$0")/lib.sh"

RAWPEER="$COHORT_SRC/tests/integration/rawpeer.py"

start_controller
start_engines 2
port=$(json_get 'd["port"]' <"$PROFILE/client.json")

states() {
	cohort engines --json | json_get '",".join(e["state"] for e in d["engines"])'
}
states_are() { test "$(states)" = "$1"; }

out=$(timeout 30 $PYTHON "$RAWPEER" tls 127.0.0.1 "$port" --ca "$PROFILE/ca.pem" \
	--cert "$PROFILE/client.pem" --key "$PROFILE/client-key.pem" \
	--send-hello --then partial-push --wait 1 2>&1)
expect_match "the client sent 1 MiB of a 16 MiB push and left" "$out" '^welcome'
if wait_for 10 states_are "idle,idle"; then
	ok "both engines are idle again"
else
	fail "both engines are idle again (states: $(states))"
fi
expect_eq "the job is over" \
	"$(cohort jobs --json | json_get '[j["state"] for j in d["jobs"] if j["op"] == "push"]')" \
	"['done']"
expect_eq "the engines serve the next request; the name was never bound" \
	"$(cohort px --json '"partial" in globals()' | json_get '[e["result"] for e in d["engines"]]')" \
	"['False', 'False']"
