"""Real fodc-agent memory: RSS scraping a 5k-series simulated node, against the same agent with no node.

Run: .venv/bin/python bench/bench_agent_rss.py [--series 5000] [--seconds 30]
Both agents are real processes (1 s scrapes). The window's own growth to its full 30 MiB budget is measured
by bench_window.py --fill; add the two for a full-window estimate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import free_port, start_agent, start_proxy, wait_for  # noqa: E402

from fodc.sim.launcher import start_sim_node  # noqa: E402

MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fodc-bench-rss-"))
    proxy = start_proxy(tmp)
    node = start_sim_node("datanode-hot", free_port(), series=args.series)
    idle = busy = None
    try:
        idle = start_agent(tmp, proxy.grpc_addr, "liaison", "idle", "--node-metrics-url",
                           f"http://127.0.0.1:{free_port()}/metrics", "--scrape-interval", "1s",
                           "--scrape-timeout", "1s")
        busy = start_agent(tmp, proxy.grpc_addr, "datanode-hot", "busy", "--node-metrics-url", node.metrics_url,
                           "--scrape-interval", "1s", "--scrape-timeout", "1s")
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
        time.sleep(args.seconds)
        rss_idle = psutil.Process(idle.pid).memory_info().rss
        rss_busy = psutil.Process(busy.pid).memory_info().rss
        print(f"agent RSS, no node (baseline):        {rss_idle / MIB:6.1f} MiB")
        print(f"agent RSS, {args.series} series, {args.seconds:g} s: {rss_busy / MIB:6.1f} MiB "
              f"(+{(rss_busy - rss_idle) / MIB:.1f} MiB, x{rss_busy / rss_idle:.2f})")
    finally:
        for daemon in (busy, idle, proxy):
            if daemon is not None:
                daemon.stop()
        node.stop()


if __name__ == "__main__":
    main()
