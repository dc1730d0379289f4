#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t1003-cluster-fail: 'cohort cluster start' failures are reported clearly,
# exit non-zero, and leave no process and no connection file behind:
# mpiexec failing, engines that never register (or only some of them), an
# mpiexec that cannot be run, a controller that cannot listen, a daemon
# supervisor killed while starting, bad options.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_unset_ompi_env

cd "$T" || exit 1

# start_fails WHAT MAXSECS ARGS...: run 'cohort cluster start ARGS...',
# expect a non-zero exit within MAXSECS; leaves the output in $out and the
# controller's pid (from "controller listening on ... (pid N)") in $cpid.
start_fails() {
	local what=$1 max=$2 t0 secs rc
	shift 2
	t0=$(now)
	out=$(cohort cluster start "$@" 2>&1)
	rc=$?
	secs=$(elapsed "$t0")
	printf '%s\n' "$out" | sed "s/^/#   $what: /"
	check "[$what] cluster start exits non-zero (rc $rc)" test "$rc" -ne 0
	check "[$what] it fails within $max s (took $secs s)" lt "$secs" "$max"
	cpid=$(printf '%s\n' "$out" | sed -n 's/.*controller listening on .* (pid \([0-9]*\))$/\1/p')
	track_pids "$cpid"
}

# left_nothing WHAT [PID...]: the pids (and the controller) are gone, no
# process names the profile, no connection files, status says not running.
left_nothing() {
	local what=$1 out2
	shift
	if wait_for 10 all_gone "$@"; then
		ok "[$what] nothing left running (pids: $*)"
	else
		fail "[$what] nothing left running"
		log "still alive: $(alive_of "$@")"
	fi
	expect_eq "[$what] no process names this profile" "$(profile_procs)" ""
	check "[$what] no connection files left ($(conn_files))" no_conn_files
	out2=$(cohort cluster status 2>&1)
	expect_eq "[$what] cluster status exits 1" "$?" 1
	expect_match "[$what] status says no cluster running" "$out2" 'no cluster running'
}

# (a) mpiexec exits at once with status 1.
start_fails false 15 -n 2 --mpiexec /bin/false --timeout 10
expect_match "[false] it names mpiexec's exit" "$out" \
	'mpiexec exited \(status 1\) before the engines registered'
check "[false] it printed the controller's pid" test -n "$cpid"
left_nothing false "$cpid"

# ... and the same with --daemon: the error reaches the waiting command.
start_fails false-daemon 15 -n 2 --daemon --mpiexec /bin/false --timeout 10
expect_match "[false-daemon] it names mpiexec's exit" "$out" \
	'mpiexec exited \(status 1\) before the engines registered'
check "[false-daemon] it printed the controller's pid" test -n "$cpid"
left_nothing false-daemon "$cpid"

# (b) engines that never arrive: an "mpiexec" that only sleeps.
cat >"$T/fake-mpiexec" <<EOF
#!/bin/sh
echo "\$\$" > "$T/fake.pid"
echo "\$*" > "$T/fake.args"
exec sleep 600
EOF
chmod +x "$T/fake-mpiexec"
start_fails never 15 -n 2 --mpiexec "$T/fake-mpiexec" --timeout 3
expect_match "[never] it says which ranks are missing" "$out" \
	'only 0 of 2 engines registered within 3 s; missing ranks 0-1'
spid=$(cat "$T/fake.pid" 2>/dev/null)
track_pids "$spid"
check "[never] the fake mpiexec ran" test -n "$spid"
expect_match "[never] mpiexec got -n 2 cohort-engine --mpi --profile" \
	"$(cat "$T/fake.args" 2>/dev/null)" \
	"^-n 2 $COHORT_BIN/cohort-engine --mpi --profile $PROFILE\$"
left_nothing never "$cpid" "$spid"

# ... only some of them: an "mpiexec" that starts 1 of the 3 ranks asked
# for. Rank 0 of 1 registers as engine 0; ranks 1 and 2 are missing.
cat >"$T/short-mpiexec" <<EOF
#!/bin/sh
echo "\$\$" > "$T/short.pid"
echo "\$*" > "$T/short.args"
shift 3   # --oversubscribe -n 3 (3 engines on 2 cores)
exec mpiexec -n 1 "\$@"
EOF
chmod +x "$T/short-mpiexec"
if [ "$(nproc)" -lt 3 ]; then
	start_fails some 20 -n 3 --mpiexec "$T/short-mpiexec" --timeout 4
	expect_match "[some] it passes --oversubscribe (3 engines on $(nproc) cores)" \
		"$(cat "$T/short.args" 2>/dev/null)" '^--oversubscribe -n 3 '
	expect_match "[some] it says ranks 1-2 are missing" "$out" \
		'only 1 of 3 engines registered within 4 s; missing ranks 1-2'
	spid=$(cat "$T/short.pid" 2>/dev/null)
	track_pids "$spid"
	left_nothing some "$cpid" "$spid"
