"""The apt repository made by dev/make-apt-repo, used as an operator would, in a booted Debian 12 container.

The repository is served over HTTP by a static file server in this test process on 127.0.0.1 (containers
share the host's network). The container trusts it through a keyring file named in a deb822 source's
`Signed-By:`; then, in file order: `apt install fodc-proxy fodc-agent` by name, both services up; a newer
build (dev/build-debs --version) published into the same repository; `apt upgrade` installs it, restarts
the daemons and keeps the conffiles the admin edited, without a prompt.

The newer build starts in the background when the module starts, so it overlaps the installation.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from procs import free_ports

from .conftest import REPO
from .nspawn import Container

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
KEYRING = "fodc-archive-keyring.gpg"
ADMIN_EDIT = "# edited by the admin before the upgrade\n"
BUILD_TIMEOUT = 600


@dataclass
class StaticServer:
    """A plain static file server (what any web server would do for the repository); records the paths."""

    root: Path
    requests: list[str] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> StaticServer:
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                requests.append(self.path)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(self.root)))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="apt-repo-http",
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Ports:
    proxy_grpc: int
    proxy_http: int
    agent_http: int
    node_metrics: int


@dataclass
class Lab:
    """The repository, its server, the client container, and the newer build on its way."""

    repo: Path
    gnupg: Path
    server: StaticServer
    container: Container
    ports: Ports
    first_version: str
    newer_version: str
    newer_build: subprocess.Popen[str]
    newer_dir: Path
    build_log: Path


def code_version() -> str:
    text = (REPO / "fodc" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "(.+)"$', text, re.MULTILINE)
    assert match, "no __version__ in fodc/__init__.py"
    return match.group(1)


def make_apt_repo(lab_repo: Path, gnupg: Path, *debs: Path) -> None:
    result = subprocess.run([str(REPO / "dev" / "make-apt-repo"), "--repo", str(lab_repo), "--lab-key",
                             "--gnupg-home", str(gnupg), *map(str, debs)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"dev/make-apt-repo failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def lab(module_container: Container, built_debs: dict[str, Path],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("apt-repo")
    first_version = _deb_version(built_debs["fodc-proxy"])
    newer_version = f"{code_version()}+aptrepotest1"
    assert _version_gt(module_container, newer_version, first_version), (newer_version, first_version)
    newer_dir, build_log = work / "newer", work / "build-newer.log"
    with open(build_log, "w") as log:
        newer_build = subprocess.Popen([str(REPO / "dev" / "build-debs"), "--version", newer_version,
                                        "--out", str(newer_dir)], stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        repo, gnupg = work / "repo", work / "gnupg"
        make_apt_repo(repo, gnupg, *built_debs.values())
        with StaticServer(repo) as server:
            ports = Ports(*free_ports(4))
            yield Lab(repo, gnupg, server, module_container, ports, first_version, newer_version, newer_build,
                      newer_dir, build_log)
    finally:
        if newer_build.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(newer_build.pid, signal.SIGTERM)
            newer_build.wait(60)


@pytest.fixture(scope="module")
def client(lab: Lab) -> Lab:
    """The container set up as an operator would: keyring, deb822 source, pre-seeded conffiles."""
    container = lab.container
    container.copy_in(lab.repo / KEYRING, f"/etc/apt/keyrings/{KEYRING}", mode=0o644)
    container.write_file("/etc/apt/sources.list.d/fodc.sources", (
        f"Types: deb\nURIs: http://127.0.0.1:{lab.server.port}/\nSuites: stable\nComponents: main\n"
        f"Signed-By: /etc/apt/keyrings/{KEYRING}\n"))
    # The image's Debian source is dropped so that the test does not depend on a mirror: everything the
    # packages depend on is in the image already.
    container.run("rm", "-f", "/etc/apt/sources.list")
    # Each daemon needs its own port on the shared network; set before installation, as configuration
    # management would (the install below then keeps these files).
    p = lab.ports
    container.write_file("/etc/fodc/proxy.conf", (REPO / "packaging/etc/proxy.conf").read_text() + (
        f"\ngrpc-listen-addr = 127.0.0.1:{p.proxy_grpc}\nhttp-listen-addr = 127.0.0.1:{p.proxy_http}\n"))
    container.write_file("/etc/fodc/agent.conf", (REPO / "packaging/etc/agent.conf").read_text() + (
        f"\nnode-role = datanode-cold\nproxy-addr = 127.0.0.1:{p.proxy_grpc}\n"
        f"http-listen-addr = 127.0.0.1:{p.agent_http}\nnode-metrics-url = http://127.0.0.1:{p.node_metrics}/metrics\n"))
    return lab


def test_apt_update_fetches_the_signed_index_over_http(client: Lab) -> None:
    _apt(client.container, "update")
    policy = client.container.run("apt-cache", "policy", "fodc-proxy", "fodc-agent").stdout
    assert policy.count(f"Candidate: {client.first_version}") == 2, policy
    assert f"http://127.0.0.1:{client.server.port} stable/main amd64 Packages" in policy
    assert "/dists/stable/InRelease" in client.server.requests


def test_install_by_name_starts_both_services(client: Lab) -> None:
    # The conffiles were pre-seeded: --force-confold keeps them without a prompt.
    _apt(client.container, "install", "-o", "Dpkg::Options::=--force-confdef", "-o",
         "Dpkg::Options::=--force-confold", "fodc-proxy", "fodc-agent")
    for unit in ("fodc-proxy", "fodc-agent"):
        _wait_active(client.container, unit)
    assert _installed(client.container) == {"fodc-proxy": client.first_version, "fodc-agent": client.first_version}
    assert _wait_for(lambda: _online_agent(client), 90, "agent online at the proxy")["role"] == "datanode-cold"


def test_a_newer_build_published_to_the_repository_is_offered(client: Lab) -> None:
    try:
        code = client.newer_build.wait(BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dev/build-debs --version {client.newer_version} took over {BUILD_TIMEOUT}s")
    assert code == 0, f"dev/build-debs --version failed:\n{client.build_log.read_text()[-4000:]}"
    make_apt_repo(client.repo, client.gnupg, *sorted(client.newer_dir.glob("*.deb")))
    _apt(client.container, "update")
    policy = client.container.run("apt-cache", "policy", "fodc-proxy", "fodc-agent").stdout
    assert policy.count(f"Candidate: {client.newer_version}") == 2, policy


def test_apt_upgrade_installs_the_newer_version_and_restarts_the_daemons(client: Lab) -> None:
    container = client.container
    for path in ("/etc/fodc/proxy.conf", "/etc/fodc/agent.conf"):
        container.write_file(path, container.read_file(path) + ADMIN_EDIT)
    # The install left the packaged versions of the pre-seeded conffiles as *.dpkg-dist; an admin who read
    # them deletes them, so that anything of the kind found later comes from the upgrade.
    container.run("find", "/etc/fodc", "-name", "*.dpkg-dist", "-delete")
    before = {unit: _main_pid(container, unit) for unit in ("fodc-proxy", "fodc-agent")}
    # No --force-conf* option and no terminal: a conffile prompt would fail the upgrade.
    _apt(container, "upgrade")
    assert _installed(container) == {"fodc-proxy": client.newer_version, "fodc-agent": client.newer_version}
    for unit, old_pid in before.items():
        _wait_active(container, unit)
        assert _main_pid(container, unit) not in (0, old_pid)


def test_upgrade_keeps_the_conffiles_the_admin_edited(client: Lab) -> None:
    for path in ("/etc/fodc/proxy.conf", "/etc/fodc/agent.conf"):
        assert client.container.read_file(path).endswith(ADMIN_EDIT)
    # Nothing set aside either: the packaged conffiles did not change, so dpkg had nothing to ask or save.
    assert client.container.run("find", "/etc/fodc", "-name", "*.dpkg-*").stdout == ""


def test_upgraded_agent_is_online_at_the_upgraded_proxy(client: Lab) -> None:
    node = _wait_for(lambda: _online_agent(client), 90, "agent online after the upgrade")
    assert node["node_id"] == client.container.run("hostname").stdout.strip()


# --- helpers ----------------------------------------------------------------------------------------------

def _apt(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    # Recommends (kernel headers, BCC) are left out: the image has no Debian source to take them from.
    return container.run("apt-get", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-unsafe-io",
                         *args, env=APT_ENV, timeout=600)


def _deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _version_gt(container: Container, newer: str, older: str) -> bool:
    return container.run("dpkg", "--compare-versions", newer, "gt", older, check=False).returncode == 0


def _installed(container: Container) -> dict[str, str]:
    listed = container.run("dpkg-query", "-W", "-f=${Package} ${Version}\n", "fodc-proxy", "fodc-agent").stdout
    return dict(line.split(" ", 1) for line in listed.splitlines())


def _main_pid(container: Container, unit: str) -> int:
    return int(container.systemctl("show", "-p", "MainPID", "--value", unit).stdout.strip())


def _wait_active(container: Container, unit: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while container.systemctl("is-active", unit, check=False).stdout.strip() != "active":
        if time.monotonic() > deadline:
            journal = container.run("journalctl", "--no-pager", "-n", "40", "-u", unit, check=False).stdout
            pytest.fail(f"{unit} is not active; its journal ends:\n{journal}")
        time.sleep(0.25)


def _online_agent(lab: Lab) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{lab.ports.proxy_http}/cluster?status=online",
                                    timeout=10) as response:
            nodes = json.loads(response.read())["nodes"]
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return nodes[0] if len(nodes) == 1 else None


def _wait_for(check: Callable[[], dict | None], timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.25)
