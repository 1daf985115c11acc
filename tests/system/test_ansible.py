"""Ansible rollout (ansible/): lint, refusals of wrong variables, inventory derivation, and the molecule
scenario that rolls FODC out to three booted containers.

The Ansible tools live in their own venv, /work/main/.venv-ansible (never the project's .venv): it is
made here from ansible/requirements-ansible.txt when missing, and remade when that file changes (a stamp
file holds its hash), so a fresh CI machine needs nothing beforehand but PyPI access.

The refusal and derivation tests run ansible-playbook --check (or the ad-hoc `ansible` with debug) against
a local host only: they never change this machine. The molecule scenario needs root, debootstrap,
systemd-nspawn and the .debs (built by dev/build-debs through the `built_debs` fixture).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from required import skip_or_fail

from .conftest import REPO, require_containers

pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]

ANSIBLE_DIR = REPO / "ansible"
REQUIREMENTS = ANSIBLE_DIR / "requirements-ansible.txt"
VENV = REPO / ".venv-ansible"
STAMP_NAME = ".requirements-sha256"
SYSTEM_PYTHON = Path("/usr/bin/python3")


def requirements_digest(requirements: Path = REQUIREMENTS) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def ensure_ansible_venv(venv: Path = VENV, requirements: Path = REQUIREMENTS) -> Path:
    """Returns `venv` holding exactly the pinned tools, (re)creating it only when its stamp is stale.

    Concurrent callers wait on a lock; the stamp is written last, so an interrupted install is redone.
    """
    wanted = requirements_digest(requirements)
    stamp = venv / STAMP_NAME
    if _stamp_matches(stamp, wanted):
        return venv
    lock_path = Path("/tmp") / f"fodc-venv-ansible-{hashlib.sha256(str(venv).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp_matches(stamp, wanted):
            return venv
        env = _clean_env()
        steps = [
            [str(SYSTEM_PYTHON), "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, env=env, timeout=1200,
                                    stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(step)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        stamp.write_text(wanted + "\n")
    return venv


def _stamp_matches(stamp: Path, wanted: str) -> bool:
    try:
        return stamp.read_text().strip() == wanted
    except OSError:
        return False


def _clean_env(venv: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment without any activated venv or pyenv python first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["PATH"] = f"{venv / 'bin'}:{path}" if venv else path
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1",
               ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(ANSIBLE_DIR / "roles"))
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def ansible_venv() -> Path:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 to build .venv-ansible with")
    try:
        return ensure_ansible_venv()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot build {VENV} from {REQUIREMENTS.name} (PyPI reachable?): {exc}")


def run_tool(venv: Path, tool: str, *args: str, cwd: Path = ANSIBLE_DIR, timeout: float = 300,
             **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / tool), *args], cwd=cwd, capture_output=True, text=True,
                          env=_clean_env(venv, **env), timeout=timeout, stdin=subprocess.DEVNULL)


def check_role(venv: Path, tmp_path: Path, role: str, variables: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """Applies `role` in check mode to one local host carrying `variables`; returns the finished run."""
    inventory = {"all": {"hosts": {"node-1": {"ansible_connection": "local",
                                              "ansible_python_interpreter": str(SYSTEM_PYTHON), **variables}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(json.dumps(
        [{"name": f"apply {role}", "hosts": "all", "gather_facts": False, "roles": [{"role": role}]}]))
    return run_tool(venv, "ansible-playbook", "-i", str(tmp_path / "inventory.yml"), "--check",
                    str(tmp_path / "play.yml"))


def derived_vars(venv: Path, tmp_path: Path, inventory: dict, variable: str) -> dict[str, object]:
    """The value of `variable` per host as site.yml would see it (with ansible/group_vars applied)."""
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    result = run_tool(venv, "ansible", "all", "-i", str(tmp_path / "inventory.yml"), "--playbook-dir",
                      str(ANSIBLE_DIR), "-m", "ansible.builtin.debug", "-a", f"var={variable}",
                      ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    hosts = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]
    return {host: outcome[variable] for host, outcome in hosts.items()}


def local_hosts(*names: str) -> dict[str, dict[str, str]]:
    return {name: {"ansible_connection": "local"} for name in names}


def fake_deb(tmp_path: Path, package: str) -> str:
    deb = tmp_path / f"{package}_0.0.0_amd64.deb"
    deb.write_bytes(b"!<arch>\n")
    return str(deb)


VALID_AGENT = {"fodc_agent_proxy_address": "10.0.0.10:17900", "fodc_agent_node_role": "liaison"}


def test_ansible_lint_production_profile_passes(ansible_venv: Path) -> None:
    result = run_tool(ansible_venv, "ansible-lint", "--profile", "production", "--offline")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_agent_without_proxy_address_fails_naming_the_variable(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent", {"fodc_agent_node_role": "liaison"})
    assert result.returncode != 0
    assert "missing required arguments: fodc_agent_proxy_address" in result.stdout


def test_agent_with_unknown_node_role_fails_naming_the_variable(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent",
                        {**VALID_AGENT, "fodc_agent_node_role": "datanode-lukewarm"})
    assert result.returncode != 0
    assert "fodc_agent_node_role must be one of" in result.stdout
    assert "datanode-lukewarm" in result.stdout


def test_agent_with_empty_proxy_address_fails_preflight_naming_the_variable(ansible_venv: Path,
                                                                            tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent", {**VALID_AGENT, "fodc_agent_proxy_address": ""})
    assert result.returncode != 0
    assert "Assert fodc_agent_proxy_address is host:port" in result.stdout
    assert "fodc_agent_proxy_address must be host:port" in result.stdout


def test_proxy_deb_method_without_a_deb_fails_naming_the_variable(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_proxy", {"fodc_proxy_deb_file": str(tmp_path / "none.deb")})
    assert result.returncode != 0
    assert "fodc_proxy_deb_file must be the controller path" in result.stdout


def test_agent_without_the_fodc_cli_deb_fails_naming_the_variable_unless_left_out(ansible_venv: Path,
                                                                               tmp_path: Path) -> None:
    """The roles install fodc-cli beside the daemon (from the .deb next to the daemon's by default); a missing
    one stops the play before the host changes, naming the variable and the way to leave the command out."""
    missing = check_role(ansible_venv, tmp_path, "fodc_agent",
                         {**VALID_AGENT, "fodc_agent_deb_file": fake_deb(tmp_path, "fodc-agent")})
    assert missing.returncode != 0
    assert "fodc_agent_cli_deb_file must be the controller path of fodc-cli_<version>_<arch>.deb" in missing.stdout
    assert f"got \"{tmp_path}/fodc-cli_0.0.0_amd64.deb\"" in missing.stdout  # derived from the agent's .deb
    left_out = check_role(ansible_venv, tmp_path, "fodc_agent",
                          {**VALID_AGENT, "fodc_agent_deb_file": fake_deb(tmp_path, "fodc-agent"),
                           "fodc_agent_install_cli": False})
    task = left_out.stdout.split("TASK [fodc_common : Assert the .deb of fodc-cli exists (install method deb)]")[1]
    assert task.split("TASK [")[0].lstrip(" *\n").startswith("skipping: [node-1]"), task[:2000]


def test_proxy_unknown_install_method_fails_argument_spec(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_proxy", {"fodc_proxy_install_method": "rpm"})
    assert result.returncode != 0
    assert "fodc_proxy_install_method must be one of: deb, apt" in result.stdout


RULES_PLAY = [{"name": "the alerting rules", "hosts": "all", "gather_facts": False,
               "tasks": [{"ansible.builtin.include_role": {"name": "fodc_proxy", "tasks_from": "prometheus_rules"}}]}]


def copy_rules(venv: Path, tmp_path: Path, rules_dir: str) -> subprocess.CompletedProcess[str]:
    """Runs the proxy role's rules task for a local host, the controller being the Prometheus host."""
    inventory = {"all": {"hosts": {"proxy-1": {"ansible_connection": "local",
                                               "ansible_python_interpreter": str(SYSTEM_PYTHON),
                                               "fodc_proxy_prometheus_rules_dir": rules_dir}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(json.dumps(RULES_PLAY))
    return run_tool(venv, "ansible-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"))


def test_proxy_role_copies_the_packaged_alerting_rules_once(ansible_venv: Path, tmp_path: Path) -> None:
    rules_dir = tmp_path / "prometheus" / "rules"  # missing on purpose: the role creates it
    first = copy_rules(ansible_venv, tmp_path, str(rules_dir))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    shipped = ANSIBLE_DIR / "roles/fodc_proxy/files/fodc-alerts.yml"
    assert (rules_dir / "fodc-alerts.yml").read_bytes() == shipped.read_bytes()
    again = copy_rules(ansible_venv, tmp_path, str(rules_dir))
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in again.stdout[again.stdout.rindex("PLAY RECAP"):]


def test_proxy_role_refuses_a_relative_rules_directory_naming_the_variable(ansible_venv: Path,
                                                                          tmp_path: Path) -> None:
    result = copy_rules(ansible_venv, tmp_path, "prometheus/rules")
    assert result.returncode != 0
    assert "fodc_proxy_prometheus_rules_dir must be an absolute path" in result.stdout
    assert not (ANSIBLE_DIR / "prometheus").exists()  # ansible-playbook runs in ansible/


APT_PROXY = {"fodc_proxy_install_method": "apt", "fodc_proxy_apt_repository_url": "https://apt.example.invalid/fodc"}


def test_apt_method_with_two_key_sources_fails_naming_both(ansible_venv: Path, tmp_path: Path) -> None:
    keyring = tmp_path / "fodc-archive-keyring.gpg"
    keyring.write_bytes(b"\x99")
    result = check_role(ansible_venv, tmp_path, "fodc_proxy", {
        **APT_PROXY, "fodc_proxy_apt_key_file": str(keyring),
        "fodc_proxy_apt_key_url": "https://apt.example.invalid/fodc/fodc-archive-keyring.gpg"})
    assert result.returncode != 0
    assert "set exactly one of fodc_proxy_apt_key_file" in result.stdout


def test_apt_key_over_plain_http_is_refused(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent", {
        **VALID_AGENT, "fodc_agent_install_method": "apt",
        "fodc_agent_apt_repository_url": "http://apt.example.invalid/fodc",
        "fodc_agent_apt_key_url": "http://apt.example.invalid/fodc/fodc-archive-keyring.gpg"})
    assert result.returncode != 0
    assert "fodc_agent_apt_key_url (https:// or file://)" in result.stdout


def test_site_refuses_an_inventory_without_a_proxy_host(ansible_venv: Path, tmp_path: Path) -> None:
    inventory = {"all": {"children": {"liaison": {"hosts": local_hosts("liaison-1")}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    result = run_tool(ansible_venv, "ansible-playbook", "-i", str(tmp_path / "inventory.yml"), "--check",
                      "site.yml")
    assert result.returncode != 0
    assert "Group fodc_proxy must hold exactly one host" in result.stdout


def test_node_role_comes_from_the_hosts_group(ansible_venv: Path, tmp_path: Path) -> None:
    inventory = {"all": {"children": {
        "fodc_proxy": {"hosts": local_hosts("proxy-1")},
        "liaison": {"hosts": local_hosts("liaison-1")},
        "datanode_hot": {"hosts": local_hosts("hot-1")},
        "datanode_warm": {"hosts": local_hosts("warm-1")},
        "datanode_cold": {"hosts": local_hosts("cold-1")},
    }}}
    roles = derived_vars(ansible_venv, tmp_path, inventory, "fodc_agent_node_role")
    assert {host: roles[host] for host in ("liaison-1", "hot-1", "warm-1", "cold-1")} == {
        "liaison-1": "liaison", "hot-1": "datanode-hot", "warm-1": "datanode-warm", "cold-1": "datanode-cold"}


def test_host_variable_overrides_the_groups_role(ansible_venv: Path, tmp_path: Path) -> None:
    inventory = {"all": {"children": {
        "fodc_proxy": {"hosts": local_hosts("proxy-1")},
        "datanode_cold": {"hosts": {"cold-1": {"ansible_connection": "local",
                                               "fodc_agent_node_role": "datanode-warm"}}},
    }}}
    assert derived_vars(ansible_venv, tmp_path, inventory, "fodc_agent_node_role")["cold-1"] == "datanode-warm"


def test_agents_point_at_the_proxy_hosts_grpc_port(ansible_venv: Path, tmp_path: Path) -> None:
    inventory = {"all": {"children": {
        "fodc_proxy": {"hosts": {"proxy-1": {"ansible_connection": "local", "ansible_host": "10.0.0.10",
                                             "fodc_proxy_grpc_listen_address": ":27900"}}},
        "liaison": {"hosts": local_hosts("liaison-1")},
        "datanode_hot": {"hosts": local_hosts("hot-1")},
    }}}
    addresses = derived_vars(ansible_venv, tmp_path, inventory, "fodc_agent_proxy_address")
    assert (addresses["liaison-1"], addresses["hot-1"]) == ("10.0.0.10:27900", "10.0.0.10:27900")


def test_ktm_enabled_in_extra_options_is_refused_naming_the_variable(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent",
                        {**VALID_AGENT, "fodc_agent_extra_options": {"ktm-enabled": "off"}})
    assert result.returncode != 0
    assert "fodc_agent_extra_options sets ktm-enabled; set fodc_agent_ktm_enabled (auto, on, off)" in result.stdout


def test_site_gives_the_ktm_prerequisites_only_to_agents_with_ktm_on(ansible_venv: Path, tmp_path: Path) -> None:
    """site.yml applies fodc_ktm_prereqs (kernel headers, BCC) only where the agent's KTM is auto or on: an
    agent with ktm-enabled off, written as the string or as YAML's bare `off` (a boolean), gets none of its
    tasks, the headers ones included. Run in check mode with only the ktm tag, on this machine as `local`."""
    local = {"ansible_connection": "local"}
    inventory = {"all": {"vars": {"ansible_become": False, "ansible_python_interpreter": str(SYSTEM_PYTHON)},
                         "children": {
        "fodc_proxy": {"hosts": local_hosts("proxy-1")},
        "liaison": {"hosts": {"ktm-auto": local, "ktm-off": {**local, "fodc_agent_ktm_enabled": "off"}}},
        "datanode_hot": {"hosts": {"ktm-on": {**local, "fodc_agent_ktm_enabled": "on"},
                                   "ktm-bare-off": {**local, "fodc_agent_ktm_enabled": False}}},
    }}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    result = run_tool(ansible_venv, "ansible-playbook", "-i", str(tmp_path / "inventory.yml"), "--check",
                      "--tags", "ktm", "-e", json.dumps({"fodc_agent_serial": "100%"}), "site.yml",
                      ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                      ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    outcomes: dict[str, dict[str, dict]] = {}  # task name -> host -> result
    for play in json.loads(result.stdout)["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].startswith("fodc_ktm_prereqs : "):
                outcomes.setdefault(task["task"]["name"].split(" : ", 1)[1], {}).update(task["hosts"])
    headers = outcomes["Ask apt whether it offers headers for the running kernel"]
    for host in ("ktm-auto", "ktm-on"):
        assert not headers[host].get("skipped"), (host, headers[host])
    for host in ("ktm-off", "ktm-bare-off"):
        for name, hosts in outcomes.items():
            # A loop's items are skipped one by one, each saying why.
            skips = hosts[host].get("results") or [hosts[host]]
            assert all(r.get("skipped") and "ktm_enabled" in r.get("false_condition", "") for r in skips), \
                (name, host, hosts[host])
    assert "Install the running kernel's headers" in outcomes and "proxy-1" not in headers


def test_roles_build_as_a_collection_that_installs_from_requirements_yml(ansible_venv: Path, tmp_path: Path) -> None:
    """`ansible-galaxy collection build` makes fodc.fodc; installed from a requirements.yml (as a site pins it) its
    roles run by their collection names, and find their shared fodc_common role there."""
    built = run_tool(ansible_venv, "ansible-galaxy", "collection", "build", "--output-path", str(tmp_path))
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = tmp_path.glob("fodc-fodc-*.tar.gz")
    version = tarball.name.removeprefix("fodc-fodc-").removesuffix(".tar.gz")
    (tmp_path / "requirements.yml").write_text(json.dumps({"collections": [{"name": str(tarball), "type": "file"}]}))
    collections = tmp_path / "collections"
    installed = run_tool(ansible_venv, "ansible-galaxy", "collection", "install", "--force", "-r",
                         str(tmp_path / "requirements.yml"), "-p", str(collections))
    assert installed.returncode == 0 and f"fodc.fodc:{version} was installed" in installed.stdout, \
        installed.stdout + installed.stderr
    roles = collections / "ansible_collections/fodc/fodc/roles"
    assert sorted(p.name for p in roles.iterdir()) == ["fodc_agent", "fodc_common", "fodc_ktm_prereqs", "fodc_proxy"]
    assert not (roles.parent / "molecule").exists()  # the scenarios stay in the repository

    inventory = {"all": {"hosts": {"node-1": {"ansible_connection": "local",
                                              "ansible_python_interpreter": str(SYSTEM_PYTHON), **VALID_AGENT,
                                              "fodc_agent_deb_file": str(tmp_path / "missing.deb")}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(json.dumps(
        [{"name": "agents", "hosts": "all", "gather_facts": False, "roles": [{"role": "fodc.fodc.fodc_agent"}]}]))
    result = run_tool(ansible_venv, "ansible-playbook", "-i", str(tmp_path / "inventory.yml"), "--check",
                      str(tmp_path / "play.yml"), ANSIBLE_COLLECTIONS_PATH=str(collections),
                      ANSIBLE_ROLES_PATH=str(tmp_path / "no-roles-here"))
    assert result.returncode != 0
    assert "TASK [fodc.fodc.fodc_common : Assert the .deb exists (install method deb)]" in result.stdout
    assert "fodc_agent_deb_file must be the controller path" in result.stdout


def test_agent_http_user_without_a_hash_fails_argument_spec(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent",
                        {**VALID_AGENT, "fodc_agent_http_auth_users": [{"name": "prometheus"}]})
    assert result.returncode != 0
    assert "missing required arguments: bcrypt" in result.stdout


def test_firewall_ruleset_lets_the_sources_in_and_passes_nft_check(ansible_venv: Path, tmp_path: Path) -> None:
    """The nftables ruleset the roles write (fodc_*_firewall: nftables), rendered by Ansible from the role's own
    template for the proxy's two ports, is what `nft -c` (the template's validate:) accepts: IPv4 and IPv6
    sources accepted per port, everyone else dropped there, a port without sources left alone."""
    if os.geteuid() != 0 or shutil.which("nft") is None:
        skip_or_fail("nft -c needs root and nftables (dev/bootstrap installs it as root)", needed="nft")
    rendered = tmp_path / "fodc-proxy.nft"
    play = [{"name": "render", "hosts": "localhost", "gather_facts": False, "tasks": [{
        "ansible.builtin.template": {"src": str(ANSIBLE_DIR / "roles/fodc_common/templates/firewall.nft.j2"),
                                     "dest": str(rendered), "mode": "0644"},
        "vars": {"fodc_common_prefix": "fodc_proxy", "fodc_common_package": "fodc-proxy",
                 "_fodc_common_nft_table": "fodc_proxy",
                 "fodc_common_firewall_rules": [{"port": 17900, "sources": ["10.0.2.0/24", "fd00::/64"]},
                                                {"port": 17901, "sources": []}]}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    result = run_tool(ansible_venv, "ansible-playbook", "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                      ANSIBLE_PYTHON_INTERPRETER=str(SYSTEM_PYTHON))
    assert result.returncode == 0, result.stdout[-3000:]
    text = rendered.read_text()
    assert "tcp dport 17900 ip saddr { 10.0.2.0/24 } accept" in text
    assert "tcp dport 17900 ip6 saddr { fd00::/64 } accept" in text
    assert "tcp dport 17900 counter drop" in text and "17901" not in text
    checked = subprocess.run(["nft", "-c", "-f", str(rendered)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    broken = tmp_path / "broken.nft"
    broken.write_text(text.replace("accept", "acept", 1))
    assert subprocess.run(["nft", "-c", "-f", str(broken)], capture_output=True, timeout=30).returncode != 0


def test_unknown_firewall_kind_fails_argument_spec(ansible_venv: Path, tmp_path: Path) -> None:
    result = check_role(ansible_venv, tmp_path, "fodc_agent", {**VALID_AGENT, "fodc_agent_firewall": "iptables"})
    assert result.returncode != 0
    assert "fodc_agent_firewall must be one of" in result.stdout


@pytest.fixture
def private_debs(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of the .debs: dist/deb may be rebuilt by another test while a scenario runs, and a
    changed .deb between converge and idempotence would read as a non-idempotent role. Containers are
    checked first, so a machine without them is told that rather than shown a failed package build."""
    require_containers()
    built_debs: dict[str, Path] = request.getfixturevalue("built_debs")
    deb_dir = tmp_path / "debs"
    deb_dir.mkdir()
    for deb in built_debs.values():
        shutil.copy2(deb, deb_dir / deb.name)
    return deb_dir


def run_molecule(venv: Path, scenario: str, deb_dir: Path) -> str:
    """`molecule test` of one scenario; returns its output after asserting every step succeeded."""
    require_containers()
    for tool in ("findmnt", "gpg", "apt-ftparchive"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} missing (util-linux, gnupg, apt-utils)", needed=tool)
    result = run_tool(venv, "molecule", "test", "--scenario-name", scenario, timeout=1500,
                      FODC_DEB_DIR=str(deb_dir))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    for action in ("create", "converge", "idempotence", "verify", "destroy"):
        assert f"{action}: Executed: Successful" in output, f"molecule did not report {action}:\n{output[-4000:]}"
    return output


def test_molecule_rolls_out_proxy_and_two_agents_idempotently(ansible_venv: Path, private_debs: Path) -> None:
    """create → prepare → check → converge (site.yml) → idempotence → verify → destroy, in nspawn containers:
    verify asserts active hardened services and /cluster listing both agents with their groups' roles."""
    output = run_molecule(ansible_venv, "default", private_debs)
    assert "check: Executed: Successful" in output
    # The containers have no BCC (the scenario skips it): the KTM role must say so and let the rollout go on.
    assert "KTM will run DEGRADED on fodc-mol-hot" in output
    # The liaison's KTM is off: site.yml skipped the KTM prerequisites there, and its conffile says off.
    assert "KTM will run DEGRADED on fodc-mol-liaison" not in output
    assert "TASK [Assert the agent's conffile carries its KTM switch" in output
    # verify.yml read back the Prometheus file_sd targets site.yml wrote on the controller.
    assert "TASK [Assert each file names its daemon's address and labels]" in output
    # fodc-cli came with each daemon: `fodc --help` on every host, `fodc cluster` on the proxy's.
    listed = output.split("TASK [Assert fodc lists both agents]")[-1].split("TASK [")[0]
    assert "ok: [fodc-mol-proxy]" in listed, output[-4000:]


def test_molecule_installs_from_a_signed_apt_repository(ansible_venv: Path, private_debs: Path) -> None:
    """Repository mode: key + deb822 source for a signed local repository; both daemons from apt."""
    run_molecule(ansible_venv, "apt", private_debs)


def _molecule_step(venv: Path, step: str, deb_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_tool(venv, "molecule", step, "--scenario-name", "rollout", timeout=900, FODC_DEB_DIR=str(deb_dir),
                    **env)


def test_molecule_rollout_stops_at_the_first_host_on_a_bad_value_and_uninstall_takes_all(
        ansible_venv: Path, private_debs: Path) -> None:
    """A deliberately bad fodc_agent_extra_options value (a scrape interval that is not a duration): the first
    agent host's conffile is refused by `fodc-agent --check-config` (validate:), the play stops there
    (serial 1 first, max_fail_percentage 0), and the second host never gets the agent. Then
    fodc_*_uninstall: true takes both daemons off again, leaving nothing behind."""
    require_containers()
    try:
        created = _molecule_step(ansible_venv, "create", private_debs)
        assert created.returncode == 0, (created.stdout + created.stderr)[-4000:]
        prepared = _molecule_step(ansible_venv, "prepare", private_debs)
        assert prepared.returncode == 0, (prepared.stdout + prepared.stderr)[-4000:]

        rollout = _molecule_step(ansible_venv, "converge", private_debs)
        output = rollout.stdout + rollout.stderr
        assert rollout.returncode != 0, output[-6000:]
        refused = output[output.index("TASK [fodc_agent : Write /etc/fodc/agent.conf]"):]
        assert re.search(r"fatal: \[fodc-mol-r1\]: FAILED!.*?failed to validate", refused, re.S), refused[:4000]
        assert "invalid duration 'every-now-and-then'" in refused[:6000]  # the agent's own words about the value
        assert "fodc-mol-r2" not in output[output.index("PLAY [Roll out the FODC agents"):].split("PLAY RECAP")[0]
        verified = _molecule_step(ansible_venv, "verify", private_debs)
        assert verified.returncode == 0, (verified.stdout + verified.stderr)[-6000:]

        removed = _molecule_step(ansible_venv, "converge", private_debs, FODC_MOLECULE_PHASE="uninstall")
        assert removed.returncode == 0, (removed.stdout + removed.stderr)[-6000:]
        again = _molecule_step(ansible_venv, "converge", private_debs, FODC_MOLECULE_PHASE="uninstall")
        assert again.returncode == 0 and re.search(r"fodc-mol-r1\s+: ok=\d+\s+changed=0", again.stdout), \
            again.stdout[-4000:]
        verified = _molecule_step(ansible_venv, "verify", private_debs, FODC_MOLECULE_PHASE="uninstall")
        assert verified.returncode == 0, (verified.stdout + verified.stderr)[-6000:]
    finally:
        _molecule_step(ansible_venv, "destroy", private_debs)
