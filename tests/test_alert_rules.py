"""The shipped Prometheus alerting rules: valid for promtool, unit-tested alert by alert, and live in a real
Prometheus that scrapes a real proxy and agents on loopback.

The unit tests (tests/prometheus/fodc-alerts.test.yml) pin each alert's expression, `for:`, labels and
annotations; the live tests prove the expressions match what the daemons really expose.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from procs import REPO, Daemon, free_port, http_json, start_agent, start_prometheus, start_proxy, wait_for

from fodc.sim.launcher import SimNodeProcess, start_sim_node

RULES = REPO / "ansible/roles/fodc_proxy/files/fodc-alerts.yml"
UNIT_TESTS = REPO / "tests/prometheus/fodc-alerts.test.yml"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None,
                                      reason="the prometheus server (Debian package prometheus) is not installed")


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


# --------------------------------------------------------------------------- the file itself


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_the_unit_tests_cover_every_alert_firing_and_not_firing() -> None:
    """promtool passes a rule nobody tests: check each alert has a firing case and a quiet one."""
    cases = [case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert firing == set(alert_names())
    assert quiet == set(alert_names())


@needs_promtool
def test_promtool_check_rules_accepts_the_rules_file() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = promtool("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- live

HOT, WARM = "hot-a1", "warm-a1"
FAST = ["--scrape-interval", "0.5s", "--scrape-timeout", "0.5s", "--incident-check-interval", "0.3s",
        "--incident-after", "1s", "--config-check-interval", "0.3s", "--node-pprof-url", ""]


def _prometheus_config(proxy_port: int, agent_ports: list[int]) -> str:
    """The README's two scrape styles at once (fine on loopback), with fast scrapes and evaluations."""
    agents = ", ".join(f'"127.0.0.1:{port}"' for port in agent_ports)
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: fodc
    honor_labels: true
    static_configs: [{{targets: ["127.0.0.1:{proxy_port}"],
                       labels: {{node_id: proxy-host, node_role: fodc-proxy}}}}]  # the role's file_sd labels
  - job_name: fodc-agents
    static_configs: [{{targets: [{agents}]}}]
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A proxy; agent HOT whose live node trips a threshold rule at once; agent WARM whose node never answers
    (its node-down incident trigger off, so the only incident is HOT's); yields the URL of a Prometheus
    scraping both styles with the rules loaded."""
    if shutil.which("prometheus") is None:
        pytest.skip("the prometheus server (Debian package prometheus) is not installed")
    work = tmp_path_factory.mktemp("alerts")
    started: list[Daemon] = []
    node: SimNodeProcess | None = None
    try:
        # Heartbeats every 0.5 s carry the agents' incident counts to the proxy.
        proxy = start_proxy(work, "--agent-heartbeat-timeout", "1.5s")
        started.append(proxy)
        node = start_sim_node("datanode-hot", free_port(), series=50)
        hot = start_agent(work, proxy.grpc_addr, "datanode-hot", HOT, "--node-metrics-url", node.metrics_url,
                          "--incident-rule", 'up: banyandb_system_cpu_state{kind="user"} >= 0', *FAST)
        started.append(hot)
        warm = start_agent(work, proxy.grpc_addr, "datanode-warm", WARM, "--node-metrics-url",
                           f"http://127.0.0.1:{free_port()}/metrics", "--incident-triggers", "node-restart", *FAST)
        started.append(warm)
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, 30, what="both agents online")
        server, base = start_prometheus(work, _prometheus_config(proxy.ports["http"],
                                                                     [hot.ports["http"], warm.ports["http"]]))
        started.append(server)
        yield base
    finally:
        for daemon in reversed(started):
            daemon.stop()
        if node is not None:
            node.stop()


def _rules(prometheus: str) -> dict[str, dict]:
    status, body = http_json(f"{prometheus}/api/v1/rules?type=alert")
    assert status == 200, body
    return {rule["name"]: rule for group in body["data"]["groups"] for rule in group["rules"]}


def _alerts(prometheus: str, name: str, state: str) -> list[dict]:
    status, body = http_json(f"{prometheus}/api/v1/alerts")
    assert status == 200, body
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name and a["state"] == state]


@needs_prometheus
def test_prometheus_loads_every_alert_and_evaluates_it_without_error(prometheus: str) -> None:
    def evaluated() -> dict[str, dict] | None:
        rules = _rules(prometheus)
        return rules if rules and all(rule["health"] != "unknown" for rule in rules.values()) else None

    rules = wait_for(evaluated, 60, interval=0.5, what="every rule evaluated")
    assert sorted(rules) == sorted(alert_names())
    assert {name: (rule["health"], rule.get("lastError", "")) for name, rule in rules.items()} == {
        name: ("ok", "") for name in alert_names()}


@needs_prometheus
def test_an_incident_at_an_agent_fires_the_incident_alert_with_its_node_and_trigger(prometheus: str) -> None:
    """The proxy's target carries its own node_id/node_role (as the role's file_sd writes them); the alert
    must name the node that had the incident, not the proxy."""
    firing = wait_for(lambda: _alerts(prometheus, "FodcIncidentRecorded", "firing"), 90, interval=0.5,
                      what="FodcIncidentRecorded firing")
    assert [(a["labels"]["node_id"], a["labels"]["node_role"], a["labels"]["trigger"], a["labels"]["severity"])
            for a in firing] == [(HOT, "datanode-hot", "rule:up", "warning")]
    assert f"fodc incidents --node {HOT} --trigger rule:up" in firing[0]["annotations"]["description"]


@needs_prometheus
def test_a_node_not_answering_its_agent_makes_the_node_down_alert_pending_under_its_node_id(prometheus: str) -> None:
    """The target has no node labels: node_id/node_role come from the agent's fodc_agent_info."""
    pending = wait_for(lambda: _alerts(prometheus, "FodcNodeMetricsDown", "pending"), 60, interval=0.5,
                       what="FodcNodeMetricsDown pending")
    assert [(a["labels"]["node_id"], a["labels"]["node_role"], a["labels"]["job"]) for a in pending] == [
        (WARM, "datanode-warm", "fodc-agents")]


@needs_prometheus
def test_nothing_else_alerts_on_a_cluster_whose_agents_are_connected(prometheus: str) -> None:
    wait_for(lambda: _alerts(prometheus, "FodcIncidentRecorded", "firing"), 90, interval=0.5,
             what="FodcIncidentRecorded firing (so the rules have seen the cluster's series)")
    status, body = http_json(f"{prometheus}/api/v1/alerts")
    assert status == 200, body
    assert sorted({a["labels"]["alertname"] for a in body["data"]["alerts"]}) == [
        "FodcIncidentRecorded", "FodcNodeMetricsDown"]
