"""A real Prometheus server (Debian package) scrapes the proxy and an agent on loopback."""

from __future__ import annotations

import shutil
import urllib.parse

import pytest
from procs import free_port, http_json, start_agent, start_prometheus, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="the prometheus server (Debian package prometheus) is not installed")


def _query(base: str, promql: str) -> list[dict]:
    status, body = http_json(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")
    assert status == 200, body
    return body["data"]["result"]


def test_prometheus_scrapes_banyandb_series_labelled_with_node_role(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    node = start_sim_node("datanode-hot", free_port(), series=300)
    try:
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-p", "--node-metrics-url",
                            node.metrics_url, "--scrape-interval", "1s", "--scrape-timeout", "1s")
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(status="online"), what="agent online")
        prometheus, base = start_prometheus(tmp_path, f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fodc-proxy
    static_configs: [{{targets: ["127.0.0.1:{proxy.ports['http']}"]}}]
  - job_name: fodc-agent
    static_configs: [{{targets: ["127.0.0.1:{agent.ports['http']}"]}}]
""")
        daemons.append(prometheus)

        via_proxy = wait_for(lambda: _query(base, 'banyandb_system_cpu_state{job="fodc-proxy"}'), timeout=60,
                             what="series scraped from the proxy")
        assert {r["metric"]["node_role"] for r in via_proxy} == {"datanode-hot"}
        assert {r["metric"]["node_id"] for r in via_proxy} == {"hot-p"}
        direct = wait_for(lambda: _query(base, 'banyandb_system_cpu_state{job="fodc-agent"}'), timeout=30,
                          what="series scraped from the agent")
        assert direct
        targets = http_json(f"{base}/api/v1/targets")[1]["data"]["activeTargets"]
        assert {t["labels"]["job"]: t["health"] for t in targets} == {"fodc-proxy": "up", "fodc-agent": "up"}
        up = _query(base, "fodc_agent_scrape_up")
        assert up and float(up[0]["value"][1]) == 1
    finally:
        node.stop()
