"""The proxy's incident counter only goes up, whatever the agents' own counts do across their restarts."""

from __future__ import annotations

from fodc.model import Address, Registration
from fodc.proxy.incident_tally import IncidentTally
from fodc.proxy.registry import AgentRegistry

PROXY_START = 1_000_000


def _registry_and_tally() -> tuple[AgentRegistry, IncidentTally]:
    registry = AgentRegistry(30, 300, 10)
    tally = IncidentTally(PROXY_START)
    registry.on_heartbeat = tally.observe
    return registry, tally


def _beat(registry: AgentRegistry, started_ms: int, counts: dict[str, int], role: str = "liaison",
          port: int = 1) -> None:
    """One agent process (by its start time) registering if needed, then heartbeating `counts`."""
    reg = Registration(node_id=f"n{port}", role=role, primary=Address("10.0.0.1", port), agent_started_ms=started_ms)
    current = [r for r in registry.list() if r.registration.node_id == reg.node_id]
    if not current or current[0].registration.agent_started_ms != started_ms:
        record, _ = registry.register(reg, PROXY_START)
    else:
        record = current[0]
    assert registry.heartbeat(record.agent_id, record.connection, PROXY_START, incidents_total=counts)


def test_growth_within_one_agent_process_is_counted():
    registry, tally = _registry_and_tally()
    _beat(registry, PROXY_START + 1, {"node-down": 1})
    _beat(registry, PROXY_START + 1, {"node-down": 1})
    _beat(registry, PROXY_START + 1, {"node-down": 2, "rule:disk": 1})
    assert tally.totals() == {("n1", "liaison", "node-down"): 2, ("n1", "liaison", "rule:disk"): 1}


def test_an_agent_restart_adds_the_new_process_counts_instead_of_dropping():
    registry, tally = _registry_and_tally()
    _beat(registry, PROXY_START + 1, {"node-down": 3})
    _beat(registry, PROXY_START + 500, {"node-down": 1})  # restarted: its count began again from zero
    assert tally.totals() == {("n1", "liaison", "node-down"): 4}
    _beat(registry, PROXY_START + 900, {})  # and again, with nothing yet: the counter keeps its value
    assert tally.totals() == {("n1", "liaison", "node-down"): 4}


def test_counts_from_before_the_proxy_started_are_a_baseline_not_news():
    registry, tally = _registry_and_tally()
    _beat(registry, PROXY_START - 60_000, {"node-restart": 5}, role="datanode-hot")
    assert tally.totals() == {("n1", "datanode-hot", "node-restart"): 0}  # present, at zero, for rate() to start from
    _beat(registry, PROXY_START - 60_000, {"node-restart": 6}, role="datanode-hot")
    assert tally.totals() == {("n1", "datanode-hot", "node-restart"): 1}


def test_each_node_counts_apart_so_an_alert_can_name_it():
    registry, tally = _registry_and_tally()
    _beat(registry, PROXY_START + 1, {"node-down": 1}, port=1)
    _beat(registry, PROXY_START + 1, {"node-down": 2}, port=2)
    _beat(registry, PROXY_START + 1, {"node-down": 1}, role="datanode-warm", port=3)
    assert tally.totals() == {("n1", "liaison", "node-down"): 1, ("n2", "liaison", "node-down"): 2,
                              ("n3", "datanode-warm", "node-down"): 1}


def test_only_known_and_a_bounded_number_of_rule_triggers_count_and_they_leave_with_their_agent():
    registry, tally = _registry_and_tally()
    registry.on_removed = tally.forget
    rules = {f"rule:r{i:02d}": 1 for i in range(40)}
    _beat(registry, PROXY_START + 1, {"node-down": 1, "made-up": 7, "rule:bad name": 1, **rules})
    _beat(registry, PROXY_START + 1, {"node-down": 1, "rule:new": 1})  # past the cap: a new rule is not counted
    assert sorted(tally.totals()) == ([("n1", "liaison", "node-down")]
                                      + [("n1", "liaison", f"rule:r{i:02d}") for i in range(32)])
    assert tally.refusals.count("trigger") == 10 + 1  # made-up, the bad name, 8 rules past 32; then rule:new
    _beat(registry, PROXY_START + 1, {"node-down": 2}, port=2)
    registry.unregister(registry.list()[0].agent_id)
    assert tally.totals() == {("n2", "liaison", "node-down"): 2}  # the first node's series went with it
    registry.unregister(registry.list()[0].agent_id)
    assert tally.totals() == {}
