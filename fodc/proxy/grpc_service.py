"""The proxy's gRPC servicer: a thin adapter between agent streams and the registry / request links.

Each RegisterAgent stream owns one registry "connection"; when the stream ends without a goodbye the
entry is marked unconnected (not removed), so operators still see the node until the cleanup timeout.
A registration that never streamed (no heartbeat, no request stream) expires after the hello timeout instead,
and gives way at once when the registry is full: a flood of them holds no slots. Every stream must identify
itself within the hello timeout, and a request stream is bound to the registration that created it by that
registration's stream secret (and, with mutual TLS, by the certificate naming the node), so knowing an
agent's public id is not enough to take its place.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import grpc

from fodc.proxy.admission import HelloGate, certificate_names, peer_host
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.links import LinkTable, RequestLink
from fodc.proxy.registration_limits import LimitExceeded, check_heartbeat
from fodc.proxy.registry import AgentRecord, AgentRegistry, RegistrationError, RegistryFull
from fodc.proxy.series_table import chunk_series
from fodc.refusals import RefusalLimiter
from fodc.times import now_ms
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc
from fodc.wire import registration_from_pb


class _Answer(Protocol):
    """What an agent sends on a request stream (MetricsReply, CommandReply): the hello's fields are common."""

    agent_id: str
    stream_secret: str


Reply = TypeVar("Reply", bound=_Answer)

log = logging.getLogger(__name__)


