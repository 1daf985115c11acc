"""A node's Go crash report found where it printed it (log file, crash output file, journal) and frozen as a
node-crash incident: the report parsed into crash.json, kept as printed in crash.txt, its message first in
`fodc triage` and the API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import test_incidents
from procs import BIN, free_port, http_get, http_json, start_agent, wait_for
from test_incidents import FAST, bundle_files, complete, incidents, watched_node

from fodc.agent.crashes import CrashProbe, NodeOutput, OutputSources
from fodc.incident.gocrash import FATAL, PANIC, UNKNOWN
from fodc.sim.launcher import start_sim_node

cluster = test_incidents.cluster  # the same proxy + simulated nodes fixture

FIXTURES = Path(__file__).parent / "fixtures" / "gocrash"
MB = 1024 * 1024
BANYANDB_BUS = "github.com/apache/skywalking-banyandb/pkg/bus.(*Bus).Subscribe.func1 (bus.go:261)"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def probe(**sources: str | None) -> CrashProbe:
    return CrashProbe(NodeOutput(OutputSources(sources.get("crash_output_file"), sources.get("systemd_unit"),
                                               sources.get("log_file"), MB)))


# ---------------------------------------------------------------- the probe over real files


def test_a_crash_in_the_log_file_is_found_once(tmp_path):
    log = tmp_path / "banyand.log"
    log.write_text('{"level":"info","message":"started"}\n')
    crashes = probe(log_file=str(log))
    crashes.baseline()
    assert crashes.find(None) is None
    with log.open("a") as f:
        f.write(fixture("nil_map_write.txt"))
    found = crashes.find(None)
    assert found.trigger == "node-crash" and found.summary == "panic: assignment to entry in nil map"
    assert found.detail["crash"]["source"] == f"log-file:{log}"
    assert json.loads(found.files["crash.json"])["goroutine"]["id"] == 412
    assert found.files["crash.txt"].startswith(b"panic: assignment") and b'"level"' not in found.files["crash.txt"]
    assert crashes.find(None) is None  # given once


def test_a_crash_already_in_the_log_when_the_agent_starts_is_not_news(tmp_path):
    log = tmp_path / "banyand.log"
    log.write_text(fixture("index_out_of_range.txt") + '{"level":"info","message":"started again"}\n')
    crashes = probe(log_file=str(log))
    crashes.baseline()
    assert crashes.find(None) is None
    with log.open("a") as f:
        f.write(fixture("concurrent_map_writes.txt"))
    assert crashes.find(None).detail["crash"]["kind"] == FATAL


def test_garbage_in_the_crash_output_file_is_kept_raw_as_unknown(tmp_path):
    output = tmp_path / "crash.out"
    crashes = probe(crash_output_file=str(output))
    crashes.baseline()  # no file yet: nothing to remember, nothing fails
    garbage = "\x00\x01 this is not a Go report }}}\n" * 20
    output.write_text(garbage)
    found = crashes.find(None)
    assert found.detail["crash"]["kind"] == UNKNOWN and found.summary == "unknown crash output"
    assert found.files["crash.txt"].decode() == garbage
    assert json.loads(found.files["crash.json"])["truncated"] is True


def test_a_truncated_report_keeps_its_kind_and_says_it_is_cut(tmp_path):
    output = tmp_path / "crash.out"
    whole = fixture("concurrent_map_writes.txt")
    output.write_text(whole[:whole.index("measure.go:119")])
    found = probe(crash_output_file=str(output)).find(None)
    crash = json.loads(found.files["crash.json"])
    assert crash["kind"] == FATAL and crash["truncated"] and crash["message"] == "concurrent map writes"


def test_an_oversized_log_is_read_only_at_its_end(tmp_path):
    log = tmp_path / "banyand.log"
    with log.open("w") as f:
        f.write(("x" * 1000 + "\n") * 3000)  # 3 MB of noise before the crash
        f.write(fixture("nil_pointer_signal.txt"))
    found = probe(log_file=str(log)).find(None)
    assert found.detail["crash"]["kind"] == PANIC and "nil pointer" in found.summary


def _dump_of(goroutines: int) -> str:
    """A fatal error with every goroutine printed, as a busy node's would be (hundreds of KiB)."""
    blocks = "".join(f"goroutine {n} [chan receive, 3 minutes]:\nmain.worker(0xc000{n:06x})\n"
                     f"\t/src/banyand/worker.go:{n % 900 + 10} +0x1d\ncreated by main.start in goroutine 1\n"
                     f"\t/src/banyand/start.go:20 +0x45\n\n" for n in range(2, goroutines))
    return fixture("concurrent_map_writes.txt").replace("\ngoroutine 1 ", f"\n{blocks}goroutine 1 ", 1)


