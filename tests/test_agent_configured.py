"""The unit's ExecCondition: a fresh install (no node role) waits instead of failing, anything else starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fodc.agent.configured import WAITING, has_node_role


@pytest.fixture(autouse=True)
def _no_role_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FODC_NODE_ROLE", raising=False)


def _conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "agent.conf"
    path.write_text(text)
    return str(path)


def test_the_shipped_conffile_has_no_role_so_the_agent_waits() -> None:
    shipped = Path(__file__).resolve().parents[1] / "packaging" / "etc" / "agent.conf"
    assert has_node_role(["-c", str(shipped)]) is False


def test_a_role_from_the_conffile_the_environment_or_a_flag_lets_it_start(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert has_node_role(["-c", _conf(tmp_path, "node-role = liaison\n")])
    assert has_node_role(["-c", _conf(tmp_path, ""), "--node-role", "datanode-hot"])
    monkeypatch.setenv("FODC_NODE_ROLE", "datanode-cold")
    assert has_node_role(["-c", _conf(tmp_path, "")])


def test_other_configuration_errors_are_left_to_the_agent_to_report(tmp_path: Path) -> None:
    # Skipping the start would hide them; the agent itself exits 2 with a one-line error instead.
    assert has_node_role(["-c", _conf(tmp_path, "node-role = primary\n")])
    assert has_node_role(["-c", _conf(tmp_path, "scrape-interval = soon\n")])


def test_the_check_exits_1_with_one_line_saying_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    waiting = subprocess.run([sys.executable, "-m", "fodc.agent.configured", "-c", _conf(tmp_path, "")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert (waiting.returncode, waiting.stdout, waiting.stderr) == (1, WAITING + "\n", "")
    assert "node-role" in WAITING and "systemctl restart fodc-agent" in WAITING and len(WAITING) <= 100
    ready = subprocess.run([sys.executable, "-m", "fodc.agent.configured", "-c",
                            _conf(tmp_path, "node-role = liaison\n")], capture_output=True, text=True, env=env,
                           timeout=60)
    assert (ready.returncode, ready.stdout) == (0, "")