class RateGuard:
    """At most `limit` events per `per_s` seconds (a fixed window: cheap, and exact enough to spot a flood)."""

    def __init__(self, limit: int, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.per_s, self._clock = limit, per_s, clock
        self._window_start, self._count = clock(), 0

    def allow(self) -> bool:
        now = self._clock()
        if now - self._window_start >= self.per_s:
            self._window_start, self._count = now, 0
        self._count += 1
        return self._count <= self.limit


# An agent sends one heartbeat per interval (10 s by default); dozens a second is a broken or hostile client.
MAX_AGENT_MESSAGES_PER_10S = 100
# Late chunks of abandoned requests are normal; thousands in a row that match nothing are not.
MAX_UNMATCHED_REPLIES = 5_000
WRITER_SAFETY_WAKE_S = 10.0  # a request stream's writer rechecks its RPC this often even when nothing woke it
CONFLICT_NEWS_MS = 60_000  # how long a refused claim on a key is repeated to its holder with each heartbeat ack


def registration_rate(per_minute: int) -> RefusalLimiter:
    """At most `per_minute` registrations a minute per peer address, in bursts of as many."""
    return RefusalLimiter(burst=per_minute, per_second=per_minute / 60)


NO_SECRET = ("this proxy binds every stream to its registration: the hello must repeat the stream_secret of "
             "the RegistrationResult (agents older than this proxy do not send one: upgrade fodc-agent)")


class FODCServicer(pb_grpc.FODCServiceServicer):
    def __init__(self, registry: AgentRegistry, *, heartbeat_interval_s: float, max_message_bytes: int,
                 on_progress: Callable[[], None] = lambda: None, clock: Callable[[], int] = now_ms,
                 refusals: Refusals | None = None, hello_gate: HelloGate | None = None,
                 peer_rate: RefusalLimiter | None = None, require_certificate_names: bool = False) -> None:
        self.registry = registry
        self.refusals = refusals or Refusals()
        self.hello_gate = hello_gate or HelloGate(10.0, 256)
        # registrations per peer address: a token bucket of a minute's worth
        self.peer_rate = peer_rate or registration_rate(300)
        self.require_certificate_names = require_certificate_names
        self.metrics_links = LinkTable()
        self.command_links = LinkTable()
        self.heartbeat_interval_ms = int(heartbeat_interval_s * 1000)
        self.max_message_bytes = max_message_bytes
        self._clock = clock
        self._on_progress = on_progress
        self._contexts: dict[int, grpc.ServicerContext] = {}
        self._secrets: dict[int, str] = {}  # registry connection -> its stream secret
        self._streamed: set[int] = set()  # connections that heartbeated or opened a request stream
        self._contexts_lock = threading.Lock()
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ registration

    def RegisterAgent(self, request_iterator: Iterator[pb.AgentMessage],  # noqa: N802 (gRPC name)
                      context: grpc.ServicerContext) -> Iterator[pb.ProxyMessage]:
        connection: int | None = None
        agent_id = ""
        node = ""
        guard = RateGuard(MAX_AGENT_MESSAGES_PER_10S, 10.0)
        ticket = self._enter_gate(context)
        try:
            for msg in request_iterator:
                if not guard.allow():
                    log.warning("agent stream flooding; disconnected", extra={"fields": {
                        "agent_id": agent_id, "node_id": node, "peer": context.peer()}})
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  f"more than {MAX_AGENT_MESSAGES_PER_10S} messages in 10 s; disconnected")
                kind = msg.WhichOneof("body")
                if kind == "register":
                    self.hello_gate.leave(ticket)
                    reg = registration_from_pb(msg.register)
                    node = reg.node_id
                    try:
                        self._admit(reg.node_id, context)
                        record, previous = self.registry.register(reg, self._clock())
                    except RegistrationError as exc:
                        # A full registry may free up soon; a bad registration needs an operator.
                        base = self.heartbeat_interval_ms * 3 if isinstance(exc, RegistryFull) else 60_000
                        retry = max(1_000, min(30_000, base))
                        log.warning("registration refused", extra={"fields": {
                            "node_id": reg.node_id[:64], "role": reg.role[:64], "peer": context.peer(),
                            "reason": str(exc)}})
                        self.refusals.refuse("registration", str(exc), peer=context.peer())
                        yield pb.ProxyMessage(registration=pb.RegistrationResult(
                            accepted=False, error=str(exc), retry_after_ms=retry))
                        return
                    if connection is not None:
                        self._forget_context(connection)
                    connection, agent_id = record.connection, record.agent_id
                    secret = secrets.token_urlsafe(24)
                    with self._contexts_lock:
                        self._contexts[connection] = context
                        self._secrets[connection] = secret
                    if previous is not None and previous.connection != connection:
                        self._cancel_connection(previous.connection)
                        self.close_links(agent_id, "replaced by a newer registration")
                    log.info("agent registered", extra={"fields": {
                        "agent_id": agent_id, "node_id": reg.node_id, "role": reg.role,
                        "primary": str(reg.primary), "peer": context.peer(),
                        "replaced": previous is not None}})
                    yield pb.ProxyMessage(registration=pb.RegistrationResult(
                        accepted=True, agent_id=agent_id, heartbeat_interval_ms=self.heartbeat_interval_ms,
                        max_message_bytes=self.max_message_bytes, stream_secret=secret))
                elif kind == "heartbeat":
                    if connection is None:
                        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "heartbeat before registration")
                    hb = msg.heartbeat
                    try:
                        check_heartbeat(hb.runtime, hb.capabilities, hb.incidents_total)
                    except LimitExceeded as exc:
                        self.refusals.refuse("heartbeat", str(exc), node_id=node[:64], peer=context.peer())
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"heartbeat refused: {exc}")
                    with self._contexts_lock:
                        self._streamed.add(connection)
                    if not self.registry.heartbeat(agent_id, connection, self._clock(),
                                                   dict(hb.runtime), dict(hb.capabilities),
                                                   dict(hb.incidents_total)):
                        yield pb.ProxyMessage(registration=pb.RegistrationResult(
                            accepted=False, error="this agent is no longer registered here; register again",
                            retry_after_ms=0))
                        return
                    self._on_progress()
                    now_ms = self._clock()  # a claim on this key refused lately: the holder hears of it too
                    yield pb.ProxyMessage(heartbeat_ack=pb.HeartbeatAck(
                        received_unix_ms=now_ms, warning=self.registry.conflict(agent_id, now_ms - CONFLICT_NEWS_MS)))
                elif kind == "goodbye":
                    if connection is not None:
                        self.registry.unregister(agent_id, connection)
                        self.close_links(agent_id, "agent said goodbye")
                        log.info("agent unregistered (goodbye)", extra={"fields": {
                            "agent_id": agent_id, "node_id": node, "reason": msg.goodbye.reason}})
                        self._forget_context(connection)
                        connection = None
                    return
        finally:
            self.hello_gate.leave(ticket)
            if connection is not None:
                streamed = self._forget_context(connection)
                expire_ms = None if streamed else int(self.hello_gate.timeout_s * 1000)
                if self.registry.connection_lost(agent_id, connection, self._clock(), expire_ms):
                    log.warning("agent stream lost; marked unconnected", extra={"fields": {
                        "agent_id": agent_id, "node_id": node, "never_streamed": not streamed}})
                    if not streamed:
                        self.refusals.refuse("unstreamed_registration", "registration stream ended before the "
                                             "agent heartbeated or opened a request stream; the entry expires "
                                             "after the hello timeout", node_id=node[:64], peer=context.peer())

    def _admit(self, node_id: str, context: grpc.ServicerContext) -> None:
        """Raises RegistrationError for a peer registering too often, or (mutual TLS) a certificate that
        does not name the node."""
        host = peer_host(context.peer())
        if not self.peer_rate.admit(host, time.monotonic())[0]:
            raise RegistrationError(f"too many registrations from {host}: at most {self.peer_rate.burst} a "
                                    f"minute per address (--registrations-per-peer)")
        if self.require_certificate_names:
            names = certificate_names(context.auth_context())
            if node_id not in names:
                raise RegistrationError(
                    f"the client certificate names {', '.join(sorted(names)[:4]) or 'nothing'}, not node id "
                    f"{node_id[:64]!r}: with mutual TLS an agent's certificate must carry its node id as CN or "
                    f"subjectAltName (docs/tls.md)")

    def _enter_gate(self, context: grpc.ServicerContext) -> int:
        """Admits a new stream to wait for its hello, or aborts it when too many are waiting already."""
        def overdue() -> None:
            self.refusals.refuse("unidentified_stream", f"no hello within {self.hello_gate.timeout_s:g}s; "
                                 "stream closed", peer=context.peer())
            context.cancel()
        ticket = self.hello_gate.enter(time.monotonic(), overdue)
        if ticket is None:
            self.refusals.refuse("unidentified_stream", "too many streams waiting for their hello",
                                 peer=context.peer())
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"more than {self.hello_gate.max_waiting} streams have not identified themselves yet; "
                          "try again")
        return ticket

    def _forget_context(self, connection: int) -> bool:
        """Drops what this registration stream held; True when it had streamed."""
        with self._contexts_lock:
            self._contexts.pop(connection, None)
            self._secrets.pop(connection, None)
            streamed = connection in self._streamed
            self._streamed.discard(connection)
        return streamed

    def _cancel_connection(self, connection: int) -> None:
        with self._contexts_lock:
            context = self._contexts.pop(connection, None)
            self._secrets.pop(connection, None)
        if context is not None:
            context.cancel()

    def end_streams(self, record: AgentRecord, reason: str) -> None:
        """Closes every stream of an agent that stopped heartbeating (its registration's and its requests')."""
        with self._contexts_lock:
            context = self._contexts.get(record.connection)
        if context is not None:
            context.cancel()
        self.close_links(record.agent_id, reason)

    def cancel_all(self) -> None:
        """Ends every agent stream (shutdown); agents reconnect to the next proxy instance."""
        with self._contexts_lock:
            contexts, self._contexts = list(self._contexts.values()), {}
        for context in contexts:
            context.cancel()
        self.metrics_links.close_all("proxy shutting down")
        self.command_links.close_all("proxy shutting down")

    def close_links(self, agent_id: str, reason: str) -> None:
        self.metrics_links.close(agent_id, reason)
        self.command_links.close(agent_id, reason)

    # ------------------------------------------------------------------ request streams (metrics, commands)

    def StreamMetrics(self, request_iterator: Iterator[pb.MetricsReply],  # noqa: N802 (gRPC name)
                      context: grpc.ServicerContext) -> Iterator[pb.MetricsRequest]:
        yield from self._serve_requests("metrics", self.metrics_links, request_iterator, context, _route_metrics)

    def StreamCommands(self, request_iterator: Iterator[pb.CommandReply],  # noqa: N802 (gRPC name)
                       context: grpc.ServicerContext) -> Iterator[pb.Command]:
        yield from self._serve_requests("commands", self.command_links, request_iterator, context, _route_command)

    def _serve_requests(self, kind: str, table: LinkTable, replies: Iterator[Reply], context: grpc.ServicerContext,
                        route: Callable[[RequestLink, Reply], bool]) -> Iterator[Any]:
        """A stream the agent opens with a hello (its agent id and stream secret); we send requests, it answers
        by id."""
        ticket = self._enter_gate(context)
        try:
            hello = next(replies, None)
        except grpc.RpcError:
            return
        finally:
            self.hello_gate.leave(ticket)
        if hello is None or not context.is_active():
            return
        agent_id = hello.agent_id
        record = self.registry.get_by_id(agent_id) if agent_id else None
        if record is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"unknown agent id {agent_id[:64]!r}; register first")
        self._check_binding(record, hello.stream_secret, kind, context)
        link = RequestLink(agent_id)
        old = table.put(link)
        if old is not None:
            old.close(f"replaced by a newer {kind} stream")
        reader = threading.Thread(target=_read_replies, args=(replies, link, route, kind),
                                  name=f"{kind}-reader-{agent_id[:8]}", daemon=True)
        reader.start()
        context.add_callback(lambda: link.close(f"{kind} stream ended"))  # wakes the wait below
        try:
            # No polling: a request, the link closing (agent gone, replaced, proxy stopping) or the RPC ending
            # wakes the wait; the timeout is only a safety net. 1,000 agents' writers waking twice a second
            # cost the proxy more than their heartbeats (bench/bench_fleet_load.py).
            while context.is_active() and not link.closed.is_set() and not self.stopping.is_set():
                request = link.next_outbound(WRITER_SAFETY_WAKE_S)
                if request is not None:
                    yield request
        finally:
            link.close(f"{kind} stream ended")
            table.remove(link)


    def _check_binding(self, record: AgentRecord, secret: str, kind: str, context: grpc.ServicerContext) -> None:
        """Aborts a request stream that cannot prove it belongs to the agent's current registration."""
        fields: dict[str, Any] = {"agent_id": record.agent_id, "node_id": record.registration.node_id, "stream": kind,
                  "peer": context.peer()}
        if not secret:
            self.refusals.refuse("stream_without_secret", NO_SECRET, **fields)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, NO_SECRET)
        with self._contexts_lock:
            expected = self._secrets.get(record.connection)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            self.refusals.refuse("stream_hijack", "stream secret does not match the agent's registration", **fields)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"the stream secret does not match the current "
                          f"registration of agent {record.agent_id}; register again")
        if self.require_certificate_names and record.registration.node_id not in certificate_names(
                context.auth_context()):
            self.refusals.refuse("stream_hijack", "client certificate does not name the node", **fields)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "the client certificate does not name node "
                          f"{record.registration.node_id!r}")
        with self._contexts_lock:
            self._streamed.add(record.connection)


