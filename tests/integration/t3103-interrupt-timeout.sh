#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3103-interrupt-timeout: cohort interrupt and Ctrl-C stop running code
# (busy loops and blocking system calls) with a KeyboardInterrupt per
# engine; a second Ctrl-C stops waiting; px --timeout reports late engines
# as 'timeout' and leaves their code running unless --interrupt-on-timeout.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

now() { date +%s.%N; }
sub() { $PYTHON -c "print('%.3f' % ($1 - $2))"; }
less() { $PYTHON -c "import sys; sys.exit(not ($1 < $2))"; }

# Each engine (collapsed or not) reports KeyboardInterrupt.
all_keyboard_interrupt() {
	local text=$1
	printf '%s\n' "$text" | grep -qE '^\[0-3\] KeyboardInterrupt' && return 0
	[ "$(printf '%s\n' "$text" | grep -cE '^\[[0-3]\] KeyboardInterrupt')" = 4 ]
}

# The interrupt command's answer: 4 lines or one collapsed line.
interrupt_sent() {
	local text=$1
	printf '%s\n' "$text" | grep -qE '^\[0-3\] interrupt sent' && return 0
	[ "$(printf '%s\n' "$text" | grep -cE '^\[[0-3]\] interrupt sent')" = 4 ]
}

# --- (a) cohort interrupt stops a busy loop ----------------------------------
t0=$(now)
cohort px 'while True: pass' >"$T/a.txt" 2>&1 &
pxpid=$!
sleep 1
out=$(cohort interrupt 2>&1)
irc=$?
t1=$(now)
expect_eq "(a) cohort interrupt exits 0" "$irc" 0
check "(a) cohort interrupt says 'interrupt sent' for engines 0-3" interrupt_sent "$out"
if wait_pid 5 "$pxpid"; then
	ok "(a) px returns within 5 s of the interrupt ($(sub "$(now)" "$t1") s after it, $(sub "$(now)" "$t0") s after start)"
else
	fail "(a) px returns within 5 s of the interrupt"
fi
expect_eq "(a) interrupted px exits 1" "$wrc" 1
check "(a) every engine reports KeyboardInterrupt" all_keyboard_interrupt "$(cat "$T/a.txt")"
expect_match "(a) the traceback shows the cell" "$(cat "$T/a.txt")" 'File "<cell-[0-9]+>", line 1'
out=$(cohort px '1+1')
expect_match "(a) the engines work after the interrupt" "$out" '^\[0-3\] Out\[[0-9]+\]: 2$'

# An interrupt of idle engines is ignored: it does not hit the next code.
out=$(cohort interrupt 2>&1)
expect_match "idle engines: 'interrupt sent (engine idle)'" "$out" 'interrupt sent \(engine idle\)'
sleep 0.3
out=$(cohort px 'import time; time.sleep(0.3); 3')
expect_match "idle interrupt does not hit the next request" "$out" '^\[0-3\] Out\[[0-9]+\]: 3$'

# --- (b) code blocked in a system call is woken ------------------------------
t0=$(now)
cohort px 'import time; time.sleep(60)' >"$T/b.txt" 2>&1 &
pxpid=$!
sleep 1
out=$(cohort interrupt 2>&1)
check "(b) cohort interrupt says 'interrupt sent'" interrupt_sent "$out"
t1=$(now)
if wait_pid 5 "$pxpid"; then
	ok "(b) px in time.sleep(60) returns within 5 s ($(sub "$(now)" "$t1") s after the interrupt)"
else
	fail "(b) px in time.sleep(60) returns within 5 s of the interrupt"
fi
expect_eq "(b) interrupted px exits 1" "$wrc" 1
check "(b) every engine reports KeyboardInterrupt" all_keyboard_interrupt "$(cat "$T/b.txt")"
expect_match "(b) the engines work after the interrupt" "$(cohort px '1+1')" '^\[0-3\] Out\[[0-9]+\]: 2$'

# --- (c) Ctrl-C (SIGINT to the cohort process) interrupts the engines --------
# Run the binary itself (not under timeout(1)) so the signal reaches it.
"$COHORT_BIN/cohort" px 'while True: pass' >"$T/c.txt" 2>&1 &
pxpid=$!
sleep 1
kill -INT "$pxpid"
t1=$(now)
if wait_pid 5 "$pxpid"; then
	ok "(c) px returns within 5 s of SIGINT ($(sub "$(now)" "$t1") s)"
else
	fail "(c) px returns within 5 s of SIGINT"
fi
expect_eq "(c) px exits 1 after SIGINT" "$wrc" 1
check "(c) it waited for the engines: each reports KeyboardInterrupt" \
	all_keyboard_interrupt "$(cat "$T/c.txt")"
if grep -q 'stopped waiting' "$T/c.txt"; then
	fail "(c) one SIGINT does not stop waiting"
else
	ok "(c) one SIGINT does not stop waiting"
fi
expect_match "(c) the engines work after Ctrl-C" "$(cohort px '1+1')" '^\[0-3\] Out\[[0-9]+\]: 2$'

# --- (d) a second Ctrl-C within a second stops waiting -----------------------
# The code shrugs off the first interrupt (a plain time.sleep(5) would end
# on it before the second SIGINT arrives) and runs about 5 s in all.
STUBBORN='import time
t = time.time() + 5
while time.time() < t:
    try: time.sleep(max(0, t - time.time()))
    except KeyboardInterrupt: print("interrupt ignored", flush=True)
