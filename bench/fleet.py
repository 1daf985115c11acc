"""Many synthetic agents in one process, each with its own real gRPC streams to a real proxy.

The agents (bench/fleet_agent.py) run as coroutines on one grpc.aio event loop in a thread of their own, so
hundreds fit in one process; each registers and heartbeats on the real wire contract and answers StreamMetrics
with replies built once per request shape by the agent's own encoders from a real flight recorder holding a
simulated page, so the proxy sees exactly what real agents send while the load generator stays cheap.
"""

from __future__ import annotations

import asyncio
import itertools
import threading

from fleet_agent import AioAgent

from fodc import expfmt
from fodc.agent.answer import chunk_replies, select_series
from fodc.agent.series_table import SeriesTable
from fodc.config import HostPort
from fodc.model import Address, Registration
from fodc.saferegex import PatternError
from fodc.sim.page import NodeModel
from fodc.v1 import fodc_pb2 as pb
from fodc.window import FlightRecorder
from fodc.window.reads import TooManyPoints
from fodc.wire import registration_to_pb

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
    """Answers with replies built once per request shape (kind, span, names, chunk limit, series-table state) and
    kept serialized; each answer is those bytes behind the request's own id.

    A message's fields serialize in field-number order and request_id is field 1, so the id's bytes followed
    by the template's (built with no id) are exactly what serializing the template with the id gives."""

    def __init__(self, recorder: FlightRecorder) -> None:
        self.recorder = recorder
        self.table = SeriesTable()  # one numbering for every agent of the fleet: they hold the same series
        self._cache: dict[tuple, list[bytes]] = {}

    def __call__(self, request: pb.MetricsRequest, max_bytes: int) -> list[bytes]:
        table = request.latest_only and request.series_table.wanted  # as the agent's runtime answers
        held = request.series_table.SerializeToString(deterministic=True) if table else b""  # all it asks for
        key = (request.latest_only, request.start_unix_ms, request.end_unix_ms, tuple(request.names),
               request.name_regex, request.step_ms, request.agg, request.max_points, max_bytes, table, held)
        templates = self._cache.get(key)
        if templates is None:
            templates = self._cache[key] = [r.SerializeToString() for r in self._build(request, max_bytes, table)]
        request_id = pb.MetricsReply(request_id=request.request_id).SerializeToString()
        return [request_id + template for template in templates]

    def _build(self, request: pb.MetricsRequest, max_bytes: int, table: bool) -> list[pb.MetricsReply]:
        try:
            series = select_series(self.recorder, request)
            return list(self.table.replies("", series, request.series_table, max_bytes) if table
                        else chunk_replies("", series, max_bytes))
        except TooManyPoints as exc:  # as the agent's MetricsStream answers these two
            return [pb.MetricsReply(done=True, error=str(exc), refused_points=exc.points)]
        except PatternError as exc:
            return [pb.MetricsReply(done=True, error=f"invalid name_regex: {exc}")]


class Fleet:
    """`count` agents on one event loop in a thread of their own: start(), registered(), stop()."""

    def __init__(self, proxy: HostPort, count: int, responder: CachedResponder, *, metrics_streams: bool = True,
                 command_streams: bool = False, send_timeout_s: float = 10.0, first: int = 0) -> None:
        target = f"{proxy.dial_host}:{proxy.port}"
        ports = itertools.count(20000 + first)
        self.agents = [
            AioAgent(target, registration_to_pb(Registration(
                node_id=f"fleet-{i}", role=ROLES[i % len(ROLES)], primary=Address("127.0.0.1", next(ports)),
                labels={"fleet": "bench"}, agent_version="bench")), responder,
                metrics_stream=metrics_streams, command_stream=command_streams, send_timeout_s=send_timeout_s)
            for i in range(first, first + count)]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleet-loop", daemon=True)
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(60)

    async def _start(self) -> None:
        self._tasks = [asyncio.create_task(agent.run()) for agent in self.agents]

    def registered(self) -> int:
        return sum(agent.registered for agent in self.agents)

    def registrations(self) -> int:
        """Registrations so far, re-registrations included (more than the agents: some were dropped)."""
        return sum(agent.registrations for agent in self.agents)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Every agent says goodbye and closes its channel; those that cannot within timeout_s are cancelled."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(timeout_s), self._loop).result(timeout_s + 30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    async def _stop(self, timeout_s: float) -> None:
        for agent in self.agents:
            agent.stop()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=10)
