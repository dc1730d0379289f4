#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3001-shell-basic: cohort shell on a real terminal (tmux) against 4 MPI
# engines: %px, collapse, %autopx, a %%px cell, %targets and the prompt,
# plain lines, %help; and the same shell without a terminal (a pipe).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shell-lib.sh"

start_controller
start_engines 4

njobs() {
	cohort jobs --json | json_get 'len(d["jobs"])'
}

# --- without a terminal: lines from a pipe, no prompts, no history ---------
out=$(printf '%%px 6*7\n' | cohort shell 2>&1)
rc=$?
expect_eq "piped: exit status 0" "$rc" 0
expect_eq "piped: %px prints the collapsed result, nothing else" "$out" \
	"[0-3] Out[1]: 42"
check "piped: no history file written" test ! -e "$PROFILE/history"
# --- on a terminal ----------------------------------------------------------
shell_start
expect_match "prompt shows the target set" "$(screen)" '^\[all\] cohort> ?$'

# (1) %px output appears; (5) four equal results collapse to one line.
shell_run '%px 6*7'
expect_match "%px: the collapsed line" "$OUT" '^\[0-3\] Out\[[0-9]+\]: 42$'
expect_eq "%px: four equal results, one line" "$(echo "$OUT" | wc -l)" 1
shell_run '%px print("hello from", __import__("os").environ["OMPI_COMM_WORLD_RANK"])'
for r in 0 1 2 3; do
	expect_match "%px: engine $r prints" "$OUT" "^\[stdout:$r\] hello from $r\$"
done
shell_run '%px import os'
shell_run '%px -1'
expect_match "%px: code starting with '-' is code" "$OUT" '^\[0-3\] Out\[[0-9]+\]: -1$'

# (2) %autopx: two plain lines run on the engines, then off again.
shell_run '%autopx'
expect_match "%autopx enabled" "$OUT" '^%autopx enabled$'
expect_match "prompt shows px" "$(screen | tail -n 1)" '^\[all\] px> ?$'
shell_run 'auto_a = 20 + int(os.environ["OMPI_COMM_WORLD_RANK"])'
expect_eq "autopx: an assignment prints nothing" "$OUT" ""
shell_run 'auto_a * 2'
for r in 0 1 2 3; do
	expect_match "autopx: engine $r computes its value" "$OUT" \
		"^\[$r\] Out\[[0-9]+\]: $((2 * (20 + r)))\$"
done
shell_run '%autopx'
expect_match "%autopx disabled" "$OUT" '^%autopx disabled$'
expect_match "prompt back to cohort" "$(screen | tail -n 1)" '^\[all\] cohort> ?$'
shell_run 'auto_a'
expect_match "after %autopx, plain lines are commands again" "$OUT" \
	'unknown command: auto_a'

# (3) a %%px cell of three lines ending with a blank line is one request.
before=$(njobs)
shell_run '%%px' 'def twice(v):' '    return 2 * v' 'twice(21)' ''
after=$(njobs)
expect_match "%%px: continuation prompts" "$OUT" '^\.\.\. def twice\(v\):$'
expect_match "%%px: the cell's result" "$OUT" '^\[0-3\] Out\[[0-9]+\]: 42$'
expect_eq "%%px: the cell ran as one job" "$((after - before))" 1
shell_run '%%px' 'cell_b = twice(2)' 'cell_b + 1' '%%'
expect_match "%%px: a line with only %% ends the cell" "$OUT" \
	'^\[0-3\] Out\[[0-9]+\]: 5$'

# (8) %targets changes the prompt and the engines that answer.
shell_run '%targets 1,3'
expect_match "%targets 1,3: the prompt" "$(screen | tail -n 1)" '^\[1,3\] cohort> ?$'
shell_run '%px os.environ["OMPI_COMM_WORLD_RANK"]'
expect_match "%targets 1,3: engine 1 answers" "$OUT" "^\[1\] Out\[[0-9]+\]: '1'\$"
expect_match "%targets 1,3: engine 3 answers" "$OUT" "^\[3\] Out\[[0-9]+\]: '3'\$"
expect_eq "%targets 1,3: only they answer" \
	"$(echo "$OUT" | grep -c '^\[[0-9,-]*\] Out')" 2
shell_run '%push tv=7'
expect_eq "%push prints nothing when all succeed" "$OUT" ""
shell_run 'pull tv'
expect_eq "plain 'pull' uses the target set" "$OUT" "$(printf '[1] tv = 7\n[3] tv = 7')"
shell_run 'pull --targets 1 tv'
expect_eq "a line's own --targets wins" "$OUT" "[1] tv = 7"
shell_run '%targets 0,1,2'
expect_match "%targets 0,1,2 shows as 0-2" "$(screen | tail -n 1)" '^\[0-2\] cohort> ?$'
shell_run '%targets 1-'
expect_match "a bad target set is refused" "$OUT" 'cohort: error: .*1-'
expect_match "and the prompt keeps the old set" "$(screen | tail -n 1)" '^\[0-2\] cohort> ?$'
shell_run '%targets'
expect_eq "%targets alone prints the set" "$OUT" "0-2"
shell_run '%targets all'
expect_match "%targets all" "$(screen | tail -n 1)" '^\[all\] cohort> ?$'

# Plain lines and %NAME run the cohort commands.
shell_run 'engines'
expect_eq "plain 'engines' lists 4 engines" "$(echo "$OUT" | grep -c ' idle ')" 4
shell_run '%engines'
expect_eq "%engines too" "$(echo "$OUT" | grep -c ' idle ')" 4
shell_run '%jobs'
expect_match "%jobs lists the jobs" "$OUT" 'execute +0-3'
shell_run 'nosuchcommand'
expect_match "an unknown command says so" "$OUT" 'unknown command: nosuchcommand'
shell_run 'p'
expect_match "an ambiguous prefix says so" "$OUT" 'ambiguous command: p'
shell_run '%help'
for w in '%px CODE' '%%px' '%autopx' '%targets' '%push' '%pull' '%scatter' \
	'%gather' '%engines' '%jobs' '%result' '%interrupt' '%help' '%quit'; do
	expect_match "%help lists $w" "$OUT" "^  $w"
done
expect_match "%help gives the plain-line rule" "$OUT" 'Lines without a % run as cohort commands'

shell_send '%quit'
check "%quit leaves the shell" shell_wait_exit 10
expect_eq "exit status 0" "${SHELL_RC:-}" 0

# --- without a terminal again: target sets (these put engine 2 ahead) ---
out=$(printf '%%targets 2\n%%%%px\nv = 5\nv + 1\n%%%%\nengines --json\n' |
	cohort shell 2>&1)
expect_match "piped: a cell on the target set" "$out" '^\[2\] Out\[[0-9]+\]: 6$'
expect_match "piped: plain line runs a cohort command" "$out" '"engines": \['
out=$(printf '%%px 1/0\n' | cohort shell 2>&1)
rc=$?
expect_eq "piped: exit status is the last command's" "$rc" 1
expect_match "piped: the error is shown" "$out" 'ZeroDivisionError'
out=$(printf '%%targets 3-1\n%%targets\n' | cohort shell 2>&1)
expect_match "piped: a bad target set is refused" "$out" 'end is before the start'
expect_match "piped: the set stays all" "$out" '^all$'
