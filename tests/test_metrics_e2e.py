"""Metrics end to end on loopback: simulated nodes -> agents (scrape, window) -> proxy fan-out -> HTTP."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from procs import free_port, http_get, http_json, start_agent, start_proxy, wait_for
from promcheck import check_metrics

from fodc import expfmt
from fodc.sim.launcher import start_sim_node

ROLES = {"liaison-0": "liaison", "hot-0": "datanode-hot", "warm-0": "datanode-warm"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three simulated nodes, their agents (1 s scrapes) and a proxy, shared by the read-only tests below."""
    tmp = tmp_path_factory.mktemp("cluster")
    nodes, daemons = {}, []
    try:
        proxy = start_proxy(tmp, "--metrics-timeout", "5s")
        daemons.append(proxy)
        agents = {}
        for node_id, role in ROLES.items():
            nodes[node_id] = start_sim_node(role, free_port(), series=800, seed=len(nodes))
            agents[node_id] = start_agent(tmp, proxy.grpc_addr, role, node_id, "--node-metrics-url",
                                          nodes[node_id].metrics_url, "--scrape-interval", "1s",
                                          "--scrape-timeout", "1s", labels="zone=z1")
            daemons.append(agents[node_id])
        wait_for(lambda: len(proxy.cluster(status="online")) == 3, what="three agents online")
        wait_for(lambda: all(f"node_id=\"{n}\"" in _proxy_metrics(proxy) for n in ROLES), timeout=20,
                 what="every node's series at the proxy")
        yield {"proxy": proxy, "agents": agents, "nodes": nodes, "started_ms": int(time.time() * 1000)}
    finally:
        for daemon in daemons:
            daemon.stop()
        for node in nodes.values():
            node.stop()


def _proxy_metrics(proxy, query: str = "") -> str:
    status, _, body = http_get(f"{proxy.url}/metrics{query}", timeout=30)
    assert status == 200
    return body.decode()


def _families(text: str) -> dict[str, expfmt.Family]:
    result = expfmt.parse(text)
    assert result.errors == [], result.errors[:3]
    return {f.name: f for f in result.families}


def test_proxy_metrics_has_every_nodes_series_labelled_with_node_id_and_role(cluster):
    families = _families(_proxy_metrics(cluster["proxy"]))
    cpu = families["banyandb_system_cpu_state"]
    seen = {(dict(s.labels)["node_id"], dict(s.labels)["node_role"]) for s in cpu.samples}
    assert seen == {(n, r) for n, r in ROLES.items()}
    assert all(dict(s.labels)["node_zone"] == "z1" for s in cpu.samples)


def test_types_and_help_travel_from_the_node_with_one_header_per_family(cluster):
    text = _proxy_metrics(cluster["proxy"])
    families = _families(text)
    counters = [f for f in families.values() if f.name.startswith("banyandb_") and f.type == "counter"]
    histograms = [f for f in families.values() if f.type == "histogram"]
    assert counters and histograms
    for family in counters[:20]:
        assert family.help == family.name  # BanyanDB's HELP text equals the name
    type_lines = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    assert len(type_lines) == len(set(type_lines))


def test_role_and_node_filters_select_agents(cluster):
    families = _families(_proxy_metrics(cluster["proxy"], "?role=datanode-hot"))
    node_ids = {dict(s.labels).get("node_id") for f in families.values() for s in f.samples
                if f.name.startswith("banyandb_")}
    assert node_ids == {"hot-0"}
    families = _families(_proxy_metrics(cluster["proxy"], "?node_id=warm-0"))
    node_ids = {dict(s.labels).get("node_id") for f in families.values() for s in f.samples
                if f.name.startswith("banyandb_")}
    assert node_ids == {"warm-0"}


def test_twenty_concurrent_scrapes_all_get_complete_answers(cluster):
    proxy = cluster["proxy"]

    def scrape(_):
        families = _families(_proxy_metrics(proxy))
        per_node = {}
        for family in families.values():
            for sample in family.samples:
                node = dict(sample.labels).get("node_id")
                if node and family.name.startswith("banyandb_"):
                    per_node[node] = per_node.get(node, 0) + 1
        missing = [s for s in families.get("fodc_proxy_agent_missing", expfmt.Family("", "", "", "", [])).samples]
        return per_node, missing

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(scrape, range(20)))
    reference = results[0][0]
    assert set(reference) == set(ROLES)
    for per_node, missing in results:
        assert per_node == reference  # the simulated pages keep a fixed series set, so every answer is whole
        assert missing == []


