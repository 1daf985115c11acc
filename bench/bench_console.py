"""The web console in headless Chromium against a real proxy and synthetic agents (bench/fleet.py).

Run: .venv/bin/python bench/bench_console.py [--agents 100] [--series 50] [--hours 24] [--rounds 3]

1. Cluster page with --agents agents, each with 15 minutes of a simulated node's window: time from navigation
   to the rendered table (sparklines included). Floor, same run: fetching the two API answers the page needs
   from Python.
2. Node page of one agent holding --hours of --series series scraped every 15 s: bytes fetched and time to fetch
   and draw every plot. Floor, same run: the same window without `step` (what a page would fetch without
   server-side downsampling), its bytes and its fetch time from Python.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from browser import missing_browser, start_chromium  # noqa: E402
from fleet import CachedResponder, Fleet  # noqa: E402
from procs import start_proxy, wait_for  # noqa: E402

from fodc import expfmt  # noqa: E402
from fodc.config import HostPort  # noqa: E402
from fodc.sim.page import NodeModel  # noqa: E402
from fodc.window import FlightRecorder  # noqa: E402

INTERVAL_S = 15
SPARK_FAMILIES = ("banyandb_system_cpu_state", "banyandb_system_memory_state", "banyandb_measure_total_written")


def recorder_until_now(seconds: float, series: int, keep: set[str] | None = None) -> FlightRecorder:
    """A flight recorder holding `seconds` of a simulated data node, ending now (only families in `keep`)."""
    now = int(time.time())
    start = now - int(seconds)
    model = NodeModel("datanode-hot", series, seed=5, start_s=start)
    parser = expfmt.Parser()
    recorder = FlightRecorder(budget_bytes=512 * 1024 * 1024)
    for t in range(start, now, INTERVAL_S):
        families = parser.parse(model.render(t)).families
        if keep is not None:
            families = [f for f in families if f.name in keep]
        recorder.ingest_families("node", t * 1000 + 5, families)
    return recorder


def families_for(series: int) -> list[str]:
    """Gauge and counter families of the simulated node adding up to about `series` series."""
    model = NodeModel("datanode-hot", 2000, seed=5, start_s=time.time())
    page = expfmt.Parser().parse(model.render(time.time())).families
    chosen, total = [], 0
    for family in page:
        wanted = family.type in ("gauge", "counter") and family.name.startswith("banyandb_")
        if not wanted or len(family.samples) > 20:
            continue
        chosen.append(family.name)
        total += len(family.samples)
        if total >= series:
            break
    return chosen


def fetch(url: str) -> tuple[int, float]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return size, time.perf_counter() - start


def cluster_page(tmp: Path, agents: int, rounds: int) -> None:
    responder = CachedResponder(recorder_until_now(15 * 60, 300, set(SPARK_FAMILIES)))
    proxy = start_proxy(tmp, "--max-agents", str(agents + 10), "--command-timeout", "2s", name="proxy-cluster")
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), agents, responder)
    driver = None
    try:
        fleet.start()
        wait_for(lambda: fleet.registered() == agents, 120, what=f"{agents} agents registered")
        driver = start_chromium(tmp / "chromium-cluster")
        renders, floors = [], []
        for _ in range(rounds):
            driver.get(f"{proxy.url}/")
            wait_for(lambda: driver.execute_script("return document.body.dataset.rendered"), 60, what="rendered")
            renders.append(driver.execute_script("return Number(document.body.dataset.renderedAt)") / 1000)
            rows = driver.execute_script("return document.querySelectorAll('tr[data-node]').length")
            sparks = driver.execute_script("return document.querySelectorAll('svg.spark[data-points]').length")
            url = driver.execute_script("return document.body.dataset.windowsUrl")
            _, t_cluster = fetch(f"{proxy.url}/cluster")
            _, t_windows = fetch(f"{proxy.url}{url}")
            floors.append(t_cluster + t_windows)
        render, floor = statistics.median(renders), statistics.median(floors)
        print(f"cluster page, {agents} agents ({rows} rows, {sparks} sparklines with points): rendered in "
              f"{render * 1000:.0f} ms from navigation (median of {rounds}); floor (its two API answers fetched "
              f"from Python) {floor * 1000:.0f} ms; ratio {render / floor:.1f}")
    finally:
        if driver is not None:
            driver.quit()
        fleet.stop()
        proxy.stop()


def node_page(tmp: Path, series: int, hours: float, rounds: int) -> None:
    names = families_for(series)
    responder = CachedResponder(recorder_until_now(hours * 3600, 2000, set(names)))
    proxy = start_proxy(tmp, "--command-timeout", "2s", "--metrics-timeout", "60s", name="proxy-node")
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), 1, responder)
    driver = None
    try:
        fleet.start()
        wait_for(lambda: fleet.registered() == 1, 60, what="the agent registered")
        driver = start_chromium(tmp / "chromium-node")
        drawn = []
        for _ in range(rounds):
            driver.get(f"{proxy.url}/console/node?node_id=fleet-0&range=24h&families={','.join(names)}")
            figures = wait_for(lambda: driver.execute_script("return document.body.dataset.drawn"), 120,
                               what="node page drawn")
            drawn.append(json.loads(figures))
        url = driver.execute_script("return FODC.plots[0].source")
        raw_bytes, raw_s = fetch(f"{proxy.url}{url.split('&step=')[0]}")
        step_bytes, step_s = fetch(f"{proxy.url}{url}")
        fetch_ms = statistics.median(d["fetchMs"] for d in drawn)
        draw_ms = statistics.median(d["drawMs"] for d in drawn)
        last = drawn[-1]
        print(f"node page, {last['series']} series over {hours:g} h ({len(names)} families, step {last['step']} s, "
              f"{last['points']} points drawn): fetched {last['bytes'] / 1e6:.2f} MB in {fetch_ms:.0f} ms, drawn in "
              f"{draw_ms:.0f} ms (medians of {rounds})")
        print(f"  floor, the same window without step: {raw_bytes / 1e6:.2f} MB in {raw_s * 1000:.0f} ms from Python "
              f"(with step from Python: {step_bytes / 1e6:.2f} MB in {step_s * 1000:.0f} ms); bytes ratio "
              f"{last['bytes'] / raw_bytes:.3f}")
    finally:
        if driver is not None:
            driver.quit()
        fleet.stop()
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if missing_browser():
        sys.exit(f"bench_console: {missing_browser()}")
    with tempfile.TemporaryDirectory() as tmp:
        cluster_page(Path(tmp), args.agents, args.rounds)
        node_page(Path(tmp), args.series, args.hours, args.rounds)


if __name__ == "__main__":
    main()
