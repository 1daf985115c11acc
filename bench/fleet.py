"""Many synthetic agents in one process, each with its own real gRPC streams to a real proxy.

Each agent registers through the production session code (fodc.agent.session) and answers StreamMetrics
with replies prebuilt once from a real flight recorder holding a simulated page, so the proxy sees exactly
what real agents send while the load generator stays cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from fodc import expfmt
from fodc.agent.answer import chunk_replies, select_series
from fodc.agent.series_table import SeriesTable
from fodc.agent.session import ProxySession
from fodc.agent.streams import CommandStream, MetricsStream
from fodc.config import HostPort
from fodc.model import Address, HeartbeatInfo, Registration
from fodc.sim.page import NodeModel
from fodc.v1 import fodc_pb2 as pb
from fodc.window import FlightRecorder

FLEET_START_S = 1_787_300_000  # unix seconds of the simulated node's first scrape
ROLES = ("liaison", "datanode-hot", "datanode-warm", "datanode-cold")


def filled_recorder(series: int, scrapes: int = 1, interval_s: int = 15) -> FlightRecorder:
    model = NodeModel("datanode-hot", series, seed=5, start_s=FLEET_START_S)
    parser = expfmt.Parser()
    recorder = FlightRecorder(budget_bytes=256 * 1024 * 1024)
    for i in range(scrapes):
        t = FLEET_START_S + interval_s * i
        recorder.ingest_families("node", t * 1000 + 5, parser.parse(model.render(t)).families)
    return recorder


class CachedResponder:
    """Answers by copying replies built once per (request kind, chunk limit), with the new request id."""

    def __init__(self, recorder: FlightRecorder) -> None:
        self.recorder = recorder
        self.table = SeriesTable()  # one numbering for every agent of the fleet: they hold the same series
        self._cache: dict[tuple, list[pb.MetricsReply]] = {}

    def __call__(self, request: pb.MetricsRequest, max_bytes: int) -> Iterator[pb.MetricsReply]:
        table = request.latest_only and request.series_table.wanted  # as the agent's runtime answers
        held = request.series_table.known if table and request.series_table.table_id == self.table.table_id else -1
        key = (request.latest_only, request.start_unix_ms, request.end_unix_ms, tuple(request.names),
               request.name_regex, request.step_ms, request.agg, max_bytes, table, held)
        replies = self._cache.get(key)
        if replies is None:
            series = select_series(self.recorder, request)
            answer = (self.table.replies("", series, request.series_table, max_bytes) if table
                      else chunk_replies("", series, max_bytes))
            replies = self._cache[key] = list(answer)
        for template in replies:
            reply = pb.MetricsReply()
            reply.CopyFrom(template)
            reply.request_id = request.request_id
            yield reply


class Fleet:
    def __init__(self, proxy: HostPort, count: int, responder: CachedResponder, *, metrics_streams: bool = True,
                 command_streams: bool = False, send_timeout_s: float = 10.0, first: int = 0) -> None:
        self.sessions: list[ProxySession] = []
        self.streams: list[MetricsStream | CommandStream] = []
        ports = itertools.count(20000 + first)
        for i in range(first, first + count):
            role = ROLES[i % len(ROLES)]
            reg = Registration(node_id=f"fleet-{i}", role=role, primary=Address("127.0.0.1", next(ports)),
                               labels={"fleet": "bench"}, agent_version="bench")
            streams: list[MetricsStream | CommandStream] = []
            if metrics_streams:
                streams.append(MetricsStream(responder, workers=1, max_in_flight=4))
            if command_streams:  # no actions: the stream is held open as a real agent holds it
                streams.append(CommandStream({}, workers=1, max_in_flight=2))
            session = ProxySession(proxy, lambda reg=reg: reg, lambda: HeartbeatInfo({}, {}),
                                   on_connected=lambda c, streams=streams: [s.connect(c) for s in streams],
                                   on_disconnected=lambda streams=streams: [s.disconnect() for s in streams],
                                   max_backoff_s=2, send_timeout_s=send_timeout_s)
            self.sessions.append(session)
            self.streams.extend(streams)

    def start(self) -> None:
        for session in self.sessions:
            session.start()

    def registered(self) -> int:
        return sum(s.registered for s in self.sessions)

    def stop(self) -> None:
        for session in self.sessions:
            session.stop(5)
        for stream in self.streams:
            stream.stop()