def test_window_returns_the_points_each_agent_scraped_with_millisecond_times(cluster):
    proxy = cluster["proxy"]
    time.sleep(3)  # let every agent scrape a few more times (1 s interval)
    start = cluster["started_ms"] - 60_000
    status, body = http_json(f"{proxy.url}/metrics-windows?start={start / 1000}&name=banyandb_system_cpu_state")
    assert status == 200, body
    assert body["missing_agents"] == [] and body["agents_answered"] == 3
    by_node: dict[str, list] = {}
    for series in body["series"]:
        assert series["name"] == "banyandb_system_cpu_state" and series["type"]
        assert series["labels"]["node_role"] == ROLES[series["node_id"]]
        by_node.setdefault(series["node_id"], []).append(series)
    assert set(by_node) == set(ROLES)
    now_ms = int(time.time() * 1000)
    for node_series in by_node.values():
        times = [p[0] for p in node_series[0]["points"]]
        assert len(times) >= 3
        assert times == sorted(set(times))
        assert all(start <= t <= now_ms for t in times)
        assert any(t % 1000 for t in times)  # milliseconds are kept, not truncated to seconds
        # every series of one node shares that node's scrape times (per-source timestamps)
        for other in node_series[1:]:
            other_times = [p[0] for p in other["points"]]
            assert set(other_times) <= set(times) or set(times) <= set(other_times)


def test_window_counter_points_match_the_latest_value_at_the_proxy(cluster):
    proxy = cluster["proxy"]
    status, body = http_json(f"{proxy.url}/metrics-windows?node_id=hot-0&name=~banyandb_measure_total_writ.*")
    assert status == 200 and body["series"]
    series = body["series"][0]
    values = [p[1] for p in series["points"]]
    assert values == sorted(values)  # a counter never falls without a reset


