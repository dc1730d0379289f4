#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t0003-tls-refusal: the controller refuses every peer that is not TLS 1.3
# with a certificate of the right role signed by the profile's CA, logs why,
# and keeps serving its engines and clients.
. "$(dirname "$0")/lib.sh"

RAWPEER="$COHORT_SRC/tests/integration/rawpeer.py"
rawpeer() { timeout 30 $PYTHON "$RAWPEER" "$@" 2>&1; }

# Controller log lines written since the last log_mark.
log_mark() { MARK=$(wc -l <"$T/controller.log"); }
log_since() { tail -n +$((MARK + 1)) "$T/controller.log"; }
log_has() { log_since | grep -Eq -- "$1"; }
# expect_log DESCRIPTION REGEX: the line may trail the peer's view by a bit.
expect_log() {
	if wait_for 5 log_has "$2"; then
		ok "$1"
	else
		fail "$1"
		printf '#   no controller log line matches /%s/ since line %d:\n' "$2" "$MARK"
		log_since | sed 's/^/#   | /' | tail -20
	fi
}

# Both engines still answer px.
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
CA=$PROFILE/ca.pem
# rawpeer's --probe: how long to watch for the TLS 1.3 alert that refuses a
# client certificate (it comes after the client's handshake is done) before
# sending the hello. Cases refused that way pass a long one; the alert ends it.
tls() { rawpeer tls 127.0.0.1 "$port" --ca "$CA" "$@"; }

# (a) Plain TCP: no TLS, no service.
log_mark
out=$(rawpeer plain 127.0.0.1 "$port")
expect_eq "plain TCP connection is closed" "$out" closed
expect_log "plain TCP: logged as a TLS handshake error" \
	'closed before hello: TLS error during handshake: .*wrong version number'
expect_serving "after plain TCP"

# (b) A client certificate from another profile's CA.
OTHER=$T/other
"$COHORT_BIN/cohort-controller" --profile "$OTHER" >"$T/other-controller.log" 2>&1 &
other_pid=$!
PIDS+=("$other_pid")
check "second profile created" wait_for 30 test -f "$OTHER/client.json"
kill -TERM "$other_pid"
wait "$other_pid" 2>/dev/null
check "other profile has its own CA" bash -c "! cmp -s '$OTHER/ca.pem' '$CA'"

log_mark
out=$(tls --cert "$OTHER/client.pem" --key "$OTHER/client-key.pem" --send-hello --probe 3)
expect_match "another CA's client cert: handshake refused" "$out" '^handshake-failed: '
expect_match "  ... with an unknown-CA alert" "$out" 'UNKNOWN_CA'
expect_log "another CA's client cert: logged" \
	'closed before hello: TLS error during handshake: .*certificate verify failed'

# The real CLI, with a connection file pointing at the other profile's cert.
THIRD=$T/third
mkdir -m 700 "$THIRD"
write_client_json() { # CA CERT KEY
	(umask 077 && cat >"$THIRD/client.json" <<-EOF
	{
	  "version": 1,
	  "ip": "127.0.0.1",
	  "port": $port,
	  "ca": "$1",
	  "cert": "$2",
	  "key": "$3",
	  "controller_pid": $CONTROLLER_PID
	}
	EOF
	)
}
write_client_json "$CA" "$OTHER/client.pem" "$OTHER/client-key.pem"
log_mark
out=$(cohort --profile "$THIRD" px 1 2>&1)
rc=$?
check "CLI with another CA's cert exits non-zero (rc $rc)" test "$rc" -ne 0
expect_match "  ... and says it could not use the controller" "$out" \
	"^cohort: error: .*127\.0\.0\.1:$port.*(TLS|refused this client)"
expect_log "CLI with another CA's cert: controller logs certificate verify failed" \
	'closed before hello: TLS error during handshake: .*certificate verify failed'