else
	ok "# SKIP partial registration needs fewer than 3 cores"
fi

# (c) an mpiexec that does not exist: the child cannot exec it (status 127)
# and the tail of engines.log says why.
start_fails missing 15 -n 2 --mpiexec /nonexistent/mpiexec --timeout 10
expect_match "[missing] it reports mpiexec's exit status 127" "$out" \
	'mpiexec exited \(status 127\) before the engines registered'
expect_match "[missing] it shows engines.log saying it cannot run it" "$out" \
	'cannot run /nonexistent/mpiexec: No such file or directory'
left_nothing missing "$cpid"

# (d) mpiexec refusing an argument: Open MPI's own message is shown.
start_fails bad-arg 15 -n 2 --mpiexec-args "--no-such-mpiexec-option" --timeout 10
expect_match "[bad-arg] it reports mpiexec's exit" "$out" \
	'mpiexec exited \(status [1-9][0-9]*\) before the engines registered'
expect_match "[bad-arg] it shows mpiexec's complaint" "$out" 'no-such-mpiexec-option'
left_nothing bad-arg "$cpid"

# (e) a controller that cannot listen (an address not on this host). It
# exits at once, so the failure must be prompt: the supervisor has nothing
# left to stop (the controller was already reaped).
start_fails bad-ip 3 -n 2 --ip 192.0.2.1 --timeout 10
expect_match "[bad-ip] it says the controller exited" "$out" \
	'the controller exited before it was ready \(status [1-9][0-9]*\)'
expect_match "[bad-ip] it shows the controller's reason" "$out" \
	'cannot listen on 192\.0\.2\.1'
left_nothing bad-ip

# (f) a --daemon start whose supervisor dies (SIGKILL) while it waits for
# the engines: the waiting command must notice at once (its pipe from the
# supervisor is closed) and fail, not wait on; 'cluster stop' then stops
# what the supervisor left.
cat >"$T/sleep-mpiexec" <<EOF
#!/bin/sh
echo "\$\$" > "$T/sleep.pid"
exec sleep 600
EOF
chmod +x "$T/sleep-mpiexec"
rm -f "$T/sleep.pid"
timeout 40 "$COHORT_BIN/cohort" cluster start -n 2 --daemon \
	--mpiexec "$T/sleep-mpiexec" --timeout 30 >"$T/killed.out" 2>&1 &
waiting=$!
track_pids "$waiting"
if wait_for 20 test -s "$T/sleep.pid" && wait_for 5 test -f "$PROFILE/cluster.json"; then
	mapfile -t pids < <(cluster_pids)
	spid=$(cat "$T/sleep.pid")
	track_pids "${pids[@]}" "$spid"
	log "pids: ${pids[*]} sleep $spid"
	kill -s KILL "${pids[0]}"
	if wait_for 5 eval '! pid_alive "$waiting"'; then
		wait "$waiting"
		rc=$?
		ok "[killed] the waiting command returns within 5 s of its supervisor's death"
		check "[killed] ... with a non-zero status (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
	else
		fail "[killed] the waiting command returns within 5 s of its supervisor's death"
		log "its output so far:"
		sed 's/^/#   | /' "$T/killed.out"
	fi
	out=$(cohort cluster stop 2>&1)
	expect_eq "[killed] cluster stop exits 0" "$?" 0
	if wait_for 10 eval '! pid_alive "$waiting"'; then
		wait "$waiting" 2>/dev/null
	fi
	left_nothing killed "${pids[@]:1}" "$spid" "$waiting"
else
	fail "[killed] the daemon's supervisor started the fake mpiexec"
fi

# (g) bad options are usage errors (exit 2) and start nothing.
for args in "-n 0" "-n x" "--timeout 0" "--timeout -1" "extra-arg"; do
	# shellcheck disable=SC2086
	out=$(cohort cluster start $args 2>&1)
	expect_eq "[usage] cluster start $args exits 2" "$?" 2
	expect_match "[usage] cluster start $args prints the usage" "$out" '^usage: '
done
left_nothing usage
