"""The roles' nftables firewall applied for real: the fodc_proxy role (fodc_proxy_firewall: nftables) installs
and starts the proxy in a booted Debian 12 container that has a network namespace of its own, and loads its
ruleset there. A client namespace joined to the container by a veth pair then connects from two addresses:
the allowed source gets the proxy's /health, the other one is dropped on the HTTP port (and counted), while
the gRPC port, which lists no sources, stays open to both. Restarting nftables.service (what a reboot does)
brings the ruleset back from /etc/nftables.conf.

Only the container's and the client's namespaces are touched, never the host's: containers of the other
tests share the host's network namespace, which is why no molecule scenario loads firewall rules.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import require_containers
from .nspawn import BASE_PACKAGES, Container, booted, ensure_rootfs
from .test_ansible import ANSIBLE_DIR, SYSTEM_PYTHON, ensure_ansible_venv, run_tool

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

# The role installs nftables with apt; in the rootfs already, since a private network has no mirror.
FIREWALL_PACKAGES = (*BASE_PACKAGES, "nftables")
PROXY_ADDRESS, ALLOWED, DENIED = "10.203.0.1", "10.203.0.2", "10.203.0.3"
GRPC_PORT, HTTP_PORT = 17900, 17901
OK = {"status": "200"}  # the HTTP status of /health
# Long enough for the kernel to answer a SYN over a veth pair on a loaded machine; a dropped SYN never is.
CONNECT_TIMEOUT = 5.0

# Run by /usr/bin/python3 inside the client namespace: connect from one source, ask for /health (HTTP port)
# or just connect (gRPC port), print one JSON line.
PROBE = """
import json, socket, sys
source, destination, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.settimeout(float(sys.argv[5]))
s.bind((source, 0))
try:
    s.connect((destination, port))
    s.settimeout(120)  # connected: now the proxy only has to answer, however loaded the machine is
    if path:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.0\\r\\nHost: proxy\\r\\n\\r\\n")
        print(json.dumps({"status": s.recv(64).decode(errors="replace").split("\\r\\n")[0].split(" ")[1]}))
    else:
        print(json.dumps({"status": "connected"}))
except OSError as exc:
    print(json.dumps({"error": type(exc).__name__}))
"""


@dataclass
class Walled:
    container: Container
    client_pid: int
    converge: subprocess.CompletedProcess[str]

    def reach(self, source: str, port: int, path: str = "") -> dict[str, str]:
        """Connects from `source` in the client namespace to the proxy's address; {"status": ...} or {"error": ...}."""
        result = subprocess.run(["nsenter", "-t", str(self.client_pid), "-n", str(SYSTEM_PYTHON), "-c", PROBE,
                                 source, PROXY_ADDRESS, str(port), path, str(CONNECT_TIMEOUT)],
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def _ip(pid: int, *args: str) -> None:
    """`ip` (the host's) in the network namespace of `pid`."""
    subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def walled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walled]:
    require_containers()  # first: without containers the reason is that, not a failed package build
    built_debs: dict[str, Path] = request.getfixturevalue("built_debs")
    venv = ensure_ansible_venv()
    work = tmp_path_factory.mktemp("firewall")
    rootfs = ensure_rootfs(packages=FIREWALL_PACKAGES)
    client = subprocess.Popen(["unshare", "--net", "--", "sleep", "900"], start_new_session=True)
    try:
        with booted(rootfs, nspawn_args=("--private-network",)) as container:
            _ip(container.init_pid, "link", "add", "fodcfw0", "type", "veth", "peer", "name", "fodcfw1",
                "netns", str(client.pid))
            _ip(container.init_pid, "addr", "add", f"{PROXY_ADDRESS}/24", "dev", "fodcfw0")
            _ip(container.init_pid, "link", "set", "fodcfw0", "up")
            for source in (ALLOWED, DENIED):
                _ip(client.pid, "addr", "add", f"{source}/24", "dev", "fodcfw1")
            _ip(client.pid, "link", "set", "fodcfw1", "up")
            inventory = {"all": {"hosts": {"fw-proxy": {
                "ansible_connection": "community.docker.nsenter", "ansible_nsenter_pid": container.init_pid,
                "ansible_python_interpreter": str(SYSTEM_PYTHON), "ansible_become": False,
                "fodc_proxy_deb_file": str(built_debs["fodc-proxy"]), "fodc_proxy_install_cli": False,
                "fodc_proxy_generated_tokens_dir": str(work / "credentials"),
                "fodc_proxy_firewall": "nftables", "fodc_proxy_firewall_http_sources": [f"{ALLOWED}/32"]}}}}
            (work / "inventory.yml").write_text(json.dumps(inventory))
            (work / "play.yml").write_text(json.dumps(
                [{"name": "proxy behind its firewall", "hosts": "all", "roles": [{"role": "fodc_proxy"}]}]))
            converge = run_tool(venv, "ansible-playbook", "-i", str(work / "inventory.yml"), str(work / "play.yml"),
                                cwd=ANSIBLE_DIR, timeout=600)
            yield Walled(container, client.pid, converge)
    finally:
        client.kill()
        client.wait()


def test_role_applies_the_ruleset_in_the_container(walled: Walled) -> None:
    assert walled.converge.returncode == 0, walled.converge.stdout[-6000:] + walled.converge.stderr[-2000:]
    assert "Load the nftables ruleset of fodc-proxy]" in walled.converge.stdout  # the handler ran
    table = walled.container.run("nft", "list", "table", "inet", "fodc_proxy").stdout
    assert f"tcp dport {HTTP_PORT} ip saddr {ALLOWED} accept" in table, table


def test_the_allowed_source_reaches_the_proxy_and_the_other_is_dropped(walled: Walled) -> None:
    assert walled.reach(ALLOWED, HTTP_PORT, "/health") == OK
    assert walled.reach(DENIED, HTTP_PORT, "/health") == {"error": "TimeoutError"}
    table = walled.container.run("nft", "list", "table", "inet", "fodc_proxy").stdout
    drop = next(line for line in table.splitlines() if f"tcp dport {HTTP_PORT} counter" in line)
    assert " packets 0 " not in drop, table  # the denied SYNs were counted where they were dropped


def test_a_port_without_sources_stays_open_to_everyone(walled: Walled) -> None:
    assert walled.reach(DENIED, GRPC_PORT) == {"status": "connected"}
    assert walled.reach(ALLOWED, GRPC_PORT) == {"status": "connected"}


def test_the_ruleset_comes_back_when_nftables_service_reloads_it(walled: Walled) -> None:
    """Debian's /etc/nftables.conf flushes the whole ruleset first; the role's include line brings its table back."""
    walled.container.systemctl("restart", "nftables")
    assert walled.container.systemctl("is-enabled", "nftables").stdout.strip() == "enabled"
    assert walled.reach(DENIED, HTTP_PORT, "/health") == {"error": "TimeoutError"}
    assert walled.reach(ALLOWED, HTTP_PORT, "/health") == OK
