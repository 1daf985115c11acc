"""`fodc-agent --check-config FILE` / `fodc-proxy --check-config FILE`: validate without starting."""

from __future__ import annotations

import subprocess
from pathlib import Path

from procs import BIN, free_port


def _check(cmd: str, conf: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / cmd), "--check-config", str(conf), *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={"PATH": "/usr/bin:/bin"})


def test_a_valid_agent_file_passes_with_status_0(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text("node-role = liaison\nscrape-interval = 20s\nnode-metrics-url = [http://a:1/m, http://b:2/m]\n")
    result = _check("fodc-agent", conf)
    assert (result.returncode, result.stderr) == (0, "")
    assert "valid" in result.stdout


def test_every_problem_of_a_bad_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text("scrape-interval = soon\nwindow-dir = relative/dir\nscrape-timout = 5s\n"
                    "profile-ring-bytes = lots\n")
    result = _check("fodc-agent", conf)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("fodc-agent: error: ") for line in lines)
    joined = "\n".join(lines)
    for needle in ("--node-role", "--scrape-interval", "--window-dir", "'scrape-timout' (did you mean "
                   "'scrape-timeout'?)", "--profile-ring-bytes"):
        assert needle in joined, joined
    assert len(lines) == 5, joined


def test_rules_between_options_are_checked_too(tmp_path: Path) -> None:
    conf = tmp_path / "proxy.conf"
    conf.write_text("agent-heartbeat-timeout = 1m\nagent-cleanup-timeout = 30s\n")
    result = _check("fodc-proxy", conf)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "fodc-proxy: error: argument --agent-cleanup-timeout: 30s must be greater than --agent-heartbeat-timeout "
        "(60s)"]


def test_checking_opens_no_port_and_writes_no_file(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "proxy.conf"
    state = tmp_path / "state"
    conf.write_text(f"grpc-listen-addr = 127.0.0.1:{port}\nhttp-listen-addr = 127.0.0.1:{port}\n"
                    f"diagnostics-dir = {state}/diag\nincident-archive-dir = {state}/inc\naudit-log = {state}/a.log\n")
    result = _check("fodc-proxy", conf, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proxy.conf"]
    agent_conf = tmp_path / "agent.conf"
    agent_conf.write_text(f"node-role = liaison\nwindow-dir = {state}/w\ninstance-file = {state}/id\n"
                          f"http-listen-addr = 127.0.0.1:{port}\n")
    assert _check("fodc-agent", agent_conf, cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.conf", "proxy.conf"]


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = _check("fodc-proxy", tmp_path / "nope.conf")
    assert result.returncode == 2
    assert "nope.conf" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_checked_file_stands_in_for_the_installed_one(tmp_path: Path, monkeypatch, capsys) -> None:
    """Ansible validates the new conffile before it replaces /etc/fodc/agent.conf: what the old one says
    must not leak into the check (here an option the new file dropped, spelled wrong in the old)."""
    import pytest

    from fodc.agent.settings import AgentSettings
    from fodc.options import parse_or_exit, read_settings

    installed = tmp_path / "installed.conf"
    installed.write_text("node-role = liaison\nscrape-intervall = 20s\n")
    monkeypatch.setattr(AgentSettings, "default_config", str(installed))
    new = tmp_path / "new.conf"
    new.write_text("node-role = liaison\n")
    assert "unknown option 'scrape-intervall'" in " ".join(read_settings(AgentSettings, ["--config", str(new)])[1])
    with pytest.raises(SystemExit) as stopped:
        parse_or_exit(AgentSettings, ["--check-config", str(new)])
    assert stopped.value.code == 0 and "valid" in capsys.readouterr().out
