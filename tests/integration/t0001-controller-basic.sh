#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t0001-controller-basic: profile creation, connection files, clean shutdown.
. "$(dirname "$0")/lib.sh"

out=$(cohort engines 2>&1)
expect_match "no controller: clear message" "$out" "no controller running for profile"

start_controller
for f in ca.pem ca-key.pem controller.pem controller-key.pem engine.pem \
	engine-key.pem client.pem client-key.pem engine.json client.json; do
	expect_eq "$f is mode 600" "$(stat -c %a "$PROFILE/$f")" 600
done
expect_eq "profile directory is mode 700" "$(stat -c %a "$PROFILE")" 700
port=$(json_get 'd["port"]' <"$PROFILE/client.json")
check "controller listens on 127.0.0.1:$port" \
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"

out=$(cohort engines)
expect_match "engines lists none" "$out" "no engines registered"
out=$(cohort px 1 2>&1)
expect_match "px without engines is a clear error" "$out" "no engines are registered"

kill -TERM "$CONTROLLER_PID"
check "controller exits 0 on SIGTERM" wait "$CONTROLLER_PID"
check "connection files removed" test ! -e "$PROFILE/client.json" -a ! -e "$PROFILE/engine.json"
expect_match "shutdown logged" "$(cat "$T/controller.log")" "shutting down"

# Refuses to start on a profile that others can read.
chmod 644 "$PROFILE/ca-key.pem"
out=$("$COHORT_BIN/cohort-controller" 2>&1)
expect_match "refuses a readable key, says the fix" "$out" "chmod 600 .*ca-key.pem"
chmod 600 "$PROFILE/ca-key.pem"
