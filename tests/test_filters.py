"""Filters refuse what does not exist, in the API (400/404 naming the valid values) and in the CLI (exit 2,
one line); only a valid filter may give an empty answer. Unconnected nodes are named in missing_agents."""

from __future__ import annotations

import subprocess

import pytest
from procs import BIN, http_json, start_agent, start_proxy, wait_for


def fodc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("filters")
    started = []
    try:
        proxy = start_proxy(tmp_path)
        started.append(proxy)
        hot = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-f")
        started.append(hot)
        started.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "li-f"))
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
        yield proxy, hot
    finally:
        for daemon in reversed(started):
            daemon.stop()


@pytest.mark.parametrize("path", ["/cluster?role=hot", "/metrics?role=hot", "/metrics-windows?role=hot",
                                  "/cluster/config?role=hot", "/cluster/config/drift?role=hot",
                                  "/incidents?role=hot"])
def test_an_unknown_role_is_a_400_naming_the_roles(cluster, path):
    proxy, _ = cluster
    status, body = http_json(proxy.url + path)
    assert status == 400 and body["error"] == "unknown_value" and body["parameter"] == "role"
    assert "datanode-hot" in body["valid"] and "datanode-hot" in body["message"]


@pytest.mark.parametrize("path", ["/cluster?node_id=nope", "/metrics?node_id=nope", "/metrics-windows?node_id=nope",
                                  "/cluster/config?node_id=nope", "/cluster/config/drift?node_id=nope",
                                  "/cluster/config/history?node_id=nope", "/incidents?node_id=nope",
                                  "/incidents/nope/some-id", "/diagnostics/nope"])
def test_an_unknown_node_or_job_is_a_404_naming_what_exists(cluster, path):
    proxy, _ = cluster
    status, body = http_json(proxy.url + path)
    assert status == 404 and body["error"] == "unknown_value", body
    if "node_id" in path or "/incidents/" in path:
        assert body["message"].startswith("no node named 'nope'") and body["valid"] == ["hot-f", "li-f"]


def test_triggers_are_checked_and_a_valid_filter_may_be_empty(cluster):
    proxy, _ = cluster
    status, body = http_json(proxy.url + "/incidents?trigger=node-dwn")
    assert status == 400 and "node-down" in body["valid"] and "rule:<name>" in body["valid"]
    for trigger in ("node-down", "rule:disk_full"):
        status, body = http_json(f"{proxy.url}/incidents?trigger={trigger}")
        assert status == 200 and body["incidents"] == []
    status, body = http_json(proxy.url + "/cluster?role=datanode-warm")
    assert status == 200 and body["nodes"] == []


def test_a_job_for_an_unknown_node_is_refused_and_never_created(cluster):
    proxy, _ = cluster
    status, body = http_json(proxy.url + "/diagnostics", "POST", {"action": "heap", "target": {"node_ids": ["nope"]}})
    assert status == 404 and body["parameter"] == "target.node_ids"
    assert http_json(proxy.url + "/diagnostics?automatic=false")[1]["jobs"] == []
    status, body = http_json(proxy.url + "/diagnostics", "POST", {"action": "heap", "target": {"role": "hot"}})
    assert status == 400 and body["parameter"] == "target.role"


@pytest.mark.parametrize("args", [("cluster", "--role", "hot"), ("cluster", "--node", "nope"),
                                  ("config", "--node", "nope"), ("config", "drift", "--role", "hot"),
                                  ("config", "history", "--node", "nope"), ("window", "--node", "nope"),
                                  ("incidents", "--trigger", "node-dwn"), ("jobs", "show", "nope"),
                                  ("profile", "heap", "--node", "nope"), ("snapshot", "--role", "hot")])
def test_the_cli_refuses_with_exit_2_and_one_line(cluster, args, tmp_path):
    proxy, _ = cluster
    extra = ("-o", str(tmp_path / "s.tgz")) if args[0] == "snapshot" else ()
    result = fodc("--proxy", proxy.url, *args, *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("fodc: "), result.stderr
    assert ("no node named 'nope'" in result.stderr or "unknown" in result.stderr
            or "no diagnostics job" in result.stderr)


def test_an_unconnected_node_is_named_missing_and_fodc_window_exits_1(cluster):
    proxy, hot = cluster
    hot.kill9()
    wait_for(lambda: proxy.cluster(status="unconnected"), 30, what="the killed agent unconnected")
    status, body = http_json(proxy.url + "/metrics-windows?start=5m")
    assert status == 200
    assert [(m["node_id"], m["status"]) for m in body["missing_agents"]] == [("hot-f", "unconnected")]
    result = fodc("--proxy", proxy.url, "window", "--node", "hot-f")
    assert result.returncode == 1 and "hot-f (unconnected)" in result.stderr, result.stderr
    answered = fodc("--proxy", proxy.url, "window", "--node", "li-f")
    assert answered.returncode == 0, answered.stderr
