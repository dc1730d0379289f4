#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t1005-cluster-unprivileged: 'cohort cluster start' as an ordinary user
# (nobody, when the test runs as root): no root notice, every process runs
# as that user, engines report its uid, and stop leaves nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_unset_ompi_env

NB="$T/nb"
NB_PROFILE="$NB/profile_default"
USER_ENV=(env COHORT_DIR="$NB" HOME="$NB" TMPDIR=/tmp
	PATH="$COHORT_BIN:/usr/local/bin:/usr/bin:/bin")

if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null; then
	RUN_AS=nobody
	as_user() { timeout 60 runuser -u nobody -- "${USER_ENV[@]}" "$@"; }
	for prog in cohort cohort-controller cohort-engine; do
		if ! runuser -u nobody -- test -x "$COHORT_BIN/$prog"; then
			echo "ok 1 - # SKIP build dir not accessible to nobody ($COHORT_BIN/$prog)"
			NPASS=1
			exit 0
		fi
	done
	# $T is mktemp's (mode 0700): let nobody through to its own directory.
	chmod 711 "$T"
	install -d -o nobody -m 700 "$NB"
elif [ "$(id -u)" = 0 ]; then
	echo "ok 1 - # SKIP running as root without runuser"
	NPASS=1
	exit 0
else
	RUN_AS=$(id -un)
	as_user() { timeout 60 "${USER_ENV[@]}" "$@"; }
	install -d -m 700 "$NB"
fi
UID_WANT=$(id -u "$RUN_AS")
log "running the cluster as $RUN_AS (uid $UID_WANT), COHORT_DIR=$NB"

# cluster-lib's exit trap and pid listing must act as that user.
CLUSTER_STOP_CMD=(as_user cohort cluster stop)
CLUSTER_ENGINES_CMD=(as_user cohort)

cd "$NB" || exit 1

out=$(as_user cohort cluster start -n 3 --daemon 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/#   start: /'
expect_eq "cluster start -n 3 --daemon as $RUN_AS exits 0" "$rc" 0
expect_match "it prints 'Cluster ready'" "$out" '^Cluster ready: 3 engines \(ranks 0-2\)'
check "its output does not mention root" \
	eval '! printf "%s\n" "$out" | grep -Eqi "as root|RUN_AS_ROOT"'
if [ "$(nproc)" -lt 3 ]; then
	expect_match "3 engines on $(nproc) cores: --oversubscribe" "$out" \
		"3 engines on $(nproc) cores: passing --oversubscribe"
fi
if [ "$rc" -ne 0 ]; then
	for f in controller.log engines.log; do
		cp "$NB_PROFILE/$f" "$T/$f" 2>/dev/null
	done
	exit 1
fi

out=$(as_user cohort cluster status 2>&1)
expect_eq "cluster status as $RUN_AS exits 0" "$?" 0
expect_match "it shows 3/3 up" "$out" 'engines +3/3 up'

mapfile -t pids < <(cluster_pids "$NB_PROFILE")
track_pids "${pids[@]}"
log "pids: ${pids[*]}"
expect_eq "6 pids recorded (supervisor, controller, mpiexec, 3 engines)" "${#pids[@]}" 6
expect_eq "every process runs as $RUN_AS" \
	"$(for p in "${pids[@]}"; do ps -o uid= -p "$p"; done | tr -d ' ' | sort -u)" \
	"$UID_WANT"

out=$(as_user cohort px --json 'import os; (os.getuid(), os.geteuid())')
expect_eq "px as $RUN_AS: 3 engines, all ok" \
	"$(echo "$out" | json_get '[(e["id"], e["status"]) for e in d["engines"]]')" \
	"[(0, 'ok'), (1, 'ok'), (2, 'ok')]"
expect_eq "each engine's uid and euid are $RUN_AS's ($UID_WANT)" \
	"$(echo "$out" | json_get 'sorted({e["result"] for e in d["engines"]})')" \
	"['($UID_WANT, $UID_WANT)']"
out=$(as_user cohort px --json 'import os; os.environ.get("OMPI_ALLOW_RUN_AS_ROOT")')
expect_eq "no OMPI_ALLOW_RUN_AS_ROOT in the engines' environment" \
	"$(echo "$out" | json_get 'sorted({e["result"] for e in d["engines"]})')" "[None]"

expect_eq "the profile directory is $RUN_AS's, mode 700" \
	"$(stat -c '%u %a' "$NB_PROFILE")" "$UID_WANT 700"
expect_eq "its files are $RUN_AS's, mode 600" \
	"$(find "$NB_PROFILE" -type f -printf '%U %m\n' | sort -u)" "$UID_WANT 600"
check "the test's own profile has no cluster" eval '! [ -e "$PROFILE/cluster.json" ]'

out=$(as_user cohort cluster stop 2>&1)
expect_eq "cluster stop as $RUN_AS exits 0" "$?" 0
if wait_for 10 all_gone "${pids[@]}"; then
	ok "all recorded pids are gone after stop"
else
	fail "all recorded pids are gone after stop"
	log "still alive: $(alive_of "${pids[@]}")"
fi
expect_eq "no process names the profile" "$(profile_procs "$NB_PROFILE")" ""
check "no connection files left ($(conn_files "$NB_PROFILE"))" no_conn_files "$NB_PROFILE"
out=$(as_user cohort cluster status 2>&1)
expect_eq "cluster status exits 1 after stop" "$?" 1
expect_match "it says no cluster running" "$out" 'no cluster running'
