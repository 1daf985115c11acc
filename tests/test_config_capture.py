"""Node configuration capture end to end: real node processes with known argv/env/files, agents, the proxy."""

from __future__ import annotations

import json
import pwd
import subprocess

import pytest
from conftest import is_root
from procs import BIN, free_port, http_get, http_json, start_agent, start_proxy, wait_for

from fodc.nodeconf.redact import REDACTED
from fodc.sim.launcher import start_sim_node

SECRET = "hunter2-do-not-leak"


@pytest.fixture
def nodes():
    started = []
    yield started
    for node in started:
        node.stop()


def start_node(nodes, tmp_path, name, *flags, role="datanode-hot", env=None):
    pid_file = tmp_path / f"{name}.pid"
    node = start_sim_node(role, free_port(), extra_args=["--pid-file", str(pid_file), *flags], env=env)
    nodes.append(node)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() == str(node.pid), what="pid file")
    return node, pid_file


def start_watching_agent(daemons, tmp_path, proxy, node_id, pid_file, *args, role="datanode-hot", node=None,
                         **kwargs):
    metrics = ["--node-metrics-url", node.metrics_url] if node is not None else []
    agent = start_agent(tmp_path, proxy.grpc_addr, role, node_id, "--node-pid-file", str(pid_file),
                        "--config-check-interval", "0.3s", "--node-pprof-url", "", *metrics, *args, **kwargs)
    daemons.append(agent)
    return agent


def config(proxy, query=""):
    status, body = http_json(f"{proxy.url}/cluster/config{query}")
    assert status == 200, body
    return body


def snapshot_of(proxy, node_id):
    nodes = config(proxy, f"?node_id={node_id}")["nodes"]
    assert len(nodes) == 1, nodes
    return nodes[0]["snapshot"]


@pytest.fixture
def proxy(daemons, tmp_path):
    proxy = start_proxy(tmp_path, "--command-timeout", "5s")
    daemons.append(proxy)
    return proxy


def test_snapshot_has_exact_flags_redacted_secrets_and_config_file(daemons, nodes, tmp_path, proxy):
    conf = tmp_path / "banyand.yaml"
    conf.write_text(f"grpc:\n  port: 17912\nstorage_password: {SECRET}\n")
    node, pid_file = start_node(nodes, tmp_path, "hot-1", "--measure-root-path=/tmp/m", "--grpc-port", "17912",
                                "--etcd-endpoints", "a:2379", "--etcd-endpoints=b:2379", "--config", str(conf),
                                f"--etcd-password={SECRET}", "--enable-tls",
                                env={"GOMAXPROCS": "4", "BANYAN_DB_PASSWORD": SECRET, "SSH_AUTH_SOCK": "/x"})
    start_watching_agent(daemons, tmp_path, proxy, "hot-1", pid_file, node=node)
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")

    status, _, raw = http_get(f"{proxy.url}/cluster/config?node_id=hot-1")
    assert status == 200
    assert SECRET.encode() not in raw  # nowhere: not in argv, flags, env or the file
    snap = json.loads(raw)["nodes"][0]["snapshot"]

    assert snap["flags"] == {
        "m": "fodc.sim", "role": "datanode-hot", "listen": f"127.0.0.1:{node.port}", "pid-file": str(pid_file),
        "measure-root-path": "/tmp/m", "grpc-port": "17912", "etcd-endpoints": ["a:2379", "b:2379"],
        "config": str(conf), "etcd-password": REDACTED, "enable-tls": "true",
    }
    assert snap["argv"] == [f"--etcd-password={REDACTED}" if a.startswith("--etcd-password=") else a
                            for a in node.argv]
    assert snap["env"]["GOMAXPROCS"] == "4"
    assert snap["env"]["BANYAN_DB_PASSWORD"] == REDACTED
    assert "SSH_AUTH_SOCK" not in snap["env"] and snap["env_left_out"] >= 1
    assert snap["files"][str(conf)]["content"] == f"grpc:\n  port: 17912\nstorage_password: {REDACTED}\n"
    assert snap["files"][str(conf)]["size"] == conf.stat().st_size
    assert snap["process"]["pid"] == node.pid and snap["process"]["found_by"] == f"pid-file:{pid_file}"
    assert snap["process"]["start_time_ms"] > 0 and snap["binary"]
    assert snap["agent"]["node_id"] == "hot-1" and snap["agent"]["node_pid_file"] == str(pid_file)
    assert snap["hash"].startswith("sha256:") and snap["errors"] == {}

    # A changed config file shows as a unified diff of its redacted contents, not as two hashes.
    conf.write_text(f"grpc:\n  port: 17912\nstorage_password: {SECRET}2\nmemory: 8G\n")
    status, _ = http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "node", "node_id": "hot-1"})
    status, _, raw = http_get(f"{proxy.url}/cluster/config/drift?node_id=hot-1")
    assert status == 200 and SECRET.encode() not in raw
    diff = json.loads(raw)["nodes"]["hot-1"]["changes"][f"file.{conf}"]["diff"]
    assert diff.splitlines()[2:] == ["@@ -2,2 +2,3 @@", "   port: 17912", f" storage_password: {REDACTED}",
                                     "+memory: 8G"], diff


