"""One synthetic agent as coroutines on grpc.aio: its own channel and the three streams of a real agent.

The production agent is synchronous (a session thread, a reader thread per stream, answer pools: ~9 threads
each), and a thousand of them on one 2-core machine fought over their GILs until they missed heartbeats
(bench/README.md, bench_fleet_load.py). Here an agent costs a few coroutines, so one process holds hundreds,
each still with its own channel (its own TCP connection, as on real hosts) and all three streams. What goes
on the wire is the agent's: registration and heartbeats from fodc.wire, the agent's channel options, replies
from the agent's encoders (bench/fleet.py's CachedResponder, already serialized), window reads under the
proxy's flow-control credit by the rules of fodc.agent.streams.MetricsStream (its limits imported from there),
busy answers when too many requests are in flight, and a redial with jittered backoff whenever a stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import grpc

from fodc.agent.backoff import Backoff
from fodc.agent.session import Refused, SessionError, channel_options
from fodc.agent.streams import GRANT_WAIT_S, MAX_GRANT, MAX_WINDOW_READS, WINDOW_CHUNK_BYTES
from fodc.model import HeartbeatInfo
from fodc.times import now_ms
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc
from fodc.wire import heartbeat_pb

log = logging.getLogger(__name__)

# Answers already serialized: (request, chunk limit) -> the reply messages' bytes, carrying the request's id.
Responder = Callable[[pb.MetricsRequest, int], list[bytes]]

_NO_INFO = HeartbeatInfo({}, {})
_METRICS_METHOD = f"/{pb.DESCRIPTOR.services_by_name['FODCService'].full_name}/StreamMetrics"
REOPEN_S = 1.0  # a request stream that ended is reopened after this long, as the agent does


class AioAgent:
    """Registers, heartbeats and holds its request streams until stop(); redials whenever the session ends."""

    def __init__(self, target: str, registration: pb.Registration, responder: Responder, *,
                 metrics_stream: bool = True, command_stream: bool = False, send_timeout_s: float = 10.0,
                 max_backoff_s: float = 2.0, max_in_flight: int = 4,
                 max_message_bytes: int = 4 * 1024 * 1024) -> None:
        self.target = target
        self.registration = registration
        self.responder = responder
        self.metrics_stream = metrics_stream
        self.command_stream = command_stream
        self.send_timeout_s = send_timeout_s
        self.max_in_flight = max_in_flight
        self.max_message_bytes = max_message_bytes
        self._backoff = Backoff(max_s=max_backoff_s)
        self._stopping = asyncio.Event()
        self.registered = False
        self.registrations = 0
        self.answered = 0
        self.failed = 0

    def stop(self) -> None:
        """Ends the session at its next heartbeat wait with a goodbye (call on the agent's event loop)."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            channel = grpc.aio.insecure_channel(self.target, options=channel_options(self.max_message_bytes))
            delay = None
            try:
                await self._session(channel)
                self._backoff.reset()
            except Refused as exc:
                delay = exc.retry_after_s
            except (SessionError, grpc.RpcError, asyncio.InvalidStateError) as exc:  # the last: a write to an
                log.debug("session of %s ended: %s", self.registration.node_id, exc)  # RPC that had ended
            except Exception:  # never let an agent die: it must keep trying, as the agent's session does
                log.exception("unexpected error in the session of %s", self.registration.node_id)
            finally:
                self.registered = False
                await channel.close()
            await self._stopped_within(delay if delay is not None else self._backoff.next_delay())

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _session(self, channel: grpc.aio.Channel) -> None:
        call = pb_grpc.FODCServiceStub(channel).RegisterAgent()
        try:
            await self._within(call.write(pb.AgentMessage(register=self.registration)), "registration")
            reply = await self._reply(call, "registration result")
            if reply.WhichOneof("body") != "registration":
                raise SessionError("proxy answered registration with something else")
            result = reply.registration
            if not result.accepted:
                raise Refused(result.error or "no reason given", max(1.0, result.retry_after_ms / 1000))
            self.registered = True
            self.registrations += 1
            max_bytes = result.max_message_bytes or self.max_message_bytes
            streams = []
            if self.metrics_stream:
                hello = pb.MetricsReply(agent_id=result.agent_id, stream_secret=result.stream_secret)
                streams.append(asyncio.create_task(self._keep_open(MetricsAnswers(
                    channel, hello.SerializeToString(), self.responder, max_bytes, self))))
            if self.command_stream:
                hello = pb.CommandReply(agent_id=result.agent_id, stream_secret=result.stream_secret)
                streams.append(asyncio.create_task(self._keep_open(CommandAnswers(channel, hello, self))))
            try:
                await self._heartbeats(call, max(0.1, result.heartbeat_interval_ms / 1000 or 10.0))
            finally:
                for task in streams:
                    task.cancel()
                await asyncio.gather(*streams, return_exceptions=True)
        finally:
            call.cancel()

    async def _heartbeats(self, call: grpc.aio.StreamStreamCall, interval_s: float) -> None:
        while not await self._stopped_within(interval_s):
            await self._within(call.write(heartbeat_pb(now_ms(), _NO_INFO)), "heartbeat")
            reply = await self._reply(call, "heartbeat acknowledgement")
            if reply.WhichOneof("body") == "registration" and not reply.registration.accepted:
                raise SessionError(f"proxy dropped our registration: {reply.registration.error}")
        await self._within(call.write(pb.AgentMessage(goodbye=pb.Goodbye(reason="agent shutting down"))), "goodbye")
        with contextlib.suppress(SessionError, grpc.RpcError):
            await self._within(call.done_writing(), "goodbye")
            while await self._reply(call, "end of stream") is not None:
                pass

    async def _reply(self, call: grpc.aio.StreamStreamCall, what: str) -> pb.ProxyMessage:
        message = await self._within(call.read(), what)
        if message is grpc.aio.EOF:
            if what == "end of stream":
                return None  # type: ignore[return-value]
            raise SessionError(f"proxy closed the stream while we waited for the {what}")
        return message

    async def _within(self, step, what: str):  # noqa: ANN001, ANN202 - any awaitable, its result
        try:
            return await asyncio.wait_for(step, self.send_timeout_s)
        except TimeoutError:
            raise SessionError(f"no {what} within {self.send_timeout_s:g}s") from None

    async def _keep_open(self, stream: RequestStream) -> None:
        """Holds a request stream open for the whole session, reopening it after REOPEN_S when it ends."""
        while True:
            await stream.serve_once()
            await asyncio.sleep(REOPEN_S)


class RequestStream:
    """One open request stream: the hello, then each request read dispatched; replies written one at a time."""

    def __init__(self, agent: AioAgent) -> None:
        self.agent = agent
        self._call: grpc.aio.StreamStreamCall | None = None
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._in_flight = 0

    def _open(self) -> grpc.aio.StreamStreamCall:
        raise NotImplementedError

    def _hello(self) -> object:
        raise NotImplementedError

    def _dispatch(self, request) -> None:  # noqa: ANN001 - the stream's request message
        raise NotImplementedError

    async def serve_once(self) -> None:
        self._call = call = self._open()
        self._write_lock = asyncio.Lock()
        try:
            await self.write(self._hello())
            while (request := await call.read()) is not grpc.aio.EOF:
                self._dispatch(request)
        except (grpc.RpcError, SessionError, asyncio.InvalidStateError) as exc:
            log.debug("%s stream ended: %s", type(self).__name__, exc)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            call.cancel()

    async def write(self, message: object) -> None:
        """Sends one message within the agent's send timeout; a stream that stays stuck is cancelled (and
        reopened), as the agent reopens one whose outbox stays full."""
        assert self._call is not None
        try:
            async with asyncio.timeout(self.agent.send_timeout_s):
                async with self._write_lock:
                    await self._call.write(message)
        except TimeoutError:
            self._call.cancel()
            raise SessionError(f"stream stuck: could not send within {self.agent.send_timeout_s:g}s") from None

    def _spawn(self, answer, slot: bool = True) -> None:  # noqa: ANN001 - a coroutine answering one request
        """Runs an answer as its own task, holding one of the agent's in-flight slots (if `slot`) until it ends."""
        self._in_flight += slot
        task = asyncio.create_task(self._guarded(answer, slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, answer, slot: bool) -> None:  # noqa: ANN001
        try:
            await answer
            self.agent.answered += slot
        except (SessionError, grpc.RpcError, asyncio.InvalidStateError):
            self.agent.failed += 1
        except Exception:
            self.agent.failed += 1
            log.exception("failed to answer a request")
        finally:
            self._in_flight -= slot

    def _room(self) -> bool:
        return self._in_flight < self.agent.max_in_flight


class WindowRead:
    """One window read's cancel flag and flow-control credit (None: the proxy asked for no flow control)."""

    def __init__(self, credit: int) -> None:
        self.credit: int | None = min(credit, MAX_GRANT) if credit else None
        self.cancelled = False
        self._wake = asyncio.Event()

    def grant(self, chunks: int) -> None:
        if self.credit is not None:
            self.credit += min(chunks, MAX_GRANT)
            self._wake.set()

    def cancel(self) -> None:
        self.cancelled = True
        self._wake.set()

    async def may_send(self) -> bool:
        """Takes one chunk's credit; False when cancelled or no grant came within GRANT_WAIT_S."""
        if self.credit is None:
            return not self.cancelled
        deadline = asyncio.get_running_loop().time() + GRANT_WAIT_S
        while self.credit == 0 and not self.cancelled:
            self._wake.clear()
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, left))
            except TimeoutError:
                return False
        if self.cancelled:
            return False
        self.credit -= 1
        return True


