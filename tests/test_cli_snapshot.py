"""`fodc snapshot`: one archive of the cluster's state, each part as the API gave it, partial when parts fail."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile

from procs import BIN, free_port, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node

PARTS = {"health.json", "cluster.json", "config.json", "config-drift.json", "incidents.json", "jobs.json",
         "window.json", "metrics.txt"}


def fodc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=120)


def read_archive(path):
    with tarfile.open(path) as tar:
        names = tar.getnames()
        files = {n.split("/", 1)[1]: tar.extractfile(n).read() for n in names if tar.getmember(n).isfile()}
    return names, files


def test_snapshot_holds_every_part_and_the_incident_bundles(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    node = start_sim_node("datanode-hot", free_port(), series=100)
    try:
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-s", "--node-metrics-url",
                                   node.metrics_url, "--scrape-interval", "0.5s", "--scrape-timeout", "0.5s",
                                   "--incident-check-interval", "0.3s", "--incident-after", "1s",
                                   "--incident-rule", 'up: banyandb_system_cpu_state{kind="user"} >= 0'))

        def complete():
            body = http_json(f"{proxy.url}/incidents?node_id=hot-s")[1]
            return [i for i in body["incidents"] if i["state"] == "complete"]
        incident = wait_for(complete, 30, interval=0.3, what="a complete incident")[0]
        out = tmp_path / "snap.tar.gz"
        run = fodc("--proxy", proxy.url, "snapshot", "-o", str(out), "--since", "10m", "--with-bundles")
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"{out} (")
    finally:
        node.stop()

    names, files = read_archive(out)
    assert names[0].endswith("/manifest.json")  # first, so a reader needs no more than the first member
    manifest = json.loads(files["manifest.json"])
    bundle = f"incidents/hot-s-{incident['id'].replace(':', '_')}.tar.gz"  # names safe on any filesystem
    assert set(manifest["files"]) == PARTS | {bundle} and manifest["errors"] == {}
    for name, info in manifest["files"].items():
        assert info["size"] == len(files[name]) and info["sha256"] == hashlib.sha256(files[name]).hexdigest()
    assert [n["node_id"] for n in json.loads(files["cluster.json"])["nodes"]] == ["hot-s"]
    window = json.loads(files["window.json"])
    assert any(s["node_id"] == "hot-s" and s["points"] for s in window["series"])
    assert incident["id"] in [i["id"] for i in json.loads(files["incidents.json"])["incidents"]]
    assert b"banyandb_system_cpu_state" in files["metrics.txt"]
    assert files[bundle][:2] == b"\x1f\x8b"


def test_snapshot_names_the_parts_it_could_not_get_and_keeps_the_rest(tmp_path, daemons):
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    proxy = start_proxy(tmp_path, "--auth", "all", "--auth-tokens-file", str(tokens))  # reads need a token
    daemons.append(proxy)
    out = tmp_path / "partial.tar.gz"
    run = fodc("--proxy", proxy.url, "--json", "snapshot", "-o", str(out))
    assert run.returncode == 4, run.stderr
    answer = json.loads(run.stdout)
    assert set(answer["files"]) == {"health.json"}  # the one open endpoint
    assert set(answer["errors"]) == PARTS - {"health.json"} and "401" in answer["errors"]["cluster.json"]
    _, files = read_archive(out)
    assert json.loads(files["manifest.json"])["errors"] == answer["errors"]


def test_snapshot_of_an_unreachable_proxy_writes_nothing_and_exits_3(tmp_path):
    out = tmp_path / "none.tar.gz"
    run = fodc("--proxy", f"http://127.0.0.1:{free_port()}", "snapshot", "-o", str(out))
    assert run.returncode == 3 and "cannot reach the proxy" in run.stderr and not out.exists()