def test_restart_with_changed_flag_adds_a_snapshot_and_shows_as_drift(daemons, nodes, tmp_path, proxy):
    node_a, pid_a = start_node(nodes, tmp_path, "hot-a", "--max-memory=4G", "--grpc-port=17912")
    node_b, pid_b = start_node(nodes, tmp_path, "hot-b", "--max-memory=4G", "--grpc-port=17912")
    start_watching_agent(daemons, tmp_path, proxy, "hot-a", pid_a)
    start_watching_agent(daemons, tmp_path, proxy, "hot-b", pid_b)
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
    before = snapshot_of(proxy, "hot-a")
    assert before["flags"]["max-memory"] == "4G"

    node_a.stop()
    nodes.remove(node_a)
    node_a, _ = start_node(nodes, tmp_path, "hot-a", "--max-memory=8G", "--grpc-port=17912")
    after = wait_for(lambda: (s := snapshot_of(proxy, "hot-a"))["flags"]["max-memory"] == "8G" and s,
                     what="a snapshot of the restarted node")
    assert after["process"]["pid"] == node_a.pid and after["reason"] == "node-restart"
    assert after["hash"] != before["hash"]

    status, body = http_json(f"{proxy.url}/cluster/config/history?node_id=hot-a")
    assert status == 200
    history = body["nodes"][0]["snapshots"]
    assert [s["flags"]["max-memory"] for s in history if s["flags"]][-2:] == ["4G", "8G"]
    listed = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "--wide", "config", "history", "--node", "hot-a"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    last = listed.stdout.splitlines()[-1].split()
    assert "node-restart" in last and last[-1] == "flag.max-memory", listed.stdout  # only what changed

    status, drift = http_json(f"{proxy.url}/cluster/config/drift?role=datanode-hot")
    assert status == 200, drift
    assert drift["nodes"]["hot-a"]["changes"]["flag.max-memory"] == {"before": "4G", "after": "8G"}
    assert drift["nodes"]["hot-a"]["from_hash"] == before["hash"]
    assert drift["roles"]["datanode-hot"]["nodes"] == ["hot-a", "hot-b"]
    differences = drift["roles"]["datanode-hot"]["differences"]
    assert differences["flag.max-memory"] == {"hot-a": "8G", "hot-b": "4G"}
    assert "flag.grpc-port" not in differences  # the same on both: not drift
    assert drift["missing"] == []