def test_a_dump_bigger_than_the_cap_is_read_from_its_header(tmp_path):
    log = tmp_path / "banyand.log"
    log.write_text('{"level":"info"}\n' * 20_000 + _dump_of(5000))  # ~1 MB of dump after 340 KB of log
    crashes = CrashProbe(NodeOutput(OutputSources(None, None, str(log), 64 * 1024)))
    found = crashes.find(None)
    crash = json.loads(found.files["crash.json"])
    assert crash["message"] == "concurrent map writes" and crash["goroutine"]["id"] == 231
    assert crash["truncated"] and crash["cut_at_bytes"] == 64 * 1024 and 100 < crash["goroutines"] < 5000
    assert len(found.files["crash.txt"]) <= 64 * 1024


def test_a_header_beyond_the_scan_window_is_not_looked_for(tmp_path):
    log = tmp_path / "banyand.log"
    log.write_text(fixture("nil_map_write.txt") + "x" * 80 + "\n" * (16 * 4096 + 10))
    assert CrashProbe(NodeOutput(OutputSources(None, None, str(log), 4096))).find(None) is None
    assert CrashProbe(NodeOutput(OutputSources(None, None, str(log), 8192))).find(None) is not None


def test_without_a_journal_the_log_file_still_answers_and_the_journal_failure_is_named(tmp_path):
    """systemd is not PID 1 on this machine: the journal source fails, the log file is read anyway."""
    log = tmp_path / "banyand.log"
    log.write_text(fixture("nil_map_write.txt"))
    crashes = probe(systemd_unit=f"fodc-no-such-unit-{uuid.uuid4().hex[:8]}.service", log_file=str(log))
    found = crashes.find(None)
    assert found is not None and found.detail["crash"]["source"] == f"log-file:{log}"
    if shutil.which("journalctl") is None:
        assert any(s.startswith("journal:") for s in crashes.last_errors)


def _systemd_booted() -> bool:
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run") is not None and os.geteuid() == 0


@pytest.mark.skipif(not _systemd_booted(), reason="systemd is not PID 1 here (no /run/systemd/system): the "
                    "journal path runs in the booted container (tests/system/test_packages.py), the log file here")
def test_a_crash_under_a_transient_systemd_unit_is_read_from_its_journal(tmp_path):
    unit = f"fodc-test-crash-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "crash.sh"
    script.write_text(f"#!/bin/sh\ncat {FIXTURES / 'concurrent_map_writes.txt'} >&2\nexit 2\n")
    script.chmod(0o755)
    subprocess.run(["systemd-run", "--unit", unit, "--wait", "--collect", str(script)], check=False, timeout=60)
    crashes = probe(systemd_unit=f"{unit}.service")
    found = wait_for(lambda: crashes.find(None), 30, what="the crash in the unit's journal")
    assert found.detail["crash"]["source"] == f"journal:{unit}.service"
    assert found.detail["crash"]["message"] == "concurrent map writes"


# ---------------------------------------------------------------- end to end: a node that really dies


def crashing_node(cluster, daemons, node_id, *agent_args):
    node = watched_node(cluster, daemons, node_id, *agent_args)
    wait_for(lambda: cluster[0].cluster(node_id=node_id, status="online"), what="agent online")
    return node


