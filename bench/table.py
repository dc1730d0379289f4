# SPDX-License-Identifier: BSD-3-Clause
"""Render bench/run's results file as the comparison table.

    table.py RESULTS

RESULTS holds lines "SYSTEM METRIC VALUE" (SYSTEM: cohort, ipyparallel,
machine). The ratio column is oriented so that > 1 means Cohort is better:
ipyparallel/cohort for times, latencies and memory; cohort/ipyparallel for
rates. A metric that a system did not deliver shows as "-".
"""
import sys

# key, label, unit, better ("lower" or "higher")
ROWS = [
    ("start_4", "cluster start, 4 engines ready", "s", "lower"),
    ("start_16", "cluster start, 16 engines ready", "s", "lower"),
    ("lat_e1_median", "execute 'pass', 1 engine, median", "ms", "lower"),
    ("lat_e1_p99", "execute 'pass', 1 engine, p99", "ms", "lower"),
    ("lat_e4_median", "execute 'pass', 4 engines, median", "ms", "lower"),
    ("lat_e4_p99", "execute 'pass', 4 engines, p99", "ms", "lower"),
    ("tput", "non-blocking executes, 4 engines", "req/s", "higher"),
    ("tput_ack", "non-blocking, waiting for each ack (Cohort only)",
     "req/s", "higher"),
    ("push_8", "push 8 MiB float64 to 4", "MiB/s", "higher"),
    ("pull_8", "pull 8 MiB float64 from 4", "MiB/s", "higher"),
    ("push_256", "push 256 MiB float64 to 4", "MiB/s", "higher"),
    ("pull_256", "pull 256 MiB float64 from 4", "MiB/s", "higher"),
    ("scatter_256", "scatter 256 MiB across 4", "MiB/s", "higher"),
    ("gather_256", "gather 256 MiB from 4", "MiB/s", "higher"),
    ("start_64", "cluster start, 64 engines ready (1 run)", "s", "lower"),
    ("lat_e64_median", "execute 'pass', 64 engines, median", "ms", "lower"),
    ("lat_e64_p99", "execute 'pass', 64 engines, p99", "ms", "lower"),
    ("idle_ctl_rss", "controller RSS, 4 engines, idle", "MiB", "lower"),
    ("ctl_rss", "controller RSS, 4 engines, after transfers", "MiB",
     "lower"),
    ("ctl_pss", "controller PSS, 4 engines, after transfers", "MiB",
     "lower"),
    ("e64_ctl_rss", "controller RSS, 64 engines", "MiB", "lower"),
    ("e64_ctl_pss", "controller PSS, 64 engines", "MiB", "lower"),
    ("idle_eng_rss", "engine RSS, idle", "MiB", "lower"),
    ("eng_rss", "engine RSS, after transfers", "MiB", "lower"),
]

MACHINE = [
    ("tls_loopback", "TLS 1.3 loopback, 1 stream (AES-256-GCM)", "MiB/s"),
    ("tls_local", "TLS 1.3 Unix socket, 1 stream (AES-256-GCM)", "MiB/s"),
    ("aes_gcm", "AES-256-GCM, one core (openssl speed)", "MiB/s"),
    ("memcpy", "memcpy, 256 MiB (numpy copyto)", "MiB/s"),
]


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def main():
    res = {}
    with open(sys.argv[1]) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                try:
                    res[(p[0], p[1])] = float(p[2])
                except ValueError:
                    pass
    rows = [("metric", "unit", "cohort", "ipyparallel",
             "ratio (>1: Cohort better)")]
    for key, label, unit, better in ROWS:
        c = res.get(("cohort", key))
        i = res.get(("ipyparallel", key))
        ratio = None
        if c and i:
            ratio = i / c if better == "lower" else c / i
        rows.append((label, unit, fmt(c), fmt(i),
                     "-" if ratio is None else f"{ratio:.2f}x"))
    for key, label, unit in MACHINE:
        rows.append((f"machine: {label}", unit,
                     fmt(res.get(("machine", key))), "", ""))
    w = [max(len(r[k]) for r in rows) for k in range(5)]
    for n, r in enumerate(rows):
        print("| " + " | ".join(
            r[k].ljust(w[k]) if k < 2 else r[k].rjust(w[k])
            for k in range(5)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w[k] + 1) + (":" if k >= 2 else "-")
                                  for k in range(5)) + "|")
    timeouts = sorted(f"{k[0]} {k[1][8:]}" for k in res
                      if k[1].startswith("timeout_"))
    if timeouts:
        print("\nsteps that ran out of time: " + ", ".join(timeouts))
    skipped = sorted(f"{k[0]} {k[1][8:]}" for k in res
                     if k[1].startswith("skipped_"))
    if skipped:
        print("\nskipped (time budget spent): " + ", ".join(skipped))


if __name__ == "__main__":
    main()
