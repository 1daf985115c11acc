"""Acceptance of the Debian packages: build, lint, install, run under systemd, watchdog, upgrade, purge.

One booted Debian 12 container serves the whole module; the tests run in file order against it, from a
fresh unconfigured installation (which must wait, not fail) through the configured one to purge. The
daemons listen on free host ports (containers share the host's network), set
through the conffiles before installation, as configuration management would.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from procs import free_ports
from required import skip_or_fail

from .conftest import REPO
from .nspawn import Container

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

T = TypeVar("T")

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# apt's and dpkg's own bookkeeping, logs, caches and runtime state, and the journal: not files "from the
# package". Everything else under /var/log counts: purge must remove the proxy's audit log.
# (The fodc user stays on purge, see docs/packaging.md; /etc/passwd and friends exist before and after.)
IGNORED_PREFIXES = ("/var/lib/apt/", "/var/lib/dpkg/", "/var/cache/", "/var/log/apt/", "/var/log/dpkg.log",
                    "/var/log/alternatives.log", "/var/log/journal/", "/root/debs")
# What a database host gets from `apt install fodc-agent` (fodc-agent-ktm is opt-in: BCC, LLVM, headers).
INSTALLED = ("fodc-agent", "fodc-proxy", "fodc-cli")
AGENT_CAPABILITIES = {"cap_dac_read_search", "cap_sys_ptrace", "cap_perfmon", "cap_bpf"}
CAPABILITY_BITS = {"cap_dac_read_search": 2, "cap_sys_ptrace": 19, "cap_perfmon": 38, "cap_bpf": 39}


@dataclass(frozen=True)
class Deployment:
    """Both packages installed in one container, and how to reach the daemons from the host."""

    container: Container
    debs: dict[str, Path]
    proxy_grpc_port: int
    proxy_http_port: int
    agent_http_port: int
    node_id: str
    files_before: frozenset[str]


@pytest.fixture(scope="module")
def deployment(module_container: Container, built_debs: dict[str, Path]) -> Deployment:
    container = module_container
    for deb in built_debs.values():
        container.copy_in(deb, f"/root/debs/{deb.name}")
    files_before = _file_list(container)
    assert container.systemctl("is-system-running", check=False).stdout.strip() == "running"
    proxy_grpc, proxy_http, agent_http, nothing_there = free_ports(4)
    container.write_file("/etc/fodc/proxy.conf", (REPO / "packaging/etc/proxy.conf").read_text() + (
        f"\ngrpc-listen-addr = 127.0.0.1:{proxy_grpc}\nhttp-listen-addr = 127.0.0.1:{proxy_http}\n"))
    container.write_file("/etc/fodc/agent.conf", (REPO / "packaging/etc/agent.conf").read_text() + (
        f"\nnode-role = datanode-hot\nproxy-addr = 127.0.0.1:{proxy_grpc}\n"
        f"http-listen-addr = 127.0.0.1:{agent_http}\n"
        f"node-metrics-url = http://127.0.0.1:{nothing_there}/metrics\n"))
    # The conffiles exist before the packages do (pre-seeded), so dpkg would ask whether to keep them:
    # --force-confold answers "keep" without a prompt, which is exactly what configuration management wants.
    _apt(container, "install", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
         *(f"/root/debs/{built_debs[package].name}" for package in INSTALLED))
    node_id = container.run("hostname").stdout.strip()
    return Deployment(container, built_debs, proxy_grpc, proxy_http, agent_http, node_id, files_before)


# --- building and linting -------------------------------------------------------------------------------

def test_all_packages_build_from_the_checkout(built_debs: dict[str, Path]) -> None:
    for package, deb in built_debs.items():
        fields = _deb_fields(deb)
        assert fields["Package"] == package
        assert fields["Architecture"] == "amd64"


def test_proxy_package_ships_the_console_with_its_vendored_libraries_and_licences(
        built_debs: dict[str, Path]) -> None:
    listing = _listing(built_debs["fodc-proxy"])
    console = REPO / "fodc/proxy/console"
    wanted = [p.relative_to(REPO).as_posix() for p in console.rglob("*") if p.is_file() and p.suffix != ".py"
              and "__pycache__" not in p.parts]
    assert any(w.endswith("vendor/uplot/LICENSE") for w in wanted)
    missing = [w for w in wanted if not any(path.endswith(f"site-packages/{w}") for path in listing)]
    assert missing == []


def test_ktm_prerequisites_are_opt_in_through_their_own_package(built_debs: dict[str, Path]) -> None:
    agent = _deb_fields(built_debs["fodc-agent"])
    assert "bpfcc" not in agent.get("Recommends", "") + agent["Depends"]
    assert "linux-headers" not in agent.get("Recommends", "") + agent["Depends"]
    assert "fodc-agent-ktm" in agent["Suggests"]
    ktm = _deb_fields(built_debs["fodc-agent-ktm"])
    depends = {item.strip() for item in ktm["Depends"].split(",")}
    assert {"python3-bpfcc", "linux-headers-amd64"} <= depends
    assert f"fodc-agent (= {ktm['Version']})" in depends


def test_both_daemons_recommend_the_cli_which_owns_usr_bin_fodc(built_debs: dict[str, Path]) -> None:
    for package in ("fodc-agent", "fodc-proxy"):
        assert "fodc-cli" in _deb_fields(built_debs[package])["Recommends"]
    assert "./usr/bin/fodc" in _listing(built_debs["fodc-cli"])
    assert "./usr/bin/fodc" not in _listing(built_debs["fodc-proxy"])
    assert "fodc-proxy (<< 0.2.0~)" in _deb_fields(built_debs["fodc-cli"])["Replaces"]


def test_packages_depend_on_the_python_their_venv_was_made_with(built_debs: dict[str, Path]) -> None:
    major, minor = sys.version_info[:2] if Path(sys.executable).resolve().parent == Path("/usr/bin") else \
        map(int, subprocess.run(["/usr/bin/python3", "-c", "import sys; print(*sys.version_info[:2])"],
                                capture_output=True, text=True, check=True).stdout.split())
    for package in ("fodc-agent", "fodc-proxy", "fodc-cli"):
        depends = _deb_fields(built_debs[package])["Depends"]
        assert f"python3 (>= {major}.{minor}~)" in depends and f"python3 (<< {major}.{minor + 1})" in depends
    assert "adduser" in _deb_fields(built_debs["fodc-agent"])["Depends"]


def test_venvs_hold_no_build_tools(built_debs: dict[str, Path]) -> None:
    for package in ("fodc-agent", "fodc-proxy", "fodc-cli"):
        names = _site_packages_entries(built_debs[package])
        leftovers = [n for n in names if n.split("-")[0] in ("pip", "setuptools", "pkg_resources", "_distutils_hack",
                                                             "wheel", "distutils")]
        assert leftovers == [], package
        assert not any(path.endswith(("/bin/pip", "/bin/pip3")) for path in _listing(built_debs[package]))


def test_each_package_ships_only_what_its_program_imports(built_debs: dict[str, Path]) -> None:
    agent, proxy, cli = (_site_packages_entries(built_debs[p]) for p in ("fodc-agent", "fodc-proxy", "fodc-cli"))
    web = {"flask", "werkzeug", "gunicorn", "mcp", "pydantic", "starlette", "uvicorn", "jinja2"}
    assert agent & web == set()
    assert {"grpc", "configargparse.py", "sdnotify", "prometheus_client", "re2"} <= agent
    assert {"flask", "gunicorn", "grpc"} <= proxy
    assert "gunicorn" not in cli and "grpc" not in cli
    # FODC's own code: the agent's package has no proxy API nor CLI, the proxy's no agent runtime.
    assert not any("/fodc/proxy/api.py" in p or "/fodc/cli/" in p for p in _listing(built_debs["fodc-agent"]))
    assert not any(p.endswith(("/fodc/agent/main.py", "/fodc/agent/runtime.py"))
                   for p in _listing(built_debs["fodc-proxy"]))


def test_no_package_ships_the_simulator_or_the_demo(built_debs: dict[str, Path]) -> None:
    for package, deb in built_debs.items():
        assert [p for p in _listing(deb) if "/fodc/sim/" in p or p.endswith("/fodc/demo.py")] == [], package


def test_each_program_has_a_manual_page_made_from_its_parser(built_debs: dict[str, Path], tmp_path: Path) -> None:
    for package, program, option in (("fodc-agent", "fodc-agent", "--node-role"),
                                     ("fodc-proxy", "fodc-proxy", "--grpc-listen-addr"),
                                     ("fodc-cli", "fodc", "--token-file")):
        subprocess.run(["dpkg-deb", "-x", str(built_debs[package]), str(tmp_path / package)], check=True)
        page = tmp_path / package / "usr/share/man/man1" / f"{program}.1.gz"
        text = subprocess.run(["zcat", str(page)], capture_output=True, text=True, check=True).stdout
        assert text.startswith(f'.TH {program.upper().replace("-", chr(92) + "-")} "1"'), text[:200]
        assert option.replace("-", chr(92) + "-") in text, (program, option)
        assert "/etc/fodc/" in text or program == "fodc"


def test_each_copyright_lists_the_wheels_its_venv_bundles(built_debs: dict[str, Path], tmp_path: Path) -> None:
    for package in ("fodc-agent", "fodc-proxy", "fodc-cli"):
        subprocess.run(["dpkg-deb", "-x", str(built_debs[package]), str(tmp_path / package)], check=True)
        copyright_text = (tmp_path / package / "usr/share/doc" / package / "copyright").read_text()
        bundled = [n for n in _site_packages_entries(built_debs[package]) if n.endswith(".dist-info")
                   and not n.startswith("fodc-")]
        assert bundled, package
        for dist_info in bundled:
            name, version = dist_info[: -len(".dist-info")].rsplit("-", 1)
            paragraph = next((p for p in copyright_text.split("\n\n") if p.startswith("Files: ")
                              and f"/{dist_info}/*" in p), None)
            assert paragraph is not None, (package, dist_info)
            assert re.search(r"^License: \S", paragraph, re.MULTILINE) and version in paragraph, paragraph


def test_lintian_reports_no_errors_or_warnings(built_debs: dict[str, Path]) -> None:
    if shutil.which("lintian") is None:
        skip_or_fail("lintian is not installed (apt-get install lintian)", needed="lintian")
    result = subprocess.run(["lintian", "--no-tag-display-limit", *map(str, built_debs.values())],
                            capture_output=True, text=True, timeout=600)
    problems = [line for line in result.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert problems == []


def test_proxy_unit_exposure_score_is_at_most_4() -> None:
    assert _exposure(REPO / "packaging/systemd/fodc-proxy.service") <= 4.0


def test_agent_unit_exposure_score_is_at_most_5() -> None:
    # The base unit grants no capability (each feature's drop-in adds its own, see the booted tests).
    assert _exposure(REPO / "packaging/systemd/fodc-agent.service") <= 5.0


# --- a fresh installation, not yet configured ------------------------------------------------------------

def test_fresh_install_of_the_agent_waits_for_its_role_without_failing(module_container: Container,
                                                                        built_debs: dict[str, Path]) -> None:
    """`apt install fodc-agent` with the shipped conffile: no failed unit, system not degraded, and apt's
    output says once what to do; setting the role and restarting starts it. Purged again afterwards."""
    from fodc.agent.configured import WAITING

    container = module_container
    for package in ("fodc-agent", "fodc-cli"):
        container.copy_in(built_debs[package], f"/root/fresh/{built_debs[package].name}")
    try:
        installed = _apt(container, "install", *(f"/root/fresh/{built_debs[p].name}" for p in ("fodc-agent",
                                                                                              "fodc-cli")))
        output = installed.stdout + installed.stderr
        assert output.count(WAITING) == 1, output[-3000:]
        assert "Could not execute systemctl" not in output
        assert container.systemctl("is-enabled", "fodc-agent").stdout.strip() == "enabled"
        assert container.systemctl("is-active", "fodc-agent", check=False).stdout.strip() == "inactive"
        assert container.systemctl("--failed", "--plain", "--no-legend").stdout.strip() == ""
        assert container.systemctl("is-system-running", check=False).stdout.strip() == "running"
        assert WAITING in container.run("journalctl", "--no-pager", "-u", "fodc-agent").stdout
        # The fodc command is on the agent host too.
        version = _deb_fields(built_debs["fodc-cli"])["Version"]
        assert container.run("fodc", "--version").stdout.strip() == f"fodc {version}"
        http, proxy = free_ports(2)
        container.write_file("/etc/default/fodc-agent", f"FODC_AGENT_ARGS=\"--node-role liaison "
                             f"--http-listen-addr 127.0.0.1:{http} --proxy-addr 127.0.0.1:{proxy}\"\n")
        container.systemctl("restart", "fodc-agent")
        _wait_active(container, "fodc-agent")
    finally:
        _apt(container, "purge", "fodc-agent", "fodc-cli")
        container.run("rm", "-rf", "/root/fresh")


# --- installed and running ------------------------------------------------------------------------------

def test_installed_units_pass_systemd_analyze_verify(deployment: Deployment) -> None:
    # verify exits 0 on unknown or misspelt keys and only complains on stderr, so any output is a failure.
    result = deployment.container.run("systemd-analyze", "verify", "fodc-proxy.service", "fodc-agent.service",
                                      check=False)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_install_starts_both_services(deployment: Deployment) -> None:
    for unit in ("fodc-proxy", "fodc-agent"):
        _wait_active(deployment.container, unit)


def test_services_are_enabled_at_boot(deployment: Deployment) -> None:
    result = deployment.container.systemctl("is-enabled", "fodc-proxy", "fodc-agent")
    assert result.stdout.split() == ["enabled", "enabled"]


def test_systemctl_status_shows_the_daemons_status_line(deployment: Deployment) -> None:
    # The agent's status names the age of its last scrape, so it changes between two reads: the line
    # `systemctl status` prints must equal a StatusText read just before it, on one of a few tries.
    def shown_as_sent(unit: str) -> bool:
        status = _status_text(deployment.container, unit)
        shown = deployment.container.systemctl("status", unit, check=False).stdout
        return bool(status) and f'Status: "{status}"' in shown

    for unit in ("fodc-proxy", "fodc-agent"):
        _wait_for(lambda unit=unit: shown_as_sent(unit), 60, f"{unit} STATUS= shown by systemctl status")


def test_agent_registers_with_the_proxy_and_is_online(deployment: Deployment) -> None:
    node = _wait_for(lambda: _online_node(deployment), 60, "agent online in /cluster")
    assert node["role"] == "datanode-hot"


def test_proxy_metrics_endpoint_answers_200(deployment: Deployment) -> None:
    status, _ = _http_get(deployment.proxy_http_port, "/metrics")
    assert status == 200


def test_installed_proxy_serves_the_console(deployment: Deployment) -> None:
    status, page = _http_get(deployment.proxy_http_port, "/")
    assert status == 200 and b"/console/static/vendor/uplot/uPlot.iife.min.js" in page
    status, script = _http_get(deployment.proxy_http_port, "/console/static/vendor/uplot/uPlot.iife.min.js")
    assert status == 200 and len(script) > 10_000


def test_daemons_run_as_the_fodc_system_user(deployment: Deployment) -> None:
    uid = deployment.container.run("id", "-u", "fodc").stdout.strip()
    for unit in ("fodc-proxy", "fodc-agent"):
        status = _proc_status(deployment.container, _main_pid(deployment.container, unit))
        assert status["Uid"].split()[0] == uid


def test_agent_holds_exactly_its_four_capabilities(deployment: Deployment) -> None:
    status = _proc_status(deployment.container, _main_pid(deployment.container, "fodc-agent"))
    expected = sum(1 << CAPABILITY_BITS[name] for name in AGENT_CAPABILITIES)
    assert int(status["CapEff"], 16) == expected


PROBE = """
import json, os, sys
def read(path):
    try:
        with open(path, "rb") as handle:
            return {"bytes": len(handle.read(4096))}
    except OSError as exc:
        return {"error": exc.strerror}
