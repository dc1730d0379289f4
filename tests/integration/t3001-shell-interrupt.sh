#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3001-shell-interrupt: Ctrl-C in the shell. While %px runs, it
# interrupts the engines' code (each reports KeyboardInterrupt) and the
# shell lives on; a second Ctrl-C within a second stops waiting; at the
# prompt, Ctrl-C clears the line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shell-lib.sh"

start_controller
start_engines 4

# all_busy: every engine is running code.
all_busy() {
	test "$(cohort engines --json | json_get 'sum(e["state"] == "busy" for e in d["engines"])')" = 4
}
all_idle() {
	test "$(cohort engines --json | json_get 'sum(e["state"] == "idle" for e in d["engines"])')" = 4
}

shell_start

# (7) an endless loop, interrupted from the terminal.
shell_mark
shell_send '%px while True: pass'
check "the loop runs on all 4 engines" wait_for 30 all_busy
shell_keys C-c
check "the prompt returns after Ctrl-C" shell_wait_prompt 30
# The terminal echoes ^C where the cursor is.
OUT=$(printf '%s\n' "$OUT" | sed 's/^^C//')
ki=$(printf '%s\n' "$OUT" | sed -n 's/^\[\([0-9,-]*\)\] KeyboardInterrupt.*/\1/p' | tr '\n' ',')
expect_eq "every engine reports KeyboardInterrupt (engine sets: $ki)" \
	"$($PYTHON -c "
s = set()
for part in '$ki'.replace(',,', ',').strip(',').split(','):
    a, _, b = part.partition('-')
    s.update(range(int(a), int(b or a) + 1))
print(sorted(s))")" "[0, 1, 2, 3]"
expect_match "collapsed into one report" "$OUT" '^\[0-3\] KeyboardInterrupt'
expect_match "with the traceback" "$OUT" 'while True: pass'
check "the engines are idle again" wait_for 10 all_idle
shell_run '%px 1+1'
expect_match "the next %px runs" "$OUT" '^\[0-3\] Out\[[0-9]+\]: 2$'

# Ctrl-C at the prompt clears the line and keeps the shell.
shell_type '%px this would be a SyntaxError'
check "the line is typed" wait_screen 'cohort> %px this would be a SyntaxError$' 10
shell_mark
shell_keys C-c
check "Ctrl-C at the prompt gives a new prompt" shell_wait_prompt 10
shell_run '%px 3+4'
expect_eq "the cleared line did not run" "$OUT" "$(printf '[0-3] Out[%s]: 7' \
	"$(printf '%s\n' "$OUT" | sed -n 's/.*Out\[\([0-9]*\)\].*/\1/p')")"

# Ctrl-C inside a %%px cell drops the cell.
shell_send '%%px' 'dropped_cell = 1'
check "the cell is being typed" wait_screen '^\.\.\. dropped_cell = 1$' 10
shell_mark
shell_keys C-c
check "Ctrl-C in a cell gives the main prompt" shell_wait_prompt 10
shell_run '%px "dropped_cell" in globals()'
expect_match "the dropped cell did not run" "$OUT" '^\[0-3\] Out\[[0-9]+\]: False$'

# Code that ignores KeyboardInterrupt: the second Ctrl-C stops waiting.
shell_mark
shell_send '%%px' 'import time' 'for _ in range(30):' \
	'    try: time.sleep(0.1)' '    except KeyboardInterrupt: pass' ''
check "the stubborn loop runs" wait_for 30 all_busy
shell_keys C-c
sleep 0.2 # the second Ctrl-C must come within a second of the first
shell_keys C-c
check "the prompt returns after two Ctrl-C" shell_wait_prompt 10
expect_match "the shell says it stopped waiting" "$OUT" 'stopped waiting'
check "the abandoned code finishes on its own" wait_for 30 all_idle
shell_run '%px 2+2'
expect_match "and the shell goes on" "$OUT" '^\[0-3\] Out\[[0-9]+\]: 4$'

shell_send '%quit'
check "%quit leaves the shell" shell_wait_exit 10
expect_eq "the shell was never killed by SIGINT (exit status 0)" "${SHELL_RC:-}" 0
