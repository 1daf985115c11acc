"""The `fodc` CLI against a real proxy with agents: tables, --json, and errors with reliable exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
from procs import BIN, free_port, start_agent, start_proxy, wait_for

from fodc.proxy.auth import hash_token
from fodc.sim.launcher import start_sim_node


def fodc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=30)


def test_cluster_table_and_json(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-cli"))
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "li-cli"))
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")

    table = fodc("--proxy", proxy.url, "cluster")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NODE", "ROLE", "STATUS"]
    assert any(line.split()[:3] == ["hot-cli", "datanode-hot", "online"] for line in lines)
    assert "2 online, 0 unconnected" in table.stdout

    def hot_notes():  # these agents' nodes do not exist, which the table says once they have tried
        row = next(line for line in fodc("--proxy", proxy.url, "cluster").stdout.splitlines()
                   if line.startswith("hot-cli"))
        return row.endswith("node not answering") and row
    wait_for(hot_notes, 20, interval=0.5, what="the notes column")

    filtered = fodc("--proxy", proxy.url, "--json", "cluster", "--role", "liaison")
    assert filtered.returncode == 0
    assert [n["node_id"] for n in json.loads(filtered.stdout)["nodes"]] == ["li-cli"]


def test_unreachable_proxy_exits_3_with_a_clear_message():
    result = fodc("--proxy", f"http://127.0.0.1:{free_port()}", "cluster")
    assert result.returncode == 3
    assert "cannot reach the proxy" in result.stderr


def test_proxy_refusal_exits_1(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    result = fodc("--proxy", proxy.url + "/not-the-api", "cluster")
    assert result.returncode == 1
    assert "404" in result.stderr


def test_usage_errors_exit_2():
    assert fodc("nonsense").returncode == 2


def fodc_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=90,
                          env={**os.environ, **env})


def _cluster_with_sims(tmp_path, daemons, nodes, *proxy_args):
    proxy = start_proxy(tmp_path, *proxy_args)
    daemons.append(proxy)
    for node_id, flag in (("hot-a", "4G"), ("hot-b", "8G")):
        pid_file = tmp_path / f"{node_id}.pid"
        node = start_sim_node("datanode-hot", free_port(), extra_args=["--pid-file", str(pid_file),
                                                                       f"--max-memory={flag}"])
        nodes.append(node)
        wait_for(pid_file.exists, what="pid file")
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", node_id, "--node-pid-file",
                                   str(pid_file), "--node-metrics-url", node.metrics_url, "--scrape-interval", "1s",
                                   "--scrape-timeout", "1s", "--node-pprof-url", node.url))
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
    return proxy


@pytest.fixture
def sims():
    started = []
    yield started
    for node in started:
        node.stop()


def test_config_table_json_and_drift(tmp_path, daemons, sims):
    proxy = _cluster_with_sims(tmp_path, daemons, sims)
    shown = fodc("--proxy", proxy.url, "config")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert rows[0][:5] == ["NODE", "ROLE", "PID", "CAPTURED", "HASH"]
    assert sorted(r[0] for r in rows[1:]) == ["hot-a", "hot-b"]
    one = fodc("--proxy", proxy.url, "config", "--node", "hot-a")
    assert "--max-memory  4G" in one.stdout
    as_json = json.loads(fodc("--proxy", proxy.url, "--json", "config", "--role", "datanode-hot").stdout)
    assert {n["snapshot"]["flags"]["max-memory"] for n in as_json["nodes"]} == {"4G", "8G"}

    drift = fodc("--proxy", proxy.url, "config", "drift")
    assert drift.returncode == 0, drift.stderr
    assert "datanode-hot (2 nodes):" in drift.stdout
    line = next(line for line in drift.stdout.splitlines() if line.startswith("flag.max-memory"))
    assert line.split() == ["flag.max-memory", "4G", "8G"]
    # Ports, pid files, data directories and node ids differ by design: only the memory flag is drift.
    assert "datanode-hot (2 nodes): 1 settings differ" in drift.stdout, drift.stdout
    assert "expected per-node differences ignored" in drift.stdout
    assert max(len(line) for line in drift.stdout.splitlines()) <= 100
    more = fodc("--proxy", proxy.url, "config", "drift", "--ignore", "flag.max-*")
    assert "datanode-hot (2 nodes): no differences" in more.stdout, more.stdout
    drift_json = json.loads(fodc("--proxy", proxy.url, "--json", "config", "drift").stdout)
    assert drift_json["roles"]["datanode-hot"]["differences"]["flag.max-memory"] == {"hot-a": "4G", "hot-b": "8G"}

    history = fodc("--proxy", proxy.url, "config", "history", "--node", "hot-b")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[0].startswith("hot-b (datanode-hot): ") and lines[1].split()[:2] == ["CAPTURED", "LAST"]
    assert lines[2].split()[-1] == "(first)"  # the first snapshot has nothing to be compared with
    history_json = json.loads(fodc("--proxy", proxy.url, "--json", "config", "history", "--node", "hot-b").stdout)
    assert history_json["nodes"][0]["snapshots"][0]["flags"]["max-memory"] == "8G"
    no_node = fodc("--proxy", proxy.url, "config", "history")
    assert no_node.returncode == 2 and "--node" in no_node.stderr

    captured = fodc("--proxy", proxy.url, "config", "capture", "--role", "datanode-hot")
    assert captured.returncode == 0, captured.stderr
    assert sorted(line.split()[0] for line in captured.stdout.splitlines()[1:]) == ["hot-a", "hot-b"]
    one = json.loads(fodc("--proxy", proxy.url, "--json", "config", "capture", "--node", "hot-a").stdout)
    assert [c["node_id"] for c in one["captured"]] == ["hot-a"] and one["scope"] == "node"
    for unclear in (("config", "capture"), ("config", "capture", "--all", "--node", "hot-a"), ("config", "--all")):
        refused = fodc("--proxy", proxy.url, *unclear)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr


def test_window_csv_and_jsonl(tmp_path, daemons, sims):
    proxy = _cluster_with_sims(tmp_path, daemons, sims)
    name = "banyandb_system_cpu_state"

    def rows():
        out = fodc("--proxy", proxy.url, "window", "--node", "hot-a", "--name", name, "--since", "5m")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        return lines if len(lines) > 2 else None
    lines = wait_for(rows, 20, interval=0.5, what="window points")
    assert lines[0] == "node_id,node_role,name,labels,time,value"
    first = lines[1].split(",")
    assert first[:3] == ["hot-a", "datanode-hot", name] and first[-2].startswith("20") and first[-2].endswith("Z")
    raw = fodc("--proxy", proxy.url, "--epoch-ms", "window", "--node", "hot-a", "--name", name).stdout.splitlines()
    assert raw[0].endswith(",unix_ms,value") and int(raw[1].split(",")[-2]) > 1_700_000_000_000
    jsonl = fodc("--proxy", proxy.url, "window", "--node", "hot-a", "--name", name, "--format", "jsonl")
    series = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert series and all(s["name"] == name and s["node_id"] == "hot-a" and s["points"] for s in series)
    assert fodc("--proxy", proxy.url, "window", "--since", "ten minutes").returncode == 2


def test_profile_needs_a_token_and_reports_each_node(tmp_path, daemons, sims):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops operator sha256:{hash_token('s3cret')}\n")
    proxy = _cluster_with_sims(tmp_path, daemons, sims, "--auth", "control", "--auth-tokens-file", str(tokens))
    refused = fodc("--proxy", proxy.url, "profile", "heap", "--role", "datanode-hot")
    assert refused.returncode == 1 and "401" in refused.stderr and "FODC_TOKEN" in refused.stderr

    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    bundle = tmp_path / "out.tar.gz"
    # The simulated nodes serve no Go pprof: every node fails with the reason, the bundle still comes back.
    run = fodc("--proxy", proxy.url, "--token-file", str(token_file), "profile", "heap", "--role",
               "datanode-hot", "-o", str(bundle))
    assert run.returncode == 4, run.stderr
    assert "2/2 nodes finished" in run.stderr
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines()[1:3]}
    assert rows["hot-a"][2] == rows["hot-b"][2] == "failed" and "404" in run.stdout
    with tarfile.open(bundle) as tar:
        assert [n for n in tar.getnames() if n.endswith("manifest.json")]

    config_job = fodc_env({"FODC_TOKEN": "s3cret"}, "--proxy", proxy.url, "--json", "profile", "config",
                          "--node", "hot-a", "-o", str(tmp_path / "config.tar.gz"))
    assert config_job.returncode == 0, config_job.stderr
    assert json.loads(config_job.stdout)["state"] == "done"

    # The jobs afterwards: listed, shown, downloaded again, deleted (with the token), and usage errors.
    job_id = json.loads(config_job.stdout)["job_id"]
    heap_job = json.loads(fodc("--proxy", proxy.url, "--json", "jobs").stdout)["jobs"]
    assert [j["action"] for j in heap_job] == ["config", "heap"]  # newest first
    listed = fodc("--proxy", proxy.url, "jobs")
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert listed.returncode == 0 and rows[job_id][1:3] == ["config", "done"] and rows[job_id][-1] == "done=1"
    assert rows[heap_job[1]["job_id"]][-1] == "failed=2"
    shown = fodc("--proxy", proxy.url, "jobs", "show", job_id)
    assert shown.returncode == 0 and f"job {job_id}: config done, by ops" in shown.stdout
    assert [line.split()[:3] for line in shown.stdout.splitlines()[2:]] == [["hot-a", "datanode-hot", "done"]]
    again = tmp_path / "again.tar.gz"
    assert fodc("--proxy", proxy.url, "jobs", "download", job_id, "-o", str(again)).returncode == 0
    with tarfile.open(again) as tar:
        assert [n for n in tar.getnames() if n.endswith("manifest.json")]
    partial = fodc("--proxy", proxy.url, "jobs", "download", heap_job[1]["job_id"], "-o", str(tmp_path / "h.tgz"))
    assert partial.returncode == 4  # the bundle of a job that failed on its nodes: there, but partial
    refused = fodc("--proxy", proxy.url, "jobs", "cancel", job_id)
    assert refused.returncode == 1 and "401" in refused.stderr
    deleted = fodc_env({"FODC_TOKEN": "s3cret"}, "--proxy", proxy.url, "jobs", "cancel", job_id)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"job {job_id}: deleted"
    gone = fodc("--proxy", proxy.url, "jobs", "show", job_id)
    assert gone.returncode == 2 and "no diagnostics job" in gone.stderr
    assert fodc("--proxy", proxy.url, "jobs", "show").returncode == 2
    assert fodc("--proxy", proxy.url, "jobs", "list", job_id).returncode == 2


def test_cluster_notes_name_what_an_operator_should_look_at():
    from fodc.cli.cluster import notes
    assert notes({"scrape_targets_up": "1/1"}) == "-"
    assert notes({"scrape_targets_up": "0/2", "window_disk_last_error": "ENOSPC", "clock_behind_s": "3600.0"},
                 {"node-down": 1}) == (
        "node not answering; incidents node-down=1; window disk failing; host clock 3600.0s behind")
    assert notes({"scrape_targets_up": "0/0", "clock_behind_s": "0.0"}) == "-"