def listing(path):
    try:
        return {"entries": len(os.listdir(path))}
    except OSError as exc:
        return {"error": exc.strerror}
def memory(pid):
    # A few bytes at the start of the first mapping, as a debugger would read them.
    try:
        with open(f"/proc/{pid}/maps") as maps:
            start = int(maps.readline().split("-")[0], 16)
        with open(f"/proc/{pid}/mem", "rb") as mem:
            mem.seek(start)
            return {"bytes": len(mem.read(16))}
    except (OSError, ValueError) as exc:
        return {"error": str(getattr(exc, "strerror", exc))}
node = int(sys.argv[1])
found = {path: read(path) for path in ("/etc/shadow", "/etc/gshadow", "/proc/1/environ", f"/proc/{node}/environ",
                                       f"/proc/{node}/cmdline", "/etc/fodc/agent.conf")}
found["/var/lib/fodc/proxy"] = listing("/var/lib/fodc/proxy")
found["/proc/1/mem"] = memory(1)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
found["caps"] = int(status["CapEff"], 16)
found["groups"] = status["Groups"].split()
print("FODC-PROBE " + sys.argv[2] + " " + json.dumps(found), flush=True)
"""


def test_inside_the_agent_unit_secrets_are_out_of_reach_and_the_node_is_not(deployment: Deployment) -> None:
    """A probe run by the real unit (ExecStartPost, same user, capabilities and sandbox as the agent) reads
    what it can: the node's process (another user's) yes; password hashes, PID 1's environment and memory,
    the proxy's data no — though CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE would allow them elsewhere."""
    container = deployment.container
    node = _node_process(container)
    container.write_file("/var/lib/fodc/proxy/fodc-test-marker", "the proxy's data")
    try:
        found = _probe_inside_the_agent_unit(container, node)
    finally:
        container.run("rm", "-f", "/var/lib/fodc/proxy/fodc-test-marker")
    # Each secret is really there to be read (by root, outside the unit), and the probe gets none of it.
    for secret in ("/etc/shadow", "/etc/gshadow", "/proc/1/environ"):
        assert container.run("wc", "-c", secret).stdout.split()[0] != "0", secret
        assert found[secret].get("bytes", 0) == 0, (secret, found[secret])
    assert found["/var/lib/fodc/proxy"].get("entries", 0) == 0, found["/var/lib/fodc/proxy"]
    assert found["/proc/1/mem"].get("bytes", 0) == 0, found["/proc/1/mem"]
    # ...while the node's process, another user's, stays readable: that is what the capabilities are for.
    assert found[f"/proc/{node}/environ"]["bytes"] > 0 and found[f"/proc/{node}/cmdline"]["bytes"] > 0
    assert found["/etc/fodc/agent.conf"]["bytes"] > 0
    assert found["caps"] == sum(1 << CAPABILITY_BITS[name] for name in AGENT_CAPABILITIES)


