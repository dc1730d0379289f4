#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t0005-local-socket: the controller also listens on a Unix-domain socket in
# the profile directory (mode 0600), named in both connection files; engines
# and clients on this machine speak the same mutually authenticated TLS
# through it, fall back to TCP when it is gone, and it is refused to peers
# without TLS or the right certificate just as TCP is. A stale socket left
# by a killed controller does not stop the next one; a clean stop removes it.
. "$(dirname "$0")/lib.sh"

RAWPEER="$COHORT_SRC/tests/integration/rawpeer.py"
rawpeer() { timeout 30 $PYTHON "$RAWPEER" "$@" 2>&1; }
SOCK=$PROFILE/controller.sock

start_controller
expect_eq "client.json names the socket" \
	"$(json_get 'd["socket"]' <"$PROFILE/client.json")" "$SOCK"
expect_eq "engine.json names the socket" \
	"$(json_get 'd["socket"]' <"$PROFILE/engine.json")" "$SOCK"
expect_eq "it is a socket only its owner may use" \
	"$(stat -c '%F %a' "$SOCK")" "socket 600"
expect_match "the controller says where it listens" \
	"$(cat "$T/controller.log")" "and on the local socket $SOCK"

start_engines 2
expect_match "engines connected through the socket" \
	"$(grep -c 'connected from local:' "$T/controller.log")" '^[2-9]'

# A profile whose TCP address leads nowhere: only the socket can work.
mkdir -p "$T/only-local"
$PYTHON - "$PROFILE/client.json" "$T/only-local/client.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["port"] = 1
json.dump(d, open(sys.argv[2], "w"))
PY
out=$(cohort px --profile "$T/only-local" --json 'x = 6 * 7; x' 2>&1)
expect_eq "a client reaches the engines through the socket alone" \
	"$(echo "$out" | json_get '[e["result"] for e in d["engines"]]' 2>&1)" \
	"['42', '42']"
$PYTHON - "$T/only-local/client.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["socket"]
json.dump(d, open(sys.argv[1], "w"))
PY
out=$(cohort px --profile "$T/only-local" 1 2>&1)
expect_match "without the socket that profile's TCP address is refused" \
	"$out" "refused"

# No TLS, or no client certificate, on the socket: refused and logged, as
# on TCP; the engines keep working.
out=$(rawpeer plain "$SOCK" 0)
expect_eq "plain bytes on the socket: closed" "$out" closed
out=$(rawpeer tls "$SOCK" 0 --ca "$PROFILE/ca.pem" --send-hello --probe 3)
expect_match "no client certificate on the socket: refused" "$out" \
	'^handshake-failed: .*CERTIFICATE_REQUIRED'
expect_eq "engines still answer" \
	"$(cohort px --json 1 | json_get '[e["status"] for e in d["engines"]]')" \
	"['ok', 'ok']"

# The socket removed: clients use TCP.
rm -f "$SOCK"
expect_eq "with the socket gone, clients use TCP" \
	"$(cohort px --json 'x' | json_get '[e["result"] for e in d["engines"]]')" \
	"['42', '42']"

# A controller killed outright leaves its socket; the next one replaces it.
kill -KILL "$CONTROLLER_PID"
wait "$CONTROLLER_PID" 2>/dev/null
kill_tree "$MPIEXEC_PID" KILL
wait "$MPIEXEC_PID" 2>/dev/null
# (Its socket was removed above: leave a stale one as a crash would.)
$PYTHON -c "import socket; socket.socket(socket.AF_UNIX).bind('$SOCK')"
expect_eq "a stale socket file is in place" \
	"$(stat -c '%F' "$SOCK" 2>&1)" "socket"
rm -f "$PROFILE/client.json" "$PROFILE/engine.json"
start_controller
expect_eq "a stale socket file does not stop the next controller" \
	"$(stat -c '%F' "$SOCK")" "socket"
cp "$PROFILE/client.json" "$T/only-local/client.json"
$PYTHON - "$T/only-local/client.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["port"] = 1
json.dump(d, open(sys.argv[1], "w"))
PY
expect_eq "and its socket answers" \
	"$(cohort engines --profile "$T/only-local" --json | json_get 'len(d["engines"])')" 0

kill -TERM "$CONTROLLER_PID"
wait "$CONTROLLER_PID" 2>/dev/null
expect_eq "a clean stop removes the socket" "$(test -e "$SOCK" && echo left || echo gone)" gone
