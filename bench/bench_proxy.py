"""Proxy page cost: GET /metrics with N agents x S series against serving the same bytes, and /metrics-windows.

Run: .venv/bin/python bench/bench_proxy.py [--agents 10,50,100] [--series 5000] [--requests 10] [--rounds 3]
     [--window-agents 100] [--window-series 500] [--window-requests 2]
Starts a real fodc-proxy (gunicorn + gRPC) and a fleet of synthetic agents in this process (real gRPC
streams, replies prebuilt from a real flight recorder holding bench/fleet.py's simulated data node). The floor,
measured in the same run, is the page's exact bytes served by the proxy's own HTTP stack (bench/page_floor.py:
the same gunicorn worker class and threads, Flask); the ratio is page time / floor time, per round (a page, then
a floor request, in turn, so both meet the same load on a shared machine) and over all rounds.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import FLEET_START_S, CachedResponder, Fleet, filled_recorder  # noqa: E402
from procs import free_port, http_get, start_proxy, wait_for  # noqa: E402

from fodc.config import HostPort  # noqa: E402

MIB = 2**20


def timed_get(url: str, keep: Path | None = None) -> tuple[float, float, int]:
    """(seconds to the first body byte, seconds to the last, bytes); the body goes to `keep` if given."""
    parts = urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        first = response.read(1)
        first_byte = time.perf_counter() - start
        size = len(first)
        out = keep.open("wb") if keep else None
        try:
            if out:
                out.write(first)
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if out:
                    out.write(chunk)
        finally:
            if out:
                out.close()
        return first_byte, time.perf_counter() - start, size
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far: on a shared machine a steadier measure of work than wall time."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def cpu_ratio(page: float, floor: float, requests: int) -> str:
    """`N ms, xR`; CPU time is counted in 10 ms ticks, so a floor below a tick per request is not divided by."""
    if floor * requests < 0.05:
        return f"{floor * 1e3:.0f} ms (under 5 ticks in all: no ratio)"
    return f"{floor * 1e3:.0f} ms, x{page / floor:.1f}"


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from the current RSS


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(tmp: Path, agents: int, responder: CachedResponder, requests: int, path: str,
            keep: Path | None = None, rounds: int = 1) -> dict:
    """The page's figures; with `keep`, the floor too, in `rounds` rounds: each round times `requests` pages,
    each followed by a floor request (bench/page_floor.py serving the page's exact bytes), so page and floor
    meet the same load on the shared machine and each round gives a ratio of its own."""
    proxy = start_proxy(tmp, "--metrics-timeout", "120s", "--max-agents", str(max(agents, 10)),
                        name=f"proxy-{agents}-{urlsplit(path).path.strip('/')}")
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), agents, responder)
    floor_server = None
    try:
        fleet.start()
        wait_for(lambda: fleet.registered() == agents and len(proxy.cluster(status="online")) == agents,
                 timeout=180, what=f"{agents} agents registered")
        time.sleep(1.0)  # metrics streams open right after registration
        worker = proxy.worker_pid()
        idle = psutil.Process(worker).memory_info().rss
        reset_peak(worker)
        timed_get(proxy.url + path)  # the first answers also define every series (series tables)
        first_peak = peak_rss(worker)
        timed_get(proxy.url + path, keep)  # warm-up; its bytes are the floor's
        if keep is not None:
            floor_server = FloorServer(keep)
        reset_peak(worker)
        cpu = bench_cpu = 0.0
        samples: list[tuple[float, float, int]] = []
        floors: list[dict[str, float]] = []
        ratios: list[float] = []
        for _ in range(rounds):
            got: list[tuple[float, float, int]] = []
            floor_round = FloorRound()
            cpu_before = cpu_seconds(worker)  # the whole round: the heap trim after each page counts too
            for _ in range(requests):  # a page, then the floor: a burst of load on the machine meets both
                bench_before = cpu_seconds(os.getpid())
                got.append(timed_get(proxy.url + path))
                bench_cpu += cpu_seconds(os.getpid()) - bench_before
                if floor_server is not None:
                    floor_server.measure(floor_round)
            cpu += cpu_seconds(worker) - cpu_before
            samples += got
            if floor_server is not None:
                floors.append(floor_round.figures())
                ratios.append(statistics.median(s[1] for s in got) / floors[-1]["p50"])
        totals, firsts = [s[1] for s in samples], [s[0] for s in samples]
        floor_totals = [t for f in floors for t in f["totals"]]
        return {"p50": statistics.median(totals), "p99": percentile(totals, 0.99),
                "ttfb50": statistics.median(firsts), "ttfb99": percentile(firsts, 0.99), "bytes": samples[-1][2],
                "rss": psutil.Process(worker).memory_info().rss, "idle": idle, "peak": peak_rss(worker),
                "first_peak": first_peak, "cpu": cpu / len(samples), "bench_cpu": bench_cpu / len(samples),
                "ratios": ratios, "floor": {
                    "p50": statistics.median(floor_totals), "p99": percentile(floor_totals, 0.99),
                    "cpu": sum(f["cpu"] for f in floors) / len(floors),
                    "client_cpu": sum(f["client_cpu"] for f in floors) / len(floors)} if floors else None}
    finally:
        if floor_server is not None:
            floor_server.stop()
        fleet.stop()
        proxy.stop()


@dataclass
class FloorRound:
    """One round's floor requests: their times and the CPU they cost the floor's worker and this process."""

    totals: list[float] = field(default_factory=list)
    cpu: float = 0.0
    client_cpu: float = 0.0

    def figures(self) -> dict:
        count = len(self.totals)
        return {"p50": statistics.median(self.totals), "totals": self.totals, "cpu": self.cpu / count,
                "client_cpu": self.client_cpu / count}


class FloorServer:
    """The same bytes through the proxy's HTTP stack (bench/page_floor.py), started once per agent count."""

    def __init__(self, page: Path) -> None:
        port = free_port()
        self.server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("page_floor.py")), str(page),
                                        str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: http_get(f"http://127.0.0.1:{port}/health", 1)[0] == 200, 30, what="floor server up")
            self.url = f"http://127.0.0.1:{port}/page"
            timed_get(self.url)
            self.worker = psutil.Process(self.server.pid).children()[0].pid  # gunicorn's one worker
        except BaseException:
            self.stop()
            raise

    def measure(self, into: FloorRound) -> None:
        cpu_before, client_before = cpu_seconds(self.worker), cpu_seconds(os.getpid())
        into.totals.append(timed_get(self.url)[1])
        into.cpu += cpu_seconds(self.worker) - cpu_before
        into.client_cpu += cpu_seconds(os.getpid()) - client_before

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="10,50,100", help="comma-separated agent counts (default 10,50,100)")
    parser.add_argument("--series", type=int, default=5000, help="series of the simulated page (default 5000)")
    parser.add_argument("--requests", type=int, default=10,
                        help="timed /metrics requests per round and agent count (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per agent count, each its pages then its floor requests (default 3)")
    parser.add_argument("--window-agents", type=int, default=100, help="agents for /metrics-windows (0: skip)")
    parser.add_argument("--window-series", type=int, default=500, help="series per agent for the 1 h windows")
    parser.add_argument("--window-requests", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fodc-bench-") as tmp:  # the pages kept for the floor: ~110 MB
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    counts = [int(c) for c in args.agents.split(",") if c]
    latest = CachedResponder(filled_recorder(args.series))
    rss: dict[int, float] = {}
    for agents in counts:
        page = tmp / f"page-{agents}.txt"
        got = measure(tmp, agents, latest, args.requests, "/metrics", keep=page, rounds=args.rounds)
        base = got["floor"]
        rss[agents] = got["rss"]
        series = sum(1 for line in page.open("rb") if not line.startswith(b"#"))
        ratios = got["ratios"]
        print(f"/metrics, {agents} agents, {series} series, {got['bytes'] / 1e6:.1f} MB: "
              f"p50 {got['p50'] * 1e3:.0f} ms, p99 {got['p99'] * 1e3:.0f} ms, "
              f"first byte p50 {got['ttfb50'] * 1e3:.0f} ms p99 "
              f"{got['ttfb99'] * 1e3:.0f} ms | floor (same bytes, same gunicorn) p50 {base['p50'] * 1e3:.0f} ms "
              f"p99 {base['p99'] * 1e3:.0f} ms | ratio p50 x{got['p50'] / base['p50']:.1f} p99 "
              f"x{got['p99'] / base['p99']:.1f}; p50 ratio per round "
              f"{' '.join(f'x{r:.1f}' for r in ratios)} (worst x{max(ratios):.1f}, goal <= x10: "
              f"{'met' if max(ratios) <= 10 else 'NOT met'}) | worker CPU per request {got['cpu'] * 1e3:.0f} ms, "
              f"floor {cpu_ratio(got['cpu'], base['cpu'], args.requests * args.rounds)} | agents and client "
              f"(this process) CPU per request {got['bench_cpu'] * 1e3:.0f} ms (the client alone, reading the floor: "
              f"{base['client_cpu'] * 1e3:.0f} ms) | worker RSS idle "
              f"{got['idle'] / MIB:.0f} MiB, after {got['rss'] / MIB:.0f} MiB, peak {got['peak'] / MIB:.0f} MiB "
              f"(first page, which defines every series: {got['first_peak'] / MIB:.0f} MiB)",
              flush=True)
    if len(counts) > 1:
        low, high = min(counts), max(counts)
        print(f"worker RSS growth per agent with metrics flowing ({low} -> {high} agents): "
              f"{(rss[high] - rss[low]) / (high - low) / MIB:.2f} MiB", flush=True)

    if args.window_agents:
        hour = CachedResponder(filled_recorder(args.window_series, scrapes=240))
        span = f"/metrics-windows?start={FLEET_START_S}&end={FLEET_START_S + 3600}"  # the fleet's simulated hour
        got = measure(tmp, args.window_agents, hour, args.window_requests, span)
        print(f"/metrics-windows 1 h, {args.window_agents} agents x {args.window_series} series x 240 points: "
              f"p50 {got['p50']:.1f} s, first byte {got['ttfb50'] * 1e3:.0f} ms, {got['bytes'] / 1e6:.0f} MB; "
              f"worker RSS idle {got['idle'] / MIB:.0f} MiB, peak during the reads {got['peak'] / MIB:.0f} MiB "
              f"(+{(got['peak'] - got['idle']) / MIB:.0f} MiB for {got['bytes'] / MIB:.0f} MiB streamed)", flush=True)


if __name__ == "__main__":
    main()
