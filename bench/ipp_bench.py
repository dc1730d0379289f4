# SPDX-License-Identifier: BSD-3-Clause
"""The ipyparallel side of bench/run (run with /usr/bin/python3).

Each phase starts its own ipyparallel cluster with MPI engines
(ipp.Cluster(n=N, engine_launcher_class='mpi')) in a scratch profile
directory, measures, and stops it. Result lines

    ipyparallel METRIC VALUE

go to stdout as soon as they are known (bench/run collects them), progress
to stderr. Every step is time-boxed (SIGALRM); a step that runs out of time
is reported and skipped. The pids of the controller and of mpiexec are
appended to --pidfile as soon as they exist, so bench/run can stop them
(by process group) even if this script is killed.

    ipp_bench.py start N ROUNDS        cluster start until N engines ready
    ipp_bench.py main ROUNDS           latency, throughput, transfers, RSS
                                       on 4 engines
    ipp_bench.py many N SAMPLES        latency of 'pass' on N engines, RSS
"""
import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

import numpy as np
import ipyparallel as ipp

PIDFILE = None
MIB = 1 << 20
# Untimed rounds before the timed ones of each transfer (both systems
# alike): rates in the steady state, not the first touch.
WARMUP = 1
# Seconds between the last transfer and the "after transfers" memory
# readings; bench/run waits as long on the Cohort side.
SETTLE = 2


class StepTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise StepTimeout()


def _term(signum, frame):
    # Turn SIGTERM (from timeout(1)) into SystemExit so finally: runs.
    raise SystemExit(143)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def result(metric, value):
    print(f"ipyparallel {metric} {value:.6f}", flush=True)


