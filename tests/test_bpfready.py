"""A real-eBPF test never passes over a machine that cannot run it in silence: under CI=true a missing
prerequisite fails the test with its reason (elsewhere it skips with it). Shown on the real BPF test file,
run by an unprivileged user, for whom eBPF is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _bpf_test_as_nobody(basetemp: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONDONTWRITEBYTECODE": "1"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "pytest", "tests/test_ktm_bpf.py::test_collect_output_passes_promtool", "-q",
         "-rsf", "-p", "no:cacheprovider", f"--basetemp={basetemp}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_missing_ebpf_prerequisite_skips_with_its_reason_and_fails_under_ci(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    skipped = _bpf_test_as_nobody(shared / "plain", None)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 skipped" in skipped.stdout and "needs root" in skipped.stdout
    failed = _bpf_test_as_nobody(shared / "ci", "true")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "real eBPF is required under CI=true, but: needs root" in failed.stdout
    assert "1 error" in failed.stdout or "1 failed" in failed.stdout