def test_each_feature_privilege_is_switched_off_by_masking_its_drop_in(deployment: Deployment) -> None:
    """Masking node-process.conf, node-journal.conf and ktm-bpf.conf leaves the unit no capability and no
    journal group: the node's environment is then out of reach too (it belongs to another user)."""
    container = deployment.container
    node = _node_process(container)
    masks = "/etc/systemd/system/fodc-agent.service.d"
    container.run("mkdir", "-p", masks)
    for feature in ("node-process", "node-journal", "ktm-bpf"):
        container.run("ln", "-sf", "/dev/null", f"{masks}/{feature}.conf")
    try:
        found = _probe_inside_the_agent_unit(container, node)
        assert found["caps"] == 0
        journal_gid = container.run("getent", "group", "systemd-journal").stdout.split(":")[2]
        assert journal_gid not in found["groups"]
        assert found[f"/proc/{node}/environ"] == {"error": "Permission denied"}
        _wait_active(container, "fodc-agent")  # the agent runs without them (reduced features)
    finally:
        container.run("rm", "-rf", masks)
        container.systemctl("daemon-reload")
        container.systemctl("restart", "fodc-agent")
        _wait_active(container, "fodc-agent")


def test_proxy_holds_no_capabilities(deployment: Deployment) -> None:
    status = _proc_status(deployment.container, _main_pid(deployment.container, "fodc-proxy"))
    assert (int(status["CapEff"], 16), int(status["CapBnd"], 16)) == (0, 0)


