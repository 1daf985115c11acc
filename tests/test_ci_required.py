"""A test that needs what only CI's prepared machine is sure to have (real eBPF, booted containers) never
passes over a machine that lacks it in silence: under CI=true the missing prerequisite fails the test with
its reason (elsewhere it skips with it). Shown on the real test files, run by an unprivileged user, who has
neither eBPF nor containers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _as_nobody(test: str, basetemp: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "300"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "pytest", test, "-q", "-rsf", "-p", "no:cacheprovider", f"--basetemp={basetemp}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize(("test", "failure"), [
    ("tests/test_ktm_bpf.py::test_collect_output_passes_promtool",
     "real eBPF is required under CI=true, but: needs root"),
    ("tests/system/test_packages_trixie.py::test_packages_build_against_python_3_13",
     "a booted container is required under CI=true, but: booted-container tests need root"),
], ids=["ebpf", "debian-13-packages"])
def test_a_missing_prerequisite_skips_with_its_reason_and_fails_under_ci(test: str, failure: str,
                                                                         tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    skipped = _as_nobody(test, shared / "plain", None)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 skipped" in skipped.stdout and "need" in skipped.stdout and "root" in skipped.stdout
    failed = _as_nobody(test, shared / "ci", "true")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failure in failed.stdout
    assert "1 error" in failed.stdout or "1 failed" in failed.stdout
