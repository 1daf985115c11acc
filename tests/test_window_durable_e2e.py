"""The durable window end to end: a real agent scraping a simulated node, killed with SIGKILL again and again at
random moments, comes back with every point it had (less at most the interim interval of each life), and the
proxy's /metrics-windows serves them."""

from __future__ import annotations

import json
import random
import time

import pytest
from procs import free_port, http_get, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node

FAMILY = "banyandb_system_cpu_state"
INTERIM = 3


@pytest.fixture
def node():
    sim = start_sim_node("datanode-hot", free_port(), series=300, seed=4)
    yield sim
    sim.stop()


def window_points(proxy) -> dict[str, dict[int, object]]:
    status, body = http_json(f"{proxy.url}/metrics-windows?start=0&name={FAMILY}", timeout=30)
    assert status == 200, body
    assert body["missing_agents"] == []
    return {json.dumps(s["labels"], sort_keys=True): {t: v for t, v in s["points"]} for s in body["series"]}


def test_sigkill_at_random_moments_loses_at_most_the_interim_interval_of_each_life(tmp_path, daemons, node):
    rng = random.Random(20261124)
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    window = tmp_path / "window"
    ports = {"http": free_port(), "node": free_port()}
    args = ["--node-metrics-url", node.metrics_url, "--scrape-interval", "200ms", "--scrape-timeout", "200ms",
            "--window-dir", str(window), "--window-block-scrapes", "8", "--window-interim-scrapes", str(INTERIM),
            "--window-file-bytes", "24KiB", "--window-dir-bytes", "8MiB"]

    def start():
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-crash", *args,
                            node_port=ports["node"], http_port=ports["http"])
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(node_id="hot-crash", status="online"), 30, what="agent online")
        return agent

    seen: dict[str, dict[int, object]] = {}
    lives: list[dict[str, list[int]]] = []  # per life: each series' timestamps in the snapshot before the kill
    for _ in range(6):
        agent = start()
        time.sleep(rng.uniform(1.0, 2.5))
        snapshot = window_points(proxy)
        time.sleep(rng.uniform(0.0, 0.7))  # the kill lands anywhere in the scrape/seal/interim cycle
        agent.kill9()
        newest_before = {key: max(seen.get(key, {0: None})) for key in snapshot}
        lives.append({key: sorted(t for t in points if t > newest_before[key]) for key, points in snapshot.items()})
        for key, points in snapshot.items():
            for t, value in points.items():
                assert seen.setdefault(key, {}).setdefault(t, value) == value  # a point never changes value

    agent = start()
    recovered = window_points(proxy)
    assert set(recovered) == set(seen) and len(seen) == 8  # the family's 8 series
    for key, points in seen.items():
        got = recovered[key]
        for t, value in got.items():
            if t in points:
                assert value == points[t], (key, t)
        for life in lives:
            stamps = life[key]
            missing = [t for t in stamps if t not in got]
            # only the newest scrapes of a life may be missing: those after its last interim flush
            assert len(missing) <= INTERIM - 1, (key, missing, stamps[-INTERIM:])
            assert missing == stamps[len(stamps) - len(missing):], (key, missing)
    text = http_get(f"{agent.url}/metrics")[2].decode()
    assert "fodc_agent_window_recovered_samples " in text
    assert "window recovered from disk" in agent.log()


def test_an_empty_window_dir_keeps_the_window_in_memory_only(tmp_path, daemons, node):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-mem", "--node-metrics-url",
                        node.metrics_url, "--scrape-interval", "200ms", "--scrape-timeout", "200ms",
                        "--window-dir", "", "--window-block-scrapes", "2", "--window-interim-scrapes", "1")
    daemons.append(agent)
    wait_for(lambda: window_points(proxy), 30, what="window points at the proxy")
    status, health = http_json(f"{agent.url}/health")
    assert health["runtime"]["window_store"] == "memory"
    assert "fodc_agent_window_disk_bytes" not in http_get(f"{agent.url}/metrics")[2].decode()
    assert [p for p in tmp_path.rglob("window*") if p.suffix != ".log"] == []  # no window files anywhere


def test_an_unusable_window_dir_is_reported_and_scraping_goes_on(tmp_path, daemons, node):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the window directory should be")
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-bad", "--node-metrics-url",
                        node.metrics_url, "--scrape-interval", "200ms", "--scrape-timeout", "200ms",
                        "--window-dir", str(blocker / "window"), "--window-interim-scrapes", "1")
    daemons.append(agent)
    wait_for(lambda: len(next(iter(window_points(proxy).values()), {})) >= 5, 30, what="scrapes going on")
    metrics = http_get(f"{agent.url}/metrics")[2].decode()
    errors = [line for line in metrics.splitlines() if line.startswith("fodc_agent_window_disk_errors_total")]
    assert any(float(line.split()[-1]) > 0 for line in errors), errors
    assert 'fodc_agent_scrape_up{target="' + node.metrics_url + '"} 1.0' in metrics
    status, health = http_json(f"{agent.url}/health")
    assert "Not a directory" in health["runtime"]["window_disk_last_error"]
    assert agent.log().count("window directory: ") == 1  # said once, not at every scrape
