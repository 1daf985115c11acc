"""Shared fixtures: real processes on loopback, cleaned up by pid whatever the test's outcome."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests share a 2-core machine with real daemons: generation and examples may be slow there,
# which says nothing about the code under test (the properties still fail on a wrong answer).
settings.register_profile("fodc", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fodc")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from disks import mount_tmpfs, unmount  # noqa: E402
from procs import Daemon  # noqa: E402


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Register every started process here; all are stopped (SIGTERM, then SIGKILL) after the test."""
    started: list[Daemon] = []
    yield started
    for daemon in reversed(started):
        daemon.stop()


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """mount(name, size) -> a fresh tmpfs of `size` under tmp_path: a disk a test can fill. Root only (skips
    otherwise); every mount is undone after the test."""
    if not is_root():
        pytest.skip("mounting a small tmpfs needs root")
    mounts: list[Path] = []

    def mount(name: str, size: str) -> Path:
        mounts.append(mount_tmpfs(tmp_path / name, size))
        return mounts[-1]

    yield mount
    for path in reversed(mounts):
        unmount(path)
