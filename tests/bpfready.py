"""Whether real eBPF can run here, and if not, why: the one check every BPF test goes through.

Needs root, python3-bpfcc and a kernel header tree; `dev/ktm-headers` (idempotent; dev/bootstrap runs it
too) mounts tracefs and prepares the tree first. The answer is kept for the session, since preparing the
tree takes a while. Elsewhere a missing prerequisite skips the test with the reason; under CI=true it fails
it: CI's machine is prepared by dev/bootstrap, so a BPF test that cannot run there is a defect to see, not
a test to pass over in silence.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
from pathlib import Path
from typing import NoReturn

from required import skip_or_fail as _skip_or_fail

from fodc.ktm import prereq

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def missing_bpf() -> str:
    """Why eBPF tests cannot run here, or "" when every prerequisite is there."""
    if os.geteuid() != 0:
        return "needs root (CAP_BPF+CAP_PERFMON)"
    if importlib.util.find_spec("bcc") is None:
        return "python3-bpfcc not importable from this interpreter"
    result = subprocess.run([str(REPO / "dev" / "ktm-headers"), "--no-verify"], capture_output=True, text=True,
                            timeout=900)
    if result.returncode != 0:
        return f"dev/ktm-headers failed: {result.stderr.strip()[-300:]}"
    if prereq.find_tracefs() is None:
        return "tracefs could not be mounted"
    if prereq.find_kernel_headers() is None:
        return "no kernel header tree"
    return ""


def skip_or_fail(reason: str) -> NoReturn:
    """Skips with `reason`, or fails with it under CI=true (see the module docstring)."""
    _skip_or_fail(reason, needed="real eBPF")


def require_bpf(what: str = "") -> None:
    """Returns when real eBPF can run here; else skips (fails under CI=true) saying why."""
    reason = missing_bpf()
    if reason:
        skip_or_fail(f"{what}{reason}")