def test_process_gone_is_reported_in_the_snapshot_and_the_agent_keeps_working(daemons, tmp_path, proxy):
    pid_file = tmp_path / "gone.pid"
    pid_file.write_text("4194303\n")  # above any pid_max default: never a running process
    agent = start_watching_agent(daemons, tmp_path, proxy, "gone-1", pid_file)
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    snap = snapshot_of(proxy, "gone-1")
    assert snap["errors"]["process"] == f"pid-file:{pid_file} names pid 4194303, which is not running"
    assert snap["argv"] is None and snap["env"] is None and snap["agent"]["node_id"] == "gone-1"
    status, _, body = http_get(f"{agent.url}/metrics")
    assert status == 200 and b"fodc_agent_info" in body
    assert proxy.cluster(node_id="gone-1")[0]["status"] == "online"


@pytest.mark.skipif(not is_root(), reason="needs root to run the agent as another user than the node")
def test_unreadable_environment_is_reported_and_the_rest_is_captured(daemons, nodes, tmp_path, proxy):
    pwd.getpwnam("nobody")
    node = start_sim_node("datanode-hot", free_port(), comm="fodcpermtest", extra_args=["--grpc-port=17912"],
                          env={"GOMAXPROCS": "2"})
    nodes.append(node)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-p", "--node-process-name",
                               "fodcpermtest", "--node-pprof-url", "", user="nobody"))
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent (as nobody) online")
    snap = snapshot_of(proxy, "hot-p")
    assert snap["env"] is None
    assert snap["errors"]["env"].startswith("permission denied reading the environment"), snap["errors"]
    assert snap["flags"]["grpc-port"] == "17912"  # /proc/<pid>/cmdline is world-readable
    assert snap["process"] == {**snap["process"], "pid": node.pid, "found_by": "process-name:fodcpermtest"}


def test_argv_comes_from_pprof_cmdline_when_the_process_cannot_be_found(daemons, nodes, tmp_path, proxy):
    node, _ = start_node(nodes, tmp_path, "hot-q", "--grpc-port=17999")
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-q",
                               "--node-process-name", "no-such-process", "--node-pprof-url", node.url))
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    snap = snapshot_of(proxy, "hot-q")
    assert snap["process"]["argv_source"] == "pprof"
    assert snap["flags"]["grpc-port"] == "17999"
    assert snap["errors"]["process"] == "no process named 'no-such-process' is running"


@pytest.fixture
def three_agents(daemons, nodes, tmp_path, proxy):
    for node_id, role in (("li-1", "liaison"), ("hot-1", "datanode-hot"), ("hot-2", "datanode-hot")):
        _, pid_file = start_node(nodes, tmp_path, node_id, "--grpc-port=17912", role=role)
        start_watching_agent(daemons, tmp_path, proxy, node_id, pid_file, role=role)
    wait_for(lambda: len(proxy.cluster(status="online")) == 3, what="three agents online")
    return proxy


def test_filters_select_nodes_by_role_and_id(three_agents):
    proxy = three_agents
    assert sorted(n["node_id"] for n in config(proxy)["nodes"]) == ["hot-1", "hot-2", "li-1"]
    assert sorted(n["node_id"] for n in config(proxy, "?role=datanode-hot")["nodes"]) == ["hot-1", "hot-2"]
    only = config(proxy, "?node_id=li-1")["nodes"]
    assert [(n["node_id"], n["role"], n["snapshot"]["role"]) for n in only] == [("li-1", "liaison", "liaison")]
    assert config(proxy, "?role=datanode-cold") == {"nodes": [], "missing": []}


def test_forced_capture_by_node_role_and_all(three_agents):
    proxy = three_agents
    first = snapshot_of(proxy, "hot-1")
    status, body = http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "node", "node_id": "hot-1"})
    assert status == 200, body
    assert [c["node_id"] for c in body["captured"]] == ["hot-1"] and body["missing"] == []
    again = snapshot_of(proxy, "hot-1")
    assert again["hash"] == first["hash"] and again["captures"] > first["captures"]
    assert again["confirmed_at_ms"] > first["confirmed_at_ms"]

    status, body = http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "role", "role": "datanode-hot"})
    assert status == 200 and sorted(c["node_id"] for c in body["captured"]) == ["hot-1", "hot-2"]
    status, body = http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "all"})
    assert status == 200 and sorted(c["node_id"] for c in body["captured"]) == ["hot-1", "hot-2", "li-1"]