def test_data_directory_belongs_to_fodc(deployment: Deployment) -> None:
    owners = deployment.container.run("stat", "-c", "%U:%G %a", "/var/lib/fodc", "/var/lib/fodc/agent",
                                      "/var/lib/fodc/proxy").stdout.split("\n")
    assert [line for line in owners if line] == ["fodc:fodc 750"] * 3


def test_agent_window_survives_a_sigkill_under_the_hardened_unit(deployment: Deployment) -> None:
    """The shipped unit lets the agent write its window to /var/lib/fodc/agent/window, and systemd's restart
    after a SIGKILL reads it back (OS telemetry every second feeds the window; the node is absent here)."""
    container = deployment.container
    drop_in = "/etc/systemd/system/fodc-agent.service.d"
    container.write_file(f"{drop_in}/50-test-window.conf",
                         "[Service]\nEnvironment=FODC_KTM_INTERVAL=1s FODC_WINDOW_INTERIM_SCRAPES=1\n")
    container.systemctl("daemon-reload")
    container.systemctl("restart", "fodc-agent")
    try:
        _wait_for(lambda: container.run("test", "-s", "/var/lib/fodc/agent/window/window.interim",
                                        check=False).returncode == 0, 60, "the interim file")
        owner = container.run("stat", "-c", "%U:%G %a", "/var/lib/fodc/agent/window").stdout.strip()
        assert owner == "fodc:fodc 750"
        killed = _main_pid(container, "fodc-agent")
        since = _container_now(container)
        container.systemctl("kill", "-s", "SIGKILL", "fodc-agent")
        _wait_for(lambda: _restarted(container, "fodc-agent", killed), 60, "fodc-agent restarted")
        journal = _wait_for(lambda: (lambda text: text if "window recovered from disk" in text else None)(
            _journal(container, "fodc-agent", since)), 60, "the recovery line in the journal")
        assert re.search(r"interim_scrapes\W+[1-9]", journal), journal[-2000:]
        assert "window directory:" not in journal  # no write or open error under ProtectSystem=strict
    finally:
        container.run("rm", "-rf", drop_in)
        container.systemctl("daemon-reload")
        container.systemctl("restart", "fodc-agent")