def p99(v):
    s = sorted(v)
    k = max(1, -(-99 * len(s) // 100))  # nearest rank: ceil(0.99 n)
    return s[k - 1]


class step:
    """with step('name', seconds): ... -- time-box a block."""

    def __init__(self, name, seconds):
        self.name, self.seconds = name, seconds

    def __enter__(self):
        signal.alarm(int(self.seconds))

    def __exit__(self, typ, val, tb):
        signal.alarm(0)
        if typ is StepTimeout:
            log(f"  ipyparallel: step '{self.name}' ran out of its "
                f"{self.seconds} s; skipped")
            print(f"ipyparallel timeout_{self.name} 1", flush=True)
            return True
        return False


def record_pid(pid):
    if PIDFILE and pid:
        with open(PIDFILE, "a") as f:
            f.write(f"{pid}\n")


class Cluster:
    """A started ipyparallel cluster of n MPI engines; .seconds is the
    wall time from the start call until n engines were ready."""

    def __init__(self, n):
        self.n = n
        self.dir = tempfile.mkdtemp(prefix="ipp-bench-")
        self.cluster = None
        self.rc = None
        self.seconds = None

    def start(self, timeout):
        n = self.n
        t0 = time.perf_counter()
        self.cluster = ipp.Cluster(n=n, engine_launcher_class="mpi",
                                   profile_dir=self.dir, log_level=40,
                                   engine_timeout=timeout)
        # = start_and_connect_sync(), in steps so the pids are known early.
        self.cluster.start_controller_sync()
        record_pid(getattr(self.cluster.controller, "pid", None))
        self.cluster.start_engines_sync(n)
        for es in self.cluster.engines.values():
            record_pid(getattr(es, "pid", None))
        self.rc = self.cluster.connect_client_sync()
        self.rc.wait_for_engines(n, timeout=timeout)
        self.seconds = time.perf_counter() - t0

    def stop(self):
        signal.alarm(0)
        try:
            if self.rc is not None:
                self.rc.close()
        except Exception:
            pass
        try:
            if self.cluster is not None:
                self.cluster.stop_cluster_sync()
        except Exception as e:
            log(f"  ipyparallel: stop: {e!r}")
        shutil.rmtree(self.dir, ignore_errors=True)

    def controller_pids(self):
        """The controller process and its children (hub, schedulers)."""
        import psutil
        p = psutil.Process(self.cluster.controller.pid)
        return [p.pid] + [c.pid for c in p.children(recursive=True)]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def report_rss(cl, prefix):
    pids = cl.controller_pids()
    total = sum(rss_kib(p) for p in pids)
    pss = sum(pss_kib(p) for p in pids)
    result(f"{prefix}ctl_rss", total / 1024)
    result(f"{prefix}ctl_pss", pss / 1024)
    log(f"  ipyparallel controller RSS: {total / 1024:.1f} MiB, PSS "
        f"{pss / 1024:.1f} MiB (sums over {len(pids)} processes {pids})")


def phase_start(n, rounds):
    times = []
    for r in range(rounds):
        cl = Cluster(n)
        try:
            with step(f"start_{n}", 60 + 4 * n):
                cl.start(timeout=50 + 4 * n)
                times.append(cl.seconds)
                log(f"  ipyparallel start n={n} round {r + 1}: "
                    f"{cl.seconds:.2f} s")
        finally:
            with step(f"stop_{n}", 60):
                cl.stop()
    if times:
        result(f"start_{n}", statistics.median(times))


def latency(view, n, rounds, tag):
    for _ in range(20):
        view.execute("pass", block=True)
    meds, p99s = [], []
    for r in range(rounds):
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            view.execute("pass", block=True)
            lat.append((time.perf_counter() - t0) * 1e3)
        meds.append(statistics.median(lat))
        p99s.append(p99(lat))
        log(f"  ipyparallel latency {tag} round {r + 1}: median "
            f"{meds[-1]:.3f} ms, p99 {p99s[-1]:.3f} ms")
    result(f"lat_{tag}_median", statistics.median(meds))
    result(f"lat_{tag}_p99", statistics.median(p99s))


def throughput(view, n, rounds):
    for _ in range(20):
        view.execute("pass", block=True)
    rates = []
    for r in range(rounds):
        t0 = time.perf_counter()
        ars = [view.execute("pass", block=False) for _ in range(n)]
        for ar in ars:
            ar.get()
        el = time.perf_counter() - t0
        rates.append(n / el)
        log(f"  ipyparallel throughput round {r + 1}: {n} requests in "
            f"{el:.3f} s = {n / el:.0f}/s")
    result("tput", statistics.median(rates))


def transfer(view, neng, mib, rounds):
    a = np.arange(mib * MIB // 8, dtype=np.float64)
    push, pull = [], []
    for r in range(-WARMUP, rounds):
        t0 = time.perf_counter()
        view.push({"a": a}, block=True)
        push.append(mib * neng / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        parts = view.pull("a", block=True)
        pull.append(mib * neng / (time.perf_counter() - t0))
        assert len(parts) == neng and parts[0].nbytes == a.nbytes
        del parts
        log(f"  ipyparallel {mib} MiB x {neng} engines "
            f"{'warm-up' if r < 0 else f'round {r + 1}'}: "
            f"push {push[-1]:.0f} MiB/s, pull {pull[-1]:.0f} MiB/s")
        if r < 0:
            push, pull = [], []
    view.execute("del a", block=True)
    result(f"push_{mib}", statistics.median(push))
    result(f"pull_{mib}", statistics.median(pull))


def scatter(view, mib, rounds):
    a = np.arange(mib * MIB // 8, dtype=np.float64)
    sc, ga = [], []
    for r in range(-WARMUP, rounds):
        t0 = time.perf_counter()
        view.scatter("a", a, block=True)
        sc.append(mib / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        b = view.gather("a", block=True)
        ga.append(mib / (time.perf_counter() - t0))
        assert b.nbytes == a.nbytes
        del b
        log(f"  ipyparallel {mib} MiB "
            f"{'warm-up' if r < 0 else f'round {r + 1}'}: scatter "
            f"{sc[-1]:.0f} MiB/s, gather {ga[-1]:.0f} MiB/s")
        if r < 0:
            sc, ga = [], []
    view.execute("del a", block=True)
    result(f"scatter_{mib}", statistics.median(sc))
    result(f"gather_{mib}", statistics.median(ga))


def phase_main(rounds, nlat, ntput):
    cl = Cluster(4)
    try:
        with step("start_main", 120):
            cl.start(timeout=100)
        if cl.seconds is None:
            return
        rc = cl.rc
        view = rc[:]
        with step("rss_idle", 30):
            report_rss(cl, "idle_")
            eng = rc[0].apply_sync(os.getpid)
            result("idle_eng_rss", rss_kib(eng) / 1024)
        with step("lat_e1", 120):
            latency(rc[0], nlat, rounds, "e1")
        with step("lat_e4", 150):
            latency(view, nlat, rounds, "e4")
        with step("tput", 150):
            throughput(view, ntput, rounds)
        with step("transfer_8", 60):
            transfer(view, 4, 8, rounds)
        with step("transfer_256", 180):
            transfer(view, 4, 256, rounds)
        with step("scatter_256", 120):
            scatter(view, 256, rounds)
        with step("rss_after", 30):
            # As bench/run does for Cohort: SETTLE s after the last
            # transfer.
            time.sleep(SETTLE)
            report_rss(cl, "")
            result("eng_rss", rss_kib(eng) / 1024)
    finally:
        with step("stop_main", 60):
            cl.stop()


def phase_many(n, samples):
    cl = Cluster(n)
    try:
        with step(f"start_{n}", 60 + 4 * n):
            cl.start(timeout=50 + 4 * n)
            log(f"  ipyparallel start n={n}: {cl.seconds:.2f} s")
            result(f"start_{n}", cl.seconds)
        if cl.seconds is None:
            return
        view = cl.rc[:]
        with step(f"lat_e{n}", 30 + samples * 2):
            for _ in range(5):
                view.execute("pass", block=True)
            lat = []
            for _ in range(samples):
                t0 = time.perf_counter()
                view.execute("pass", block=True)
                lat.append((time.perf_counter() - t0) * 1e3)
            log(f"  ipyparallel latency e{n}: median "
                f"{statistics.median(lat):.3f} ms over {samples}")
            result(f"lat_e{n}_median", statistics.median(lat))
            result(f"lat_e{n}_p99", p99(lat))
        with step(f"rss_{n}", 30):
            report_rss(cl, f"e{n}_")
    finally:
        with step(f"stop_{n}", 90):
            cl.stop()


def main():
    global PIDFILE
    ap = argparse.ArgumentParser()
    ap.add_argument("--pidfile")
    ap.add_argument("phase", choices=["start", "main", "many"])
    ap.add_argument("args", nargs="*", type=int)
    a = ap.parse_args()
    PIDFILE = a.pidfile
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, _term)
    log(f"ipyparallel {ipp.__version__}: phase {a.phase} {a.args}")
    if a.phase == "start":
        phase_start(*a.args)
    elif a.phase == "main":
        phase_main(*a.args)
    else:
        phase_many(*a.args)


if __name__ == "__main__":
    main()
