"""The roles' Prometheus file_sd output, read by a real Prometheus (Debian package) and nothing else.

A real proxy, three agents of different roles and their simulated BanyanDB nodes run on loopback. The
roles' own file_sd tasks (tasks/prometheus.yml, via include_role) are run by ansible-playbook for an
inventory describing exactly these daemons, with the controller as the file_sd host. Prometheus is then
configured only with file_sd_configs over the written directory: one job for the proxy (honor_labels, as
docs/ansible.md says) and one for the agents. Needs the Ansible venv (PyPI) and `prometheus`; no root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import Agent, Daemon, Proxy, free_port, http_json, start_agent, start_prometheus, start_proxy, wait_for

from fodc.sim.launcher import SimNodeProcess, start_sim_node

from .test_ansible import ANSIBLE_DIR, SYSTEM_PYTHON, ensure_ansible_venv, run_tool

pytestmark = [pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="the prometheus server (Debian package prometheus) is not installed"),
              pytest.mark.timeout(600)]

# inventory name -> (node role, node labels)
AGENTS = {"liaison-1": ("liaison", {}), "hot-1": ("datanode-hot", {"zone": "a"}), "warm-1": ("datanode-warm", {})}
PROXY_HOST = "proxy-1"


@dataclass
class Fleet:
    venv: Path
    work: Path
    sd_dir: Path
    proxy: Proxy
    agents: dict[str, Agent]
    first_run: subprocess.CompletedProcess[str]
    prometheus: str


def inventory(proxy: Proxy, agents: dict[str, Agent], sd_dir: str) -> dict:
    local = {"ansible_connection": "local", "ansible_python_interpreter": str(SYSTEM_PYTHON)}
    return {"all": {"children": {
        "fodc_proxy": {"hosts": {PROXY_HOST: {
            **local, "fodc_proxy_http_listen_address": f"127.0.0.1:{proxy.ports['http']}",
            "fodc_proxy_prometheus_sd_dir": sd_dir}}},
        "agents": {"hosts": {name: {
            **local, "fodc_agent_node_role": AGENTS[name][0], "fodc_agent_node_labels": AGENTS[name][1],
            "fodc_agent_http_listen_address": f"127.0.0.1:{agent.ports['http']}",
            "fodc_agent_prometheus_sd_dir": sd_dir} for name, agent in agents.items()}},
    }}}


PLAY = [
    {"name": "the proxy's target", "hosts": "fodc_proxy", "gather_facts": False,
     "tasks": [{"ansible.builtin.include_role": {"name": "fodc_proxy", "tasks_from": "prometheus"}}]},
    {"name": "the agents' targets", "hosts": "agents", "gather_facts": False,
     "tasks": [{"ansible.builtin.include_role": {"name": "fodc_agent", "tasks_from": "prometheus"}}]},
]


def write_targets(venv: Path, work: Path, inv: dict) -> subprocess.CompletedProcess[str]:
    (work / "inventory.yml").write_text(json.dumps(inv))
    (work / "play.yml").write_text(json.dumps(PLAY))
    return run_tool(venv, "ansible-playbook", "-i", str(work / "inventory.yml"), str(work / "play.yml"))


def start_file_sd_prometheus(work: Path, sd_dir: Path) -> tuple[Daemon, str]:
    """A Prometheus that knows its targets only from the file_sd files the roles wrote."""
    return start_prometheus(work, f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fodc-proxy
    honor_labels: true
    file_sd_configs: [{{files: ["{sd_dir}/fodc-proxy-*.json"], refresh_interval: 1s}}]
  - job_name: fodc-agents
    file_sd_configs: [{{files: ["{sd_dir}/fodc-agent-*.json"], refresh_interval: 1s}}]
""")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 to build .venv-ansible with")
    venv = ensure_ansible_venv()
    work = tmp_path_factory.mktemp("file-sd")
    sd_dir = work / "file_sd" / "fodc"  # missing on purpose: the roles create it
    started: list[Daemon] = []
    nodes: list[SimNodeProcess] = []
    try:
        proxy = start_proxy(work)
        started.append(proxy)
        agents = {}
        for name, (role, labels) in AGENTS.items():
            node = start_sim_node(role, free_port(), series=50)
            nodes.append(node)
            agents[name] = start_agent(work, proxy.grpc_addr, role, name, "--node-metrics-url", node.metrics_url,
                                       "--scrape-interval", "1s", "--scrape-timeout", "1s",
                                       labels=",".join(f"{k}={v}" for k, v in labels.items()))
            started.append(agents[name])
        wait_for(lambda: len(proxy.cluster(status="online")) == len(AGENTS), 30, what="all agents online")
        first_run = write_targets(venv, work, inventory(proxy, agents, str(sd_dir)))
        assert first_run.returncode == 0, first_run.stdout[-4000:] + first_run.stderr[-2000:]
        prometheus, base = start_file_sd_prometheus(work, sd_dir)
        started.append(prometheus)
        yield Fleet(venv, work, sd_dir, proxy, agents, first_run, base)
    finally:
        for daemon in reversed(started):
            daemon.stop()
        for node in nodes:
            node.stop()


