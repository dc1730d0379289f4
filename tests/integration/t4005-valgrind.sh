#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t4005-valgrind: the controller under valgrind's memcheck, through every
# path a session takes: engines, px, push and pull of an 8 MB array (the
# chunked path, over 4 MiB), scatter and gather, an error, a timeout, an
# interrupt (cohort interrupt and --interrupt-on-timeout), --nonblock with
# result and jobs (and eviction from a small job table), a client killed
# while a value streams to it, an engine that dies, certificates that are
# refused, a garbage frame. Then SIGTERM: valgrind must exit 0, i.e. no
# memory error and no definitely or indirectly lost block. Its summary is
# printed. About 1-2 min (the controller runs ~20-50x slower under
# valgrind).
. "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null 2>&1; then
	ok "# SKIP valgrind is not installed"
	exit 0
fi

RAWPEER="$COHORT_SRC/tests/integration/rawpeer.py"
SLOWPULL="$COHORT_SRC/tests/integration/slowpull.py"
rawpeer() { timeout 60 $PYTHON "$RAWPEER" "$@" 2>&1; }
# Under valgrind everything is slower: a longer leash than lib.sh's 60 s.
cohort() { timeout 180 "$COHORT_BIN/cohort" "$@"; }
# wait_secs SECONDS COMMAND...: like lib.sh's wait_for, but bounded by the
# wall clock: a probe through the controller takes ~0.5 s under valgrind.
wait_secs() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" 2>/dev/null && return 0
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}
px_results() {
	cohort px --json "$@" 2>&1 |
		json_get '[(e["id"], e["status"], e.get("result") or e.get("error") and e["error"].get("ename")) for e in d["engines"]]' 2>&1
}

COHORT_WRAP="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 --log-file=$T/valgrind.log"
# A small job table, so that eviction runs too; a lenient heartbeat, for
# a controller slowed down by valgrind.
start_controller --jobs 5 --heartbeat-tolerance 15
start_engines 2
port=$(json_get 'd["port"]' <"$PROFILE/client.json")
check "the controller runs under valgrind" \
	grep -q 'Memcheck, a memory error detector' "$T/valgrind.log"

# --- engines, px -----------------------------------------------------------
expect_eq "cohort engines lists 2" \
	"$(cohort engines --json | json_get '[(e["id"], e["state"]) for e in d["engines"]]')" \
	"[(0, 'idle'), (1, 'idle')]"
expect_eq "px 1+1" "$(px_results 1+1)" "[(0, 'ok', '2'), (1, 'ok', '2')]"
out=$(cohort px 'print("hello")' 2>&1)
expect_match "px print" "$out" '^\[stdout:0-1\] hello$|^\[stdout:0\] hello$'

# --- push / pull of an 8 MB array (chunked) --------------------------------
$PYTHON -c "
import numpy as np, sys
np.save(sys.argv[1], np.arange(1 << 20, dtype=np.float64))" "$T/a.npy"
out=$(cohort push a=@"$T/a.npy" 2>&1)
check "push of an 8 MiB array to both engines" test $? -eq 0
expect_eq "  ... arrived whole" \
	"$(px_results 'float(a.sum()), a.nbytes')" \
	"[(0, 'ok', '(549755289600.0, 8388608)'), (1, 'ok', '(549755289600.0, 8388608)')]"
cohort pull --out "$T/b.npy" a >/dev/null 2>&1
check "pull of it from both engines" test -s "$T/b.0.npy" -a -s "$T/b.1.npy"
check "  ... byte for byte" cmp -s "$T/b.0.npy" "$T/b.1.npy"
check "  ... same values" $PYTHON -c "
import numpy as np, sys
sys.exit(not (np.load(sys.argv[1]) == np.load(sys.argv[2])).all())" "$T/a.npy" "$T/b.0.npy"
out=$(cohort pull --targets 0 --json nosuchname 2>&1)
expect_match "pull of an unknown name is an error" "$out" 'NameError|KeyError|nosuchname'

# --- scatter / gather --------------------------------------------------------
cohort scatter x @"$T/a.npy" >/dev/null 2>&1
check "scatter of the 8 MiB array" test $? -eq 0
expect_eq "  ... half each" "$(px_results 'len(x)')" \
	"[(0, 'ok', '524288'), (1, 'ok', '524288')]"
