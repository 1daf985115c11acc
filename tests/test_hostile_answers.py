"""Agents that answer commands with poison: bad records are refused and counted, a bad answer fails only its
agent, and nothing an agent sent can stop the proxy from starting again (issue 16, items 8 and 14)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from procs import http_get, http_json, start_agent, start_proxy, wait_for
from rogue import RogueAgent, refused, registration, typed_answers

from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import incident_to_pb

NOW_MS = int(time.time() * 1000)


def incident(incident_id: str, at_ms, **extra):
    return {"id": incident_id, "trigger": "node-down", "at": "2026-01-01T00:00:00Z", "at_ms": at_ms,
            "state": "complete", "size": 6, "file": f"{incident_id}.tar.gz", **extra}




@pytest.fixture
def rogue_factory(daemons):
    rogues = []

    def make(proxy, node_id, answers):
        rogue = RogueAgent(proxy.grpc_addr)
        rogues.append(rogue)
        assert rogue.register(registration(node_id, port=len(rogues) + 20000)).accepted
        rogue.serve_commands(typed_answers(answers))
        return rogue
    yield make
    for rogue in rogues:
        rogue.close()


def test_poisoned_incidents_are_refused_and_the_proxy_still_starts(tmp_path, daemons, rogue_factory):
    archive = tmp_path / "archive"
    args = ["--incident-archive-dir", str(archive), "--incident-copy-interval", "0.3s", "--command-timeout", "5s"]
    proxy = start_proxy(tmp_path, *args)
    daemons.append(proxy)
    listing = [incident_to_pb(i) for i in (incident("good-1", NOW_MS - 60_000), incident("epoch", 1),
                                            incident("soon", NOW_MS + 10 * 365 * 86_400_000),
                                            incident("../../etc", NOW_MS - 1000))]
    listing.append(pb.Incident(id="not-an-object", trigger="node-down", at_ms=NOW_MS, state="complete",
                               detail_json='"not an object"'))
    rogue_factory(proxy, "poisoner", {"incident_list": pb.IncidentList(incidents=listing),
                                      "incident_fetch": b"bundle"})

    wait_for(lambda: (archive / "poisoner" / "good-1.json").exists(), 20, what="the good incident archived")
    status, body = http_json(f"{proxy.url}/incidents")
    assert status == 200, body
    assert [i["id"] for i in body["incidents"]] == ["good-1"]
    assert sorted(p.name for p in (archive / "poisoner").iterdir()) == ["good-1.json", "good-1.tar.gz"]
    assert refused(proxy, "answer_record") >= 4
    assert "refused agent input" in proxy.log()

    # An archive an earlier version filled with whatever agents sent: the bad entries go, the proxy starts.
    (archive / "poisoner" / "old-bad.json").write_text(json.dumps(incident("old-bad", "soon", node_id="poisoner")))
    (archive / "poisoner" / "old-bad.tar.gz").write_bytes(b"bundle")
    (archive / "poisoner" / "old-epoch.json").write_text(json.dumps(incident("old-epoch", 1, node_id="poisoner")))
    (archive / "poisoner" / "old-epoch.tar.gz").write_bytes(b"bundle")
    proxy.terminate()
    again = start_proxy(tmp_path, *args, "--incident-copy-interval", "0", name="again")
    daemons.append(again)
    status, body = http_json(f"{again.url}/incidents")
    assert status == 200, body
    assert [(i["id"], i["source"]) for i in body["incidents"]] == [("good-1", "proxy")]
    assert not (archive / "poisoner" / "old-bad.json").exists()
    assert refused(again, "archived_incident") == 2


def test_one_agent_with_malformed_answers_is_listed_as_failed_and_the_rest_are_served(
        tmp_path, daemons, rogue_factory):
    proxy = start_proxy(tmp_path, "--command-timeout", "5s", "--incident-copy-interval", "0")
    daemons.append(proxy)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "honest",
                               "--config-check-interval", "0.3s", "--node-pprof-url", ""))
    rogue_factory(proxy, "garbage", {"incident_list": b"\x0a\xff\xff\xff\xff", "automatic_list": b"\x0a\x05ab",
                                     "config_history": b"[" * 100_000})
    rogue_factory(proxy, "wrong-shape", {
        "incident_list": pb.IncidentList(incidents=[pb.Incident(trigger="node-down")]),
        "automatic_list": pb.AutomaticCaptureList(captures=[pb.AutomaticCapture(files=[pb.CapturedFile()])]),
        "config_history": pb.ConfigHistory(snapshots=[pb.ConfigSnapshot(captured_at="x", confirmed_at="y"),
                                                      pb.ConfigSnapshot(hash="h", captured_at="x", confirmed_at="y",
                                                                        content_json="x")])})
    wait_for(lambda: len(proxy.cluster(status="online")) == 3, what="three agents online")

    def answer(path):
        status, body = http_json(f"{proxy.url}{path}", timeout=30)
        assert status == 200, (path, body)
        return body

    body = wait_for(lambda: (b := answer("/cluster/config/drift")) and "honest" in b["nodes"] and b,
                    20, what="the honest node's configuration in the drift report")
    assert [m["node_id"] for m in body["missing"]] == ["garbage"]
    assert "unusable answer" in body["missing"][0]["reason"]
    body = answer("/incidents")
    assert sorted(m["node_id"] for m in body["missing"]) == ["garbage"]
    body = answer("/diagnostics")
    assert sorted(m["node_id"] for m in body["automatic_missing"]) == ["garbage"]
    assert refused(proxy, "answer_record") >= 4  # the wrong-shape records, left out one by one
    assert refused(proxy, "unreadable_answer") + refused(proxy, "answer") >= 3


def test_an_agents_content_type_is_not_what_the_proxy_serves(tmp_path, daemons):
    """A profile an agent says is text/html is still served as a download of bytes (no page on the proxy's
    origin), and its claimed sha256 is checked against what arrived."""
    proxy = start_proxy(tmp_path, "--command-timeout", "5s", "--incident-copy-interval", "0")
    daemons.append(proxy)
    body = b"<script>alert(1)</script>"

    def answer(command: pb.Command) -> list[pb.CommandReply]:
        said = pb.ArtifactInfo(content_type="text/html", size=len(body), sha256=hashlib.sha256(body).hexdigest())
        return [pb.CommandReply(command_id=command.command_id, state=pb.CommandReply.CHUNK, data=body),
                pb.CommandReply(command_id=command.command_id, state=pb.CommandReply.DONE, artifact=said)]
    rogue = RogueAgent(proxy.grpc_addr)
    try:
        assert rogue.register(registration("html", port=20101)).accepted
        rogue.serve_commands(answer)
        status, job = http_json(f"{proxy.url}/diagnostics", "POST", {"action": "heap", "target": "all"})
        assert status == 202, job
        job = wait_for(lambda: (j := http_json(f"{proxy.url}/diagnostics/{job['job_id']}")[1])["state"] != "running"
                       and j, 30, what="the job finished")
        assert job["state"] == "done", job
        status, headers, raw = http_get(f"{proxy.url}/diagnostics/{job['job_id']}/html")
        assert status == 200 and raw == body
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"].startswith("attachment")
    finally:
        rogue.close()


def test_an_agents_failure_text_is_cut_to_a_bound_wherever_the_proxy_shows_it(tmp_path, daemons, rogue_factory):
    """A FAILED reply's error is the agent's text: a megabyte of it must not be kept per job task or answered
    in every listing that names the agent as missing."""
    proxy = start_proxy(tmp_path, "--command-timeout", "5s", "--incident-copy-interval", "0")
    daemons.append(proxy)
    rogue = RogueAgent(proxy.grpc_addr)
    try:
        assert rogue.register(registration("wordy", port=20001)).accepted
        rogue.serve_commands(lambda command: [pb.CommandReply(command_id=command.command_id,
                                                              state=pb.CommandReply.FAILED, error="e" * 1_000_000)])
        wait_for(lambda: proxy.cluster(node_id="wordy", status="online"), 20, what="the rogue agent online")
        status, body = http_json(f"{proxy.url}/incidents", timeout=30)
        assert status == 200
        [missing] = body["missing"]
        assert missing["state"] == "failed" and missing["reason"].startswith("eee")
        assert len(missing["reason"]) <= 1000
    finally:
        rogue.close()


def _archive_figure(proxy, name: str) -> float:
    page = http_get(f"{proxy.url}/metrics?role=datanode-cold")[2].decode()
    return next((float(line.split()[-1]) for line in page.splitlines() if line.startswith(f"{name} ")), 0.0)


def test_fat_incident_summaries_count_against_the_archive_summary_budget(tmp_path, daemons, rogue_factory):
    """An agent lists incidents whose detail is hundreds of KiB each, one bigger than the whole budget: the proxy
    keeps only the newest summaries that fit --incident-archive-summary-bytes, on disk and in memory. (Set through
    the environment, so the same test runs against a proxy that does not know the option and keeps them all.)"""
    archive = tmp_path / "archive"
    budget = 1024 * 1024
    proxy = start_proxy(tmp_path, "--incident-archive-dir", str(archive), "--incident-copy-interval", "0.3s",
                        "--command-timeout", "10s", env={"FODC_INCIDENT_ARCHIVE_SUMMARY_BYTES": "1MiB"})
    daemons.append(proxy)
    fat = [incident(f"fat-{i}", NOW_MS - 60_000 + i * 1000) for i in range(8)]
    listing = [incident_to_pb(i) for i in [incident("huge", NOW_MS - 120_000)] + fat]
    listing[0].detail_json = json.dumps({"pad": "h" * (budget + 1)})
    for message in listing[1:]:
        message.detail_json = json.dumps({"pad": "f" * 300_000})
    rogue_factory(proxy, "bloater", {"incident_list": pb.IncidentList(incidents=listing),
                                     "incident_fetch": b"bundle"})

    wait_for(lambda: _archive_figure(proxy, "fodc_proxy_incident_copies_total") >= 8, 60, interval=0.3,
             what="the fat incidents copied")  # the huge one, listed first, was tried before them
    on_disk = sum(p.stat().st_size for p in archive.rglob("*.json"))
    assert on_disk <= budget, f"{on_disk} bytes of summaries kept, the budget is {budget}"
    kept = sorted(p.stem for p in (archive / "bloater").glob("*.json"))
    assert kept == ["fat-5", "fat-6", "fat-7"]  # the newest that fit; the oldest went first
    assert _archive_figure(proxy, "fodc_proxy_incident_archive_summaries_bytes") == on_disk
    status, body = http_json(f"{proxy.url}/incidents")
    assert status == 200, body
    assert {i["id"] for i in body["incidents"] if i.get("archived")} == set(kept)  # listed live, copies marked
    assert _archive_figure(proxy, "fodc_proxy_incident_copy_failures_total") >= 1
    assert "over the archive's summary budget" in proxy.log()
