"""The `fodc` CLI against a real proxy with agents: tables, --json, and errors with reliable exit codes."""

from __future__ import annotations

import json
import subprocess

from procs import BIN, free_port, start_agent, start_proxy, wait_for


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
