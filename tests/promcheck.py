"""Prometheus's own reader of a text page (`promtool check metrics`, Debian package prometheus): the one way a
test asks whether Prometheus would take a page."""

from __future__ import annotations

import shutil
import subprocess

import pytest

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool (Debian package prometheus) not installed")


def check_metrics(page: str) -> tuple[int, list[str]]:
    """promtool's exit code (0 clean, 3 lint findings only, 1 a parse error) and its non-blank output lines."""
    result = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True,
                            timeout=60, check=False)
    return result.returncode, [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def assert_prometheus_reads(page: str, context: object = "") -> None:
    """Prometheus would ingest the whole page: no parse error (lint findings, exit 3, are allowed)."""
    code, findings = check_metrics(page)
    assert code in (0, 3) and not any("error" in line.lower() for line in findings), (findings, context)
