"""Idle connections against the agent's HTTP endpoint must not cost the agent its scrapes (issue 16, item 2)."""

from __future__ import annotations

import time

from attack import fd_soft_limit, held_sockets, raise_fd_limit, start_small_cluster, still_open
from procs import http_get, http_json, wait_for

FAMILY = "banyandb_system_cpu_state"


def _points_since(cluster, since_s: float) -> int:
    status, body = http_json(f"{cluster.proxy.url}/metrics-windows?name={FAMILY}&start={since_s:.3f}", timeout=20)
    assert status == 200, body
    return max((len(s["points"]) for s in body["series"]), default=0)


def test_a_thousand_idle_connections_leave_scrapes_and_the_endpoint_working(tmp_path):
    with fd_soft_limit(1024):  # what systemd gives a service by default
        cluster = start_small_cluster(tmp_path, agents=1)
    raise_fd_limit()
    agent = cluster.agents[0]
    try:
        with held_sockets(agent.ports["http"], 1100) as idle:
            held_at = time.time()
            status, _, _ = http_get(f"{agent.url}/health", timeout=5)  # a real client still gets in
            assert status == 200
            deadline = time.monotonic() + 30
            while _points_since(cluster, held_at) < 4 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _points_since(cluster, held_at) >= 4  # 1 s scrapes kept landing in the window
            # The agent closed the ones over its cap (--http-max-connections), once it accepted them all.
            wait_for(lambda: still_open(idle) <= 64, 30, what="at most 64 of the idle sockets left open")
        page = http_get(f"{agent.url}/metrics", timeout=5)[2].decode()
        assert 'fodc_agent_http_connections_closed_total{reason="evicted"}' in page
    finally:
        cluster.stop()


def test_an_idle_connection_is_closed_after_the_client_timeout(tmp_path):
    cluster = start_small_cluster(tmp_path, agents=1, agent_args=("--http-client-timeout", "1s"))
    try:
        with held_sockets(cluster.agents[0].ports["http"], 5, b"GET /health HTTP/1.1\r\n") as slow:
            time.sleep(3)
            assert still_open(slow) == 0
    finally:
        cluster.stop()
