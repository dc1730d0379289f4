#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3001-shell-history: the shell's history outlives it. A line entered in
# one run comes back with Up in the next; the file sits in the profile
# directory, mode 600, and keeps at most 1000 lines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shell-lib.sh"

start_controller
start_engines 4
HIST="$PROFILE/history"

# Run 1: a distinctive command, then %quit.
shell_start
shell_run '%px history_marker_4711 = 17 * 3'
shell_send '%quit'
check "run 1 quits" shell_wait_exit 10
check "the history file exists" test -f "$HIST"
expect_eq "the history file is mode 600" "$(stat -c %a "$HIST")" 600
expect_match "the file holds the command" "$(cat "$HIST")" 'history_marker_4711'

# Run 2: Up brings back %quit, Up again the command; Enter runs it.
shell_start
shell_keys Up
check "Up recalls the last line (%quit)" wait_screen '^\[all\] cohort> %quit$' 10
shell_keys Up
check "Up again recalls the run-1 command" \
	wait_screen '^\[all\] cohort> %px history_marker_4711 = 17 \* 3$' 10
shell_mark
shell_keys Enter
shell_wait_prompt 30
shell_run '%px history_marker_4711'
expect_match "the recalled line ran" "$OUT" '^\[0-3\] Out\[[0-9]+\]: 51$'
shell_keys C-d
check "Ctrl-D leaves the shell" shell_wait_exit 10
expect_eq "Ctrl-D: exit status 0" "${SHELL_RC:-}" 0

# Bounded: a file of 1500 lines keeps its last 1000 (plus its header line).
{
	echo '_HiStOrY_V2_'
	for i in $(seq 1 1500); do echo "%px old_$i"; done
} >"$HIST"
chmod 644 "$HIST"
shell_start
shell_run '%px newest_line = 1'
shell_send '%quit'
check "run 3 quits" shell_wait_exit 10
expect_eq "1000 entries kept" "$(($(wc -l <"$HIST") - 1))" 1000
expect_eq "the oldest go first (1500 + 2 new, last 1000 kept)" "$(sed -n 2p "$HIST")" '%px\040old_503'
expect_match "the newest are kept" "$(tail -n 2 "$HIST")" 'newest_line'
expect_eq "the mode is put back to 600" "$(stat -c %a "$HIST")" 600
