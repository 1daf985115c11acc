"""Fixtures for booted-container tests: the cached rootfs, booted containers, and the built .debs.

Everything here skips (with the reason) unless the tests run as root with debootstrap and systemd-nspawn
installed, and fails with the reason under CI=true (CI's machine is root with dev/bootstrap's packages, so
a container test that cannot run there is a defect); containers are halted and their files removed whatever
the tests' outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from required import skip_or_fail

from .nspawn import Container, booted, ensure_rootfs, missing_requirements

REPO = Path(__file__).resolve().parents[2]
# Lets eBPF (kernel telemetry) and the agent's ambient CAP_BPF/CAP_PERFMON work inside the container.
EBPF_NSPAWN_ARGS = ("--capability=CAP_BPF,CAP_PERFMON", "--system-call-filter=bpf perf_event_open")
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "dh_virtualenv")
PACKAGES = ("fodc-agent", "fodc-proxy", "fodc-cli", "fodc-agent-ktm")


def require_containers() -> None:
    """Returns when booted containers can run here; else skips (fails under CI=true) saying why."""
    reason = missing_requirements()
    if reason:
        skip_or_fail(reason, needed="a booted container")


@pytest.fixture(scope="session")
def container_rootfs() -> Path:
    """The cached Debian 12 rootfs (built once, about a minute, under /var/cache/fodc-test)."""
    require_containers()
    return ensure_rootfs()


@pytest.fixture
def container(container_rootfs: Path) -> Iterator[Container]:
    """A freshly booted container for one test."""
    with booted(container_rootfs, nspawn_args=EBPF_NSPAWN_ARGS) as booted_container:
        yield booted_container


@pytest.fixture(scope="module")
def module_container(container_rootfs: Path) -> Iterator[Container]:
    """One booted container shared by a test module, whose tests then run in order against it."""
    with booted(container_rootfs, nspawn_args=EBPF_NSPAWN_ARGS) as booted_container:
        yield booted_container


@pytest.fixture(scope="session")
def built_debs() -> dict[str, Path]:
    """The .debs by package name (fodc-agent, fodc-proxy, fodc-cli, fodc-agent-ktm), built once per session by
    dev/build-debs.

    FODC_TEST_DEBS=<dir> uses .debs built earlier instead (quicker when iterating on the tests).
    """
    prebuilt = os.environ.get("FODC_TEST_DEBS")
    if prebuilt:
        directory = Path(prebuilt)
    else:
        missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
        if missing:
            skip_or_fail(f"cannot build .debs, missing {', '.join(missing)} (apt-get install debhelper dh-virtualenv)",
                         needed="a .deb build")
        result = subprocess.run([str(REPO / "dev" / "build-debs")], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"dev/build-debs failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        directory = REPO / "dist" / "deb"
    debs = {}
    for package in PACKAGES:
        found = sorted(directory.glob(f"{package}_*.deb"))
        assert len(found) == 1, f"expected one {package}_*.deb in {directory}, found {found}"
        debs[package] = found[0]
    return debs