cohort gather --out "$T/g.npy" x >/dev/null 2>&1
check "gather it back" $PYTHON -c "
import numpy as np, sys
sys.exit(not (np.load(sys.argv[1]) == np.load(sys.argv[2])).all())" "$T/a.npy" "$T/g.npy"
cohort scatter --targets 0-1 y '[1, 2, 3]' >/dev/null 2>&1
expect_eq "scatter of a small list" "$(px_results 'y')" \
	"[(0, 'ok', '[1, 2]'), (1, 'ok', '[3]')]"
expect_eq "gather of the list" "$(cohort gather --json y 2>&1 | json_get d)" \
	"[1, 2, 3]"

# --- an error, a timeout, interrupts ---------------------------------------
expect_eq "px 1/0 is an error on both" "$(px_results 1/0)" \
	"[(0, 'error', 'ZeroDivisionError'), (1, 'error', 'ZeroDivisionError')]"
expect_eq "px --timeout 1 of a 3 s sleep times out" \
	"$(px_results --timeout 1 'import time; time.sleep(3)')" \
	"[(0, 'timeout', 'Timeout'), (1, 'timeout', 'Timeout')]"
sleep 3 # the late replies come in and are dropped
expect_eq "px --timeout 1 --interrupt-on-timeout of a 30 s sleep" \
	"$(px_results --timeout 1 --interrupt-on-timeout --grace 20 'import time; time.sleep(30)')" \
	"[(0, 'error', 'KeyboardInterrupt'), (1, 'error', 'KeyboardInterrupt')]"
out=$(cohort px --nonblock 'import time; time.sleep(30)' 2>&1)
job=$(echo "$out" | sed -n 's/^job \([0-9][0-9]*\) submitted.*/\1/p')
check "px --nonblock gives a job id ($job)" test -n "$job"
sleep 1
cohort interrupt >/dev/null 2>&1
check "cohort interrupt" test $? -eq 0
interrupted() {
	cohort result --json "$job" 2>/dev/null |
		json_get '[e["error"]["ename"] for e in d["engines"]]' |
		grep -qx "\['KeyboardInterrupt', 'KeyboardInterrupt'\]"
}
check "  ... the job reports KeyboardInterrupt on both" wait_secs 60 interrupted

# --- nonblock, result, jobs, eviction --------------------------------------
for i in 1 2 3 4 5 6 7; do
	out=$(cohort px --nonblock "$i * 100" 2>&1)
	last=$(echo "$out" | sed -n 's/^job \([0-9][0-9]*\) submitted.*/\1/p')
done
done_job() { cohort result "$last" >/dev/null 2>&1; }
check "nonblock job $last finishes" wait_secs 60 done_job
expect_match "cohort result of it" "$(cohort result "$last" 2>&1)" 'Out\[[0-9]+\]: 700$'
expect_match "cohort jobs lists it" "$(cohort jobs 2>&1)" "^$last +done +execute"
expect_match "an old job was evicted" "$(cohort result "$job" 2>&1)" "evicted"

# --- a client killed while a value streams to it ---------------------------
cohort px --targets 0 'import numpy as np; big = np.ones(8 << 20)' >/dev/null 2>&1
$PYTHON "$SLOWPULL" --profile "$PROFILE" --name big --target 0 --sleep 60 \
	>"$T/slowpull.out" 2>&1 &
slow=$!
PIDS+=("$slow")
check "a slow client pulls a 64 MiB value and stops reading" \
	wait_secs 60 grep -qx sent "$T/slowpull.out"
sleep 5
kill -KILL "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
expect_eq "engine 0 answers once the slow client is gone" \
	"$(px_results --targets 0 1)" "[(0, 'ok', '1')]"

# --- an engine that dies -----------------------------------------------------
"$COHORT_BIN/cohort-engine" >"$T/engine-extra.log" 2>&1 &
extra=$!
PIDS+=("$extra")
if wait_secs 60 live_engines_are 3; then
	ok "a third (non-MPI) engine registers"