def test_window_step_downsamples_each_series_on_the_proxy(cluster):
    proxy = cluster["proxy"]

    def points_so_far():
        body = http_json(f"{proxy.url}/metrics-windows?node_id=hot-0&name=banyandb_system_cpu_state")[1]
        return len(body["series"][0]["points"]) >= 8
    wait_for(points_so_far, 30, what="eight scrapes in hot-0's window")
    end = time.time() - 2  # both answers see the same points (a scrape lands once it has finished)
    query = f"node_id=hot-0&name=banyandb_system_cpu_state,banyandb_measure_total_written&start={end - 60}&end={end}"
    status, raw = http_json(f"{proxy.url}/metrics-windows?{query}")
    assert status == 200 and raw["series"]
    status, stepped = http_json(f"{proxy.url}/metrics-windows?{query}&step=3s&agg=avg")
    assert status == 200
    assert len(stepped["series"]) == len(raw["series"])
    for full, small in zip(raw["series"], stepped["series"], strict=True):
        assert (full["name"], full["labels"]) == (small["name"], small["labels"])
        buckets: dict[int, list] = {}
        for t, v in full["points"]:
            buckets.setdefault(t // 3000, []).append((t, v))
        assert len(small["points"]) == len(buckets) < len(full["points"])
        for (t, v), group in zip(small["points"], buckets.values(), strict=True):
            assert t == group[-1][0]
            if full["type"] == "counter":
                assert v == group[-1][1]  # counters keep their last value: monotone, rates exact
            else:
                assert v == pytest.approx(sum(x for _, x in group) / len(group))


@pytest.mark.parametrize("query", ["?start=yesterday", "?start=10&end=5", "?name_regex=(", "?bogus=1",
                                   "?start=2026-11-23T10:00:00", "?step=0", "?step=soon", "?agg=median"])
def test_bad_window_parameters_get_a_clear_400(cluster, query):
    status, body = http_json(f"{cluster['proxy'].url}/metrics-windows{query}")
    assert status == 400
    assert body["error"] == "bad_request" and body["message"]


def test_agent_metrics_page_has_node_samples_and_its_own(cluster):
    agent = cluster["agents"]["liaison-0"]
    status, _, body = http_get(f"{agent.url}/metrics")
    families = _families(body.decode())
    assert families["fodc_agent_scrape_up"].samples[0].value == 1
    assert families["fodc_agent_window_series"].samples[0].value > 0
    assert "banyandb_system_cpu_state" in families


@pytest.mark.skipif(subprocess.run(["which", "promtool"], capture_output=True).returncode != 0,
                    reason="promtool (Debian package prometheus) is not installed")
@pytest.mark.parametrize("which", ["proxy", "agent"])
def test_promtool_accepts_the_agent_and_proxy_pages(cluster, which):
    url = cluster["proxy"].url if which == "proxy" else cluster["agents"]["hot-0"].url
    code, findings = check_metrics(http_get(f"{url}/metrics")[2].decode())
    assert code in (0, 3), findings  # 1 would be a parse error
    # BanyanDB names its counters without _total; we carry node names unchanged. Nothing else may be flagged.
    others = [f for f in findings if 'should have "_total" suffix' not in f]
    assert others == []
    assert all(f.startswith("banyandb_") for f in findings)


def test_stalled_agent_is_named_missing_and_the_others_still_answer(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--metrics-timeout", "2s")
    daemons.append(proxy)
    nodes = [start_sim_node("datanode-hot", free_port(), series=300, seed=i) for i in range(2)]
    try:
        agents = [start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", f"n{i}", "--node-metrics-url",
                              node.metrics_url, "--scrape-interval", "1s", "--scrape-timeout", "1s")
                  for i, node in enumerate(nodes)]
        daemons.extend(agents)
        wait_for(lambda: all(f'node_id="n{i}"' in _proxy_metrics(proxy) for i in range(2)), timeout=20,
                 what="both nodes' series")
        agents[1].signal(signal.SIGSTOP)
        try:
            families = _families(_proxy_metrics(proxy))
            missing = families["fodc_proxy_agent_missing"].samples
            assert [dict(s.labels)["node_id"] for s in missing] == ["n1"]
            nodes_seen = {dict(s.labels)["node_id"] for s in families["banyandb_system_cpu_state"].samples}
            assert nodes_seen == {"n0"}
            assert "did not answer a metrics request" in proxy.log()
        finally:
            agents[1].signal(signal.SIGCONT)
    finally:
        for node in nodes:
            node.stop()


def test_agent_keeps_running_while_its_node_is_down_and_resumes(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--agent-heartbeat-timeout", "3s", "--agent-cleanup-timeout", "10s")
    daemons.append(proxy)
    node = start_sim_node("liaison", free_port(), series=300)
    try:
        agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "flaky", "--node-metrics-url", node.metrics_url,
                            "--scrape-interval", "1s", "--scrape-timeout", "1s")
        daemons.append(agent)
        up = lambda: _families(http_get(f"{agent.url}/metrics")[2].decode())["fodc_agent_scrape_up"].samples[0].value  # noqa: E731
        wait_for(lambda: up() == 1, what="first successful scrape")
        node.fault("down", duration=8)
        wait_for(lambda: up() == 0, what="scrape failure reported")
        runtime = wait_for(lambda: (n := proxy.cluster(node_id="flaky")) and
                           n[0]["runtime"].get("scrape_last_error") and n[0]["runtime"], what="error in /cluster")
        assert "cannot reach" in runtime["scrape_last_error"]
        assert agent.proc.poll() is None
        wait_for(lambda: up() == 1, timeout=20, what="scrapes resume when the node is back")
        status, body = http_json(f"{proxy.url}/metrics-windows?node_id=flaky&name=banyandb_system_cpu_state")
        assert status == 200 and body["series"]
    finally:
        node.stop()


def test_garbage_page_costs_only_bad_lines_and_never_breaks_the_window(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    node = start_sim_node("datanode-warm", free_port(), series=300)
    try:
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-warm", "messy", "--node-metrics-url",
                            node.metrics_url, "--scrape-interval", "1s", "--scrape-timeout", "1s")
        daemons.append(agent)
        page = lambda: _families(http_get(f"{agent.url}/metrics")[2].decode())  # noqa: E731
        wait_for(lambda: "banyandb_system_cpu_state" in page(), what="node samples")
        node.fault("garbage", variant="mixed")
        wait_for(lambda: page()["fodc_agent_scrape_parse_errors_total"].samples[0].value > 0, what="parse errors")
        assert page()["fodc_agent_scrape_up"].samples[0].value == 1  # a mixed page still yields samples
        node.fault("garbage", variant="total")
        wait_for(lambda: page()["fodc_agent_scrape_up"].samples[0].value == 0, what="total garbage = failed scrape")
        status, body = http_json(f"{proxy.url}/metrics-windows?node_id=messy&name=banyandb_system_cpu_state")
        assert status == 200 and body["series"] and json.dumps(body)
    finally:
        node.stop()
