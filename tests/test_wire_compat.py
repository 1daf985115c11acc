"""Wire compatibility across one version: an agent of the previous release (its generated code frozen under
tests/previous_release) registers with a proxy of this release, streams metrics, and is told, per request,
that the proxy's commands are not for it; nothing is sent to it and the proxy keeps serving everyone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from procs import BIN, REPO, http_get, http_json, start_proxy, wait_for

from fodc.cli.client import EXIT_PARTIAL

OLD_AGENT = Path(__file__).parent / "previous_release" / "old_agent.py"


def _seen(state: Path) -> dict:
    try:
        return json.loads(state.read_text())
    except (OSError, ValueError):
        return {}


def test_an_agent_of_the_previous_release_streams_metrics_and_its_commands_end_unsupported(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--command-timeout", "5s", "--incident-copy-interval", "0.3s")
    daemons.append(proxy)
    state = tmp_path / "old-agent.json"
    log = open(tmp_path / "old-agent.log", "wb")  # noqa: SIM115 (closed with the process below)
    # Its own directory first on the path (-E: no PYTHONPATH): the frozen generated code, never fodc.v1.
    old = subprocess.Popen([sys.executable, "-E", "-s", str(OLD_AGENT), proxy.grpc_addr, "old-1", str(state)],
                           stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for(lambda: _seen(state).get("heartbeats", 0) >= 2, 30, what="the old agent registered and beating")
        [node] = proxy.cluster(status="online")
        assert node["node_id"] == "old-1" and node["agent_version"] == "0.0.0-previous"
        assert node["runtime"]["incidents_total"] == "node-down=2"  # shown as sent; nothing parses it
        assert node["incidents_total"] == {}

        status, _, page = http_get(f"{proxy.url}/metrics?node_id=old-1", timeout=30)
        assert status == 200
        assert any(line.startswith("previous_release_up{") and 'node_id="old-1"' in line
                   for line in page.decode().splitlines()), page.decode()[-2000:]
        assert _seen(state)["metrics_requests"] >= 1

        status, body = http_json(f"{proxy.url}/cluster/config", timeout=30)
        assert status == 200 and body["nodes"] == []
        [missing] = body["missing"]
        assert missing["node_id"] == "old-1" and missing["state"] == "unsupported"
        assert "previous release" in missing["reason"] and "upgrade the agent" in missing["reason"]
        status, body = http_json(f"{proxy.url}/incidents", timeout=30)
        assert status == 200 and [m["state"] for m in body["missing"]] == ["unsupported"]
        status, job = http_json(f"{proxy.url}/diagnostics", "POST", {"action": "heap", "target": "all"})
        assert status == 202, job
        job = wait_for(lambda: (j := http_json(f"{proxy.url}/diagnostics/{job['job_id']}")[1])["state"] != "running"
                       and j, 30, what="the job finished")
        assert [(t["node_id"], t["state"]) for t in job["tasks"]] == [("old-1", "unsupported")]

        status, _, page = http_get(f"{proxy.url}/metrics?role=datanode-cold", timeout=30)
        counted = {line.split()[0]: float(line.split()[1]) for line in page.decode().splitlines()
                   if line.startswith("fodc_proxy_unsupported_commands_total{")}
        assert counted['fodc_proxy_unsupported_commands_total{request="config_snapshot"}'] == 1
        assert counted['fodc_proxy_unsupported_commands_total{request="profile"}'] == 1
        assert counted.get('fodc_proxy_unsupported_commands_total{request="incident_list"}', 0) >= 1
        # The operator's CLI sees the job end at once, with the reason, rather than waiting for it to time out.
        cli = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "profile", "goroutine", "--wait", "60",
                              "-o", str(tmp_path / "bundle.tar.gz")], capture_output=True, text=True, timeout=90)
        assert cli.returncode == EXIT_PARTIAL and "unsupported" in cli.stdout, (cli.stdout, cli.stderr)
        assert "previous release" in cli.stdout
        assert _seen(state)["commands"] == 0 and old.poll() is None  # nothing sent; the old agent runs on
    finally:
        old.terminate()
        old.wait(10)
        log.close()


def test_the_frozen_previous_release_is_what_it_claims():
    """The frozen code is the release before typed commands: StartAction with string actions, no protocol."""
    text = (REPO / "tests" / "previous_release" / "fodc_pb2.py").read_text()
    assert "StartAction" in text and "command_protocol" not in text and "incidents_total" not in text
