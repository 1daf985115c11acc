"""Debian 13 (trixie, Python 3.13): the packages build there, install into a booted trixie container, run,
rotate the proxy's audit log with logrotate, and purge cleanly.

Runs wherever booted containers can (root, debootstrap, systemd-nspawn: dev/bootstrap installs them), so in
CI too, where a missing prerequisite fails the tests instead of skipping them. The first run on a machine
fetches a trixie rootfs with the build tools (debootstrap from the host's own apt mirror, which
tests/system/nspawn.py reads from the apt sources; cached afterwards in /var/cache/fodc-test); every run
builds the three venvs inside the container from PyPI against Python 3.13. Measured times are in
docs/packaging.md.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import free_ports

from .conftest import REPO, require_containers
from .nspawn import BASE_PACKAGES, Container, booted, ensure_rootfs
from .test_packages import APT_ENV, INSTALLED, _wait_active, _wait_for

pytestmark = [pytest.mark.system, pytest.mark.timeout(2400)]

SUITE = "trixie"
# Building the packages needs these beyond the base; logrotate is there to rotate the audit log for real.
BUILD_PACKAGES = ("build-essential", "dpkg-dev", "debhelper", "dh-virtualenv", "python3-venv", "logrotate")


@dataclass(frozen=True)
class Trixie:
    container: Container
    debs: dict[str, str]
    proxy_http: int


@pytest.fixture(scope="module")
def trixie() -> Iterator[Trixie]:
    require_containers()
    rootfs = ensure_rootfs(suite=SUITE, packages=BASE_PACKAGES + BUILD_PACKAGES)
    with booted(rootfs) as container:
        container.path("/root/src").mkdir(parents=True)
        container.path("/root/src.tar").write_bytes(_checkout_tar())
        container.run("tar", "-xf", "/root/src.tar", "-C", "/root/src")
        # pip in the container trusts what this host's pip trusts (a TLS-inspecting proxy's CA, say).
        container.copy_in(Path(_host_ca_bundle()), "/root/host-ca.pem")
        built = container.run("/root/src/dev/build-debs", "--out", "/root/out", timeout=2400, check=False,
                              env={"PIP_CERT": "/root/host-ca.pem"})
        assert built.returncode == 0, f"build-debs in trixie failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
        names = container.run("ls", "/root/out").stdout.split()
        debs = {name.split("_")[0]: f"/root/out/{name}" for name in names if name.endswith(".deb")}
        grpc, http, agent_http, nothing = free_ports(4)
        container.write_file("/etc/fodc/proxy.conf", f"grpc-listen-addr = 127.0.0.1:{grpc}\n"
                                                     f"http-listen-addr = 127.0.0.1:{http}\n")
        container.write_file("/etc/fodc/agent.conf", f"node-role = liaison\nproxy-addr = 127.0.0.1:{grpc}\n"
                                                     f"http-listen-addr = 127.0.0.1:{agent_http}\n"
                                                     f"node-metrics-url = http://127.0.0.1:{nothing}/metrics\n")
        yield Trixie(container, debs, http)


def _host_ca_bundle() -> str:
    """The CA bundle this host's pip verifies PyPI with (its `cert` setting, else the system bundle)."""
    configured = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True,
                                text=True).stdout.strip()
    return os.environ.get("PIP_CERT") or configured or "/etc/ssl/certs/ca-certificates.crt"


def _checkout_tar() -> bytes:
    """The checkout's tracked files as they are in the working tree (what dev/build-debs builds from)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in filter(None, listed.decode().split("\0")):
            if (REPO / name).exists():
                tar.add(REPO / name, arcname=name, recursive=False)
    return buffer.getvalue()


def test_packages_build_against_python_3_13(trixie: Trixie) -> None:
    assert set(trixie.debs) == {"fodc-agent", "fodc-proxy", "fodc-cli", "fodc-agent-ktm"}
    python = trixie.container.run("python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
    assert python == "3.13"
    depends = trixie.container.run("dpkg-deb", "-f", trixie.debs["fodc-agent"], "Depends").stdout
    assert "python3 (>= 3.13~)" in depends and "python3 (<< 3.14)" in depends


def test_packages_install_and_both_daemons_run(trixie: Trixie) -> None:
    container = trixie.container
    container.run("apt-get", "install", "-y", "-q", "--no-install-recommends", "-o",
                  "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                  *(trixie.debs[package] for package in INSTALLED), env=APT_ENV, timeout=600)
    for unit in ("fodc-proxy", "fodc-agent"):
        _wait_active(container, unit)
    node_id = container.run("hostname").stdout.strip()

    def online() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{trixie.proxy_http}/cluster", timeout=10) as response:
                nodes = json.loads(response.read())["nodes"]
        except OSError:
            return False
        return any(n["node_id"] == node_id and n["status"] == "online" for n in nodes)

    _wait_for(online, 90, "the trixie agent online at the trixie proxy")
    assert container.systemctl("--failed", "--plain", "--no-legend").stdout.strip() == ""
    assert container.run("fodc", "--version").stdout.startswith("fodc ")


def test_logrotate_rotates_the_audit_log(trixie: Trixie) -> None:
    container = trixie.container
    request = urllib.request.Request(f"http://127.0.0.1:{trixie.proxy_http}/cluster/config/capture", data=b"{}",
                                     method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=10)
    _wait_for(lambda: container.run("test", "-s", "/var/log/fodc/proxy-audit.log", check=False).returncode == 0,
              30, "the audit log")
    rotated = container.run("logrotate", "-v", "-f", "/etc/logrotate.d/fodc-proxy", check=False)
    assert rotated.returncode == 0, rotated.stderr
    files = container.run("ls", "/var/log/fodc").stdout.split()
    assert any(name.startswith("proxy-audit.log-") for name in files), files
    assert container.run("stat", "-c", "%U:%G", "/var/log/fodc").stdout.strip() == "fodc:fodc"


def test_purge_removes_the_logs(trixie: Trixie) -> None:
    container = trixie.container
    container.run("apt-get", "purge", "-y", "-q", *INSTALLED, env=APT_ENV, timeout=600)
    assert container.run("test", "-e", "/var/log/fodc", check=False).returncode == 1
    assert container.run("test", "-e", "/opt/venvs", check=False).returncode == 1