# The same connection file with this profile's own certificate works, so
# the refusal above was the certificate's doing.
write_client_json "$CA" "$PROFILE/client.pem" "$PROFILE/client-key.pem"
expect_match "CLI with the third profile's file and the right cert works" \
	"$(cohort --profile "$THIRD" px --targets 0 1 2>&1)" '^\[0\] Out\[[0-9]+\]: 1$'
# And the client checks the controller too: trusting another CA, it refuses.
write_client_json "$OTHER/ca.pem" "$PROFILE/client.pem" "$PROFILE/client-key.pem"
out=$(cohort --profile "$THIRD" px 1 2>&1)
rc=$?
check "CLI trusting another CA refuses the controller (rc $rc)" test "$rc" -ne 0
expect_match "  ... saying the certificate did not verify" "$out" \
	'^cohort: error: .*certificate verify failed'
expect_serving "after other-profile certificates"

# (c) TLS without a client certificate.
log_mark
out=$(tls --send-hello --probe 3)
expect_match "no client certificate: refused" "$out" '^handshake-failed: .*CERTIFICATE_REQUIRED'
expect_log "no client certificate: logged" \
	'closed before hello: TLS error during handshake: .*peer did not return a certificate'

# (d) A self-signed client certificate with the right name.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=cohort-client -days 1 -keyout "$T/self-key.pem" \
	-out "$T/self.pem" >"$T/openssl.log" 2>&1
check "self-signed certificate made" test -s "$T/self.pem"
log_mark
out=$(tls --cert "$T/self.pem" --key "$T/self-key.pem" --send-hello --probe 3)
expect_match "self-signed client certificate: refused" "$out" '^handshake-failed: .*UNKNOWN_CA'
expect_log "self-signed client certificate: logged" \
	'closed before hello: TLS error during handshake: .*certificate verify failed'

# (e) TLS 1.2, even with a good certificate.
log_mark
out=$(tls --cert "$PROFILE/client.pem" --key "$PROFILE/client-key.pem" --tls12 --send-hello)
expect_match "TLS 1.2: refused" "$out" '^handshake-failed: .*PROTOCOL_VERSION'
expect_log "TLS 1.2: logged" \
	'closed before hello: TLS error during handshake: .*unsupported protocol'

# (f) A certificate of the wrong role: the engine's, saying hello as a client,
# and the client's, saying hello as an engine. TLS passes; hello does not.
log_mark
out=$(tls --cert "$PROFILE/engine.pem" --key "$PROFILE/engine-key.pem" --send-hello)
expect_match "engine cert as a client: refused with the reason" "$out" \
	"^refused: certificate 'cohort-engine' cannot be used by a client \(needs 'cohort-client'\)$"
expect_match "  ... and the connection closed" "$out" '^closed$'
expect_log "engine cert as a client: logged" \
	"refusing peer 127\.0\.0\.1:[0-9]+: certificate 'cohort-engine' cannot be used"
log_mark
out=$(tls --cert "$PROFILE/client.pem" --key "$PROFILE/client-key.pem" --send-hello --role engine)
expect_match "client cert as an engine: refused" "$out" "^refused: certificate 'cohort-client' cannot be used by an engine"
expect_match "  ... and the connection closed" "$out" '^closed$'
check "no third engine registered" live_engines_are 2

# A good certificate still gets in the raw way too (the helper is honest).
out=$(tls --cert "$PROFILE/client.pem" --key "$PROFILE/client-key.pem" --send-hello --wait 1)
expect_match "good client certificate: welcome" "$out" '^welcome$'

# After all that: both engines answer and the controller lives.
out=$(cohort px 'print(1)' 2>&1)
expect_eq "px 'print(1)' prints on both engines" \
	"$(echo "$out" | grep -c '^\[stdout:[01]\] 1$')" 2
check "controller is alive" kill -0 "$CONTROLLER_PID"
check "both engines still live" live_engines_are 2
check "controller logged no error-level line" \
	bash -c "! grep -Eq 'cohort-controller\[[0-9]+\] error:' '$T/controller.log'"
