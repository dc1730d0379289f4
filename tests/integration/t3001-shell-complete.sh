#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3001-shell-complete: TAB in the shell completes commands at the start
# of a line and, inside code, the names defined on the engines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shell-lib.sh"

start_controller
start_engines 4

# line_is REGEX: the line being edited (the last on screen) matches.
line_is() {
	screen | tail -n 1 | grep -Eq -- "$1"
}

shell_start

shell_type '%eng'
shell_keys Tab
check "%eng<TAB> completes to %engines" wait_for 10 line_is '^\[all\] cohort> %engines ?$'
shell_keys C-u

shell_type 'pu'
shell_keys Tab Tab
check "pu<TAB> lists pull and push" wait_screen '^pull +push$' 10
shell_keys C-u

shell_run '%px comp_marker_value = 7'
shell_type '%px comp_mark'
shell_keys Tab
check "%px comp_mark<TAB> completes from the engines' names" \
	wait_for 10 line_is '^\[all\] cohort> %px comp_marker_value$'
shell_mark
shell_keys Enter
check "the completed line runs" shell_wait_prompt 30
expect_match "and its results still collapse (completion ran on every engine)" \
	"$OUT" '^\[0-3\] Out\[[0-9]+\]: 7$'

shell_type '%px zzz_undefined'
shell_keys Tab
sleep 0.5 # nothing should change: give a wrong completion time to show
check "an unknown prefix completes nothing" line_is '^\[all\] cohort> %px zzz_undefined$'
shell_keys C-u

shell_run '%autopx'
shell_type 'comp_marker_value + comp_mark'
shell_keys Tab
check "autopx: the word before the cursor completes" \
	wait_for 10 line_is '^\[all\] px> comp_marker_value \+ comp_marker_value$'
shell_mark
shell_keys Enter
check "autopx: the completed line runs" shell_wait_prompt 30
expect_match "autopx: its result" "$OUT" '^\[0-3\] Out\[[0-9]+\]: 14$'
shell_run '%autopx'

shell_send '%%px' 'if True:'
check "a cell is being typed" wait_screen '^\.\.\. if True:$' 10
shell_keys Tab
shell_type 'print(comp_marker_value * 3)'
check "TAB at the start of a cell line indents" \
	wait_for 10 line_is '^\.\.\.     print\(comp_marker_value \* 3\)$'
shell_mark
shell_keys Enter
shell_send ''
check "the indented cell runs" shell_wait_prompt 30
expect_eq "the indented cell ran on every engine" \
	"$(printf '%s\n' "$OUT" | grep -c '^\[stdout:[0-3]\] 21$')" 4
