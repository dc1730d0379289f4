#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t6004-escalating-timeout: px --timeout S --on-timeout interrupt|term|kill
# takes each step in turn on the late engines only, and reports per engine
# what ended it.
. "$(dirname "$0")/lib.sh"

start_controller
start_engines 4

elapsed() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
field() { echo "$1" | json_get "[e$2 for e in d['engines']]"; }

# interrupt: ordinary code stops with KeyboardInterrupt; the report says
# it answered after the interrupt; the job lives on.
out=$(cohort px --json --timeout 1 --on-timeout interrupt --grace 5 \
	'import time; from mpi4py import MPI
if MPI.COMM_WORLD.rank >= 2: time.sleep(60)')
expect_eq "interrupt: statuses" "$(field "$out" '["status"]')" "['ok', 'ok', 'error', 'error']"
expect_eq "interrupt: the late ones raised KeyboardInterrupt" \
	"$(field "$out" '["error"]["ename"] if e["error"] else ""')" "['', '', 'KeyboardInterrupt', 'KeyboardInterrupt']"
expect_eq "interrupt: the report says what they got" \
	"$(field "$out" '["escalation"]')" "[None, None, 'interrupt', 'interrupt']"
text=$(cohort px --timeout 1 --on-timeout interrupt 'import time; time.sleep(60) if MPI.COMM_WORLD.rank == 1 else None')
expect_match "interrupt: text output names the step" "$text" \
	"\[1\] timed out: answered after the interrupt"
out=$(cohort px --json --timeout 30 'MPI.COMM_WORLD.allreduce(1)')
expect_eq "the job still works after interrupts" "$(field "$out" '["result"]')" "['4', '4', '4', '4']"

# interrupt only, on code that ignores SIGINT: reported as still running.
out=$(cohort px --json --targets 3 --timeout 1 --on-timeout interrupt --grace 1 \
	'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(4); signal.signal(signal.SIGINT, signal.default_int_handler)')
expect_match "interrupt ignored: reported as still running" \
	"$(field "$out" '["error"]["evalue"]')" "no answer within 1 s; interrupted, and still running 1 s later"

# kill: code that ignores SIGINT and SIGTERM on ranks 1 and 3 gets all three
# steps; those ranks are reported killed, the others answered normally.
check "wait for engine 3 to be idle" cohort px --targets 3 --timeout 30 'pass'
t0=$(date +%s.%N)
out=$(cohort px --json --timeout 1 --on-timeout kill --grace 1 'import signal, time
from mpi4py import MPI
if MPI.COMM_WORLD.rank in (1, 3):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
"done"')
took=$(elapsed "$t0")
check "kill: px returns well before the code would end ($took s)" \
	awk -v t="$took" 'BEGIN { exit !(t < 30) }'
expect_eq "kill: statuses" "$(field "$out" '["status"]')" "['ok', 'timeout', 'ok', 'timeout']"
expect_eq "kill: the late ranks are reported killed" \
	"$(field "$out" '["error"]["ename"] if e["error"] else None')" "[None, 'Killed', None, 'Killed']"
expect_eq "kill: the step each got" "$(field "$out" '["escalation"]')" "[None, 'kill', None, 'kill']"
expect_match "kill: the report tells the whole story" \
	"$(echo "$out" | json_get 'd["engines"][1]["error"]["evalue"]')" \
	"no answer within 1 s; the interrupt and SIGTERM had no effect \(1 s each\); killed by SIGKILL"
wait_for 30 live_engines_are 0 || fail "the killed job's engines did not all go (Open MPI ends the job)"

# term: a new job; code that ignores only SIGINT ends with SIGTERM.
start_engines 2
out=$(cohort px --json --timeout 1 --on-timeout term --grace 1 \
	'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)')
expect_eq "term: both reported terminated" \
	"$(field "$out" '["error"]["ename"]')" "['Terminated', 'Terminated']"
expect_match "term: the story" \
	"$(echo "$out" | json_get 'd["engines"][0]["error"]["evalue"]')" \
	"the interrupt had no effect in 1 s; terminated by SIGTERM"

out=$(cohort px --on-timeout kill 'pass' 2>&1)
expect_match "--on-timeout needs --timeout" "$out" "need --timeout"
out=$(cohort px --timeout 1 --on-timeout later 'pass' 2>&1)
expect_match "a bad step is refused" "$out" "bad --on-timeout 'later' \(interrupt, term or kill\)"
