"""Incidents someone pulls: `fodc capture` through the proxy (operator token, audited), a trigger file the node
or a script touches, and SIGUSR2 to the agent; each is a `manual` incident, one collecting at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import test_incidents
from procs import BIN, http_json, start_agent, start_proxy, wait_for
from test_incidents import FAST, PROXY_ARGS, complete, incidents

from fodc.agent.manual import MAX_REASON_CHARS, clean_reason
from fodc.proxy.auth import hash_token
from fodc.sim.launcher import start_sim_node

cluster = test_incidents.cluster


def fodc(proxy, *args, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FODC_")}
    if token:
        env["FODC_TOKEN"] = token
    return subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_a_reason_is_one_printable_bounded_line():
    assert clean_reason("before the upgrade\nsecond line") == "before the upgrade"
    assert clean_reason("bell\x07 and \x1b[31mred") == "bell? and ?[31mred"
    assert len(clean_reason("x" * 10_000)) == MAX_REASON_CHARS
    assert clean_reason("") == "" and clean_reason("\n\n") == ""


def test_an_operator_capture_is_a_manual_incident_named_in_the_audit_log(tmp_path, daemons):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"otto operator sha256:{hash_token('operate-me')}\nvera viewer sha256:{hash_token('view-me')}\n")
    proxy = start_proxy(tmp_path, *PROXY_ARGS, "--auth", "control", "--auth-tokens-file", str(tokens), name="sec")
    daemons.append(proxy)
    node = start_sim_node("datanode-hot", test_incidents.free_port(), series=50)
    try:
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-m", "--node-metrics-url",
                                   node.metrics_url, *FAST, "--incident-after", "20s"))
        wait_for(lambda: proxy.cluster(node_id="hot-m", status="online"), what="agent online")

        refused = fodc(proxy, "capture", "--node", "hot-m", "--reason", "look", token="view-me")
        assert refused.returncode == 1 and "403" in refused.stderr
        done = fodc(proxy, "capture", "--node", "hot-m", "--reason", "before the 1.4 upgrade", token="operate-me")
        assert done.returncode == 0, done.stderr
        row = done.stdout.splitlines()[1].split()
        assert row[0] == "hot-m" and row[2].endswith("-manual") and row[3] == "collecting"
        again = fodc(proxy, "capture", "--node", "hot-m", token="operate-me")  # the first is still collecting
        assert again.returncode == 1 and "still collecting" in again.stderr
        ghost = fodc(proxy, "capture", "--node", "ghost", token="operate-me")
        assert ghost.returncode == 2 and "no node named 'ghost'" in ghost.stderr
        assert fodc(proxy, "capture", token="operate-me").returncode == 2  # a target is required

        listed = incidents(proxy, "?trigger=manual")
        assert [i["id"] for i in listed] == [row[2]]
        assert listed[0]["detail"] == {"reason": "before the 1.4 upgrade", "source": "operator", "by": "otto"}
        audit = [json.loads(line) for line in (tmp_path / "sec-audit.log").read_text().splitlines()]
        captures = [(e["who"], e["status"]) for e in audit if e["path"] == "/incidents/capture"]
        assert captures == [("vera", 403), ("otto", 202), ("otto", 409), ("otto", 404)]
        allowed = next(e for e in audit if e["status"] == 202)
        assert allowed["incidents"] == [f"hot-m/{row[2]}"] and allowed["request"]["reason"] == "before the 1.4 upgrade"
        status, body = http_json(f"{proxy.url}/incidents/capture", "POST", {"target": "all"},
                                 headers={"Authorization": "Bearer operate-me"})
        assert status == 400 and "target must name nodes" in body["message"]
    finally:
        node.stop()


def test_a_trigger_file_and_sigusr2_each_freeze_a_manual_incident(cluster, daemons):
    proxy, _, tmp_path = cluster
    trigger = tmp_path / "capture-now"
    test_incidents.watched_node(cluster, daemons, "hot-t", "--trigger-file", str(trigger))
    agent = daemons[-1]
    wait_for(lambda: proxy.cluster(node_id="hot-t", status="online"), what="agent online")
    os.mkfifo(trigger)  # a FIFO where the file should be: never read (it would block), said once
    wait_for(lambda: agent.log().count("cannot read the trigger file") == 1, 20, what="the FIFO refused")
    time.sleep(2)  # two more rounds
    assert agent.log().count("cannot read the trigger file") == 1 and not incidents(proxy, "?trigger=manual")
    trigger.unlink()
    trigger.write_text("flush stalled for 40s\x1b[0m\nignored second line\n")
    first = complete(proxy, "manual", "hot-t")
    assert first["detail"] == {"reason": "flush stalled for 40s?[0m", "source": "trigger-file"}
    assert not trigger.exists()  # acted on once, and gone

    os.kill(agent.pid, signal.SIGUSR2)
    wait_for(lambda: len([i for i in incidents(proxy, "?trigger=manual&node_id=hot-t")
                          if i["state"] == "complete"]) == 2, 30, interval=0.3, what="a second manual incident")
    second = next(i for i in incidents(proxy, "?trigger=manual") if i["id"] != first["id"])
    assert second["detail"]["source"] == "signal" and agent.proc.poll() is None  # the agent lives on