CRASH_PROBE = """
import json
from fodc.agent.crashes import CrashProbe, NodeOutput, OutputSources
found = CrashProbe(NodeOutput(OutputSources(None, "fodc-test-crash.service", None, 4 << 20))).find(None)
print(json.dumps(found and {"summary": found.summary, "crash": found.detail["crash"]}))
"""


def test_a_go_crash_under_a_transient_unit_is_read_from_its_journal(deployment: Deployment) -> None:
    """A transient unit (systemd-run) prints a Go fatal error on stderr and exits 2, as a crashing node does;
    the installed agent's crash probe, run as the fodc user with the unit's systemd-journal group, finds the
    report in that unit's journal (the path an agent with node-systemd-unit takes when the node dies)."""
    container = deployment.container
    container.copy_in(REPO / "tests/fixtures/gocrash/concurrent_map_writes.txt", "/root/crash.txt")
    try:
        died = container.run("systemd-run", "--unit", "fodc-test-crash", "--wait", "sh", "-c",
                             "cat /root/crash.txt >&2; exit 2", check=False)
        assert "status=2" in died.stdout + died.stderr, died
        def probe() -> dict | None:
            out = container.run("systemd-run", "--uid=fodc", "--gid=fodc", "-p", "SupplementaryGroups=systemd-journal",
                                "--wait", "--pipe", "--quiet", "/opt/venvs/fodc-agent/bin/python", "-c", CRASH_PROBE,
                                check=False)
            return json.loads(out.stdout or "null") if out.returncode == 0 else None
        found = _wait_for(probe, 60, "the crash report in the unit's journal")
        assert found["summary"] == "fatal error: concurrent map writes"
        assert found["crash"]["source"] == "journal:fodc-test-crash.service" and found["crash"]["goroutines"] == 5
    finally:  # the purge test counts every file left on the container
        container.run("rm", "-f", "/root/crash.txt")
        container.systemctl("reset-failed", "fodc-test-crash.service", check=False)