def query(base: str, promql: str) -> list[dict]:
    status, body = http_json(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")
    assert status == 200, body
    return body["data"]["result"]


def up_targets(fleet: Fleet) -> list[dict] | None:
    targets = http_json(f"{fleet.prometheus}/api/v1/targets")[1]["data"]["activeTargets"]
    if len(targets) == len(AGENTS) + 1 and all(target["health"] == "up" for target in targets):
        return targets
    return None


def test_the_roles_write_one_target_file_per_agent_and_one_for_the_proxy(fleet: Fleet) -> None:
    assert sorted(path.name for path in fleet.sd_dir.iterdir()) == sorted(
        [f"fodc-proxy-{PROXY_HOST}.json"] + [f"fodc-agent-{name}.json" for name in AGENTS])
    hot = json.loads((fleet.sd_dir / "fodc-agent-hot-1.json").read_text())
    assert hot == [{"targets": [f"127.0.0.1:{fleet.agents['hot-1'].ports['http']}"],
                    "labels": {"node_id": "hot-1", "node_role": "datanode-hot", "node_zone": "a"}}]


def test_prometheus_scrapes_every_agent_and_the_proxy_from_the_file_sd_output(fleet: Fleet) -> None:
    targets = wait_for(lambda: up_targets(fleet), 60, what="every file_sd target up")
    seen = {(t["labels"]["job"], t["labels"]["instance"]): (t["labels"]["node_id"], t["labels"]["node_role"])
            for t in targets}
    expected = {("fodc-agents", f"127.0.0.1:{agent.ports['http']}"): (name, AGENTS[name][0])
                for name, agent in fleet.agents.items()}
    expected[("fodc-proxy", f"127.0.0.1:{fleet.proxy.ports['http']}")] = (PROXY_HOST, "fodc-proxy")
    assert seen == expected


def test_series_scraped_from_each_agent_carry_its_node_labels(fleet: Fleet) -> None:
    series = wait_for(lambda: (found := query(fleet.prometheus, 'banyandb_system_cpu_state{job="fodc-agents"}'))
                      and len({s["metric"]["node_id"] for s in found}) == len(AGENTS) and found,
                      60, what="node series from every agent")
    labelled = {(s["metric"]["node_id"], s["metric"]["node_role"], s["metric"].get("node_zone")) for s in series}
    assert labelled == {("liaison-1", "liaison", None), ("hot-1", "datanode-hot", "a"),
                        ("warm-1", "datanode-warm", None)}


def test_series_through_the_proxy_keep_each_nodes_own_labels(fleet: Fleet) -> None:
    series = wait_for(lambda: (found := query(fleet.prometheus, 'banyandb_system_cpu_state{job="fodc-proxy"}'))
                      and len({s["metric"]["node_id"] for s in found}) == len(AGENTS) and found,
                      60, what="node series of every agent through the proxy")
    assert {(s["metric"]["node_id"], s["metric"]["node_role"]) for s in series} == {
        (name, role) for name, (role, _) in AGENTS.items()}
    own = query(fleet.prometheus, 'fodc_proxy_agents{job="fodc-proxy"}')
    assert own and {(s["metric"]["node_id"], s["metric"]["node_role"]) for s in own} == {(PROXY_HOST, "fodc-proxy")}


def test_writing_the_targets_again_changes_nothing(fleet: Fleet) -> None:
    again = write_targets(fleet.venv, fleet.work, inventory(fleet.proxy, fleet.agents, str(fleet.sd_dir)))
    assert again.returncode == 0, again.stdout[-3000:]
    recap = again.stdout[again.stdout.rindex("PLAY RECAP"):]
    assert recap.count("changed=0") == len(AGENTS) + 1, recap


def test_a_relative_file_sd_directory_is_refused_naming_the_variable(fleet: Fleet, tmp_path: Path) -> None:
    inv = inventory(fleet.proxy, fleet.agents, str(fleet.sd_dir))
    inv["all"]["children"]["agents"]["hosts"]["warm-1"]["fodc_agent_prometheus_sd_dir"] = "file_sd/fodc"
    result = write_targets(fleet.venv, tmp_path, inv)
    assert result.returncode != 0
    assert "fodc_agent_prometheus_sd_dir must be an absolute path" in result.stdout
    assert not (ANSIBLE_DIR / "file_sd").exists()  # ansible-playbook runs in ansible/
