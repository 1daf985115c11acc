"""The proxy's own metrics by remote-write (fodc/proxy/selfpush.py), against a receiver on loopback: snapshots
wait in a bounded backlog while the receiver fails, go out oldest first when it is back, and a refusal drops."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge
from receivers import ScriptedReceiver

from fodc.proxy.selfpush import SelfMetricsPush
from fodc.remotewrite.encode import decode
from fodc.remotewrite.options import Access


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    with ScriptedReceiver() as server:
        yield server


def push(url: str) -> tuple[SelfMetricsPush, Gauge]:
    registry = CollectorRegistry()
    gauge = Gauge("fodc_proxy_agents", "agents", ["status"], registry=registry)
    gauge.labels("online").set(3)
    access = Access((url,), 5.0, None, None, None, None)
    return SelfMetricsPush(access, registry, interval_s=1, instance="proxy-1:17901", backlog=2), gauge


def test_snapshots_wait_in_a_bounded_backlog_and_go_out_oldest_first(receiver):
    pusher, gauge = push(receiver.url)
    receiver.script = (503, b"busy", {})
    for value in (1, 2, 3):
        gauge.labels("online").set(value)
        pusher.run_round()
    state = pusher.receivers[0]
    assert len(state.backlog) == 2 and state.failed > 0
    receiver.seen.clear()
    receiver.script = (204, b"", {})
    pusher.run_round()
    assert not state.backlog and state.sent > 0
    sent = [decode(body) for _, body in receiver.seen]
    values = [s.values[0] for request in sent for s in request
              if dict(s.labels).get("__name__") == "fodc_proxy_agents"]
    assert values == [3.0, 3.0]  # the oldest kept first; the two before it were pushed out of the backlog
    assert state.dropped["backlog_full"] > 0
    labels = next(dict(s.labels) for s in sent[0] if dict(s.labels)["__name__"] == "fodc_proxy_agents")
    assert labels == {"__name__": "fodc_proxy_agents", "instance": "proxy-1:17901", "job": "fodc-proxy",
                      "status": "online"}


def test_a_refused_snapshot_is_dropped_and_counted(receiver):
    pusher, _ = push(receiver.url)
    receiver.script = (400, b"bad", {})
    pusher.run_round()
    state = pusher.receivers[0]
    assert not state.backlog and state.dropped["http_400"] > 0 and state.sent == 0
    names = {m.name for m in pusher.registry.collect()}
    assert {"fodc_proxy_remote_write_samples_dropped", "fodc_proxy_remote_write_queue_samples"} <= names
