#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t0004-bad-frames: a malformed frame closes that one connection with a
# logged "protocol error" and its reason; the controller keeps serving the
# engines and the other clients.
. "$(dirname "$0")/lib.sh"

RAWPEER="$COHORT_SRC/tests/integration/rawpeer.py"
rawpeer() { timeout 30 $PYTHON "$RAWPEER" "$@" 2>&1; }

log_mark() { MARK=$(wc -l <"$T/controller.log"); }
log_since() { tail -n +$((MARK + 1)) "$T/controller.log"; }
log_has() { log_since | grep -Eq -- "$1"; }
expect_log() {
	if wait_for 5 log_has "$2"; then
		ok "$1"
	else
		fail "$1"
		printf '#   no controller log line matches /%s/ since line %d:\n' "$2" "$MARK"
		log_since | sed 's/^/#   | /' | tail -20
	fi
}

expect_serving() {
	local out
	out=$(cohort px --json 1 2>&1)
	expect_eq "$1: px 1 answers from both engines" \
		"$(echo "$out" | json_get '[(e["id"], e["status"]) for e in d["engines"]]' 2>&1)" \
		"[(0, 'ok'), (1, 'ok')]"
}

start_controller
start_engines 2
port=$(json_get 'd["port"]' <"$PROFILE/client.json")
client() {
	rawpeer tls 127.0.0.1 "$port" --ca "$PROFILE/ca.pem" \
		--cert "$PROFILE/client.pem" --key "$PROFILE/client-key.pem" "$@"
}

# A peer that completes TLS, then sends half a frame and no hello, is
# dropped by the hello timeout (10 s). It runs in the background meanwhile.
client --then truncated --wait 20 >"$T/stalled.out" &
stalled=$!
PIDS+=("$stalled")

# After the hello: each bad frame closes the connection, with its reason.
while IFS='|' read -r kind reason; do
	log_mark
	out=$(client --send-hello --then "$kind")
	expect_match "$kind: hello welcomed first" "$out" '^welcome$'
	expect_match "$kind: connection closed" "$out" '^closed$'
	expect_log "$kind: protocol error logged ($reason)" \
		"client 127\.0\.0\.1:[0-9]+ gone: protocol error: $reason"
	expect_serving "after $kind"
done <<'EOF'
garbage|header is not valid msgpack .*\(bytes: "
oversize|frame payload of 1099511627776 bytes exceeds the limit of 67108864
oversize-header|frame header of 1073741824 bytes exceeds the limit of 16777216
empty-header|frame with an empty header
unknown-type|unknown message type 'bogus'
wrong-type|field 'id' must be an integer
deep|header is not valid msgpack \(value nested too deeply
huge-claim|header is not valid msgpack \(.*\)
EOF

# Before the hello, right after the handshake: closed too.
log_mark
out=$(client --then garbage)
expect_eq "garbage before hello: connection closed" "$out" closed
expect_log "garbage before hello: protocol error logged" \
	'connection from peer 127\.0\.0\.1:[0-9]+ closed before hello: protocol error: header is not valid msgpack'
log_mark
out=$(client --then oversize)
expect_eq "oversize before hello: connection closed" "$out" closed
expect_log "oversize before hello: protocol error logged" \
	'closed before hello: protocol error: frame payload of 1099511627776 bytes exceeds the limit'
expect_serving "after bad frames before hello"

# A truncated frame after the hello: the controller waits for the rest (a
# client has no idle timeout) and serves others meanwhile.
log_mark
client --send-hello --then truncated --wait 4 >"$T/truncated.out" &
truncated=$!
check "truncated: the peer was welcomed" \
	wait_for 10 grep -qx welcome "$T/truncated.out"
expect_serving "while a truncated frame is pending"
out=$(cohort px 'print(1)' 2>&1)
expect_eq "px 'print(1)' prints on both engines meanwhile" \
	"$(echo "$out" | grep -c '^\[stdout:[01]\] 1$')" 2
wait "$truncated"
expect_eq "truncated: connection still open after 4 s" \
	"$(cat "$T/truncated.out")" "$(printf 'welcome\nopen')"
check "truncated: no protocol error logged for it" \
	bash -c "! tail -n +$((MARK + 1)) '$T/controller.log' | grep -q 'protocol error'"
expect_log "truncated: the peer's close is noticed" \
	'client 127\.0\.0\.1:[0-9]+ gone: connection closed by peer'

# The stalled pre-hello peer has been dropped by now (or is about to be).
wait "$stalled"
expect_eq "truncated frame before hello: closed by the hello timeout" \
	"$(cat "$T/stalled.out")" closed
MARK=0
expect_log "truncated frame before hello: timeout logged" \
	'closed before hello: timed out waiting for the peer'

expect_serving "at the end"
check "controller is alive" kill -0 "$CONTROLLER_PID"
check "both engines still live" live_engines_are 2
check "controller logged no error-level line" \
	bash -c "! grep -Eq 'cohort-controller\[[0-9]+\] error:' '$T/controller.log'"
