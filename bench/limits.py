# SPDX-License-Identifier: BSD-3-Clause
"""The machine's limits, for context (run with /usr/bin/python3).

    limits.py

prints

    machine aes_gcm MiB/s        `openssl speed -evp aes-256-gcm` on 16 KiB
                                 blocks: one core's encryption rate
    machine memcpy MiB/s         numpy copy of a 256 MiB float64 array into a
                                 preallocated one (bytes copied per second),
                                 median of 5

The TLS loopback limit is measured in C (cohort_bench PROFILE tls).
"""
import statistics
import subprocess
import sys
import time

import numpy as np

MIB = 1 << 20


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def memcpy():
    src = np.arange(256 * MIB // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        rates.append(src.nbytes / MIB / (time.perf_counter() - t0))
    return statistics.median(rates)


def aes_gcm():
    out = subprocess.run(["openssl", "speed", "-evp", "aes-256-gcm",
                          "-bytes", "16384", "-seconds", "1"],
                         capture_output=True, text=True, timeout=60).stdout
    for line in out.splitlines():
        if line.startswith("AES-256-GCM"):
            return float(line.split()[1].rstrip("k")) * 1000 / MIB
    raise RuntimeError("no AES-256-GCM line in openssl speed output")


def main():
    try:
        a = aes_gcm()
        log(f"  openssl speed aes-256-gcm (16 KiB, one core): {a:.0f} MiB/s")
        print(f"machine aes_gcm {a:.6f}", flush=True)
    except Exception as e:
        log(f"  openssl speed: {e!r}")
    m = memcpy()
    log(f"  memcpy (numpy copyto, 256 MiB): {m:.0f} MiB/s")
    print(f"machine memcpy {m:.6f}", flush=True)


if __name__ == "__main__":
    main()
