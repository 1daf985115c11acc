"""The container harness waits out systemd's transient states while a container boots (seen as "offline" when
four containers booted at once under load) and fails at once on a state booting cannot leave."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.system.nspawn import Container, ContainerError


class ScriptedBoot(Container):
    """A container whose `systemctl is-system-running` answers the given states in turn."""

    def __init__(self, states: list[str], tmp_path: Path) -> None:
        super().__init__(name="scripted", nspawn_pid=0, init_pid=0, scratch=tmp_path, root=tmp_path,
                         log_path=tmp_path / "log")
        self.states = list(states)
        self.asked = 0

    def run(self, *argv: str, **_: object) -> subprocess.CompletedProcess[str]:
        assert argv[:2] == ("systemctl", "is-system-running")
        self.asked += 1
        return subprocess.CompletedProcess(argv, 1, self.states.pop(0) + "\n", "")


def test_offline_and_starting_are_waited_out_until_the_system_runs(tmp_path: Path) -> None:
    container = ScriptedBoot(["offline", "", "offline", "starting", "degraded"], tmp_path)
    assert container.wait_until_booted(timeout=30) == "degraded"
    assert container.asked == 5


def test_a_state_booting_cannot_leave_fails_at_once(tmp_path: Path) -> None:
    container = ScriptedBoot(["offline", "maintenance", "running"], tmp_path)
    with pytest.raises(ContainerError, match="maintenance"):
        container.wait_until_booted(timeout=30)
    assert container.asked == 2


def test_still_offline_at_the_deadline_fails(tmp_path: Path) -> None:
    container = ScriptedBoot(["offline"] * 1000, tmp_path)
    with pytest.raises(ContainerError, match="offline"):
        container.wait_until_booted(timeout=0.5)
