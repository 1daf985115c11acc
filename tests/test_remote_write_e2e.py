"""Remote-write end to end: a real agent scraping a simulated node pushes to real receivers on loopback, and
what the receivers hold is compared, sample by sample, with what the agent's window holds (read through the
proxy's /metrics-windows, labels as the proxy adds them)."""

from __future__ import annotations

import pytest
from procs import free_port, http_get, start_agent, start_proxy, wait_for
from receivers import (
    VM_RELATIVE_PRECISION,
    differences,
    have_victoria_metrics,
    start_victoria_metrics,
    vm_export,
    window_samples,
)

from fodc.sim.launcher import start_sim_node

pytestmark = pytest.mark.skipif(not have_victoria_metrics(), reason="needs Debian's victoria-metrics (dev/bootstrap)")

FAMILY = "banyandb_system_cpu_state"
FAST = ("--scrape-interval", "200ms", "--scrape-timeout", "200ms")


@pytest.fixture
def node():
    sim = start_sim_node("datanode-hot", free_port(), series=200, seed=7)
    yield sim
    sim.stop()


def self_metric(agent, name: str) -> float:
    text = http_get(f"{agent.url}/metrics")[2].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_live_samples_reach_victoria_metrics_exactly_as_the_window_holds_them(tmp_path, daemons, node):
    vm, vm_url = start_victoria_metrics(tmp_path)
    daemons.append(vm)
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "rw-live", "--node-metrics-url", node.metrics_url,
                        *FAST, "--remote-write-url", f"{vm_url}/api/v1/write",
                        "--remote-write-state-file", str(tmp_path / "rw.json"), labels="zone=a")
    daemons.append(agent)
    wait_for(lambda: proxy.cluster(node_id="rw-live", status="online"), 30, what="agent online")
    truth = wait_for(lambda: (w := window_samples(proxy.url, FAMILY)) and min(map(len, w.values())) >= 10 and w,
                     30, what="ten scrapes in the window")
    newest = max(max(points) for points in truth.values())
    assert all('"node_id":"rw-live"' in k and '"node_zone":"a"' in k for k in truth)
    diff: list[str] = []

    def same() -> bool:
        diff[:] = differences(truth, vm_export(vm_url, f'{{__name__="{FAMILY}"}}', end_ms=newest),
                              VM_RELATIVE_PRECISION)
        return not diff

    wait_for(same, 30, what=f"victoria-metrics holding the window's samples up to {newest}: {diff}")
    assert self_metric(agent, "fodc_agent_remote_write_samples_sent_total") > 0
    assert self_metric(agent, "fodc_agent_remote_write_samples_dropped_total") == 0
