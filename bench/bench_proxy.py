"""Proxy fan-out latency: GET /metrics with N agents x S series, and /metrics-windows for one hour.

Run: .venv/bin/python bench/bench_proxy.py [--agents 100] [--series 5000] [--requests 10]
Starts a real fodc-proxy (gunicorn + gRPC) and a fleet of synthetic agents in this process (real gRPC
streams, replies prebuilt from a real flight recorder). The baseline, measured in the same run, is the same
request against a proxy with ONE agent; the ratio shows how fan-out cost scales with the fleet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import CachedResponder, Fleet, filled_recorder  # noqa: E402
from procs import start_proxy, wait_for  # noqa: E402

from fodc.config import HostPort  # noqa: E402


def timed_get(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - start, size


def measure(tmp: Path, agents: int, responder: CachedResponder, requests: int, path: str) -> dict[str, float]:
    proxy = start_proxy(tmp, "--metrics-timeout", "60s", "--max-agents", str(max(agents, 10)), name=f"proxy-{agents}")
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), agents, responder)
    try:
        fleet.start()
        wait_for(lambda: fleet.registered() == agents and len(proxy.cluster(status="online")) == agents,
                 timeout=120, what=f"{agents} agents registered")
        time.sleep(1.0)  # metrics streams open right after registration
        timed_get(proxy.url + path)  # warm-up
        samples = [timed_get(proxy.url + path) for _ in range(requests)]
        latencies = sorted(s[0] for s in samples)
        rss = psutil.Process(proxy.worker_pid()).memory_info().rss
        return {"p50": statistics.median(latencies), "p99": latencies[min(len(latencies) - 1,
                                                                          int(len(latencies) * 0.99))],
                "bytes": samples[-1][1], "rss": rss}
    finally:
        fleet.stop()
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--window-agents", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(__import__("tempfile").mkdtemp(prefix="fodc-bench-"))

    latest = CachedResponder(filled_recorder(args.series))
    base = measure(tmp, 1, latest, args.requests, "/metrics")
    full = measure(tmp, args.agents, latest, args.requests, "/metrics")
    print(f"/metrics, 1 agent x {args.series} series (baseline): p50 {base['p50'] * 1000:.0f} ms, "
          f"p99 {base['p99'] * 1000:.0f} ms, {base['bytes'] / 1e6:.1f} MB")
    print(f"/metrics, {args.agents} agents x {args.series} series: p50 {full['p50'] * 1000:.0f} ms, "
          f"p99 {full['p99'] * 1000:.0f} ms, {full['bytes'] / 1e6:.1f} MB, proxy worker RSS "
          f"{full['rss'] / 2**20:.0f} MiB; x{full['p50'] / base['p50']:.1f} the baseline for x{args.agents} the data "
          f"({full['p50'] / (args.agents * args.series) * 1e6:.2f} us per series)")

    hour = CachedResponder(filled_recorder(args.series, scrapes=240))
    base_w = measure(tmp, 1, hour, max(3, args.requests // 3), "/metrics-windows")
    full_w = measure(tmp, args.window_agents, hour, max(3, args.requests // 3), "/metrics-windows")
    print(f"/metrics-windows 1 h, 1 agent (baseline): p50 {base_w['p50'] * 1000:.0f} ms, "
          f"{base_w['bytes'] / 1e6:.1f} MB")
    print(f"/metrics-windows 1 h, {args.window_agents} agents: p50 {full_w['p50'] * 1000:.0f} ms, "
          f"{full_w['bytes'] / 1e6:.1f} MB, proxy worker RSS {full_w['rss'] / 2**20:.0f} MiB; "
          f"x{full_w['p50'] / base_w['p50']:.1f} the baseline")


if __name__ == "__main__":
    main()