@pytest.mark.parametrize(("body", "message"), [
    ({"scope": "everything"}, "invalid scope 'everything'"),
    ({"scope": "node"}, "scope 'node' needs node_id"),
    ({"scope": "role", "role": "boss"}, "unknown role 'boss'"),
    ({"scope": "all", "node_id": "x"}, "scope 'all' does not take node_id"),
    ({"scope": "node", "node_id": 5}, "field 'node_id' has the wrong type"),
    ({"what": 1}, "unknown field 'what'"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_capture_requests_are_refused_with_a_reason(proxy, body, message):
    status, answer = http_json(f"{proxy.url}/cluster/config/capture", "POST", body)
    assert status == 400 and message in answer["message"]


def test_bad_config_queries_are_refused(proxy):
    assert http_json(f"{proxy.url}/cluster/config/history")[0] == 400
    assert http_json(f"{proxy.url}/cluster/config/history?node_id=x&limit=0")[0] == 400
    assert http_json(f"{proxy.url}/cluster/config?colour=red")[0] == 400
    status, body = http_json(f"{proxy.url}/cluster/config/history?node_id=nobody-here")
    assert status == 404 and "nobody-here" in body["message"]
    status, body = http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "node", "node_id": "ghost"})
    assert status == 404


def test_a_change_made_while_the_agent_was_down_still_shows_after_it_restarts(daemons, nodes, tmp_path, proxy):
    node, pid_file = start_node(nodes, tmp_path, "hot-r", "--max-memory=4G")
    ports = {"node_port": free_port(), "http_port": free_port()}
    agent = start_watching_agent(daemons, tmp_path, proxy, "hot-r", pid_file, **ports)
    wait_for(lambda: proxy.cluster(status="online"), what="agent online")
    assert snapshot_of(proxy, "hot-r")["flags"]["max-memory"] == "4G"
    assert agent.terminate() == 0

    node.stop()  # the host is worked on while the agent is down: the node comes back with another flag
    nodes.remove(node)
    node, _ = start_node(nodes, tmp_path, "hot-r", "--max-memory=8G")
    start_watching_agent(daemons, tmp_path, proxy, "hot-r", pid_file, **ports)
    wait_for(lambda: proxy.cluster(status="online", node_id="hot-r"), what="agent back")
    status, drift = http_json(f"{proxy.url}/cluster/config/drift?node_id=hot-r")
    assert status == 200, drift
    assert drift["nodes"]["hot-r"]["changes"]["flag.max-memory"] == {"before": "4G", "after": "8G"}
    history = http_json(f"{proxy.url}/cluster/config/history?node_id=hot-r")[1]["nodes"][0]["snapshots"]
    assert [s["flags"]["max-memory"] for s in history] == ["4G", "8G"]


def test_an_unreadable_history_file_is_a_fresh_history_not_a_failure(daemons, nodes, tmp_path, proxy):
    _, pid_file = start_node(nodes, tmp_path, "hot-h", "--max-memory=4G")
    broken = tmp_path / "broken-history.json"
    broken.write_text('{"half a file')
    agent = start_watching_agent(daemons, tmp_path, proxy, "hot-h", pid_file, "--config-history-file", str(broken))
    wait_for(lambda: proxy.cluster(status="online"), what="agent online")
    history = http_json(f"{proxy.url}/cluster/config/history?node_id=hot-h")[1]["nodes"][0]["snapshots"]
    assert [s["flags"]["max-memory"] for s in history] == ["4G"]
    assert "cannot read the configuration history" in agent.log()
    assert json.loads(broken.read_text())[0]["flags"]["max-memory"] == "4G"  # replaced by the new history
