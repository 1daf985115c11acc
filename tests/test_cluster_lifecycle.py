"""The core acceptance: real proxy (gunicorn) + real agents on loopback, seen through GET /cluster."""

from __future__ import annotations

import signal
import time

from procs import free_port, http_json, start_agent, start_proxy, wait_for

FAST = ("--agent-heartbeat-timeout", "2s", "--agent-cleanup-timeout", "5s")


def _by_node(proxy) -> dict[str, dict]:
    return {n["node_id"]: n for n in proxy.cluster()}


def test_three_agents_of_different_roles_are_listed_online_with_their_identity(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    roles = {"liaison-1": "liaison", "hot-1": "datanode-hot", "warm-1": "datanode-warm"}
    agents = {}
    for node_id, role in roles.items():
        gossip = free_port()
        agents[node_id] = start_agent(tmp_path, proxy.grpc_addr, role, node_id, "--node-gossip-address",
                                      f"127.0.0.1:{gossip}", labels=f"zone=z1,tier={role}")
        agents[node_id].ports["gossip"] = gossip
        daemons.append(agents[node_id])

    nodes = wait_for(lambda: (n := _by_node(proxy)) and len(n) == 3 and n, what="three agents registered")
    for node_id, role in roles.items():
        node = nodes[node_id]
        agent = agents[node_id]
        assert node["role"] == role
        assert node["status"] == "online"
        assert node["primary_address"] == {"ip": "127.0.0.1", "port": agent.ports["node"]}
        assert node["secondary_addresses"]["gossip"] == {"ip": "127.0.0.1", "port": agent.ports["gossip"]}
        assert node["secondary_addresses"]["metrics"]["port"] == agent.ports["http"]
        assert node["labels"] == {"tier": role, "zone": "z1"}
        assert node["last_heartbeat"] and node["registered_at"]
        assert "ktm_mode" in node["capabilities"]


def test_cluster_filters_by_role_and_node_id(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    for node_id, role in (("l1", "liaison"), ("h1", "datanode-hot"), ("h2", "datanode-hot")):
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, role, node_id))
    wait_for(lambda: len(proxy.cluster()) == 3, what="three agents")
    assert sorted(n["node_id"] for n in proxy.cluster(role="datanode-hot")) == ["h1", "h2"]
    assert [n["node_id"] for n in proxy.cluster(node_id="l1")] == ["l1"]
    assert proxy.cluster(role="datanode-cold") == []


def test_killed_agent_turns_unconnected_then_is_removed_after_cleanup(tmp_path, daemons):
    proxy = start_proxy(tmp_path, *FAST)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "victim")
    daemons.append(agent)
    wait_for(lambda: _by_node(proxy).get("victim", {}).get("status") == "online", what="agent online")

    agent.kill9()

    node = wait_for(lambda: (n := _by_node(proxy).get("victim")) and n["status"] == "unconnected" and n,
                    what="agent marked unconnected")
    assert node["unconnected_since"] is not None
    wait_for(lambda: "victim" not in _by_node(proxy), timeout=20, what="agent removed after cleanup timeout")


def test_sigterm_agent_says_goodbye_and_is_removed_at_once(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--agent-heartbeat-timeout", "60s", "--agent-cleanup-timeout", "10m")
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "polite")
    daemons.append(agent)
    wait_for(lambda: "polite" in _by_node(proxy), what="agent registered")

    assert agent.terminate() == 0

    # With a 60 s heartbeat timeout only the goodbye can explain a prompt removal.
    wait_for(lambda: "polite" not in _by_node(proxy), timeout=5, what="agent removed on goodbye")
    assert "said goodbye" in agent.log()


def test_agents_reregister_by_themselves_after_a_proxy_restart_without_duplicates(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    for node_id, role in (("a", "liaison"), ("b", "datanode-hot"), ("c", "datanode-cold")):
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, role, node_id))
    wait_for(lambda: len(proxy.cluster(status="online")) == 3, what="three agents online")

    proxy.crash()
    restarted = start_proxy(tmp_path, grpc_port=proxy.ports["grpc"], http_port=proxy.ports["http"],
                            name="proxy-restarted")
    daemons.append(restarted)

    nodes = wait_for(lambda: (n := restarted.cluster(status="online")) and len(n) == 3 and n, timeout=20,
                     what="agents re-registered")
    assert sorted(n["node_id"] for n in nodes) == ["a", "b", "c"]
    assert len(restarted.cluster()) == 3  # no stale duplicates


def test_two_agents_with_the_same_key_make_one_entry_and_the_second_is_refused(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    node_port = free_port()
    first = start_agent(tmp_path, proxy.grpc_addr, "datanode-warm", "twin-1", node_port=node_port, labels="z=1")
    daemons.append(first)
    wait_for(lambda: len(proxy.cluster()) == 1, what="first agent")
    held = proxy.cluster()[0]
    second = start_agent(tmp_path, proxy.grpc_addr, "datanode-warm", "twin-2", node_port=node_port, labels="z=1")
    daemons.append(second)

    wait_for(lambda: "is held by a live agent" in second.log(), what="the second agent told why")
    assert "node 'twin-1'" in second.log() and "registration refused" in proxy.log()
    wait_for(lambda: "another agent, node 'twin-2'" in http_json(f"{first.url}/health")[1]["proxy"]["warning"],
             what="the holder told of the claim")
    for _ in range(10):  # never a flapping replace: the first keeps its entry
        nodes = proxy.cluster()
        assert [(n["node_id"], n["agent_id"], n["registered_at"]) for n in nodes] == [
            ("twin-1", held["agent_id"], held["registered_at"])]
        time.sleep(0.3)


def test_registration_beyond_max_agents_is_refused_clearly_and_retried(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--max-agents", "2", *FAST)
    daemons.append(proxy)
    keep = start_agent(tmp_path, proxy.grpc_addr, "liaison", "one")
    leave = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "two")
    daemons.extend([keep, leave])
    wait_for(lambda: len(proxy.cluster()) == 2, what="two agents")
    third = start_agent(tmp_path, proxy.grpc_addr, "datanode-cold", "three")
    daemons.append(third)

    wait_for(lambda: "registry full" in third.log(), what="refusal logged on the agent")
    assert "max 2" in third.log()
    assert "registration refused" in proxy.log()
    assert {n["node_id"] for n in proxy.cluster()} == {"one", "two"}

    leave.signal(signal.SIGTERM)
    wait_for(lambda: "three" in _by_node(proxy), timeout=30, what="refused agent retried and got in")
