"""The agent registry as plain data: keys, replacement, statuses, limits and the health sweep."""

from __future__ import annotations

import pytest

from fodc.model import Address, Registration
from fodc.proxy.registry import (
    ONLINE,
    UNCONNECTED,
    AgentRegistry,
    KeyInUse,
    RegistrationError,
    RegistryFull,
    key_of,
)


def reg(node_id="n1", role="datanode-hot", ip="10.0.0.1", port=17912, **labels) -> Registration:
    return Registration(node_id=node_id, role=role, primary=Address(ip, port), labels=labels,
                        secondary={"gossip": Address(ip, 17932)})


def registry(max_agents=10) -> AgentRegistry:
    return AgentRegistry(heartbeat_timeout_s=30, cleanup_timeout_s=300, max_agents=max_agents)


def test_cleanup_timeout_must_exceed_heartbeat_timeout():
    with pytest.raises(ValueError, match="greater than the heartbeat"):
        AgentRegistry(heartbeat_timeout_s=30, cleanup_timeout_s=30, max_agents=1)


def test_key_is_address_role_and_labels_not_node_id():
    assert key_of(reg("a", zone="1")) == key_of(reg("b", zone="1"))
    assert key_of(reg(zone="1")) != key_of(reg(zone="2"))
    assert key_of(reg(role="liaison")) != key_of(reg(role="datanode-hot"))
    assert key_of(reg(port=1)).agent_id != key_of(reg(port=2)).agent_id


def test_reregistration_with_the_same_key_replaces_the_entry():
    r = registry()
    first, replaced = r.register(reg("a"), now_ms=1000)
    assert replaced is None
    second, replaced = r.register(reg("b"), now_ms=2000)
    assert replaced == first
    assert second.agent_id == first.agent_id and second.connection != first.connection
    assert [x.registration.node_id for x in r.list()] == ["b"]


def test_registry_full_refuses_new_keys_but_not_known_ones():
    r = registry(max_agents=2)
    r.register(reg(port=1), 0)
    r.register(reg(port=2), 0)
    with pytest.raises(RegistryFull, match="max 2"):
        r.register(reg(port=3), 0)
    r.register(reg(port=2), 5)  # a known key re-registering is not a new agent
    assert len(r.list()) == 2


@pytest.mark.parametrize("bad", [
    Registration(node_id="", role="liaison", primary=Address("10.0.0.1", 1)),
    Registration(node_id="n", role="", primary=Address("10.0.0.1", 1)),
    Registration(node_id="n", role="liaison", primary=Address("", 1)),
    Registration(node_id="n", role="liaison", primary=Address("10.0.0.1", 0)),
])
def test_invalid_registrations_are_refused_with_a_reason(bad):
    with pytest.raises(RegistrationError):
        registry().register(bad, 0)


def test_heartbeat_from_a_replaced_connection_is_rejected():
    r = registry()
    old, _ = r.register(reg(), 0)
    new, _ = r.register(reg(), 10)
    assert r.heartbeat(old.agent_id, old.connection, 20) is False
    assert r.heartbeat(new.agent_id, new.connection, 20, runtime={"k": "v"}) is True
    assert r.get_by_id(new.agent_id).runtime == {"k": "v"}


def test_stream_loss_marks_unconnected_and_a_stale_connection_cannot():
    r = registry()
    old, _ = r.register(reg(), 0)
    new, _ = r.register(reg(), 10)
    assert r.connection_lost(old.agent_id, old.connection, 20) is None  # the replaced stream ending is harmless
    assert r.get_by_id(new.agent_id).status == ONLINE
    lost = r.connection_lost(new.agent_id, new.connection, 30)
    assert lost.status == UNCONNECTED and lost.unconnected_since_ms == 30


def test_goodbye_unregisters_at_once():
    r = registry()
    rec, _ = r.register(reg(), 0)
    assert r.unregister(rec.agent_id, rec.connection) is not None
    assert r.list() == []


def test_health_sweep_marks_silent_agents_then_removes_them():
    r = registry()
    rec, _ = r.register(reg(), 0)
    assert r.check_health(30_000).marked_unconnected == []  # exactly at the timeout: still online
    report = r.check_health(30_001)
    assert [x.agent_id for x in report.marked_unconnected] == [rec.agent_id]
    assert r.get_by_id(rec.agent_id).status == UNCONNECTED
    assert r.check_health(299_000).removed == []
    assert [x.agent_id for x in r.check_health(300_001).removed] == [rec.agent_id]
    assert r.list() == []


