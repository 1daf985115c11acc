"""The load test scaled down for CI: many agents (each its own channel and three gRPC streams) against one real
proxy, and a proxy killed and restarted under that load (bench/bench_fleet_load.py runs the 1,000-agent size).
The agents are the bench's asyncio harness (bench/fleet_agent.py), so these tests also hold it to the wire
contract: what it sends is what the agent's encoders send."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from procs import http_get, start_proxy, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from fleet import FLEET_START_S, CachedResponder, Fleet, filled_recorder  # noqa: E402

from fodc.agent.answer import chunk_replies, select_series  # noqa: E402
from fodc.agent.series_table import SeriesTable  # noqa: E402
from fodc.config import HostPort  # noqa: E402
from fodc.v1 import fodc_pb2 as pb  # noqa: E402
from fodc.v1 import series_table_pb2 as st  # noqa: E402

AGENTS = 60
SCRAPES = 4


@pytest.fixture
def fleet_and_proxy(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--max-agents", str(AGENTS + 5))
    daemons.append(proxy)
    fleet = Fleet(HostPort("127.0.0.1", proxy.ports["grpc"]), AGENTS,
                  CachedResponder(filled_recorder(100, scrapes=SCRAPES)), command_streams=True)
    fleet.start()
    yield fleet, proxy, tmp_path
    fleet.stop()


def _online_ids(proxy) -> list[str]:
    return sorted(n["node_id"] for n in proxy.cluster(status="online"))


def test_many_agents_register_once_each_and_answer_on_all_three_streams(fleet_and_proxy):
    fleet, proxy, _ = fleet_and_proxy
    expected = sorted(f"fleet-{i}" for i in range(AGENTS))
    wait_for(lambda: _online_ids(proxy) == expected, 60, interval=0.5, what=f"{AGENTS} agents online")
    assert len(proxy.cluster()) == AGENTS  # no duplicates, nothing unconnected
    status, _, body = http_get(f"{proxy.url}/metrics?role=liaison", timeout=60)
    assert status == 200
    assert body.decode().count('node_id="fleet-') >= AGENTS // 4  # every liaison agent contributed samples
    # A window read of every agent, streamed under the proxy's flow-control credit.
    span = f"start={FLEET_START_S}&end={FLEET_START_S + 15 * SCRAPES}"
    status, _, body = http_get(f"{proxy.url}/metrics-windows?{span}", timeout=60)
    assert status == 200
    windows = json.loads(body)
    assert windows["agents_answered"] == AGENTS and windows["missing_agents"] == []
    points = {len(s["points"]) for s in windows["series"]}
    assert points == {SCRAPES}
    # The command stream is held: the agent answers a command it has no action for with a refusal.
    status, _, body = http_get(f"{proxy.url}/cluster/config?node_id=fleet-7", timeout=60)
    assert status == 200
    assert json.loads(body)["missing"][0]["state"] == "rejected"


def test_a_proxy_killed_under_load_gets_every_agent_back_without_duplicates(fleet_and_proxy, daemons):
    fleet, proxy, tmp_path = fleet_and_proxy
    expected = sorted(f"fleet-{i}" for i in range(AGENTS))
    wait_for(lambda: _online_ids(proxy) == expected, 60, interval=0.5, what=f"{AGENTS} agents online")
    proxy.crash()
    restarted = start_proxy(tmp_path, "--max-agents", str(AGENTS + 5), grpc_port=proxy.ports["grpc"],
                            http_port=proxy.ports["http"], name="proxy-restarted")
    daemons.append(restarted)
    # The bound: every agent back within 15 s of the new proxy serving (agents redial with backoff).
    wait_for(lambda: _online_ids(restarted) == expected, 15, interval=0.5, what="all agents back")
    assert len(restarted.cluster()) == AGENTS
    status, _, body = http_get(f"{restarted.url}/metrics", timeout=60)
    assert status == 200 and b'fodc_proxy_agent_missing{' not in body  # the metrics streams are back too


def _parsed(answer: list[bytes]) -> list[pb.MetricsReply]:
    return [pb.MetricsReply.FromString(data) for data in answer]


def test_the_cached_answers_are_the_agent_encoders_replies_with_each_request_id():
    recorder = filled_recorder(100, scrapes=SCRAPES)
    responder = CachedResponder(recorder)
    window = pb.MetricsRequest(request_id="w-1", start_unix_ms=FLEET_START_S * 1000, max_chunk_bytes=8192)
    expected = list(chunk_replies("w-1", select_series(recorder, window), 8192))
    assert len(expected) > 1 and _parsed(responder(window, 8192)) == expected
    again = pb.MetricsRequest(request_id="w-2", start_unix_ms=FLEET_START_S * 1000)
    assert [r.request_id for r in _parsed(responder(again, 8192))] == ["w-2"] * len(expected)

    # /metrics with a series table: definitions first, then (the proxy holding them) only ids and values, as
    # numbers or as text, whichever the proxy asks for.
    table = SeriesTable()
    table.table_id = responder.table.table_id  # a fresh table numbers the same series the same way
    for as_text in (False, True):
        latest = pb.MetricsRequest(request_id="m-1", latest_only=True,
                                   series_table=st.SeriesTableState(wanted=True, value_text=as_text))
        first = _parsed(responder(latest, 1 << 20))
        assert first == list(table.replies("m-1", select_series(recorder, latest), latest.series_table, 1 << 20))
        held = pb.MetricsRequest(request_id="m-2", latest_only=True, series_table=st.SeriesTableState(
            wanted=True, table_id=responder.table.table_id, known=len(first[0].latest.ids), value_text=as_text))
        second = _parsed(responder(held, 1 << 20))
        assert second[0].request_id == "m-2" and not second[0].latest.defined
        assert second[0].latest.value_text == first[0].latest.value_text
        assert list(second[0].latest.values) == list(first[0].latest.values)
        assert bool(first[0].latest.value_text) == as_text

    refused = _parsed(responder(pb.MetricsRequest(request_id="w-3", max_points=1), 8192))
    assert refused[0].refused_points > 1 and refused[0].done and refused[0].request_id == "w-3"
