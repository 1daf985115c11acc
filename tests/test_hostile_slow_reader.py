"""A slow-reading client of /metrics-windows must not make agents count as missing (issue 16, item 20)."""

from __future__ import annotations

import json
import time

from attack import slow_get, start_small_cluster
from procs import http_get


def test_a_client_that_reads_slowly_does_not_make_agents_missing(tmp_path):
    # ~3 MB of answer (more than loopback's socket buffers hold), a client that reads nothing for longer
    # than --metrics-timeout: every agent's reply is in the proxy well within the deadline all the same.
    cluster = start_small_cluster(tmp_path, agents=3, proxy_args=("--metrics-timeout", "2s"), series=2000)
    try:
        time.sleep(4)  # a few more scrapes in every window
        body = slow_get(cluster.proxy.ports["http"], f"/metrics-windows?start={int(time.time()) - 600}",
                        stall_s=5)
        answer = json.loads(body)
        assert len(body) > 2_000_000
        assert answer["missing_agents"] == [] and answer["agents_answered"] == 3
        page = http_get(f"{cluster.proxy.url}/metrics", timeout=20)[2].decode()
        assert "fodc_proxy_agent_missing{" not in page and "fodc_proxy_agent_missed_total{" not in page
    finally:
        cluster.stop()
