"""Load test: N synthetic agents (default 1,000), each with its own gRPC streams, against one real proxy.

Run: .venv/bin/python bench/bench_fleet_load.py [--agents 1000] [--seconds 30]
Reports registration time, proxy CPU per heartbeat, /cluster latency, and proxy RSS per agent (registration
streams with heartbeats every 10 s; the /metrics fan-out at 100 agents x 5k series is bench_proxy.py). The baseline,
measured in the same run, is the same proxy with one agent; ratios compare against it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import CachedResponder, Fleet, filled_recorder  # noqa: E402
from procs import start_proxy, wait_for  # noqa: E402

from fodc.config import HostPort  # noqa: E402

HEARTBEAT_S = 10  # the proxy asks for a heartbeat every third of its timeout


def cluster_latencies(url: str, count: int) -> list[float]:
    result = []
    for _ in range(count):
        start = time.perf_counter()
        with urllib.request.urlopen(f"{url}/cluster", timeout=60) as response:
            response.read()
        result.append(time.perf_counter() - start)
    return sorted(result)


def run(tmp: Path, agents: int, seconds: float, responder: CachedResponder) -> dict[str, float]:
    proxy = start_proxy(tmp, "--max-agents", str(agents + 10), "--agent-heartbeat-timeout", f"{HEARTBEAT_S * 3}s",
                        "--agent-cleanup-timeout", "10m", name=f"proxy-{agents}")
    # Registration streams only: the metrics fan-out at scale is bench_proxy.py's job, and one Python process
    # cannot also drive a thousand metrics streams without becoming the thing measured.
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), agents, responder, metrics_streams=False,
                  send_timeout_s=30)
    try:
        worker = psutil.Process(proxy.worker_pid())
        rss_empty = worker.memory_info().rss
        started = time.perf_counter()
        fleet.start()
        wait_for(lambda: fleet.registered() == agents, timeout=600, interval=0.2, what=f"{agents} registered")
        registration_s = time.perf_counter() - started
        wait_for(lambda: len(proxy.cluster(status="online")) == agents, timeout=120, what="all online")
        time.sleep(2)
        cpu_before = sum(worker.cpu_times()[:2])
        time.sleep(seconds)
        cpu_s = sum(worker.cpu_times()[:2]) - cpu_before
        heartbeats = agents * seconds / HEARTBEAT_S
        latencies = cluster_latencies(proxy.url, 20)
        rss = worker.memory_info().rss
        online = len(proxy.cluster(status="online"))
        return {"agents": agents, "registration_s": registration_s, "cpu_s": cpu_s,
                "cpu_us_per_heartbeat": cpu_s / heartbeats * 1e6, "cpu_percent": 100 * cpu_s / seconds,
                "cluster_p50_ms": statistics.median(latencies) * 1000,
                "cluster_p99_ms": latencies[-1] * 1000, "rss_mib": rss / 2**20,
                "rss_per_agent_kib": (rss - rss_empty) / max(1, agents) / 1024, "online": online}
    finally:
        fleet.stop()
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="heartbeat CPU is measured over this long")
    args = parser.parse_args()
    responder = CachedResponder(filled_recorder(200))
    with tempfile.TemporaryDirectory() as tmp:
        base = run(Path(tmp), 1, args.seconds, responder)
        load = run(Path(tmp), args.agents, args.seconds, responder)
    print(f"{'figure':<32}{'1 agent':>14}{f'{args.agents} agents':>16}{'ratio':>10}")
    for key in ("registration_s", "cpu_percent", "cpu_us_per_heartbeat", "cluster_p50_ms", "cluster_p99_ms",
                "rss_mib", "rss_per_agent_kib", "online"):
        ratio = load[key] / base[key] if base[key] else float("nan")
        print(f"{key:<32}{base[key]:>14.2f}{load[key]:>16.2f}{ratio:>10.1f}")


if __name__ == "__main__":
    main()