def test_conffiles_are_registered_with_dpkg(deployment: Deployment) -> None:
    listed = deployment.container.run("dpkg-query", "-W", "-f=${Conffiles}\n", *INSTALLED).stdout
    paths = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert paths == {"/etc/fodc/agent.conf", "/etc/default/fodc-agent", "/etc/fodc/proxy.conf",
                     "/etc/default/fodc-proxy", "/etc/logrotate.d/fodc-proxy"}


def test_the_cli_on_the_host_lists_the_agent(deployment: Deployment) -> None:
    shown = deployment.container.run("fodc", "--proxy", f"http://127.0.0.1:{deployment.proxy_http_port}",
                                     "--json", "cluster").stdout
    assert deployment.node_id in shown


def test_a_refused_control_request_lands_in_the_audit_log(deployment: Deployment) -> None:
    # No token: refused with 401, and audited; the purge test below then checks that the log goes too.
    request = urllib.request.Request(f"http://127.0.0.1:{deployment.proxy_http_port}/cluster/config/capture",
                                     data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    line = _wait_for(lambda: deployment.container.run("cat", "/var/log/fodc/proxy-audit.log", check=False).stdout,
                     30, "the audit log line")
    assert json.loads(line.splitlines()[-1])["status"] == 401


# --- reload and config checks ------------------------------------------------------------------------------

def test_systemctl_reload_keeps_both_daemons_and_the_agents_stream(deployment: Deployment) -> None:
    container = deployment.container
    before = _wait_for(lambda: _online_node(deployment), 60, "agent online before the reloads")
    units = ("fodc-proxy", "fodc-agent")
    pids = {unit: _main_pid(container, unit) for unit in units}
    since = _container_now(container)
    for unit in units:
        container.systemctl("reload", unit)
    _wait_for(lambda: all("SIGHUP: reloaded" in _journal(container, unit, since) for unit in units), 60,
              "both daemons logged their reload")
    assert {unit: _main_pid(container, unit) for unit in units} == pids
    after = _online_node(deployment)
    assert after is not None and after["registered_at"] == before["registered_at"]


def test_installed_daemons_check_a_config_file_without_starting(deployment: Deployment) -> None:
    container = deployment.container
    agent, proxy = "/opt/venvs/fodc-agent/bin/fodc-agent", "/opt/venvs/fodc-proxy/bin/fodc-proxy"
    assert container.run(agent, "--check-config", "/etc/fodc/agent.conf", check=False).returncode == 0
    assert container.run(proxy, "--check-config", "/etc/fodc/proxy.conf", check=False).returncode == 0
    container.write_file("/root/bad-agent.conf", "node-role = lukewarm\nscrape-interval = soon\n")
    try:
        bad = container.run(agent, "--check-config", "/root/bad-agent.conf", check=False)
    finally:  # the purge test counts every file left on the container
        container.run("rm", "-f", "/root/bad-agent.conf")
    assert bad.returncode == 2
    assert [line.split(":")[2].strip() for line in bad.stderr.strip().splitlines()] == [
        "argument --node-role", "argument --scrape-interval"]


# --- watchdog ---------------------------------------------------------------------------------------------

def test_frozen_agent_is_killed_by_the_watchdog_and_registers_again(deployment: Deployment) -> None:
    container = deployment.container
    with _short_watchdog(container, "fodc-agent"):
        before = _wait_for(lambda: _online_node(deployment), 60, "agent online before the freeze")
        frozen = _main_pid(container, "fodc-agent")
        since = _container_now(container)
        container.run("kill", "-STOP", str(frozen))
        _wait_for(lambda: _restarted(container, "fodc-agent", frozen), 120, "fodc-agent restarted")
        assert "watchdog" in _journal(container, "fodc-agent", since).lower()
        after = _wait_for(lambda: _online_node(deployment, newer_than=before), 120, "agent registered again")
        assert after["status"] == "online"


def test_frozen_proxy_worker_is_killed_by_the_watchdog_and_the_agent_returns(deployment: Deployment) -> None:
    container = deployment.container
    with _short_watchdog(container, "fodc-proxy"):
        before = _wait_for(lambda: _online_node(deployment), 60, "agent online before the freeze")
        master = _main_pid(container, "fodc-proxy")
        worker = _wait_for(lambda: _children(container, master), 30, "gunicorn worker")[0]
        since = _container_now(container)
        container.run("kill", "-STOP", str(worker))
        _wait_for(lambda: _restarted(container, "fodc-proxy", master), 120, "fodc-proxy restarted")
        assert "watchdog" in _journal(container, "fodc-proxy", since).lower()
        after = _wait_for(lambda: _online_node(deployment, newer_than=before), 120, "agent back at the new proxy")
        assert after["status"] == "online"


# --- reinstall, upgrade, remove, purge --------------------------------------------------------------------

def test_reinstall_keeps_a_modified_conffile_without_asking(deployment: Deployment) -> None:
    container = deployment.container
    edited = container.read_file("/etc/fodc/agent.conf")
    # No --force-conf* option and no terminal: a dpkg prompt would fail the install.
    _apt(container, "install", "--reinstall", f"/root/debs/{deployment.debs['fodc-agent'].name}")
    assert container.read_file("/etc/fodc/agent.conf") == edited
    _wait_active(container, "fodc-agent")


def test_upgrade_keeps_the_admins_conffile_when_the_package_changes_it(deployment: Deployment,
                                                                      tmp_path: Path) -> None:
    container = deployment.container
    edited = container.read_file("/etc/fodc/proxy.conf")
    newer = _repack_with_new_version(deployment.debs["fodc-proxy"], tmp_path, "# a new setting, documented\n")
    container.copy_in(newer, f"/root/debs/{newer.name}")
    # Both the admin and the new package changed the conffile: keep the admin's (the new one is saved
    # next to it as .dpkg-dist), which is what --force-confold is for.
    _apt(container, "install", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
         f"/root/debs/{newer.name}")
    assert container.read_file("/etc/fodc/proxy.conf") == edited
    assert container.read_file("/etc/fodc/proxy.conf.dpkg-dist").endswith("# a new setting, documented\n")
    assert _installed_version(container, "fodc-proxy") == _deb_fields(newer)["Version"]
    _wait_active(container, "fodc-proxy")


def test_remove_stops_the_service_and_keeps_its_conffiles(deployment: Deployment) -> None:
    container = deployment.container
    _apt(container, "remove", "fodc-agent")
    assert container.systemctl("is-active", "fodc-agent", check=False).stdout.strip() in ("inactive", "unknown")
    assert container.run("pgrep", "-f", "/opt/venvs/fodc-agent/", check=False).returncode == 1
    assert container.path("/etc/fodc/agent.conf").exists()
    assert _is_active(container, "fodc-proxy")


def test_purge_leaves_no_files_behind_and_removes_nothing_else(deployment: Deployment) -> None:
    container = deployment.container
    assert container.run("test", "-s", "/var/log/fodc/proxy-audit.log", check=False).returncode == 0
    _apt(container, "purge", *INSTALLED)
    after = _file_list(container)
    left, lost = after - deployment.files_before, deployment.files_before - after
    assert (sorted(left), sorted(lost)) == ([], [])


# --- helpers ----------------------------------------------------------------------------------------------

def _apt(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    return container.run("apt-get", "-y", "-q", "--no-install-recommends",
                         "-o", "Dpkg::Options::=--force-unsafe-io", *args, env=APT_ENV)


def _listing(deb: Path) -> list[str]:
    """The paths a .deb installs, as dpkg-deb -c shows them (./usr/bin/x)."""
    text = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    return [line.split(None, 5)[5].split(" -> ")[0].rstrip("/") for line in text.splitlines()]


def _site_packages_entries(deb: Path) -> set[str]:
    """Top-level names in the venv's site-packages (packages, modules, *.dist-info)."""
    found = (re.match(r"\./opt/venvs/[^/]+/lib/python3[^/]*/site-packages/([^/]+)", path) for path in _listing(deb))
    return {match.group(1) for match in found if match}


def _node_process(container: Container) -> int:
    """A stand-in for the BanyanDB node: a process of another user (daemon) with an environment."""
    if container.systemctl("is-active", "fodc-test-node", check=False).stdout.strip() != "active":
        container.run("systemd-run", "--unit", "fodc-test-node", "-p", "User=daemon",
                      "-p", "Environment=NODE_SETTING=1", "sleep", "3600")
    return _wait_for(lambda: _main_pid(container, "fodc-test-node"), 30, "the stand-in node process")


def _probe_inside_the_agent_unit(container: Container, node: int) -> dict:
    """Runs PROBE as ExecStartPost of the real fodc-agent unit and returns what it found.

    Each run prints its own nonce: the journal since a second-granular time may still hold an earlier run."""
    nonce = uuid.uuid4().hex
    drop_in = "/etc/systemd/system/fodc-agent.service.d/60-test-probe.conf"
    container.write_file("/usr/local/lib/fodc-probe.py", PROBE)
    container.write_file(drop_in, f"[Service]\nExecStartPost=/opt/venvs/fodc-agent/bin/python "
                                  f"/usr/local/lib/fodc-probe.py {node} {nonce}\n")
    container.systemctl("daemon-reload")
    since = _container_now(container)
    try:
        container.systemctl("restart", "fodc-agent")
        line = _wait_for(lambda: next((entry for entry in _journal(container, "fodc-agent", since).splitlines()
                                       if f"FODC-PROBE {nonce} " in entry), None), 60, "the probe's journal line")
        return json.loads(line.split(f"FODC-PROBE {nonce} ", 1)[1])
    finally:
        container.run("rm", "-f", drop_in, "/usr/local/lib/fodc-probe.py")
        container.systemctl("daemon-reload")


def _deb_fields(deb: Path) -> dict[str, str]:
    text = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line[:1].isspace():
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _exposure(unit: Path) -> float:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, f"no exposure score in systemd-analyze output:\n{result.stdout[-1000:]}{result.stderr}"
    return float(match.group(1))


def _file_list(container: Container) -> frozenset[str]:
    """Every path on the container's root filesystem (not /proc, /sys, /dev, /run, /tmp: other mounts)."""
    listed = container.run("find", "/", "-xdev").stdout.splitlines()
    return frozenset(path for path in listed if not path.startswith(IGNORED_PREFIXES))


def _http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _online_node(deployment: Deployment, newer_than: dict | None = None) -> dict | None:
    """This container's agent in the proxy's /cluster if online (and registered after `newer_than`)."""
    try:
        status, body = _http_get(deployment.proxy_http_port, "/cluster")
    except OSError:
        return None
    if status != 200:
        return None
    for node in json.loads(body)["nodes"]:
        fresh = newer_than is None or node.get("registered_at") != newer_than.get("registered_at")
        if node["node_id"] == deployment.node_id and node["status"] == "online" and fresh:
            return node
    return None


def _wait_for(check: Callable[[], T | None | bool], timeout: float, what: str) -> T:
    """Polls `check` until it returns something truthy; fails naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.25)


def _is_active(container: Container, unit: str) -> bool:
    return container.systemctl("is-active", unit, check=False).stdout.strip() == "active"


def _wait_active(container: Container, unit: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _is_active(container, unit):
        if time.monotonic() > deadline:
            journal = container.run("journalctl", "--no-pager", "-n", "40", "-u", unit, check=False).stdout
            pytest.fail(f"{unit} is not active; its journal ends:\n{journal}")
        time.sleep(0.25)


def _status_text(container: Container, unit: str) -> str:
    return container.systemctl("show", "-p", "StatusText", "--value", unit).stdout.strip()


def _main_pid(container: Container, unit: str) -> int:
    return int(container.systemctl("show", "-p", "MainPID", "--value", unit).stdout.strip())


def _restarted(container: Container, unit: str, old_pid: int) -> bool:
    pid = _main_pid(container, unit)
    return pid not in (0, old_pid) and _is_active(container, unit)


def _children(container: Container, pid: int) -> list[int]:
    text = container.run("cat", f"/proc/{pid}/task/{pid}/children", check=False).stdout
    return [int(child) for child in text.split()]


def _proc_status(container: Container, pid: int) -> dict[str, str]:
    lines = container.read_file(f"/proc/{pid}/status").splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _container_now(container: Container) -> str:
    return container.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()


def _journal(container: Container, unit: str, since: str) -> str:
    return container.run("journalctl", "--no-pager", "-u", unit, "--since", since).stdout


def _installed_version(container: Container, package: str) -> str:
    return container.run("dpkg-query", "-W", "-f=${Version}", package).stdout


@contextlib.contextmanager
def _short_watchdog(container: Container, unit: str, seconds: int = 10) -> Iterator[None]:
    """A drop-in shortening WatchdogSec (30 s shipped) so a freeze is noticed sooner; removed afterwards."""
    drop_in = f"/etc/systemd/system/{unit}.service.d"
    container.write_file(f"{drop_in}/50-test-watchdog.conf", f"[Service]\nWatchdogSec={seconds}s\n")
    container.systemctl("daemon-reload")
    container.systemctl("restart", unit)
    try:
        yield
    finally:
        container.run("rm", "-rf", drop_in)
        container.systemctl("daemon-reload")


def _repack_with_new_version(deb: Path, workdir: Path, conffile_addition: str) -> Path:
    """The same package as a newer version whose shipped /etc/fodc/proxy.conf gained a line."""
    tree = workdir / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    version = _deb_fields(deb)["Version"] + "+test1"
    control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text()))
    conffile = tree / "etc" / "fodc" / "proxy.conf"
    conffile.write_text(conffile.read_text() + conffile_addition)
    newer = workdir / f"fodc-proxy_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(tree), str(newer)],
                   check=True, capture_output=True)
    return newer
