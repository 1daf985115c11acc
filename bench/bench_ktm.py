"""What KTM costs: read()/pread() per-call time with and without the eBPF probes, and the collector's CPU.

Run as root: .venv/bin/python bench/bench_ktm.py [--calls 200000] [--collects 300]
(dev/ktm-headers first if the kernel has no headers package). Three read() loops in this process:
no probes (baseline); probes attached but filtered to another comm (what every other process on the node
pays); probes attached and this process is the target (what the database pays). Then CPU per collect()
with eBPF loaded and with the OS fallback only, and start()'s wall time and peak RSS growth.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from fodc.ktm import KernelTelemetry, Mode


def per_call_ns(fd: int, calls: int, rounds: int = 5) -> tuple[float, float]:
    """Best-of-rounds ns per read() and per pread() of 64 cached bytes."""
    best_read = best_pread = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            os.lseek(fd, 0, os.SEEK_SET)
            os.read(fd, 64)
        best_read = min(best_read, (time.perf_counter_ns() - start) / calls)
        start = time.perf_counter_ns()
        for _ in range(calls):
            os.pread(fd, 64, 0)
        best_pread = min(best_pread, (time.perf_counter_ns() - start) / calls)
    return best_read, best_pread


def lseek_ns(fd: int, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        os.lseek(fd, 0, os.SEEK_SET)
    return (time.perf_counter_ns() - start) / calls


def collect_cpu_ms(ktm: KernelTelemetry, collects: int) -> float:
    start = time.process_time()
    for i in range(collects):
        ktm.collect(1_790_000_000_000 + i)
    return (time.process_time() - start) * 1000 / collects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--collects", type=int, default=300)
    args = parser.parse_args()

    own_comm = Path("/proc/self/comm").read_text().strip()
    with tempfile.NamedTemporaryFile() as f:
        f.write(os.urandom(4096))
        f.flush()
        fd = os.open(f.name, os.O_RDONLY)
        seek = lseek_ns(fd, args.calls)  # the read() loop pays one lseek per call too
        base_read, base_pread = per_call_ns(fd, args.calls)

        rows = [("no probes", base_read - seek, base_pread)]
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for label, comm in (("probes, other comm", "ktm-nomatch"), ("probes, target", own_comm)):
            ktm = KernelTelemetry(enabled="on", target_comm=comm, target_pid=os.getpid)
            started = time.perf_counter()
            ktm.start()
            start_s = time.perf_counter() - started
            if ktm.status().mode == Mode.DISABLED:
                print(f"eBPF not available: {ktm.status().reason}")
                break
            read_ns, pread_ns = per_call_ns(fd, args.calls)
            rows.append((label, read_ns - seek, pread_ns))
            if comm == own_comm:
                grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
                ebpf_cpu = collect_cpu_ms(ktm, args.collects)
                print(f"start(): {start_s:.2f} s wall, peak RSS grew {grew_mb:.0f} MB (compile is transient)")
                print(f"collect() CPU with eBPF + OS metrics: {ebpf_cpu:.3f} ms")
            ktm.close()
        os.close(fd)

    os_only = KernelTelemetry(enabled="off", target_pid=os.getpid)
    os_only.start()
    print(f"collect() CPU with OS metrics only:    {collect_cpu_ms(os_only, args.collects):.3f} ms")
    print()
    print(f"{'case':<20} {'read ns/call':>13} {'ratio':>6} {'pread ns/call':>14} {'ratio':>6}")
    _, first_read, first_pread = rows[0]
    for label, read_ns, pread_ns in rows:
        print(f"{label:<20} {read_ns:>13.0f} {read_ns / first_read:>6.2f} {pread_ns:>14.0f} "
              f"{pread_ns / first_pread:>6.2f}")
    print("(read ns/call excludes the lseek each loop iteration also makes; Python's per-call overhead is"
          " included in both columns and in the baseline)")


if __name__ == "__main__":
    main()
