"""What the profile ring costs the node: its CPU while a periodic CPU profile runs and averaged over the
period, the queries it serves meanwhile, and the ring's disk writes per hour. All against a floor measured in
the same run (the same busy node, not profiled).

Run: .venv/bin/python bench/bench_profile_ring.py [--cpu-seconds 10] [--every 300] [--loaders 4] [--rounds 3]

The node is Debian's prometheus (a real Go process) kept busy by --loaders threads sending PromQL queries
as fast as it answers them. Figures:
  * node CPU (cores, from /proc/<pid>/stat) and queries/s: for --cpu-seconds without profiling (the floor),
    then during a --cpu-seconds CPU profile and around a heap profile, each --rounds times;
  * the profile's extra node CPU-seconds, averaged over --every (what the ring costs in steady state);
  * a real fodc-agent with the ring on (--profile-every 15s, so rounds come quickly): the ring's files and
    bytes per round, the agent's own disk writes (/proc/<pid>/io write_bytes) per round, scaled to an hour
    at --every.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import http_get, start_agent, start_prometheus, start_proxy, wait_for  # noqa: E402

QUERY = "/api/v1/query?query=sum(rate(prometheus_http_requests_total[1m]))%20or%20vector(1)"


class Load:
    """Threads querying the node as fast as it answers; counts the answers."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + QUERY, timeout=5).read()
                with self._lock:
                    self.done += 1

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure(pid: int, load: Load, work) -> tuple[float, float, float]:  # noqa: ANN001
    """(wall seconds, node CPU-seconds, queries answered) while `work()` runs."""
    cpu0, done0, t0 = cpu_seconds(pid), load.done, time.monotonic()
    work()
    return time.monotonic() - t0, cpu_seconds(pid) - cpu0, load.done - done0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-seconds", type=int, default=10)
    parser.add_argument("--every", type=float, default=300.0)
    parser.add_argument("--loaders", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fodc-bench-ring-", dir="/var/tmp"))
    node, url = start_prometheus(tmp, "global:\n  scrape_interval: 1h\n")
    pid = node.proc.pid
    load = Load(url, args.loaders)
    load.start()
    daemons = [node]
    try:
        time.sleep(3)  # let the load settle
        floors, profiled, heaps = [], [], []
        for _ in range(args.rounds):
            floors.append(measure(pid, load, lambda: time.sleep(args.cpu_seconds)))
            profiled.append(measure(pid, load, lambda: http_get(
                f"{url}/debug/pprof/profile?seconds={args.cpu_seconds}", args.cpu_seconds + 30)))
            heaps.append(measure(pid, load, lambda: http_get(f"{url}/debug/pprof/heap", 30)))

        def rate(samples: list[tuple[float, float, float]], index: int) -> float:
            return statistics.median(s[index] / s[0] for s in samples)

        base_cpu, prof_cpu = rate(floors, 1), rate(profiled, 1)
        base_qps, prof_qps = rate(floors, 2), rate(profiled, 2)
        extra_cpu_s = max(0.0, (prof_cpu - base_cpu) * args.cpu_seconds)
        extra_heap_s = max(0.0, statistics.median(h[1] - base_cpu * h[0] for h in heaps))
        print(f"busy node (prometheus, {args.loaders} query loaders), medians of {args.rounds} rounds")
        print(f"  node CPU, floor (no profile):        {base_cpu:.3f} cores, {base_qps:.0f} queries/s")
        print(f"  node CPU, during a {args.cpu_seconds}s CPU profile: {prof_cpu:.3f} cores, {prof_qps:.0f} queries/s"
              f"  (CPU x{prof_cpu / base_cpu:.2f}, +{100 * (prof_cpu - base_cpu) / base_cpu:.1f}%; queries "
              f"x{prof_qps / base_qps:.2f})")
        print(f"  a heap profile: {statistics.median(h[0] for h in heaps) * 1000:.0f} ms, "
              f"+{extra_heap_s * 1000:.0f} ms node CPU")
        per_period = extra_cpu_s + extra_heap_s
        print(f"  averaged over --every {args.every:g}s: +{per_period / args.every:.4f} cores "
              f"(+{100 * per_period / args.every / base_cpu:.2f}% of the floor's CPU)")

        proxy = start_proxy(tmp)
        daemons.append(proxy)
        ring_dir = tmp / "ring"
        agent = start_agent(tmp, proxy.grpc_addr, "datanode-hot", "bench", "--node-pprof-url", url,
                            "--node-metrics-url", f"{url}/metrics", "--node-process-name", "no-such-node",
                            "--profile-every", "15s", "--profile-cpu-seconds", str(args.cpu_seconds),
                            "--profile-ring-dir", str(ring_dir), "--window-dir", "off", "--scrape-interval", "15s",
                            "--incident-triggers", "")
        daemons.append(agent)

        def files() -> list[Path]:
            return sorted(p for p in ring_dir.glob("*.pb.gz")) if ring_dir.exists() else []
        wait_for(lambda: len(files()) >= 2, 120, interval=0.5, what="the first ring round")
        io0, files0 = psutil.Process(agent.proc.pid).io_counters().write_bytes, len(files())
        wait_for(lambda: len(files()) >= files0 + 2 * args.rounds, 60 * args.rounds + 60, interval=0.5,
                 what="more ring rounds")
        written = psutil.Process(agent.proc.pid).io_counters().write_bytes - io0
        new = files()[files0:files0 + 2 * args.rounds]
        per_round = sum(p.stat().st_size for p in new) / args.rounds
        rounds_per_hour = 3600 / args.every
        print(f"ring on a real agent (--profile-cpu-seconds {args.cpu_seconds}): {per_round / 1024:.1f} KiB per "
              f"round (cpu + heap, gzipped), agent write_bytes {written / args.rounds / 1024:.1f} KiB per round")
        print(f"  at --profile-every {args.every:g}s: {rounds_per_hour:.0f} rounds/h = {2 * rounds_per_hour:.0f} "
              f"files, {per_round * rounds_per_hour / 1024 / 1024:.2f} MiB/h of profiles, "
              f"{written / args.rounds * rounds_per_hour / 1024 / 1024:.2f} MiB/h written by the agent, "
              f"{4 * rounds_per_hour:.0f} fsyncs/h")
        ring_mib = 64
        print(f"  the default 64MiB ring holds about {ring_mib * 1024 * 1024 / per_round:.0f} rounds "
              f"= {ring_mib * 1024 * 1024 / per_round / rounds_per_hour:.1f} h")
    finally:
        load.stop()
        for daemon in reversed(daemons):
            daemon.stop()


if __name__ == "__main__":
    main()
