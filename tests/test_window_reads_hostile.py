"""Window reads against real processes: an agent holding hours of a busy node stays small under concurrent
full-range reads, turns away reads beyond its concurrency, stops a read whose requester went away, and a read
asking for too many points is a 400 that says how to ask for fewer."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from pathlib import Path

from procs import free_port, http_get, memory_kib, start_agent, start_proxy, wait_for
from windowfill import prefill_window

from fodc.sim.launcher import start_sim_node

ROLE = "datanode-hot"


def window_reads(agent) -> dict[str, float]:
    page = http_get(f"{agent.url}/metrics")[2].decode()
    prefix = 'fodc_agent_window_reads_total{outcome="'
    return {line[len(prefix):].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in page.splitlines() if line.startswith(prefix)}


def start_full_agent(tmp_path: Path, daemons: list, series: int, scrapes: int, *proxy_args: str):
    """A proxy and an agent whose window already holds `scrapes` 15 s scrapes of a `series`-series node."""
    node = start_sim_node(ROLE, free_port(), series=series)
    daemons.append(node)
    prefill_window(tmp_path / "window-big", node.metrics_url, ROLE, series, scrapes=scrapes)
    proxy = start_proxy(tmp_path, *proxy_args)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, ROLE, "big", "--node-metrics-url", node.metrics_url,
                        "--window-dir", str(tmp_path / "window-big"))
    daemons.append(agent)
    wait_for(lambda: proxy.cluster(node_id="big", status="online"), 60, what="agent online")
    return proxy, agent


def full_range_url(proxy, **params: str) -> str:
    query = {"node_id": "big", "start": str(int(time.time()) - 7 * 24 * 3600), **params}
    return f"{proxy.url}/metrics-windows?{urllib.parse.urlencode(query)}"


def test_a_read_over_the_point_limit_is_a_400_naming_range_and_step(tmp_path, daemons) -> None:
    proxy, _ = start_full_agent(tmp_path, daemons, 300, 200, "--window-max-points", "20000")
    status, _, body = http_get(full_range_url(proxy), 30)
    error = json.loads(body)
    assert status == 400 and error["error"] == "bad_request", body
    assert "node big" in error["message"] and "start/end" in error["message"] and "step" in error["message"]
    assert "20,000" in error["message"]
    status, _, body = http_get(full_range_url(proxy, step="30m"), 30)
    document = json.loads(body)
    assert status == 200 and document["agents_answered"] == 1 and not document["missing_agents"]
    assert document["series"] and max(len(s["points"]) for s in document["series"]) <= 3


def test_concurrent_full_range_reads_leave_the_agent_small(tmp_path, daemons) -> None:
    series, scrapes = 2000, 600  # ~1.2 M points in one full-range answer
    proxy, agent = start_full_agent(tmp_path, daemons, series, scrapes, "--window-max-points", "100000000",
                                    "--metrics-timeout", "120s")
    time.sleep(2)  # settle: the first scrape of the live node
    baseline = memory_kib(agent.pid)["VmRSS"]
    answers: list[dict] = []

    def read() -> None:
        status, _, body = http_get(full_range_url(proxy), 180)
        assert status == 200, body[:300]
        answers.append(json.loads(body))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(200)
    assert len(answers) == 8
    complete = [a for a in answers if a["agents_answered"] == 1]
    busy = [a for a in answers if a["missing_agents"]]
    assert complete and len(complete) + len(busy) == 8
    assert all("agent busy" in a["missing_agents"][0]["reason"] for a in busy)
    assert all(sum(len(s["points"]) for s in a["series"]) >= (series - 100) * scrapes for a in complete)
    peak = memory_kib(agent.pid)["VmHWM"]
    # One answer as Python lists would be ~1.2 M x 40 bytes = 46 MiB, and before the bounds 4 answered at once;
    # bounded, the agent grows by a few query batches and reply chunks whatever the range.
    assert peak - baseline < 60 * 1024, (baseline, peak)
    counts = window_reads(agent)
    assert counts.get("answered", 0) == len(complete) and counts.get("busy", 0) == len(busy)


def test_a_read_whose_requester_went_away_is_cancelled_on_the_agent(tmp_path, daemons) -> None:
    proxy, agent = start_full_agent(tmp_path, daemons, 2000, 600, "--window-max-points", "100000000",
                                    "--metrics-timeout", "120s")
    path = full_range_url(proxy).removeprefix(proxy.url)
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=30) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert client.recv(4096).startswith(b"HTTP/1.1 200")  # the read is under way; then we are gone
    wait_for(lambda: window_reads(agent).get("cancelled") == 1, 60, what="the agent cancels the read")
    assert "answered" not in window_reads(agent)
    assert "window read cancelled by the proxy" in agent.log_path.read_text()
    status, _, body = http_get(full_range_url(proxy, name="banyandb_system_cpu_state"), 30)
    assert status == 200 and json.loads(body)["agents_answered"] == 1  # the agent is free for the next read
