"""gRPC clients that hold streams without identifying themselves, take over other agents' streams or flood the
registry: each costs only itself, and real agents keep being served (issue 16, items 11, 15 and 16)."""

from __future__ import annotations

import grpc
import pytest
from procs import free_port, http_get, start_agent, start_proxy, wait_for
from rogue import RogueAgent, gauge, metrics_reply, refused, registration

from fodc.sim.launcher import start_sim_node


@pytest.fixture
def sim_node():
    node = start_sim_node("liaison", free_port(), series=20)
    yield node
    node.stop()


def fast_scrapes(node) -> list[str]:
    return ["--scrape-interval", "0.5s", "--scrape-timeout", "0.5s", "--node-metrics-url", node.metrics_url]


@pytest.fixture
def rogues():
    made: list[RogueAgent] = []
    yield made
    for rogue in made:
        rogue.close()


def rogue_at(proxy, rogues) -> RogueAgent:
    rogue = RogueAgent(proxy.grpc_addr)
    rogues.append(rogue)
    return rogue




def node_series(proxy, node_id: str) -> list[str]:
    status, _, page = http_get(f"{proxy.url}/metrics?node_id={node_id}", timeout=20)
    assert status == 200
    return [line for line in page.decode().splitlines() if line and not line.startswith("#")
            and f'node_id="{node_id}"' in line]


def test_streams_that_never_say_hello_do_not_lock_real_agents_out(tmp_path, daemons, rogues):
    # 10 agents' worth of gRPC workers (46); the attacker opens 64 streams that never say who they are.
    proxy = start_proxy(tmp_path, "--max-agents", "10", "--agent-hello-timeout", "2s")
    daemons.append(proxy)
    idle = []
    for _ in range(8):  # grpc allows 8 streams per connection: 8 connections
        rogue = rogue_at(proxy, rogues)
        idle += [rogue.open(rogue.stub.StreamMetrics) for _ in range(4)]
        idle += [rogue.open(rogue.stub.RegisterAgent) for _ in range(4)]
    wait_for(lambda: sum(stream.wait_ended(0) for stream in idle) < len(idle), what="idle streams held")
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "real"))
    wait_for(lambda: proxy.cluster(status="online"), 30, what="the real agent registered despite the idle streams")
    wait_for(lambda: all(stream.wait_ended(0) for stream in idle), 20, what="every idle stream closed")
    assert {stream.code for stream in idle} <= {grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert refused(proxy, "unidentified_stream") >= len(idle)


def test_streams_of_an_agent_that_stopped_heartbeating_are_closed(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path, "--agent-heartbeat-timeout", "1s", "--agent-cleanup-timeout", "60s")
    daemons.append(proxy)
    rogue = rogue_at(proxy, rogues)
    assert rogue.register().accepted
    metrics = rogue.serve_metrics(lambda request: [])
    wait_for(lambda: [n["status"] for n in proxy.cluster()] == ["unconnected"], 20, what="marked unconnected")
    assert rogue.control.wait_ended(10), "the silent agent's registration stream is still open"
    assert metrics.wait_ended(10), "the silent agent's metrics stream is still open"


def test_a_stream_opened_with_another_agents_id_is_refused(tmp_path, daemons, rogues, sim_node):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "victim", *fast_scrapes(sim_node)))
    victim = wait_for(lambda: proxy.cluster(status="online"), 30, what="the victim online")[0]
    wait_for(lambda: node_series(proxy, "victim"), 20, what="the victim's own series")

    def forge(request):
        return [metrics_reply(request, [gauge("forged_total", 666.0)])]
    rogue = rogue_at(proxy, rogues)
    rogue.agent_id = victim["agent_id"]  # public in /cluster
    hijacks = [rogue.serve_metrics(forge, secret=""), rogue.serve_metrics(forge, secret="guessed")]
    for stream in hijacks:
        assert stream.wait_ended(10)
    assert hijacks[0].code == grpc.StatusCode.FAILED_PRECONDITION and "stream_secret" in hijacks[0].details
    assert hijacks[1].code == grpc.StatusCode.PERMISSION_DENIED and "does not match" in hijacks[1].details
    series = node_series(proxy, "victim")
    assert series and not any("forged" in line for line in series)
    assert refused(proxy, "stream_hijack") == 1 and refused(proxy, "stream_without_secret") == 1
    assert proxy.cluster()[0]["status"] == "online"


def test_an_agent_without_stream_secrets_registers_but_its_streams_are_refused_with_the_reason(
        tmp_path, daemons, rogues):
    """What an agent of the previous version sees: it registers, and each request stream says why it ends."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    old = rogue_at(proxy, rogues)
    assert old.register().accepted and old.secret
    stream = old.serve_commands(lambda command: [], secret="")
    assert stream.wait_ended(10)
    assert stream.code == grpc.StatusCode.FAILED_PRECONDITION and "upgrade fodc-agent" in stream.details


def test_registrations_that_never_stream_do_not_fill_the_registry(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path, "--max-agents", "10", "--agent-hello-timeout", "3s")
    daemons.append(proxy)
    for i in range(30):  # three times --max-agents, each registered then dropped at once
        rogue = rogue_at(proxy, rogues)
        assert rogue.register(registration(f"flood-{i}", port=30000 + i)).accepted, i
        rogue.close()
        wait_for(lambda i=i: refused(proxy, "unstreamed_registration") == i + 1, what="the flood entry lost")
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "real"))
    wait_for(lambda: [n["node_id"] for n in proxy.cluster(status="online")] == ["real"], 30,
             what="the real agent registered at once")
    wait_for(lambda: [n["node_id"] for n in proxy.cluster()] == ["real"], 20, what="the flood entries expired")


def test_one_peer_registering_too_often_is_refused_with_the_reason(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path, "--registrations-per-peer", "5")
    daemons.append(proxy)
    results = []
    for i in range(8):
        rogue = rogue_at(proxy, rogues)
        results.append(rogue.register(registration(f"burst-{i}", port=31000 + i)))
    assert [r.accepted for r in results] == [True] * 5 + [False] * 3
    assert "too many registrations from 127.0.0.1" in results[-1].error and results[-1].retry_after_ms >= 1000
    assert refused(proxy, "registration") == 3


def test_a_real_agent_repeats_the_secret_of_its_registration(tmp_path, daemons, sim_node):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "modern", *fast_scrapes(sim_node)))
    wait_for(lambda: node_series(proxy, "modern"), 30, what="the agent's series served")
    assert refused(proxy, "stream_without_secret") == 0 and refused(proxy, "stream_hijack") == 0
