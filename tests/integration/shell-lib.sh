# SPDX-License-Identifier: BSD-3-Clause
# shell-lib.sh - drive 'cohort shell' through a real terminal (tmux).
#
# Sourced after lib.sh. Each test gets its own tmux server (-L, a unique
# socket name), killed on exit, pass or fail; on failure the last screen
# is printed with the logs.
#
#   shell_start [ARGS...]    start 'cohort shell ARGS' in a 200x50 pane
#   shell_type TEXT          type TEXT (literally), no Enter
#   shell_keys KEY...        send tmux keys (Enter, C-c, Up, Tab, ...)
#   shell_run LINE...        type each line + Enter, wait for the next
#                            prompt; $OUT is what the command printed
#   shell_send LINE...       type each line + Enter, do not wait
#   shell_wait_prompt [S]    wait until a new prompt follows the last mark
#   screen                   the whole pane, scrollback included
#   wait_screen REGEX [S]    poll the screen until a line matches
#   shell_wait_exit [S]      wait until the shell has exited; $SHELL_RC

command -v tmux >/dev/null || { echo "1..0 # SKIP tmux not installed"; exit 0; }

TMUX_SOCKET="cohort-$TEST_NAME-$$"
# The socket lives in the scratch directory, removed with it.
export TMUX_TMPDIR="$T"
# A prompt line: "[all] cohort> ", "[1,3] px> " (a cell's lines are "... ").
PROMPT_RE='^\[[^]]+\] (cohort|px)>( |$)'
# A prompt with nothing typed after it (capture-pane drops the space).
PROMPT_BARE='^\[[^]]+\] (cohort|px)> ?$'

tm() {
	tmux -L "$TMUX_SOCKET" "$@"
}

shell_cleanup() {
	local rc=$?
	if [ "$NFAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
		screen >"$T/screen.log" 2>/dev/null
	fi
	tm kill-server >/dev/null 2>&1
	(exit "$rc")
	cleanup
}
trap shell_cleanup EXIT

# screen: the pane's text, scrollback included, wrapped lines joined,
# trailing blanks and empty lines dropped (-J keeps the blanks that
# line editing wrote).
screen() {
	tm capture-pane -p -J -S - -t cohort 2>/dev/null |
		sed -e 's/[[:space:]]*$//' |
		sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

screen_lines() {
	screen | wc -l
}

prompts() {
	screen | grep -Ec "$PROMPT_RE"
}

# wait_screen REGEX [SECONDS]: poll until a line of the screen matches.
wait_screen() {
	local re=$1 secs=${2:-20} i
	for ((i = 0; i < secs * 10; i++)); do
		if screen | grep -Eq -- "$re"; then return 0; fi
		sleep 0.1
	done
	return 1
}

shell_start() {
	local args="" a cmd
	for a in "$@"; do
		args+=" $(printf '%q' "$a")"
	done
	# tmux sometimes never reaps a pane's process (pane_dead_status
	# stays empty), so a wrapper records the exit status. HOME keeps a
	# user's ~/.editrc out.
	rm -f "$T/shell.rc"
	cat >"$T/run-shell.sh" <<-EOS
	export HOME='$T' COHORT_DIR='$COHORT_DIR'
	'$COHORT_BIN/cohort' shell$args
	echo \$? >'$T/shell.rc'
	EOS
	cmd="exec bash '$T/run-shell.sh'"
	if tm has-session -t cohort 2>/dev/null; then
		# A later run reuses the pane: a new server could race with
		# the exit of the old one.
		tm clear-history -t cohort \; respawn-pane -k -t cohort "$cmd"
	else
		# remain-on-exit keeps the pane (and its last screen) after
		# the shell quits.
		tm -f /dev/null new-session -d -s cohort -x 200 -y 50 "$cmd" \; \
			set-option -g remain-on-exit on
	fi
	MARK_PROMPTS=0
	MARK_LINES=0
	if ! shell_wait_prompt 20; then
		fail "the shell shows no prompt"
		exit 1
	fi
}

shell_type() {
	tm send-keys -t cohort -l -- "$1"
}

shell_keys() {
	tm send-keys -t cohort "$@"
}

# Remember where the screen is, so shell_wait_prompt and $OUT see only
# what comes next.
shell_mark() {
	MARK_PROMPTS=$(prompts)
	MARK_LINES=$(screen_lines)
}

# shell_wait_prompt [SECONDS]: wait for a prompt after the mark, with
# nothing typed after it yet; set OUT to the lines in between (the
# command's output: the command itself is on the marked prompt line).
shell_wait_prompt() {
	local secs=${1:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		if [ "$(prompts)" -gt "$MARK_PROMPTS" ] &&
			screen | tail -n 1 | grep -Eq "$PROMPT_BARE"; then
			OUT=$(screen | sed -n "$((MARK_LINES + 1)),\$p" | sed '$d')
			return 0
		fi
		sleep 0.1
	done
	OUT=$(screen | sed -n "$((MARK_LINES + 1)),\$p")
	return 1
}

# shell_send LINE...: type the lines as a user would, each after its
# prompt: keys typed before the shell reads them would be echoed by the
# terminal, out of place.
shell_send() {
	local line n first=1 i
	for line in "$@"; do
		if [ "$first" = 0 ]; then
			for ((i = 0; i < 100; i++)); do
				if [ "$(screen_lines)" -gt "$n" ] &&
					screen | tail -n 1 | grep -Eq "^\.\.\. ?\$|$PROMPT_BARE"; then
					break
				fi
				sleep 0.1
			done
		fi
		first=0
		n=$(screen_lines)
		shell_type "$line"
		shell_keys Enter
	done
}

# shell_run LINE...: the lines of one command (several for a cell).
shell_run() {
	shell_mark
	shell_send "$@"
	if ! shell_wait_prompt 60; then
		fail "no prompt after: $*"
		printf '%s\n' "$OUT" | sed 's/^/#   | /' | tail -20
		return 1
	fi
}

# shell_wait_exit [SECONDS]: wait for the shell to quit; SHELL_RC is its
# exit status.
shell_wait_exit() {
	local secs=${1:-20} i
	for ((i = 0; i < secs * 10; i++)); do
		if [ -s "$T/shell.rc" ]; then
			SHELL_RC=$(cat "$T/shell.rc")
			return 0
		fi
		sleep 0.1
	done
	return 1
}