class MetricsAnswers(RequestStream):
    """StreamMetrics: /metrics and /metrics-windows answers, written as the responder's serialized replies."""

    def __init__(self, channel: grpc.aio.Channel, hello: bytes, responder: Responder, max_bytes: int,
                 agent: AioAgent) -> None:
        super().__init__(agent)
        # Raw bytes out (the replies are serialized once per request shape), requests parsed in.
        self._method = channel.stream_stream(_METRICS_METHOD, request_serializer=None,
                                             response_deserializer=pb.MetricsRequest.FromString)
        self._hello_bytes = hello
        self._responder = responder
        self._max_bytes = max_bytes
        self._reads: dict[str, WindowRead] = {}

    def _open(self) -> grpc.aio.StreamStreamCall:
        self._reads = {}
        return self._method()

    def _hello(self) -> bytes:
        return self._hello_bytes

    def _busy(self, request_id: str, error: str) -> None:
        reply = pb.MetricsReply(request_id=request_id, done=True, error=error).SerializeToString()
        self._spawn(self.write(reply), slot=False)

    def _dispatch(self, request: pb.MetricsRequest) -> None:
        if request.cancel:
            if (read := self._reads.get(request.request_id)) is not None:
                read.cancel()
            return
        if request.grant:
            if (read := self._reads.get(request.request_id)) is not None:
                read.grant(request.grant)
            return
        limit = min(self._max_bytes, request.max_chunk_bytes or self._max_bytes)
        if not request.latest_only and len(self._reads) >= MAX_WINDOW_READS:
            self._busy(request.request_id, f"agent busy: {MAX_WINDOW_READS} window reads in flight; "
                                           "try again shortly")
            return
        if not self._room():
            self._busy(request.request_id, "agent busy: too many metric requests in flight")
            return
        if request.latest_only:
            self._spawn(self._answer(request, limit, None))
            return
        read = self._reads[request.request_id] = WindowRead(request.window_credit)
        self._spawn(self._answer(request, min(limit, WINDOW_CHUNK_BYTES), read))

    async def _answer(self, request: pb.MetricsRequest, limit: int, read: WindowRead | None) -> None:
        try:
            for reply in self._responder(request, limit):
                if read is not None and not await read.may_send():
                    return
                await self.write(reply)
        finally:
            if read is not None:
                self._reads.pop(request.request_id, None)


class CommandAnswers(RequestStream):
    """StreamCommands held open as a real agent holds it; this agent has no actions, so it refuses each
    command at once, as the agent does a request it has no action for."""

    def __init__(self, channel: grpc.aio.Channel, hello: pb.CommandReply, agent: AioAgent) -> None:
        super().__init__(agent)
        self._stub = pb_grpc.FODCServiceStub(channel)
        self._hello_message = hello

    def _open(self) -> grpc.aio.StreamStreamCall:
        return self._stub.StreamCommands()

    def _hello(self) -> pb.CommandReply:
        return self._hello_message

    def _dispatch(self, request: pb.Command) -> None:
        name = request.WhichOneof("body") or ""
        if name == "cancel":
            return
        room = self._room()
        error = (f"unknown request {name or 'none'!r} (known: )" if room
                 else "agent busy: too many commands in flight; try later")
        self._spawn(self.write(pb.CommandReply(command_id=request.command_id, state=pb.CommandReply.REJECTED,
                                               error=error)), slot=room)
