"""Load test: N synthetic agents (default 1,000) that register, heartbeat and stream metrics, against one proxy.

Run: .venv/bin/python bench/bench_fleet_load.py [--agents 1000] [--drivers 2] [--series 200] [--seconds 30]

The agents run in --drivers processes (bench/fleet_driver.py; coroutines on grpc.aio, bench/fleet_agent.py),
each agent with its own gRPC connection and the three streams of a real agent (registration with heartbeats
every 10 s, metrics, commands; --no-command-streams leaves the last out); they answer /metrics through the
agent's own series-table encoder and /metrics-windows under the proxy's flow-control credit, from a simulated
data-node page of --series series (200 by default, a fraction of a real node's ~6,400, so that the 2-core
machine can host the whole fleet). Reports registration time, proxy CPU per heartbeat, proxy RSS and threads,
/cluster, /metrics and /metrics-windows latency, and the drivers' own CPU, RSS and threads (they share the
machine with the proxy). The baseline, measured in the same run, is the same proxy with one agent; ratios
compare against it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import FLEET_START_S  # noqa: E402
from procs import start_proxy, wait_for  # noqa: E402

HEARTBEAT_S = 10  # the proxy asks for a heartbeat every third of its timeout
DRIVER = Path(__file__).resolve().parent / "fleet_driver.py"


def timed_get(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        body = response.read()
    return time.perf_counter() - start, body


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


class Drivers:
    """The fleet's driver processes: started, told to go together, and ended by closing their input."""

    def __init__(self, grpc_port: int, agents: int, count: int, series: int, scrapes: int,
                 command_streams: bool) -> None:
        count = max(1, min(count, agents))
        self.procs: list[subprocess.Popen[str]] = []
        first = 0
        for i in range(count):
            share = agents // count + (1 if i < agents % count else 0)
            self.procs.append(subprocess.Popen(
                [sys.executable, str(DRIVER), "--proxy", f"127.0.0.1:{grpc_port}", "--agents", str(share),
                 "--first", str(first), "--series", str(series), "--scrapes", str(scrapes),
                 *(["--command-streams"] if command_streams else [])],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            first += share
        for proc in self.procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "driver failed to start"
        self.ps = [psutil.Process(proc.pid) for proc in self.procs]

    def go(self) -> float:
        """Starts every driver's agents; returns the seconds until the last driver had all of them registered."""
        started = time.monotonic()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        done = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            word, _, at = line.partition(" ")
            assert word == "registered", f"a driver's agents did not register: {line.strip() or 'it ended'}"
            done.append(float(at))
        return max(done) - started

    def cpu_s(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.ps)

    def rss_mib(self) -> float:
        return sum(p.memory_info().rss for p in self.ps) / 2**20

    def threads(self) -> int:
        return sum(p.num_threads() for p in self.ps)

    def registrations(self) -> int:
        """Registrations so far over all drivers, re-registrations of dropped agents included."""
        total = 0
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("count\n")
            proc.stdin.flush()
            total += int(proc.stdout.readline().split()[1])
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def progress(agents: int, what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {agents} agents: {what}", file=sys.stderr, flush=True)


def run(tmp: Path, agents: int, args: argparse.Namespace) -> dict[str, float]:
    proxy = start_proxy(tmp, "--max-agents", str(agents + 10), "--agent-heartbeat-timeout", f"{HEARTBEAT_S * 3}s",
                        "--agent-cleanup-timeout", "10m", "--metrics-timeout", "60s",
                        # every bench agent comes from 127.0.0.1; real fleets spread over many addresses
                        "--registrations-per-peer", str(agents + 10), name=f"proxy-{agents}")
    drivers = Drivers(proxy.ports["grpc"], agents, args.drivers, args.series, args.scrapes, args.command_streams)
    try:
        worker = psutil.Process(proxy.worker_pid())
        rss_empty, threads_empty = worker.memory_info().rss, worker.num_threads()
        registration_s = drivers.go()
        progress(agents, "registered")
        wait_for(lambda: len(proxy.cluster(status="online")) == agents, timeout=120, what="all online")
        time.sleep(2)
        progress(agents, "all online; measuring heartbeats")
        proxy_cpu, driver_cpu = sum(worker.cpu_times()[:2]), drivers.cpu_s()
        time.sleep(args.seconds)
        cpu_s = sum(worker.cpu_times()[:2]) - proxy_cpu
        idle_driver_cpu = drivers.cpu_s() - driver_cpu
        rss_idle, threads = worker.memory_info().rss, worker.num_threads()
        driver_rss, driver_threads = drivers.rss_mib(), drivers.threads()
        cluster = [timed_get(f"{proxy.url}/cluster")[0] for _ in range(20)]
        timed_get(f"{proxy.url}/metrics")  # warm-up: every agent's table definitions go over once
        progress(agents, "/metrics warmed up")
        proxy_cpu, driver_cpu = sum(worker.cpu_times()[:2]), drivers.cpu_s()
        metrics, missing, size = [], 0, 0
        for _ in range(args.requests):
            time.sleep(args.metrics_interval)
            seconds, page = timed_get(f"{proxy.url}/metrics")
            metrics.append(seconds)
            size = len(page)
            missing = max(missing, len(re.findall(rb'^fodc_proxy_agent_missing\{.*endpoint="metrics"', page, re.M)))
        metrics_proxy_cpu = sum(worker.cpu_times()[:2]) - proxy_cpu
        metrics_driver_cpu = drivers.cpu_s() - driver_cpu
        rss_metrics = worker.memory_info().rss
        progress(agents, "/metrics measured")
        span = f"start={FLEET_START_S}&end={FLEET_START_S + 15 * args.scrapes}"
        windows, answered, window_size = [], agents, 0
        for _ in range(args.window_requests):
            seconds, body = timed_get(f"{proxy.url}/metrics-windows?{span}")
            windows.append(seconds)
            window_size = len(body)
            found = re.search(rb'"agents_answered":(\d+)\}$', body[-64:])
            answered = min(answered, int(found.group(1)) if found else 0)
        return {
            "registration_s": registration_s,
            "cpu_percent": 100 * cpu_s / args.seconds,
            "cpu_us_per_heartbeat": cpu_s / (agents * args.seconds / HEARTBEAT_S) * 1e6,
            "driver_cpu_percent_idle": 100 * idle_driver_cpu / args.seconds,
            "driver_rss_mib": driver_rss, "driver_threads": driver_threads,
            "cluster_p50_ms": statistics.median(cluster) * 1000, "cluster_p99_ms": p99(cluster) * 1000,
            "rss_mib": rss_idle / 2**20, "rss_per_agent_kib": (rss_idle - rss_empty) / agents / 1024,
            "threads": threads, "threads_per_agent": (threads - threads_empty) / agents,
            "metrics_p50_s": statistics.median(metrics), "metrics_p99_s": p99(metrics),
            "metrics_ms_per_agent": p99(metrics) / agents * 1000, "metrics_mb": size / 1e6,
            "metrics_missing": missing,
            "metrics_proxy_cpu_s": metrics_proxy_cpu / args.requests,
            "metrics_driver_cpu_s": metrics_driver_cpu / args.requests,
            "rss_after_metrics_mib": rss_metrics / 2**20,
            "windows_p50_s": statistics.median(windows), "windows_p99_s": p99(windows),
            "windows_mb": window_size / 1e6, "windows_answered": answered,
            "online": len(proxy.cluster(status="online")),
            "reregistrations": drivers.registrations() - agents,
        }
    finally:
        drivers.stop()
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--drivers", type=int, default=2, help="processes the agents are spread over (default 2)")
    parser.add_argument("--series", type=int, default=200, help="series per agent (default 200)")
    parser.add_argument("--scrapes", type=int, default=8, help="points per series in /metrics-windows (default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="heartbeat CPU is measured over this long")
    parser.add_argument("--requests", type=int, default=10, help="timed /metrics requests (default 10)")
    parser.add_argument("--command-streams", action=argparse.BooleanOptionalAction, default=True,
                        help="agents also hold their command stream, a real agent's third (default: they do)")
    parser.add_argument("--metrics-interval", type=float, default=0.0,
                        help="seconds between /metrics requests (default 0: back to back)")
    parser.add_argument("--window-requests", type=int, default=3, help="timed /metrics-windows requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run(Path(tmp), 1, args)
        load = run(Path(tmp), args.agents, args)
    print(f"{args.agents} agents over {args.drivers} driver processes, {args.series} series each, "
          f"{args.scrapes} points per series in a window")
    print(f"{'figure':<28}{'1 agent':>14}{f'{args.agents} agents':>16}{'ratio':>10}")
    for key in base:
        ratio = load[key] / base[key] if base[key] else float("nan")
        print(f"{key:<28}{base[key]:>14.3f}{load[key]:>16.3f}{ratio:>10.1f}")


if __name__ == "__main__":
    main()
