"""The proxy's gRPC servicer: a thin adapter between agent streams and the registry / request links.

Each RegisterAgent stream owns one registry "connection"; when the stream ends without a goodbye the
entry is marked unconnected (not removed), so operators still see the node until the cleanup timeout.
A registration that never streamed (no heartbeat, no request stream) expires after the hello timeout instead,
and gives way at once when the registry is full: a flood of them holds no slots. Every stream must identify
itself within the hello timeout, and a request stream is bound to the registration that created it by that
registration's stream secret (and, with mutual TLS, by the certificate naming the node), so knowing an
agent's public id is not enough to take its place.

The handlers are coroutines on grpc.aio's server, all on one event loop (fodc/proxy/loop_thread.py); what other
threads do to a stream (end it, send it a request) crosses over through StreamStop and RequestLink.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from fodc.proxy.admission import HelloGate, certificate_names, peer_host
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.links import LinkTable, RequestLink
from fodc.proxy.registration_limits import LimitExceeded, check_heartbeat
from fodc.proxy.registry import AgentRecord, AgentRegistry, RegistrationError, RegistryFull
from fodc.proxy.series_table import chunk_series
from fodc.proxy.stream_stop import Stopped, StreamStop
from fodc.refusals import RefusalLimiter
from fodc.times import now_ms
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc
from fodc.wire import registration_from_pb

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
        self._stops: dict[int, StreamStop] = {}  # registry connection -> how to end its registration stream
        self._secrets: dict[int, str] = {}  # registry connection -> its stream secret
        self._streamed: set[int] = set()  # connections that heartbeated or opened a request stream
        self._contexts_lock = threading.Lock()
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ registration

    async def RegisterAgent(self, request_iterator: AsyncIterator[pb.AgentMessage],  # noqa: N802 (gRPC name)
                            context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ProxyMessage]:
        connection: int | None = None
        agent_id = ""
        node = ""
        guard = RateGuard(MAX_AGENT_MESSAGES_PER_10S, 10.0)
        # Read now: the finally below may run after grpc.aio released the call, when asking it would crash.
        peer = context.peer()
        stop = StreamStop()
        ticket = await self._enter_gate(context, stop)
        try:
            while (msg := await stop.race(context.read())) is not grpc.aio.EOF:
                if not guard.allow():
                    log.warning("agent stream flooding; disconnected", extra={"fields": {
                        "agent_id": agent_id, "node_id": node, "peer": peer}})
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"more than {MAX_AGENT_MESSAGES_PER_10S} messages in 10 s; disconnected")
                kind = msg.WhichOneof("body")
                if kind == "register":
                    self.hello_gate.leave(ticket)
                    reg = registration_from_pb(msg.register)
                    node = reg.node_id
                    try:
                        self._admit(reg.node_id, peer, context)
                        record, previous = self.registry.register(reg, self._clock())
                    except RegistrationError as exc:
                        # A full registry may free up soon; a bad registration needs an operator.
                        base = self.heartbeat_interval_ms * 3 if isinstance(exc, RegistryFull) else 60_000
                        retry = max(1_000, min(30_000, base))
                        log.warning("registration refused", extra={"fields": {
                            "node_id": reg.node_id[:64], "role": reg.role[:64], "peer": peer,
                            "reason": str(exc)}})
                        self.refusals.refuse("registration", str(exc), peer=peer)
                        yield pb.ProxyMessage(registration=pb.RegistrationResult(
                            accepted=False, error=str(exc), retry_after_ms=retry))
                        return
                    if connection is not None:
                        self._forget_context(connection)
                    connection, agent_id = record.connection, record.agent_id
                    secret = secrets.token_urlsafe(24)
                    with self._contexts_lock:
                        self._stops[connection] = stop
                        self._secrets[connection] = secret
                    if previous is not None and previous.connection != connection:
                        self._cancel_connection(previous.connection, "replaced by a newer registration")
                        self.close_links(agent_id, "replaced by a newer registration")
                    log.info("agent registered", extra={"fields": {
                        "agent_id": agent_id, "node_id": reg.node_id, "role": reg.role,
                        "primary": str(reg.primary), "peer": peer,
                        "replaced": previous is not None}})
                    yield pb.ProxyMessage(registration=pb.RegistrationResult(
                        accepted=True, agent_id=agent_id, heartbeat_interval_ms=self.heartbeat_interval_ms,
                        max_message_bytes=self.max_message_bytes, stream_secret=secret))
                elif kind == "heartbeat":
                    if connection is None:
                        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "heartbeat before registration")
                    hb = msg.heartbeat
                    try:
                        check_heartbeat(hb.runtime, hb.capabilities, hb.incidents_total)
                    except LimitExceeded as exc:
                        self.refusals.refuse("heartbeat", str(exc), node_id=node[:64], peer=peer)
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"heartbeat refused: {exc}")
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
        except Stopped as stopped:
            await context.abort(grpc.StatusCode.CANCELLED, stopped.reason)
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
                                             "after the hello timeout", node_id=node[:64], peer=peer)

    def _admit(self, node_id: str, peer: str, context: grpc.aio.ServicerContext) -> None:
        """Raises RegistrationError for a peer registering too often, or (mutual TLS) a certificate that
        does not name the node."""
        host = peer_host(peer)
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

    async def _enter_gate(self, context: grpc.aio.ServicerContext, stop: StreamStop) -> int:
        """Admits a new stream to wait for its hello, or aborts it when too many are waiting already. The gate's
        deadline is enforced by the sweeper thread: it stops the stream through the loop."""
        peer = context.peer()

        def overdue() -> None:
            self.refusals.refuse("unidentified_stream", f"no hello within {self.hello_gate.timeout_s:g}s; "
                                 "stream closed", peer=peer)
            stop.request(f"no hello within {self.hello_gate.timeout_s:g}s")
        ticket = self.hello_gate.enter(time.monotonic(), overdue)
        if ticket is None:
            self.refusals.refuse("unidentified_stream", "too many streams waiting for their hello", peer=peer)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"more than {self.hello_gate.max_waiting} streams have not identified themselves "
                                "yet; try again")
        assert ticket is not None  # abort raised otherwise
        return ticket

    def _forget_context(self, connection: int) -> bool:
        """Drops what this registration stream held; True when it had streamed."""
        with self._contexts_lock:
            self._stops.pop(connection, None)
            self._secrets.pop(connection, None)
            streamed = connection in self._streamed
            self._streamed.discard(connection)
        return streamed

    def _cancel_connection(self, connection: int, reason: str) -> None:
        with self._contexts_lock:
            stop = self._stops.pop(connection, None)
            self._secrets.pop(connection, None)
        if stop is not None:
            stop.request(reason)

    def end_streams(self, record: AgentRecord, reason: str) -> None:
        """Closes every stream of an agent that stopped heartbeating (its registration's and its requests');
        from any thread."""
        with self._contexts_lock:
            stop = self._stops.get(record.connection)
        if stop is not None:
            stop.request(reason)
        self.close_links(record.agent_id, reason)

    def cancel_all(self) -> None:
        """Ends every agent stream (shutdown); agents reconnect to the next proxy instance. From any thread."""
        with self._contexts_lock:
            stops, self._stops = list(self._stops.values()), {}
        for stop in stops:
            stop.request("proxy shutting down")
        self.metrics_links.close_all("proxy shutting down")
        self.command_links.close_all("proxy shutting down")

    def close_links(self, agent_id: str, reason: str) -> None:
        self.metrics_links.close(agent_id, reason)
        self.command_links.close(agent_id, reason)

    # ------------------------------------------------------------------ request streams (metrics, commands)

    async def _serve_requests(self, kind: str, request_iterator: AsyncIterator[Any],
                              context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """A stream the agent opens with a hello (its agent id and stream secret); we send requests, it answers
        by id. Serves StreamMetrics and StreamCommands (below); the agent's messages are read through `context`."""
        table, route = (self.metrics_links, _route_metrics) if kind == "metrics" else (self.command_links,
                                                                                        _route_command)
        stop = StreamStop()
        ticket = await self._enter_gate(context, stop)
        try:
            hello = await stop.race(context.read())
        except Stopped as stopped:
            await context.abort(grpc.StatusCode.CANCELLED, stopped.reason)
        finally:
            self.hello_gate.leave(ticket)
        if hello is grpc.aio.EOF:
            return
        agent_id = hello.agent_id
        record = self.registry.get_by_id(agent_id) if agent_id else None
        if record is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"unknown agent id {agent_id[:64]!r}; register first")
        assert record is not None
        await self._check_binding(record, hello.stream_secret, kind, context)
        link = RequestLink(agent_id, loop=asyncio.get_running_loop())
        old = table.put(link)
        if old is not None:
            old.close(f"replaced by a newer {kind} stream")
        reader = asyncio.create_task(_read_replies(context, link, route, kind), name=f"{kind}-reader")

        def rpc_done(_context: grpc.aio.ServicerContext) -> None:
            """The RPC ended (also when this generator is left suspended and finalized later): the reader must
            not read again, since grpc.aio releases the call right after this."""
            reader.cancel()
            link.close(f"{kind} stream ended")
        context.add_done_callback(rpc_done)  # type: ignore[arg-type]  # the stub wants its own class, not a function
        try:
            # No polling: a request or the link closing (agent gone, replaced, proxy stopping) wakes the wait;
            # the agent hanging up cancels this coroutine.
            while not self.stopping.is_set():
                request = await link.next_request()
                if request is None:
                    break
                yield request
        finally:
            link.close(f"{kind} stream ended")
            table.remove(link)
            reader.cancel()
        unreadable = reader.result() if reader.done() and not reader.cancelled() else ""
        if unreadable:
            self.refusals.refuse("unreadable_reply", unreadable, agent_id=agent_id, stream=kind)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, unreadable)

    StreamMetrics = functools.partialmethod(_serve_requests, "metrics")  # noqa: N815 (gRPC name)
    StreamCommands = functools.partialmethod(_serve_requests, "commands")  # noqa: N815 (gRPC name)

    async def _check_binding(self, record: AgentRecord, secret: str, kind: str,
                             context: grpc.aio.ServicerContext) -> None:
        """Aborts a request stream that cannot prove it belongs to the agent's current registration."""
        fields: dict[str, Any] = {"agent_id": record.agent_id, "node_id": record.registration.node_id, "stream": kind,
                  "peer": context.peer()}
        if not secret:
            self.refusals.refuse("stream_without_secret", NO_SECRET, **fields)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, NO_SECRET)
        with self._contexts_lock:
            expected = self._secrets.get(record.connection)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            self.refusals.refuse("stream_hijack", "stream secret does not match the agent's registration", **fields)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"the stream secret does not match the current "
                                f"registration of agent {record.agent_id}; register again")
        if self.require_certificate_names and record.registration.node_id not in certificate_names(
                context.auth_context()):
            self.refusals.refuse("stream_hijack", "client certificate does not name the node", **fields)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the client certificate does not name node "
                                f"{record.registration.node_id!r}")
        with self._contexts_lock:
            self._streamed.add(record.connection)