def test_heartbeat_brings_an_unconnected_agent_back_online():
    r = registry()
    rec, _ = r.register(reg(), 0)
    r.check_health(40_000)
    assert r.heartbeat(rec.agent_id, rec.connection, 41_000)
    assert r.get_by_id(rec.agent_id).status == ONLINE


def test_list_filters_and_lookup_by_key():
    r = registry()
    r.register(reg("l", role="liaison", port=1), 0)
    r.register(reg("h", role="datanode-hot", port=2, zone="a"), 0)
    assert [x.registration.node_id for x in r.list_by_role("liaison")] == ["l"]
    assert [x.registration.node_id for x in r.list(node_id="h")] == ["h"]
    assert r.get("10.0.0.1", 2, "datanode-hot", {"zone": "a"}).registration.node_id == "h"
    assert r.get("10.0.0.1", 2, "datanode-hot", {}) is None
    assert r.counts() == {ONLINE: 2, UNCONNECTED: 0}


def claim(node_id="n1", host="host-a", instance="i-1", ip="127.0.0.1") -> Registration:
    return Registration(node_id=node_id, role="datanode-hot", primary=Address(ip, 17912), host_id=host,
                        instance_id=instance, hostname=node_id)


def test_two_hosts_with_the_same_address_never_share_a_key():
    assert key_of(claim(host="host-a")).agent_id != key_of(claim(host="host-b")).agent_id
    r = registry()
    r.register(claim("a", host="host-a"), now_ms=1000)
    r.register(claim("b", host="host-b", instance="i-2"), now_ms=1000)
    assert sorted(x.registration.node_id for x in r.list(status=ONLINE)) == ["a", "b"]


def test_a_second_agent_claiming_a_live_key_is_refused_naming_both():
    r = registry()
    first, _ = r.register(claim("a", instance="i-1"), now_ms=1000)
    with pytest.raises(KeyInUse) as refused:
        r.register(claim("b", instance="i-2"), now_ms=2000)
    assert "'a'" in str(refused.value) and "'b'" in str(refused.value) and "machine-id" in str(refused.value)
    held = r.get_by_id(first.agent_id)  # the holder keeps its entry: no flapping replace
    assert (held.connection, held.registration, held.status) == (first.connection, first.registration, ONLINE)
    assert "node 'b'" in r.conflict(first.agent_id, since_ms=2000)  # and hears of the claim
    assert r.conflict(first.agent_id, since_ms=2001) == ""


def test_a_restart_of_the_same_instance_takes_over_its_live_entry():
    r = registry()
    first, _ = r.register(claim("a", instance="i-1"), now_ms=1000)
    second, replaced = r.register(claim("a", instance="i-1"), now_ms=2000)
    assert replaced == first and second.connection != first.connection


def test_another_instance_takes_over_once_the_entry_is_no_longer_live():
    r = registry()
    first, _ = r.register(claim("a", instance="i-1"), now_ms=1000)
    r.connection_lost(first.agent_id, first.connection, now_ms=1500)
    second, replaced = r.register(claim("b", instance="i-2"), now_ms=2000)
    assert replaced is not None and second.registration.node_id == "b"


@pytest.mark.parametrize("field", ["host_id", "instance_id"])
def test_identities_outside_their_grammar_are_refused(field):
    with pytest.raises(RegistrationError, match=field.replace("_", " ")):
        registry().register(Registration(node_id="n", role="liaison", primary=Address("10.0.0.1", 1),
                                         **{field: "x" * 65}), now_ms=0)


@pytest.mark.parametrize("label", ["id", "role"])
def test_a_node_label_that_would_repeat_node_id_or_node_role_is_refused(label):
    # node_labels() would add node_id twice to every series: Prometheus refuses a scrape with a repeated label.
    with pytest.raises(RegistrationError, match=f"label '{label}' is reserved"):
        registry().register(Registration(node_id="n1", role="liaison", primary=Address("10.0.0.1", 1),
                                         labels={label: "x"}), 0)
