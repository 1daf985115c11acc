"""Capturing a real child process: finder variants, file selection, secret files, what fails and why."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from fodc.agent.configwatch import version_from_series
from fodc.nodeconf.capture import CaptureOptions, NodeConfigCapturer
from fodc.nodeconf.finder import NodeProcessFinder, NotFound
from fodc.nodeconf.redact import REDACTED


@pytest.fixture
def child(tmp_path):
    """A sleeping process with a realistic command line and environment."""
    conf = tmp_path / "node.yaml"
    conf.write_text("port: 1\nsecret: s3cr3t\n")
    key = tmp_path / "tls.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    auth = tmp_path / "users.yaml"
    auth.write_text("admin: plaintext\n")
    pid_file = tmp_path / "node.pid"
    pid_file.write_text("0")
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00\xff" * 10)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--config", str(conf),
                             "--tls-key-file", str(key), "--auth-config-file", str(auth), "--pid-file", str(pid_file),
                             "--extra.yaml", str(data.with_suffix(".yaml"))],
                            env={"GOGC": "50", "API_TOKEN": "t0k3n"})
    pid_file.write_text(str(proc.pid))
    yield SimpleNamespace(proc=proc, conf=conf, key=key, auth=auth, pid_file=pid_file)
    proc.kill()
    proc.wait()


def capturer(pid_file, **options):
    return NodeConfigCapturer(CaptureOptions(pid_file=str(pid_file), **options), node_id="n", role="liaison",
                              agent_config={"scrape_interval": 15.0, "labels": {"a": "b"}})


def test_captures_config_files_but_not_secret_files_pid_files_or_missing_ones(child):
    snap = capturer(child.pid_file).capture("test", 1_000)
    assert set(snap["files"]) == {str(child.conf), str(child.auth)}  # not the key, pid file or missing yaml
    assert snap["files"][str(child.conf)]["content"] == f"port: 1\nsecret: {REDACTED}\n"
    assert snap["files"][str(child.conf)]["redacted_lines"] == 1
    auth = snap["files"][str(child.auth)]
    assert "content" not in auth and auth["size"] == child.auth.stat().st_size and auth["sha256"]
    assert snap["flags"]["auth-config-file"] == str(child.auth) and snap["flags"]["tls-key-file"] == str(child.key)
    assert snap["env"] == {"API_TOKEN": REDACTED, "GOGC": "50"}
    assert snap["agent"] == {"scrape_interval": 15.0, "labels": "{'a': 'b'}"}
    assert snap["errors"] == {}


def test_explicit_config_file_is_capped_and_says_so(child, tmp_path):
    big = tmp_path / "big.conf"
    big.write_text("x" * 5000)
    snap = capturer(child.pid_file, config_files=(str(big), str(tmp_path / "absent.conf")),
                    file_max_bytes=1000).capture("test", 1)
    assert snap["files"][str(big)]["truncated"] is True
    assert len(snap["files"][str(big)]["content"]) == 1000 and snap["files"][str(big)]["size"] == 5000
    assert "absent.conf" in snap["errors"][f"file:{tmp_path / 'absent.conf'}"]


def test_identity_changes_when_the_process_is_replaced(child, tmp_path):
    cap = capturer(child.pid_file)
    first = cap.identity()
    assert first is not None and first[0] == child.proc.pid
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.pid_file.write_text(str(other.pid))
        assert cap.identity()[0] == other.pid
    finally:
        other.kill()
        other.wait()
    assert cap.identity() is None  # pid file names a dead process


@pytest.mark.parametrize(("content", "reason"), [
    ("", "does not hold a pid"), ("abc", "does not hold a pid"), (None, "cannot read pid file"),
])
def test_bad_pid_files_say_why(tmp_path, content, reason):
    pid_file = tmp_path / "x.pid"
    if content is not None:
        pid_file.write_text(content)
    with pytest.raises(NotFound, match=reason):
        NodeProcessFinder(pid_file=str(pid_file)).find()


def test_unknown_systemd_unit_says_why():
    with pytest.raises(NotFound, match="fodc-no-such-unit.service"):
        NodeProcessFinder(systemd_unit="fodc-no-such-unit.service").find()


def test_version_comes_from_build_info_not_go_info():
    series = [SimpleNamespace(name="go_info", labels=(("version", "go1.22"),)),
              SimpleNamespace(name="banyandb_build_info", labels=(("revision", "abc"), ("version", "0.9.1")))]
    assert version_from_series(series) == "0.9.1"
    assert version_from_series(series[:1]) is None
