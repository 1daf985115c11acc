"""What a test does when a prerequisite of the machine is missing: elsewhere it skips with the reason, under
CI=true it fails with it. CI's machine is prepared by the project's own files (dev/bootstrap, fixtures), so
a test that cannot run there is a defect to see, not a test to pass over in silence."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def skip_or_fail(reason: str, *, needed: str) -> NoReturn:
    """Skips with `reason`, or under CI=true fails saying `needed` is required there and why it is missing."""
    if in_ci():
        pytest.fail(f"{needed} is required under CI=true, but: {reason}", pytrace=False)
    pytest.skip(reason)
