"""HTTP latency of the proxy and an agent while slow and idle clients hold sockets (issue 16, items 2 and 3).

Run: .venv/bin/python bench/bench_http_attack.py [--requests 200] [--silent 1000] [--partial 16]
Starts a real fodc-proxy (gunicorn) and a real agent with a simulated node, measures GET /health (new
connection each time) unattacked, then again while `--silent` silent sockets and `--partial` sockets that
sent half a request head are held against it. The baseline is the unattacked figure of the same run; the
ratio says what the attack costs a real client.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from attack import PARTIAL_HEADER, held_sockets, raise_fd_limit, start_small_cluster  # noqa: E402


def latencies(url: str, requests: int) -> list[float]:
    out = []
    for _ in range(requests):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        out.append(time.perf_counter() - start)
    return sorted(out)


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1000, samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--partial", type=int, default=16)
    args = parser.parse_args()
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_small_cluster(Path(tmp), agents=1)
        try:
            print(f"{'target':<8} {'p50 ms':>8} {'p99 ms':>8} {'attacked p50':>13} {'p99':>8} {'p50 ratio':>10}")
            for name, daemon in (("proxy", cluster.proxy), ("agent", cluster.agents[0])):
                url = f"{daemon.url}/health"
                base = summary(latencies(url, args.requests))
                port = daemon.ports["http"]
                with held_sockets(port, args.partial, PARTIAL_HEADER), held_sockets(port, args.silent):
                    attacked = summary(latencies(url, args.requests))
                print(f"{name:<8} {base[0]:>8.2f} {base[1]:>8.2f} {attacked[0]:>13.2f} {attacked[1]:>8.2f} "
                      f"{attacked[0] / base[0]:>10.2f}")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