stubborn_done = True
"finished"'
t0=$(now)
"$COHORT_BIN/cohort" px "$STUBBORN" >"$T/d.txt" 2>&1 &
pxpid=$!
sleep 1
kill -INT "$pxpid"
sleep 0.2
kill -INT "$pxpid"
t1=$(now)
if wait_pid 2 "$pxpid"; then
	ok "(d) two SIGINTs: px returns at once ($(sub "$(now)" "$t1") s)"
else
	fail "(d) two SIGINTs: px returns at once (within 2 s)"
fi
expect_eq "(d) px exits 1 after it stopped waiting" "$wrc" 1
expect_match "(d) px says it stopped waiting" "$(cat "$T/d.txt")" 'stopped waiting'
expect_eq "(d) the first SIGINT reached every engine" \
	"$(grep -cE '^\[stdout:[0-3]\] interrupt ignored$' "$T/d.txt")" 4
# The engines finish by themselves: the next request waits for them.
t1=$(now)
out=$(cohort px 'stubborn_done')
dt=$(sub "$(now)" "$t1")
log "(d) px right after the abandoned request took $dt s"
expect_match "(d) the abandoned code ran to its end, then px works" "$out" \
	'^\[0-3\] Out\[[0-9]+\]: True$'
check "(d) ... within the 5 s the code runs (took $dt s after the stop)" less "$dt" 6
out=$(cohort jobs --json)
expect_eq "(d) the abandoned job finished as done" \
	"$(echo "$out" | json_get '[j["state"] for j in d["jobs"] if j["code"].startswith("import time t = ")]')" \
	"['done']"

# --- (e) --timeout: late engines are 'timeout', their code runs on -----------
t0=$(now)
out=$(cohort px --timeout 1 'import time; time.sleep(3); late = 7; 7' 2>&1)
rc=$?
dt=$(sub "$(now)" "$t0")
log "(e) px --timeout 1 returned in $dt s"
check "(e) px --timeout 1 returns in < 2 s (took $dt s)" less "$dt" 2
expect_eq "(e) px --timeout exits 1" "$rc" 1
expect_match "(e) all 4 engines are marked timeout; code keeps running" "$out" \
	'^\[0-3\] timeout: .*keeps running'
t0=$(now)
out=$(cohort px 'time.sleep(0); late')
dt=$(sub "$(now)" "$t0")
log "(e) the next px waited $dt s for the late code"
expect_match "(e) the next px works, the late code ran to its end (late = 7)" "$out" \
	'^\[0-3\] Out\[[0-9]+\]: 7$'
check "(e) ... after waiting for it (took $dt s, >= 1 s)" less 1 "$dt"
out=$(cohort px --json --timeout 1 'import time; time.sleep(3); 7')
expect_eq "(e) --json: status timeout on every engine" \
	"$(echo "$out" | json_get '[e["status"] for e in d["engines"]]')" \
	"['timeout', 'timeout', 'timeout', 'timeout']"
expect_eq "(e) --json: ok is false" "$(echo "$out" | json_get 'd["ok"]')" False
# Let that late code finish before the next part.
cohort px 'time.sleep(0)' >/dev/null

# --- (f) --interrupt-on-timeout: late code is interrupted --------------------
t0=$(now)
out=$(cohort px --timeout 1 --interrupt-on-timeout 'while True: pass' 2>&1)
rc=$?
dt=$(sub "$(now)" "$t0")
log "(f) px --timeout 1 --interrupt-on-timeout returned in $dt s"
check "(f) returns in < 2 s (took $dt s)" less "$dt" 2
expect_eq "(f) exits 1" "$rc" 1
expect_match "(f) all 4 report that they answered after the interrupt" "$out" \
	'^\[0-3\] timed out: answered after the interrupt'
expect_match "(f) ... with their KeyboardInterrupt" "$out" '^\[0-3\] KeyboardInterrupt'
t0=$(now)
out=$(cohort px 1)
dt=$(sub "$(now)" "$t0")
log "(f) px 1 after the interrupted timeout took $dt s"
expect_match "(f) px 1 right after works" "$out" '^\[0-3\] Out\[[0-9]+\]: 1$'
check "(f) ... quickly (< 2 s, took $dt s)" less "$dt" 2

# --- (g) a partial timeout: fast engines answer, slow ones time out ----------
t0=$(now)
out=$(cohort px --timeout 1 'import time; from mpi4py import MPI; time.sleep(3 if MPI.COMM_WORLD.rank >= 2 else 0); MPI.COMM_WORLD.rank' 2>&1)
rc=$?
dt=$(sub "$(now)" "$t0")
check "(g) returns in < 2 s (took $dt s)" less "$dt" 2
expect_eq "(g) exits 1" "$rc" 1
expect_match "(g) rank 0 answers with its result" "$out" '^\[0\] Out\[[0-9]+\]: 0$'
expect_match "(g) rank 1 answers with its result" "$out" '^\[1\] Out\[[0-9]+\]: 1$'
expect_match "(g) ranks 2 and 3 time out" "$out" '^\[2-3\] timeout: .*keeps running'
out=$(cohort jobs --json)
expect_eq "(g) the job is failed with 2 of 4 failed" \
	"$(echo "$out" | json_get '[(j["state"], j["nfailed"]) for j in d["jobs"]][-1]')" \
	"('failed', 2)"
expect_match "(g) engines are usable afterwards" "$(cohort px 'time.sleep(0); 5')" \
	'^\[0-3\] Out\[[0-9]+\]: 5$'