def _route_metrics(link: RequestLink, reply: pb.MetricsReply) -> bool:
    latest = reply.HasField("latest")
    chunk = reply if len(reply.families) or latest or reply.refused_points else None  # a refusal says how large
    series = sum(len(family.series) for family in reply.families)
    if latest:  # a series table answer (series_table.proto): every value and every definition counts
        series += chunk_series(reply.latest)
    return link.route(reply.request_id, chunk, reply.ByteSize(), reply.done, reply.error or None, series)


_FINAL_STATES = {pb.CommandReply.DONE, pb.CommandReply.FAILED, pb.CommandReply.CANCELLED, pb.CommandReply.REJECTED}


def _route_command(link: RequestLink, reply: pb.CommandReply) -> bool:
    # Every state change is delivered (the job tracker shows it); the final one also ends the request.
    return link.route(reply.command_id, reply, reply.ByteSize(), reply.state in _FINAL_STATES)


def _read_replies(replies: Iterator, link: RequestLink, route: Callable[[RequestLink, object], bool],
                  kind: str) -> None:
    unmatched = 0
    try:
        for reply in replies:
            if route(link, reply) is False:
                unmatched += 1
                if unmatched > MAX_UNMATCHED_REPLIES:
                    log.warning("agent floods a request stream with replies nobody asked for; closing it",
                                extra={"fields": {"agent_id": link.agent_id, "kind": kind}})
                    return
            else:
                unmatched = 0
    except grpc.RpcError:
        pass
    finally:
        link.close(f"agent closed the {kind} stream")
