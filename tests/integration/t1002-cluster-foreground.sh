#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t1002-cluster-foreground: 'cohort cluster start -n 2' without --daemon stays
# in the foreground until a signal; SIGINT (Ctrl-C), SIGTERM and SIGHUP, and
# 'cohort cluster stop' from another shell, each stop the whole cluster and
# the command exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_unset_ompi_env

cd "$COHORT_SRC/examples/psum" || exit 1

# round HOW: start in the foreground, stop it with HOW (INT, TERM, HUP,
# INTGRP = SIGINT to its process group, or 'stop'), check that it exits 0
# and leaves nothing.
round() {
	local how=$1 fg rc pids out i
	local outf="$T/fg-$how.out"

	log "---- foreground cluster stopped by $how ----"
	if [ "$how" = INTGRP ]; then
		# Like Ctrl-C in a terminal: SIGINT to the whole foreground
		# process group, so the command must lead its own group.
		setsid "$COHORT_BIN/cohort" cluster start -n 2 >"$outf" 2>&1 &
	else
		"$COHORT_BIN/cohort" cluster start -n 2 >"$outf" 2>&1 &
	fi
	fg=$!
	track_pids "$fg"
	if ! wait_for 60 status_shows_up 2; then
		fail "[$how] foreground cluster shows 2/2 up within 60 s"
		sed 's/^/#   | /' "$outf"
		cp "$PROFILE/controller.log" "$T/controller.log" 2>/dev/null
		cp "$PROFILE/engines.log" "$T/engines.log" 2>/dev/null
		exit 1
	fi
	ok "[$how] foreground cluster shows 2/2 up"
	check "[$how] the foreground command is still running" pid_alive "$fg"
	# Wait for the ready banner: it follows the last registration.
	wait_for 10 grep -q '^Cluster ready' "$outf"
	out=$(cat "$outf")
	expect_match "[$how] it prints 'Cluster ready'" "$out" \
		'^Cluster ready: 2 engines \(ranks 0-1\) on 127\.0\.0\.1:[0-9]+'
	expect_match "[$how] it says Ctrl-C stops it" "$out" 'stop: +Ctrl-C, or cohort cluster stop'
	if [ "$(nproc)" -ge 2 ]; then
		check "[$how] 2 engines on $(nproc) cores: no --oversubscribe" \
			eval '! grep -q oversubscribe "$outf"'
	fi

	mapfile -t pids < <(cluster_pids)
	track_pids "${pids[@]}"
	log "pids: ${pids[*]}"
	expect_eq "[$how] 5 pids recorded (supervisor, controller, mpiexec, 2 engines)" \
		"${#pids[@]}" 5
	expect_eq "[$how] the supervisor is the foreground command" "${pids[0]}" "$fg"
	expect_eq "[$how] all recorded pids are alive" "$(alive_of "${pids[@]}")" "${pids[*]}"
	expect_eq "[$how] px works" \
		"$(cohort px --json 'import os; os.getpid()' | json_get '[int(e["result"]) for e in d["engines"]]')" \
		"[${pids[3]}, ${pids[4]}]"

	if [ "$how" = stop ]; then
		out=$(cohort cluster stop 2>&1)
		expect_eq "[$how] cluster stop exits 0" "$?" 0
	elif [ "$how" = INTGRP ]; then
		kill -s INT -- "-$fg"
	else
		kill -s "$how" "$fg"
	fi
	if wait_for 20 eval '! pid_alive "$fg"'; then
		wait "$fg"
		rc=$?
		expect_eq "[$how] the foreground command exits 0" "$rc" 0
	else
		fail "[$how] the foreground command exits within 20 s of SIG$how"
	fi
	out=$(cat "$outf")
	if [ "$how" = stop ]; then
		expect_match "[$how] it reports the signal" "$out" 'cohort: Terminated: stopping the cluster'
	fi
	expect_match "[$how] it says the cluster stopped" "$out" '^cohort: cluster stopped$'
	if wait_for 10 all_gone "${pids[@]}"; then
		ok "[$how] all recorded pids are gone"
	else
		fail "[$how] all recorded pids are gone"
		log "still alive: $(alive_of "${pids[@]}")"
	fi
	expect_eq "[$how] no process names this profile" "$(profile_procs)" ""
	check "[$how] no connection files left ($(conn_files))" no_conn_files
	out=$(cohort cluster status 2>&1)
	expect_eq "[$how] cluster status exits 1" "$?" 1
	expect_match "[$how] status says no cluster running" "$out" 'no cluster running'
}

round INT
expect_match "[INT] SIGINT is reported as Interrupt" "$(cat "$T/fg-INT.out")" \
	'cohort: Interrupt: stopping the cluster'
round TERM
expect_match "[TERM] SIGTERM is reported" "$(cat "$T/fg-TERM.out")" \
	'cohort: Terminated: stopping the cluster'
round HUP
expect_match "[HUP] SIGHUP is reported" "$(cat "$T/fg-HUP.out")" \
	'cohort: Hangup: stopping the cluster'
round INTGRP
expect_match "[INTGRP] SIGINT to the group is reported once" \
	"$(grep -c 'stopping the cluster' "$T/fg-INTGRP.out")" '^1$'
round stop

# A supervisor killed hard (SIGKILL) cannot stop its children: they keep
# running, a new start is refused, and 'cohort cluster stop' stops them
# from the pids in cluster.json.
log "---- foreground supervisor killed with SIGKILL ----"
"$COHORT_BIN/cohort" cluster start -n 2 >"$T/fg-KILL.out" 2>&1 &
fg=$!
track_pids "$fg"
if ! wait_for 60 status_shows_up 2; then
	fail "[KILL] foreground cluster shows 2/2 up within 60 s"
	exit 1
fi
mapfile -t pids < <(cluster_pids)
track_pids "${pids[@]}"
log "pids: ${pids[*]}"
expect_eq "[KILL] 5 pids recorded" "${#pids[@]}" 5
kill -s KILL "$fg"
{ wait "$fg"; } 2>/dev/null
expect_eq "[KILL] the foreground command died of SIGKILL" "$?" 137
sleep 0.5
expect_eq "[KILL] controller, mpiexec and engines survive it" \
	"$(alive_of "${pids[@]:1}")" "${pids[*]:1}"
out=$(cohort cluster start -n 2 --daemon 2>&1)
rc=$?
check "[KILL] a new start is refused (rc $rc)" test "$rc" -ne 0
expect_match "[KILL] because the controller still runs" "$out" \
	"a controller \(pid ${pids[1]}\) is already running"
out=$(cohort cluster stop 2>&1)
expect_eq "[KILL] cluster stop exits 0" "$?" 0
if wait_for 10 all_gone "${pids[@]}"; then
	ok "[KILL] cluster stop stops the orphans"
else
	fail "[KILL] cluster stop stops the orphans"
	log "still alive: $(alive_of "${pids[@]}")"
fi
expect_eq "[KILL] no process names this profile" "$(profile_procs)" ""
check "[KILL] no connection files left ($(conn_files))" no_conn_files