def test_a_node_that_panics_and_stays_down_is_a_node_crash_with_its_report(cluster, daemons):
    proxy, _, tmp_path = cluster
    node = crashing_node(cluster, daemons, "hot-panic")
    node.fault("crash", text=fixture("nil_map_write.txt"))
    assert node.popen.wait(10) == 2  # exits as a Go program does after a panic

    incident = complete(proxy, "node-crash", "hot-panic")
    assert incident["summary"] == "panic: assignment to entry in nil map"
    crash = incident["detail"]["crash"]
    assert incident["detail"]["cause"] == "node-down" and crash["kind"] == PANIC
    assert crash["top_frames"][0].endswith("(*tsTable).mustAddDataPoints (tstable.go:287)")
    assert incidents(proxy, "?trigger=node-down&node_id=hot-panic") == []  # one incident, named for its cause

    status, shown = http_json(f"{proxy.url}{incident['url']}")
    assert status == 200 and list(shown)[:2] == ["summary", "crash"]
    assert shown["crash"]["stack"][2].startswith(BANYANDB_BUS) and len(shown["crash"]["stack"]) == 3
    files = bundle_files(proxy, incident)
    assert json.loads(files["crash.json"])["goroutine"]["frames"][0]["line"] == 287
    assert files["crash.txt"].decode() == fixture("nil_map_write.txt").split("\n", 1)[1]
    raw = tmp_path / "crash.tar.gz"
    raw.write_bytes(http_get(f"{proxy.url}{incident['bundle_url']}")[2])
    triage = subprocess.run([str(BIN / "fodc"), "triage", str(raw)], capture_output=True, text=True, timeout=60)
    assert triage.returncode == 0, triage.stderr
    lines = triage.stdout.splitlines()
    assert lines[1] == "crash: panic: assignment to entry in nil map"
    assert lines[2].startswith("failing goroutine 412 [running] of 1")
    assert lines[3].strip().endswith("(*tsTable).mustAddDataPoints")


def test_a_node_restarted_after_a_fatal_error_is_a_node_crash_reported_once(cluster, daemons):
    proxy, nodes, tmp_path = cluster
    args = ("--incident-node-down-for", "60s")
    node = crashing_node(cluster, daemons, "hot-fatal", *args)
    agent = daemons[-1]
    node.fault("crash", text=fixture("concurrent_map_writes.txt"))
    assert node.popen.wait(10) == 2
    pid_file = tmp_path / "hot-fatal.pid"
    replacement = start_sim_node("datanode-hot", free_port(), series=50, extra_args=["--pid-file", str(pid_file)])
    nodes.append(replacement)
    incident = complete(proxy, "node-crash", "hot-fatal")
    assert incident["detail"]["cause"] == "node-restart" and incident["detail"]["pid"] == replacement.pid
    assert incident["summary"] == "fatal error: concurrent map writes"
    assert incident["detail"]["crash"]["goroutines"] == 5

    # The agent restarts; the node restarts again without crashing; its old log still holds the report.
    assert agent.terminate() == 0
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-fatal", "--node-metrics-url",
                               replacement.metrics_url, "--node-pid-file", str(pid_file), "--node-log-file",
                               str(node.stderr_file), *FAST, *args, http_port=agent.ports["http"],
                               node_port=agent.ports["node"]))
    wait_for(lambda: proxy.cluster(node_id="hot-fatal", status="online"), what="agent back")
    time.sleep(2)  # its first looks at the node (the config watch checks every 0.3 s)
    replacement.stop()
    nodes.append(start_sim_node("datanode-hot", free_port(), series=50, extra_args=["--pid-file", str(pid_file)]))
    restart = complete(proxy, "node-restart", "hot-fatal")
    assert "crash" not in restart["detail"]  # the report was given once, before the agent restarted
    assert [i["trigger"] for i in incidents(proxy, "?node_id=hot-fatal")].count("node-crash") == 1
