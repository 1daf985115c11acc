"""Shared fixtures: real processes on loopback, cleaned up by pid whatever the test's outcome."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
