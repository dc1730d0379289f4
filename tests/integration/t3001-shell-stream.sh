#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t3001-shell-stream: output streams into the shell's terminal while the
# engines run: a cell printing a line every 0.2 s for 2 s shows its first
# line long before the request ends and the prompt returns.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shell-lib.sh"

start_controller
start_engines 4

now() { date +%s.%N; }
less() { $PYTHON -c "import sys; sys.exit(not ($1 < $2))"; }

shell_start
shell_run '%px import time'
expect_eq "%px import time prints nothing" "$OUT" ""

shell_mark
shell_send '%%px' 'for i in range(10):' '    print(i, flush=True)' \
	'    time.sleep(0.2)' ''
t0=$(now)
check "the first line appears while the cell runs" \
	wait_screen '^\[stdout:[0-3]\] 0$' 20
t1=$(now)
snap=$(screen)
expect_eq "no prompt yet when the first line shows" \
	"$(printf '%s\n' "$snap" | grep -Ec "$PROMPT_RE")" "$MARK_PROMPTS"
if printf '%s\n' "$snap" | grep -Eq '^\[stdout:[0-3]\] 9$'; then
	fail "the last line is not there yet when the first shows"
else
	ok "the last line is not there yet when the first shows"
fi
check "the prompt returns" shell_wait_prompt 30
t2=$(now)
log "first line after $($PYTHON -c "print('%.2f' % ($t1 - $t0))") s, prompt after $($PYTHON -c "print('%.2f' % ($t2 - $t0))") s"
check "the prompt came >= 1 s after the first line" less "$t1 + 1.0" "$t2"
for r in 0 1 2 3; do
	expect_eq "engine $r streamed its 10 lines in order" \
		"$(printf '%s\n' "$OUT" | sed -n "s/^\[stdout:$r\] //p" | tr '\n' ' ')" \
		"0 1 2 3 4 5 6 7 8 9 "
done
expect_eq "streamed lines are not printed again at the end" \
	"$(printf '%s\n' "$OUT" | grep -c '^\[stdout:')" 40
