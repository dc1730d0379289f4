#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# t5001-native-rss: the memory of one idle native engine (VmRSS), with MPI
# (a rank of 'mpiexec -n 1 ... --mpi') and without, beside an idle Python
# engine for scale; each as a diag line with what dominates it, from
# /proc/PID/smaps. The aim for a native engine is a few MB; MPI itself
# costs some.
. "$(dirname "$0")/lib.sh"

# start_one KERNEL [--mpi]: one more engine, in $T.
start_one() {
	local kernel=$1 want
	shift
	want=$(( $(live_engines 2>/dev/null || echo 0) + 1 ))
	if [ "${1:-}" = --mpi ]; then
		(cd "$T" && exec mpiexec -n 1 "$COHORT_BIN/cohort-engine" --mpi \
			--kernel "$kernel") >>"$T/engines.log" 2>&1 &
	else
		(cd "$T" && exec "$COHORT_BIN/cohort-engine" --kernel "$kernel") \
			>>"$T/engines.log" 2>&1 &
	fi
	PIDS+=("$!")
	wait_for 60 live_engines_are "$want" || { fail "a $kernel engine did not register"; exit 1; }
}

# rss PID: "VmRSS kB" and a breakdown by mapping (the largest five).
rss() {
	$PYTHON - "$1" <<'PY'
import collections, sys
pid = sys.argv[1]
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
kb = lambda k: int(status[k].split()[0])
by = collections.Counter()
name = None
for line in open(f"/proc/{pid}/smaps"):
    f = line.split()
    if not f[0].endswith(":"):
        name = f[5].rsplit("/", 1)[-1] if len(f) > 5 else "[anon]"
    elif f[0] == "Rss:":
        by[name] += int(f[1])
pss = sum(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup")
          if l.startswith("Pss:"))
top = ", ".join("%s %.1f" % (n, v / 1024) for n, v in by.most_common(5))
print(kb("VmRSS"), "VmRSS %.1f MB (private anon %.1f, shared files %.1f; "
      "PSS %.1f); MB by mapping: %s" % (kb("VmRSS") / 1024,
      kb("RssAnon") / 1024, kb("RssFile") / 1024, pss / 1024, top))
PY
}

# newest_pid: the pid of the engine that registered last.
newest_pid() {
	cohort engines --json | json_get 'max(d["engines"], key=lambda e: e["id"])["pid"]'
}

start_controller
declare -A PID RSS
start_one native --mpi
PID[native-mpi]=$(newest_pid)
start_one native
PID[native-plain]=$(newest_pid)
start_one python
PID[python-plain]=$(newest_pid)
sleep 2 # idle: registered, heartbeats flowing

for k in native-mpi native-plain python-plain; do
	line=$(rss "${PID[$k]}")
	log "idle ${k%-*} engine ($([ "${k#*-}" = mpi ] && echo "an MPI rank" || echo "no MPI")), pid ${PID[$k]}: ${line#* }"
	RSS[$k]=${line%% *}
done

check "the native engines are smaller than the Python one (${RSS[native-plain]} and ${RSS[native-mpi]} vs ${RSS[python-plain]} kB)" \
	test "${RSS[native-plain]}" -lt "${RSS[python-plain]}" -a "${RSS[native-mpi]}" -lt "${RSS[python-plain]}"
# Generous bounds, to catch a regression, not to measure.
check "an idle native engine without MPI stays under 32 MB (${RSS[native-plain]} kB)" \
	test "${RSS[native-plain]}" -lt 32768
check "an idle native MPI rank stays under 64 MB (${RSS[native-mpi]} kB)" \
	test "${RSS[native-mpi]}" -lt 65536