async def _route_metrics(link: RequestLink, reply: pb.MetricsReply) -> bool:
    latest = reply.HasField("latest")
    chunk = reply if len(reply.families) or latest or reply.refused_points else None  # a refusal says how large
    series = sum(len(family.series) for family in reply.families)
    if latest:  # a series table answer (series_table.proto): every value and every definition counts
        series += chunk_series(reply.latest)
    return await link.route(reply.request_id, chunk, reply.ByteSize(), reply.done, reply.error or None, series)


_FINAL_STATES = {pb.CommandReply.DONE, pb.CommandReply.FAILED, pb.CommandReply.CANCELLED, pb.CommandReply.REJECTED}


async def _route_command(link: RequestLink, reply: pb.CommandReply) -> bool:
    # Every state change is delivered (the job tracker shows it); the final one also ends the request.
    return await link.route(reply.command_id, reply, reply.ByteSize(), reply.state in _FINAL_STATES)


async def _read_replies(context: grpc.aio.ServicerContext, link: RequestLink,
                        route: Callable[[RequestLink, Any], Awaitable[bool]], kind: str) -> str:
    """Routes the agent's answers until it closes the stream; replaces the reader thread each request stream
    had under grpcio's synchronous server. Returns why the stream must be refused ("" when it ended normally):
    a message that is not the expected protobuf."""
    unmatched = 0
    try:
        while (reply := await context.read()) is not grpc.aio.EOF:
            if await route(link, reply) is False:
                unmatched += 1
                if unmatched > MAX_UNMATCHED_REPLIES:
                    log.warning("agent floods a request stream with replies nobody asked for; closing it",
                                extra={"fields": {"agent_id": link.agent_id, "kind": kind}})
                    return ""
            else:
                unmatched = 0
    except DecodeError as exc:
        log.warning("agent sent an unreadable message on a request stream; closing it", extra={"fields": {
            "agent_id": link.agent_id, "kind": kind, "reason": str(exc)[:200]}})
        return f"unreadable {kind} reply: {str(exc)[:200]}"
    except (grpc.RpcError, grpc.aio.BaseError):
        pass  # the RPC ended under the reader (aborted, cancelled, server stopping)
    finally:
        link.close(f"agent closed the {kind} stream")
    return ""
