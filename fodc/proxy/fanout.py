"""On-demand fan-out of a metrics request to many agents, with ids, per-agent deadlines and no silent loss.

Requests go out to every target first (each with its own id), then replies are read agent by agent within
one overall deadline; agents that did not answer are reported back by name with the reason.
"""

from __future__ import annotations

import logging
import queue
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.links import (
    LinkBusy,
    LinkClosed,
    LinkTable,
    PendingReply,
    ReaderTooSlow,
    ReplyLimits,
    ReplyTimeout,
    RequestBudget,
    RequestLink,
    new_request_id,
)
from fodc.proxy.registry import ONLINE, AgentRecord, AgentRegistry
from fodc.proxy.selfmetrics import ProxyMetrics
from fodc.proxy.series_table import AgentSeriesTable
from fodc.v1 import fodc_pb2 as pb

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Missing:
    record: AgentRecord
    reason: str
    client_slow: bool = False  # lost because the HTTP client read too slowly, not the agent: not counted


@dataclass
class Collection:
    """One fan-out in progress: iterate `replies()` for (agent, chunk); then read `missing`."""

    endpoint: str
    sent: list[tuple[AgentRecord, str, PendingReply]]
    deadline: float
    fanout: MetricsFanout
    missing: list[Missing] = field(default_factory=list)
    answered: list[AgentRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    cancellable: bool = False  # window reads: agents can stop one half-way (MetricsRequest.cancel)
    tables: dict[str, AgentSeriesTable] = field(default_factory=dict)  # agent id -> its series table (/metrics)

    def refusal(self) -> str | None:
        """Waits (within the deadline) for every agent's first chunk and returns why the request is too large
        when an agent refused it as such (MetricsReply.refused_points), after cancelling the others; else
        None, and replies() yields those first chunks as usual."""
        refused = []
        for record, _, pending in self.sent:
            first = pending.peek(max(0.0, self.deadline - time.monotonic()))
            if first is not None and first.refused_points:
                refused.append(f"node {record.registration.node_id}: {first.error}")
        if not refused:
            return None
        self._release(cancel=True)
        return "; ".join(refused[:3]) + (f" (and {len(refused) - 3} more nodes)" if len(refused) > 3 else "")

    def _release(self, cancel: bool) -> None:
        """Drops what is still pending so late chunks are not queued; with `cancel`, the agents still
        answering are told to stop, so they do no work for a requester that is gone."""
        for record, request_id, _ in self.sent:
            link = self.fanout.links.get(record.agent_id)
            if link is None:
                continue
            link.forget(request_id)
            if cancel and record not in self.answered:
                link.post(pb.MetricsRequest(request_id=request_id, cancel=True))

    def _agent_chunks(self, record: AgentRecord, request_id: str, pending: PendingReply) -> Iterator[pb.MetricsReply]:
        """One agent's chunks; at the end the agent is in `answered` or in `missing` (with the reason)."""
        link = self.fanout.links.get(record.agent_id)
        granting = link if self.cancellable else None  # a window read: grant chunks as they are read
        flow = granting is not None
        if granting is not None:
            granting.post(pb.MetricsRequest(request_id=request_id, grant=WINDOW_READ_AHEAD))
        # The deadline is the agents': chunks that arrived in time count, however long the HTTP client takes
        # to read what came before them. Under flow control an agent sends only what it is granted, so there
        # each chunk must come within the timeout of being granted instead.
        deadline = float("inf") if flow else self.deadline
        wait_s = self.fanout.timeout_s if flow else max(0.05, self.deadline - time.monotonic())
        try:
            for chunk in pending.chunks(timeout_s=wait_s):
                if pending.arrived_at > deadline:
                    raise ReplyTimeout("deadline passed while the reply was still streaming")
                yield chunk
                if granting is not None:
                    granting.post(pb.MetricsRequest(request_id=request_id, grant=1))
            if pending.arrived_at > deadline:
                raise ReplyTimeout("deadline passed before the reply was complete")
            self.answered.append(record)
            # Measured from when the request went out (all were sent at the start of the fan-out).
            self.fanout.metrics.observe_agent(record, pending.arrived_at - self.started, pending.bytes_received)
        except ReaderTooSlow as exc:
            self.missing.append(Missing(record, str(exc), client_slow=True))
        except (ReplyTimeout, LinkClosed) as exc:
            self.missing.append(Missing(record, str(exc)))
            if pending.overflow:
                self.fanout.refusals.refuse("oversized_reply", pending.overflow,
                                            node_id=record.registration.node_id)
        finally:
            if link is not None:
                link.forget(request_id)

    def _finish(self) -> None:
        # Anything not consumed (client went away, deadline passed) is released and cancelled.
        self._release(cancel=self.cancellable)
        self.fanout.metrics.observe_fanout(self.endpoint, time.monotonic() - self.started, self.missing,
                                           self.answered)
        for miss in self.missing:
            log.warning("agent did not answer a metrics request", extra={"fields": {
                "endpoint": self.endpoint, "node_id": miss.record.registration.node_id,
                "agent_id": miss.record.agent_id, "reason": miss.reason}})

    def replies(self) -> Iterator[tuple[AgentRecord, pb.MetricsReply]]:
        """(agent, chunk) as chunks arrive, agent after agent."""
        try:
            for record, request_id, pending in self.sent:
                for chunk in self._agent_chunks(record, request_id, pending):
                    yield record, chunk
        finally:
            self._finish()

    def refuse(self, record: AgentRecord, reason: str) -> None:
        """An answer that arrived whole but cannot be used: the agent counts as missing, with the reason."""
        if record in self.answered:
            self.answered.remove(record)
        self.missing.append(Missing(record, reason))
        self.fanout.refusals.refuse("series_table", reason, node_id=record.registration.node_id)

    def whole_replies(self) -> Iterator[tuple[AgentRecord, list[pb.MetricsReply]]]:
        """Each agent's reply as a list of chunks, in the order the replies complete (so the first agent to
        answer is written first, whoever was asked first); an agent cut off half-way (cap, deadline,
        disconnect) is left out here and listed in `missing`."""
        ended: queue.SimpleQueue[str] = queue.SimpleQueue()
        waiting = {request_id: (record, request_id, pending) for record, request_id, pending in self.sent}
        for _, _, pending in self.sent:
            pending.when_ended(ended.put)
        try:
            while waiting:
                try:
                    request_id = ended.get(timeout=max(0.0, self.deadline - time.monotonic()))
                except queue.Empty:
                    break  # the deadline passed: what is still waiting times out below
                entry = waiting.pop(request_id, None)
                if entry is not None:
                    yield from self._whole(*entry)
            for entry in list(waiting.values()):
                yield from self._whole(*entry)
        finally:
            self._finish()

    def _whole(self, record: AgentRecord, request_id: str, pending: PendingReply
               ) -> Iterator[tuple[AgentRecord, list[pb.MetricsReply]]]:
        chunks = list(self._agent_chunks(record, request_id, pending))
        if self.answered and self.answered[-1] is record:
            yield record, chunks


LINK_WAIT_S = 3.0
# Window reads stream under flow control (MetricsRequest.window_credit): every agent sends one chunk of at most
# WINDOW_CHUNK_BYTES at once, then more only while it is the agent being read, WINDOW_READ_AHEAD chunks ahead.
# The proxy so holds ~64 KiB per agent waiting its turn instead of whatever each agent could send.
WINDOW_CHUNK_BYTES = 64 * 1024
WINDOW_READ_AHEAD = 4


class MetricsFanout:
    def __init__(self, registry: AgentRegistry, links: LinkTable, metrics: ProxyMetrics, *,
                 timeout_s: float, max_chunk_bytes: int, window_max_points: int = 4_000_000,
                 max_reply_bytes: int | None = None, max_reply_series: int | None = None,
                 max_request_bytes: int | None = None, refusals: Refusals | None = None) -> None:
        self.registry = registry
        self.max_reply_bytes = max_reply_bytes
        self.max_reply_series = max_reply_series
        self.max_request_bytes = max_request_bytes
        self.refusals = refusals or Refusals()
        self.links = links
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.max_chunk_bytes = max_chunk_bytes
        self.window_max_points = window_max_points
        # Each metrics stream's series table (fodc.proxy.series_table); it goes with its stream.
        self.tables: weakref.WeakKeyDictionary[RequestLink, AgentSeriesTable] = weakref.WeakKeyDictionary()

    def targets(self, node_id: str | None = None, role: str | None = None) -> list[AgentRecord]:
        return self.registry.list(role=role, node_id=node_id, status=ONLINE)

    def collect(self, endpoint: str, targets: list[AgentRecord], *, latest_only: bool,
                start_ms: int = 0, end_ms: int = 0, names: tuple[str, ...] = (), name_regex: str = "",
                step_ms: int = 0, agg: str = "") -> Collection:
        sent: list[tuple[AgentRecord, str, PendingReply]] = []
        missing: list[Missing] = []
        # An agent opens its metrics stream just after it registers: wait for such a link, once for the whole
        # fan-out (not once per agent), so a scrape right after an agent (re)starts does not miss it.
        links_by = time.monotonic() + min(LINK_WAIT_S, self.timeout_s)
        budget = RequestBudget(self.max_request_bytes) if self.max_request_bytes else None
        limits = ReplyLimits(self.max_reply_bytes, self.max_reply_series, budget)
        tables: dict[str, AgentSeriesTable] = {}
        for record in targets:
            link = self.links.wait(record.agent_id, max(0.0, links_by - time.monotonic()))
            if link is None:
                missing.append(Missing(record, "agent has no metrics stream open"))
                continue
            request_id = new_request_id()
            request = pb.MetricsRequest(request_id=request_id, latest_only=latest_only, start_unix_ms=start_ms,
                                        end_unix_ms=end_ms, names=list(names), name_regex=name_regex,
                                        max_chunk_bytes=self.max_chunk_bytes, step_ms=step_ms, agg=agg,
                                        max_points=0 if latest_only else self.window_max_points)
            if not latest_only:  # flow control: one small chunk until this agent's turn (Collection.replies)
                request.window_credit = 1
                request.max_chunk_bytes = min(self.max_chunk_bytes, WINDOW_CHUNK_BYTES)
            if latest_only:
                table = tables[record.agent_id] = self.tables.setdefault(link, AgentSeriesTable())
                request.series_table.CopyFrom(table.state())
            try:
                sent.append((record, request_id, link.send(request_id, request, limits)))
            except (LinkBusy, LinkClosed) as exc:
                missing.append(Missing(record, str(exc)))
        return Collection(endpoint, sent, time.monotonic() + self.timeout_s, self, missing=missing,
                          cancellable=not latest_only, tables=tables)
