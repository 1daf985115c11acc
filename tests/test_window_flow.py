"""/metrics-windows under flow control (MetricsRequest.window_credit / grant): an agent sends only the chunks the
proxy granted, and the proxy grants an agent's chunks only while it is reading that agent, so it holds about one
small chunk per agent waiting its turn instead of every agent's whole answer (issue 22)."""

from __future__ import annotations

import json
import threading
import time

from procs import http_get, start_proxy, wait_for
from rogue import RogueAgent, metrics_reply, registration

from fodc.agent.session import Outbox
from fodc.agent.streams import MetricsStream
from fodc.v1 import fodc_pb2 as pb


def family(chunk: int) -> pb.MetricFamily:
    return pb.MetricFamily(name="w", type="gauge", series=[pb.Series(
        labels=[pb.Label(name="chunk", value=str(chunk))], timestamps_ms=[1000, 2000], values=[1.0, 2.0])])


def test_an_agent_sends_a_window_read_only_as_far_as_the_proxy_granted():
    def ten_chunks(request: pb.MetricsRequest, max_bytes: int):
        for seq in range(10):
            yield metrics_reply(request, [family(seq)], done=seq == 9, seq=seq)
    stream = MetricsStream(ten_chunks, workers=2)
    outbox = Outbox(size=64)
    sent = outbox.__iter__()
    try:
        stream._dispatch(pb.MetricsRequest(request_id="w1", window_credit=2), outbox, 1 << 20)
        assert [next(sent).seq for _ in range(2)] == [0, 1]
        time.sleep(0.5)
        assert outbox._queue.qsize() == 0  # nothing more without a grant
        stream._dispatch(pb.MetricsRequest(request_id="w1", grant=3), outbox, 1 << 20)
        assert [next(sent).seq for _ in range(3)] == [2, 3, 4]
        time.sleep(0.5)
        assert outbox._queue.qsize() == 0
        stream._dispatch(pb.MetricsRequest(request_id="w1", grant=64), outbox, 1 << 20)
        rest = [next(sent) for _ in range(5)]
        assert [r.seq for r in rest] == [5, 6, 7, 8, 9] and rest[-1].done
    finally:
        stream.stop()


class _FlowAgent:
    """A rogue agent that answers a window read in `chunks` chunks, obeying window_credit and grants, and notes
    when each chunk went and each grant came."""

    def __init__(self, proxy, node_id: str, port: int, chunks: int) -> None:
        self.rogue = RogueAgent(proxy.grpc_addr)
        assert self.rogue.register(registration(node_id, port=port)).accepted
        self.chunks, self.sent_at, self.grants_at, self.requests = chunks, [], [], []
        self._credit, self._next, self._lock = 0, 0, threading.Lock()
        self.rogue.serve_metrics(self.answer)

    def answer(self, request: pb.MetricsRequest) -> list[pb.MetricsReply]:
        with self._lock:
            if request.grant:
                self.grants_at.append(time.monotonic())
                self._credit += request.grant
            elif not request.latest_only:
                self.requests.append(request)
                self._request, self._credit, self._next = request, request.window_credit or 10**6, 0
            else:
                return []
            out = []
            while self._credit > 0 and self._next < self.chunks:
                out.append(metrics_reply(self._request, [family(self._next)], done=self._next == self.chunks - 1,
                                         seq=self._next))
                self.sent_at.append(time.monotonic())
                self._credit -= 1
                self._next += 1
            return out


def test_the_proxy_asks_for_one_small_chunk_and_grants_an_agent_only_when_it_reads_it(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    first = _FlowAgent(proxy, "first", 20001, chunks=12)
    second = _FlowAgent(proxy, "second", 20002, chunks=12)
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="two agents online")
    try:
        status, _, body = http_get(f"{proxy.url}/metrics-windows?start=0", timeout=60)
        assert status == 200, body
        answer = json.loads(body)
        assert answer["missing_agents"] == [] and answer["agents_answered"] == 2
        chunks_seen = sorted((s["node_id"], s["labels"]["chunk"]) for s in answer["series"])
        assert chunks_seen == sorted((n, str(c)) for n in ("first", "second") for c in range(12))
        for agent in (first, second):
            request = agent.requests[0]
            assert request.window_credit == 1 and 0 < request.max_chunk_bytes <= 64 * 1024
        # Whichever agent was read second got no grant before the first one's answer was complete: until its
        # turn the proxy held just its first chunk.
        earlier, later = sorted((first, second), key=lambda a: a.grants_at[0])
        assert later.grants_at[0] >= earlier.sent_at[-1]
        assert len([t for t in later.sent_at if t < later.grants_at[0]]) == 1
    finally:
        first.rogue.close()
        second.rogue.close()
