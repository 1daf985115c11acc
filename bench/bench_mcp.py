"""`fodc mcp` (stdio) and the proxy's /mcp against a real proxy, agents and simulated nodes.

Run: .venv/bin/python bench/bench_mcp.py [--nodes 3] [--rounds 20] [--seconds 60]

1. Latency of one tool call, median over --rounds: cluster_overview over stdio and over /mcp. Floor, same run:
   GET /cluster from Python (what the tool itself asks).
2. Size: query_window of every banyandb_* series of all nodes over the last --seconds, in characters, against
   the raw /metrics-windows answer for the same range (what a model would read without the tool).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import BIN, free_port, start_agent, start_proxy, wait_for  # noqa: E402

from fodc.sim.launcher import start_sim_node  # noqa: E402


async def timed_calls(client: Client, rounds: int) -> list[float]:
    took = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = await client.call_tool("cluster_overview", {})
        took.append(time.perf_counter() - start)
        assert not result.is_error, result.content[0].text
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    daemons, nodes = [], []
    try:
        proxy = start_proxy(tmp)
        daemons.append(proxy)
        for i in range(args.nodes):
            node = start_sim_node("datanode-hot", free_port())
            nodes.append(node)
            daemons.append(start_agent(tmp, proxy.grpc_addr, "datanode-hot", f"hot-{i}", "--node-metrics-url",
                                       node.metrics_url, "--scrape-interval", "1s", "--scrape-timeout", "1s"))
        wait_for(lambda: len(proxy.cluster(status="online")) == args.nodes, 60, what="agents online")
        time.sleep(min(args.seconds, 30))  # some window to read

        floor = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            with urllib.request.urlopen(f"{proxy.url}/cluster", timeout=30) as answer:
                answer.read()
            floor.append(time.perf_counter() - start)
        query = {"name": "banyandb_*", "since": f"{args.seconds}s", "step": "5s", "max_series": 100}
        with urllib.request.urlopen(f"{proxy.url}/metrics-windows?name=banyandb_*&start={args.seconds}s",
                                    timeout=60) as answer:
            raw_chars = len(answer.read())

        async def measure(client: Client) -> tuple[list[float], int]:
            took = await timed_calls(client, args.rounds)
            result = await client.call_tool("query_window", query)
            return took, len(result.content[0].text)

        async def over_stdio() -> tuple[list[float], int]:
            params = StdioServerParameters(command=str(BIN / "fodc"), args=["--proxy", proxy.url, "mcp"])
            async with Client(params) as client:
                return await measure(client)

        async def over_http() -> tuple[list[float], int]:
            http = create_mcp_http_client()
            async with http, Client(streamable_http_client(f"{proxy.url}/mcp", http_client=http)) as client:
                await client.call_tool("cluster_overview", {})  # the first /mcp request loads the SDK
                return await measure(client)

        stdio, tool_chars = anyio.run(over_stdio)
        http, _ = anyio.run(over_http)
        base = statistics.median(floor) * 1000
        print(f"nodes {args.nodes}, rounds {args.rounds}")
        print(f"GET /cluster (floor)          median {base:7.1f} ms")
        for name, took in (("cluster_overview over stdio", stdio), ("cluster_overview over /mcp", http)):
            median = statistics.median(took) * 1000
            print(f"{name:29s} median {median:7.1f} ms  ({median / base:.1f}x the floor)")
        print(f"query_window {query['name']} {args.seconds}s: {tool_chars} characters; raw /metrics-windows "
              f"{raw_chars} characters ({raw_chars / max(1, tool_chars):.0f}x more)")
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        for node in nodes:
            node.stop()


if __name__ == "__main__":
    main()
