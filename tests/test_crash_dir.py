"""Crash artifacts a node writes into --node-crash-dir: each new one a node-crash incident with its files,
the same crash again not bundled twice, sizes capped, garbage kept raw as `unknown`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import test_incidents
from procs import http_json, wait_for
from test_incidents import bundle_files, incidents, watched_node

from fodc.incident.artifact import read_artifact
from fodc.incident.gocrash import FATAL, PANIC, UNKNOWN

cluster = test_incidents.cluster
FIXTURES = Path(__file__).parent / "fixtures" / "gocrash"
STACK = ("goroutine 88 [running]:\n"
         "github.com/apache/skywalking-banyandb/banyand/trace.(*tsTable).flush(0xc0001e2000)\n"
         "\t/src/banyand/trace/flusher.go:92 +0x1f4\n"
         "github.com/apache/skywalking-banyandb/banyand/trace.(*tsTable).flusherLoop(0xc0001e2000)\n"
         "\t/src/banyand/trace/flusher.go:51 +0x3a\n")
PANIC_JSON = {"message": "runtime error: slice bounds out of range [:12] with capacity 8", "stack": STACK,
              "breadcrumbs": ["flush started group=sw_trace", "part 0000a1 merged"], "time": "2026-12-04T18:20:00Z"}


def test_a_panic_json_gives_message_frames_and_breadcrumbs():
    report, crumbs = read_artifact({"panic.json": json.dumps(PANIC_JSON).encode()})
    assert report.kind == PANIC and report.message.startswith("runtime error: slice bounds out of range")
    assert [f.line for f in report.failing.frames] == [92, 51] and not report.truncated
    assert crumbs == PANIC_JSON["breadcrumbs"]


def test_an_artifact_with_only_a_runtime_dump_is_parsed_from_it():
    dump = (FIXTURES / "concurrent_map_writes.txt").read_bytes()
    report, _ = read_artifact({"stderr.txt": b"starting\n" + dump, "notes.json": b"[1, 2]"})
    assert (report.kind, report.message, report.goroutines) == (FATAL, "concurrent map writes", 5)


def test_an_artifact_of_garbage_is_kept_raw_as_unknown():
    report, _ = read_artifact({"panic.json": b"{not json", "blob.bin": b"\x00\xff\xfe" * 10})
    assert report.kind == UNKNOWN and "==> blob.bin <==" in report.raw and "{not json" in report.raw
    deep, _ = read_artifact({"panic.json": b"[" * 200_000})  # deeper than Python's JSON parser goes
    assert deep.kind == UNKNOWN and deep.raw.endswith("[" * 100)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_each_new_artifact_is_one_incident_with_its_files(cluster, daemons):
    proxy, _, tmp_path = cluster
    crash_dir = tmp_path / "crashes"
    crash_dir.mkdir()
    (crash_dir / "old-panic.json").write_text(json.dumps(PANIC_JSON))  # there before the agent: old news
    watched_node(cluster, daemons, "hot-d", "--node-crash-dir", str(crash_dir), "--node-crash-max-bytes", "64KiB")
    agent = daemons[-1]
    wait_for(lambda: proxy.cluster(node_id="hot-d", status="online"), what="agent online")
    wait_for(lambda: (tmp_path / "incidents-hot-d" / ".crash-dir-seen.json").exists(), 20, what="first look")

    _write_atomically(crash_dir / "panic-1.json", json.dumps(PANIC_JSON).encode())

    def crashes():
        return [i for i in incidents(proxy, "?trigger=node-crash&node_id=hot-d") if i["state"] == "complete"]
    first = wait_for(crashes, 30, interval=0.3, what="a node-crash incident from the artifact")[0]
    assert first["summary"] == "panic: " + PANIC_JSON["message"]
    assert first["detail"]["artifact"] == "panic-1.json"
    assert first["detail"]["crash"]["source"] == "crash-dir:panic-1.json"
    files = bundle_files(proxy, first)
    assert json.loads(files["crash-artifact/panic-1.json"]) == PANIC_JSON
    assert json.loads(files["crash.json"])["breadcrumbs"] == PANIC_JSON["breadcrumbs"]

    _write_atomically(crash_dir / "panic-1-copy.json", json.dumps(PANIC_JSON).encode())  # the same crash again
    crash = crash_dir / "crash-2"  # a directory artifact: a big dump (cut to the cap) and a JSON file
    crash.mkdir()
    (crash / "goroutines.txt").write_bytes((FIXTURES / "out_of_memory.txt").read_bytes() + b"x" * 200_000)
    (crash / "meta.json").write_text('{"reason": "oom in merge", "kind": "fatal"}')
    (crash / "escape").symlink_to("/etc/hostname")  # never followed
    os.mkfifo(crash / "pipe")  # never opened: reading it would block the watch
    os.mkfifo(crash_dir / "zz-pipe")
    wait_for(lambda: len(crashes()) == 2, 30, interval=0.3, what="the directory artifact's incident")
    second = next(i for i in crashes() if i["id"] != first["id"])
    assert second["detail"]["artifact"] == "crash-2" and second["detail"]["artifact_truncated"] is True
    assert second["detail"]["artifact_bytes"] <= 64 * 1024 and "escape" not in second["detail"]["artifact_files"]
    assert "pipe" not in second["detail"]["artifact_files"]
    assert second["summary"] == "fatal error: oom in merge"  # the JSON's words, the dump's frames
    assert second["detail"]["crash"]["top_frames"][0].split(" ")[0].endswith("EncodeBlock")
    wait_for(lambda: "panic-1-copy.json" in json.loads(
        (tmp_path / "incidents-hot-d" / ".crash-dir-seen.json").read_text()), 20, what="the copy looked at")
    assert len(crashes()) == 2  # the copy repeated a recent signature: counted, not bundled

    agent.terminate()
    again = test_incidents.start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-d", "--node-crash-dir",
                                       str(crash_dir), *test_incidents.FAST, http_port=agent.ports["http"],
                                       node_port=agent.ports["node"])
    daemons.append(again)
    wait_for(lambda: proxy.cluster(node_id="hot-d", status="online"), what="agent back")
    (crash_dir / "garbage.json").write_bytes(b"\x00{{{ not a crash")
    wait_for(lambda: len(crashes()) == 3, 30, interval=0.3, what="the garbage artifact's incident")
    listed = crashes()
    assert [i["detail"]["artifact"] for i in listed].count("panic-1.json") == 1  # not reported again after restart
    garbage = next(i for i in listed if i["detail"]["artifact"] == "garbage.json")
    assert garbage["detail"]["crash"]["kind"] == UNKNOWN
    assert bundle_files(proxy, garbage)["crash.txt"].endswith(b"\x00{{{ not a crash".decode().encode())
    status, body = http_json(f"{proxy.url}/crashes?node_id=hot-d")
    assert status == 200 and len(body["crashes"]) == 3


def test_a_crash_collected_when_the_agent_was_killed_keeps_its_files_after_the_restart(cluster, daemons):
    proxy, _, tmp_path = cluster
    crash_dir = tmp_path / "crashes"
    crash_dir.mkdir()
    node = watched_node(cluster, daemons, "hot-k2", "--node-crash-dir", str(crash_dir), "--incident-after", "60s")
    agent = daemons[-1]
    wait_for(lambda: (tmp_path / "incidents-hot-k2" / ".crash-dir-seen.json").exists(), 30, what="first look")
    _write_atomically(crash_dir / "panic.json", json.dumps(PANIC_JSON).encode())
    wait_for(lambda: incidents(proxy, "?trigger=node-crash&node_id=hot-k2"), 30, interval=0.3,
             what="the incident collecting")
    assert list((tmp_path / "incidents-hot-k2").glob(".evidence-*.tar"))
    agent.kill9()  # long before its 60 s after the trigger

    again = test_incidents.start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-k2", "--node-metrics-url",
                                       node.metrics_url, "--node-crash-dir", str(crash_dir), *test_incidents.FAST,
                                       http_port=agent.ports["http"], node_port=agent.ports["node"])
    daemons.append(again)
    resumed = test_incidents.complete(proxy, "node-crash", "hot-k2")
    assert "interrupted" in resumed["errors"] and resumed["summary"] == "panic: " + PANIC_JSON["message"]
    files = bundle_files(proxy, resumed)
    assert json.loads(files["crash-artifact/panic.json"]) == PANIC_JSON and "crash.json" in files
    assert not list((tmp_path / "incidents-hot-k2").glob(".evidence-*"))