else
	fail "a third (non-MPI) engine registers"
	log "  engine $extra: $(ps -o stat=,wchan:32=,etime= -p "$extra" 2>&1)"
	if command -v gdb >/dev/null 2>&1; then
		gdb -p "$extra" -batch -ex 'thread apply all bt' 2>&1 |
			grep -E '^(#|Thread)' | head -40 | sed 's/^/#   /'
	fi
	grep -E 'engine|peer' "$T/controller.log" | tail -n 10 | sed 's/^/#   /'
fi
xid=$(cohort engines --json | json_get '[e["id"] for e in d["engines"] if e["pid"] == '"$extra"'][0]')
check "  ... as engine $xid" test -n "$xid"
cohort px --nonblock 'import time; time.sleep(30)' >/dev/null 2>&1
sleep 1
{ kill -KILL "$extra"; wait "$extra"; } 2>/dev/null
check "  ... and is seen dead when killed" wait_secs 60 live_engines_are 2
cohort interrupt --targets 0-1 >/dev/null 2>&1
expect_eq "px to 0,1 and the dead engine: it is reported dead, the others answer" \
	"$(px_results --targets "0,1,$xid" 1)" \
	"[(0, 'ok', '1'), (1, 'ok', '1'), ($xid, 'dead', 'EngineDead')]"

# --- refused certificates, garbage -------------------------------------------
CA=$PROFILE/ca.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=cohort-client -days 1 -keyout "$T/self-key.pem" \
	-out "$T/self.pem" >"$T/openssl.log" 2>&1
out=$(rawpeer tls 127.0.0.1 "$port" --ca "$CA" --cert "$T/self.pem" \
	--key "$T/self-key.pem" --send-hello --probe 10)
expect_match "self-signed client certificate: refused" "$out" '^handshake-failed: '
out=$(rawpeer tls 127.0.0.1 "$port" --ca "$CA" --send-hello --probe 10)
expect_match "no client certificate: refused" "$out" '^handshake-failed: '
out=$(rawpeer tls 127.0.0.1 "$port" --ca "$CA" --cert "$PROFILE/engine.pem" \
	--key "$PROFILE/engine-key.pem" --send-hello --wait 30)
expect_match "engine certificate as a client: refused" "$out" '^refused: '
out=$(rawpeer plain 127.0.0.1 "$port" --wait 30)
expect_eq "plain TCP: closed" "$out" closed
out=$(rawpeer tls 127.0.0.1 "$port" --ca "$CA" --cert "$PROFILE/client.pem" \
	--key "$PROFILE/client-key.pem" --send-hello --then garbage --wait 30)
expect_eq "garbage frame after hello: closed" "$out" "$(printf 'welcome\nclosed')"
out=$(rawpeer tls 127.0.0.1 "$port" --ca "$CA" --cert "$PROFILE/client.pem" \
	--key "$PROFILE/client-key.pem" --then oversize --wait 30)
expect_eq "oversize frame before hello: closed" "$out" closed
expect_eq "px 1+1 still answers" "$(px_results --targets 0-1 1+1)" \
	"[(0, 'ok', '2'), (1, 'ok', '2')]"

# --- stop: SIGTERM, and valgrind's verdict ---------------------------------
kill -TERM "$CONTROLLER_PID"
t0=$SECONDS
wait "$CONTROLLER_PID"
rc=$?
log "controller (valgrind) exited with status $rc, $((SECONDS - t0)) s after SIGTERM"
grep -E '(ERROR SUMMARY|in use at exit|total heap usage|definitely lost|indirectly lost|possibly lost|still reachable|suppressed):|All heap blocks' \
	"$T/valgrind.log" | sed 's/^==[0-9]*== */# valgrind: /'
expect_eq "valgrind exit status 0 (no errors, no definite/indirect leaks)" "$rc" 0
expect_match "valgrind: ERROR SUMMARY: 0 errors" "$(cat "$T/valgrind.log")" \
	'ERROR SUMMARY: 0 errors from 0 contexts'
if [ "$rc" -ne 0 ]; then
	# The first records, for the report.
	grep -vE '^==[0-9]+== *$' "$T/valgrind.log" | sed -n '/HEAP SUMMARY/,$p' |
		head -150 | sed 's/^/#   /'
	grep -nE 'Invalid|uninitialised|Mismatched' "$T/valgrind.log" | head -20 |
		sed 's/^/#   /'
fi
