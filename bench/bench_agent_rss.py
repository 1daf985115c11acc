"""Real fodc-agent memory: RSS of an agent whose window is full, against an agent with no node, in one run.

Run: .venv/bin/python bench/bench_agent_rss.py [--series 5000] [--seconds 30] [--no-full] [--no-unit-env]

Three real agent processes scrape every second, with the environment of the shipped systemd unit
(packaging/systemd/fodc-agent.service, Environment= lines) unless --no-unit-env:
  * baseline: no node to scrape (its URL refuses connections);
  * fresh:    a simulated node of --series series, window starting empty (what a just-started agent holds);
  * full:     the same node, its --window-dir prefilled so the agent starts with a full window.

Filling a 30 MiB window by scraping takes hours (~28 h of 5k series at 15 s), so the bench writes the window
directory the way an agent would have: the same simulated node page (fodc.sim.NodeModel, same role, series
count and seed, so the series are those the live node serves), rendered at made-up 15 s timestamps that end
before the agent starts, parsed by fodc.expfmt and ingested into a FlightRecorder with the agent's budget and
an on-disk window (DurableWindow) until the budget first evicts. The agent reads it back at start (recovery
takes about a budget's worth of blocks) and then scrapes the live node on top: new blocks seal, old ones go.
Prefilling takes 2–3 minutes for 5k series.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import free_port, http_get, start_agent, start_proxy, wait_for  # noqa: E402
from windowfill import prefill_window  # noqa: E402

from fodc.sim.launcher import start_sim_node  # noqa: E402

MIB = 1024 * 1024
ROLE = "datanode-hot"
UNIT = Path(__file__).resolve().parent.parent / "packaging" / "systemd" / "fodc-agent.service"
BUDGET = 30 * MIB  # the agent's default --window-memory
BLOCK_SCRAPES = 120  # its default --window-block-scrapes
PREFILL_INTERVAL_MS = 15_000


def unit_environment() -> dict[str, str]:
    """The Environment= settings of the shipped unit, so the bench measures the agent as it is run."""
    env = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            env[name] = value
    return env


def prefill(directory: Path, source: str, series: int) -> tuple[int, float]:
    """Writes a full window of `source` into `directory`; returns the scrapes written and the seconds taken."""
    started = time.monotonic()
    scrapes = prefill_window(directory, source, ROLE, series, budget_bytes=BUDGET, block_scrapes=BLOCK_SCRAPES,
                             interval_ms=PREFILL_INTERVAL_MS, until_full=True)
    return scrapes, time.monotonic() - started


def rss_figures(pid: int) -> dict[str, int]:
    """RSS and its split from /proc/<pid>/smaps_rollup: anonymous (heap, the window) and file-backed (code)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) * 1024
    return {"rss": psutil.Process(pid).memory_info().rss, "anon": fields["Anonymous"],
            "file": fields["Rss"] - fields["Anonymous"] - fields.get("Shmem", 0)}


def window_figures(url: str) -> tuple[float, float]:
    """(accounted bytes, budget bytes) of the agent's window, from its own /metrics."""
    _, _, body = http_get(f"{url}/metrics", 5)
    text = body.decode()

    def gauge(name: str) -> float:
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else float("nan")

    return gauge("fodc_agent_window_bytes"), gauge("fodc_agent_window_budget_bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30, help="how long the agents scrape before measuring")
    parser.add_argument("--no-full", action="store_true", help="skip the prefilled (full window) agent")
    parser.add_argument("--no-unit-env", action="store_true", help="run without the unit's Environment=")
    args = parser.parse_args()
    env = {} if args.no_unit_env else unit_environment()
    tmp = Path(tempfile.mkdtemp(prefix="fodc-bench-rss-", dir="/var/tmp"))
    proxy = start_proxy(tmp)
    node = start_sim_node(ROLE, free_port(), series=args.series)
    agents = {}
    try:
        if not args.no_full:
            scrapes, seconds = prefill(tmp / "window-full", node.metrics_url, args.series)
            print(f"prefilled a full window: {scrapes} scrapes of {args.series} series in {seconds:.0f} s")
        scraping = ("--scrape-interval", "1s", "--scrape-timeout", "1s")
        agents["baseline"] = start_agent(tmp, proxy.grpc_addr, "liaison", "baseline", "--node-metrics-url",
                                         f"http://127.0.0.1:{free_port()}/metrics", *scraping, env=env)
        agents["fresh"] = start_agent(tmp, proxy.grpc_addr, ROLE, "fresh", "--node-metrics-url", node.metrics_url,
                                      *scraping, env=env)
        if not args.no_full:
            agents["full"] = start_agent(tmp, proxy.grpc_addr, ROLE, "full", "--node-metrics-url",
                                         node.metrics_url, *scraping, env=env)
        wait_for(lambda: len(proxy.cluster(status="online")) == len(agents), 60, what="agents online")
        time.sleep(args.seconds)
        figures = {name: rss_figures(agent.pid) for name, agent in agents.items()}
        windows = {name: window_figures(agent.url) for name, agent in agents.items()}
        base = figures["baseline"]["rss"]
        print(f"environment: {env or 'none'}; {args.seconds:g} s of 1 s scrapes")
        for name, fig in figures.items():
            used, budget = windows[name]
            print(f"agent {name:8s} RSS {fig['rss'] / MIB:6.1f} MiB (x{fig['rss'] / base:.2f}, "
                  f"+{(fig['rss'] - base) / MIB:5.1f} MiB)  anonymous {fig['anon'] / MIB:5.1f}  "
                  f"file-backed {fig['file'] / MIB:5.1f}  window {used / MIB:5.1f} of {budget / MIB:.0f} MiB")
    finally:
        for daemon in (*agents.values(), proxy):
            daemon.stop()
        node.stop()


if __name__ == "__main__":
    main()
