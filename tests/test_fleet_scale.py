"""The load test scaled down for CI: many agents (each its own gRPC streams) against one real proxy, and a
proxy killed and restarted under that load (bench/bench_fleet_load.py runs the 1,000-agent size)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from procs import http_get, start_proxy, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from fleet import CachedResponder, Fleet, filled_recorder  # noqa: E402

from fodc.config import HostPort  # noqa: E402

AGENTS = 60


@pytest.fixture
def fleet_and_proxy(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--max-agents", str(AGENTS + 5))
    daemons.append(proxy)
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), AGENTS, CachedResponder(filled_recorder(100)))
    fleet.start()
    yield fleet, proxy, tmp_path
    fleet.stop()


def _online_ids(proxy) -> list[str]:
    return sorted(n["node_id"] for n in proxy.cluster(status="online"))


def test_many_agents_register_once_each_and_answer_a_fan_out(fleet_and_proxy):
    fleet, proxy, _ = fleet_and_proxy
    expected = sorted(f"fleet-{i}" for i in range(AGENTS))
    wait_for(lambda: _online_ids(proxy) == expected, 60, interval=0.5, what=f"{AGENTS} agents online")
    assert len(proxy.cluster()) == AGENTS  # no duplicates, nothing unconnected
    status, _, body = http_get(f"{proxy.url}/metrics?role=liaison", timeout=60)
    assert status == 200
    assert body.decode().count('node_id="fleet-') >= AGENTS // 4  # every liaison agent contributed samples


def test_a_proxy_killed_under_load_gets_every_agent_back_without_duplicates(fleet_and_proxy, daemons):
    fleet, proxy, tmp_path = fleet_and_proxy
    expected = sorted(f"fleet-{i}" for i in range(AGENTS))
    wait_for(lambda: _online_ids(proxy) == expected, 60, interval=0.5, what=f"{AGENTS} agents online")
    proxy.crash()
    restarted = start_proxy(tmp_path, "--max-agents", str(AGENTS + 5), grpc_port=proxy.ports["grpc"],
                            http_port=proxy.ports["http"], name="proxy-restarted")
    daemons.append(restarted)
    # The bound: every agent back within 15 s of the new proxy serving (agents redial with backoff).
    wait_for(lambda: _online_ids(restarted) == expected, 15, interval=0.5, what="all agents back")
    assert len(restarted.cluster()) == AGENTS
