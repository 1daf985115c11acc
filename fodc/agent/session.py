"""Keeps the agent registered with the proxy: dial, register, heartbeat; on any failure redial, forever.

Upstream agents hung on a wedged Send after a proxy restart and never re-registered. Here nothing waits
without a deadline: outbound messages go through a bounded queue with a put timeout, every reply is awaited
with a timeout, and a proxy that stops acknowledging heartbeats gets its stream cancelled and redialed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from fodc.agent.backoff import Backoff
from fodc.config import HostPort
from fodc.model import HeartbeatInfo, Registration
from fodc.times import now_ms
from fodc.tls import ClientTls, TlsFileError, channel_credentials
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc
from fodc.wire import heartbeat_pb, link_options, registration_to_pb

log = logging.getLogger(__name__)

_END = object()


class SessionError(Exception):
    """The current stream is unusable; the session redials after a backoff."""


class Refused(SessionError):
    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Connected:
    """Handed to listeners once registered: the channel to open further streams on and our agent id."""

    agent_id: str
    channel: grpc.Channel
    max_message_bytes: int
    stream_secret: str = ""  # repeated in the hello of every request stream (empty from an older proxy)


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        *link_options(max_message_bytes),
        # We pace reconnects ourselves (with jitter); grpc's own backoff would add minutes after a long outage.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        # Our own connection, never one shared with other channels of this process (the load generator runs
        # hundreds of agents in one process; each must be a connection of its own, as on real hosts).
        ("grpc.use_local_subchannel_pool", 1),
    ]


class Outbox:
    """Bounded outbound queue feeding a request-stream iterator: at most `size` messages and, of those that
    declare their size, `max_bytes` bytes (one larger message may wait alone). Every put has a deadline."""

    def __init__(self, size: int = 16, max_bytes: int = 2 * 1024 * 1024) -> None:
        self._queue: queue.Queue[tuple[object, int]] = queue.Queue(maxsize=size)
        self._max_bytes = max_bytes
        self._bytes = 0
        self._room = threading.Condition()

    def put(self, message: object, timeout_s: float, nbytes: int = 0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._room:
            if not self._room.wait_for(lambda: self._bytes == 0 or self._bytes + nbytes <= self._max_bytes,
                                       timeout_s):
                raise SessionError(f"stream to the proxy is stuck: could not send within {timeout_s:g}s")
            self._bytes += nbytes
        try:
            self._queue.put((message, nbytes), timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            self._taken(nbytes)
            raise SessionError(f"stream to the proxy is stuck: could not send within {timeout_s:g}s") from None

    def _taken(self, nbytes: int) -> None:
        if nbytes:
            with self._room:
                self._bytes -= nbytes
                self._room.notify_all()

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait((_END, 0))

    def __iter__(self) -> Iterator[object]:
        while True:
            item, nbytes = self._queue.get()
            if item is _END:
                return
            self._taken(nbytes)
            yield item


class ProxySession:
    def __init__(
        self,
        proxy_addr: HostPort,
        registration: Callable[[], Registration],
        heartbeat_info: Callable[[], HeartbeatInfo],
        *,
        send_timeout_s: float = 10.0,
        max_backoff_s: float = 30.0,
        max_message_bytes: int = 4 * 1024 * 1024,
        on_connected: Callable[[Connected], None] = lambda c: None,
        on_disconnected: Callable[[], None] = lambda: None,
        on_progress: Callable[[], None] = lambda: None,
        tls: ClientTls | None = None,
    ) -> None:
        self.proxy_addr = proxy_addr
        self.tls = tls
        self._registration = registration
        self._heartbeat_info = heartbeat_info
        self.send_timeout_s = send_timeout_s
        self.max_message_bytes = max_message_bytes
        self._backoff = Backoff(max_s=max_backoff_s)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_progress = on_progress
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._goodbye_done = threading.Event()
        self.agent_id = ""
        self.state = "connecting"
        self.last_error = ""
        self.warning = ""  # the proxy's latest warning on heartbeat acks ("" when none lately)
        self.registrations = 0

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="proxy-session", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Says goodbye (if registered) and ends the session within timeout_s."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def registered(self) -> bool:
        return self.state == "registered"

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = None
            try:
                channel = self._channel()
            except TlsFileError as exc:  # e.g. a renewed certificate half-written: try again later
                self.last_error = str(exc)
                log.error("cannot set up TLS to the proxy", extra={"fields": {"reason": str(exc)}})
                self._stop.wait(self._backoff.next_delay())
                continue
            try:
                self._session(channel)
                self._backoff.reset()
            except Refused as exc:
                self.last_error = str(exc)
                log.error("proxy refused registration; will retry", extra={"fields": {
                    "proxy": str(self.proxy_addr), "reason": str(exc), "retry_in_s": round(exc.retry_after_s, 1)}})
                delay = exc.retry_after_s
            except (SessionError, grpc.RpcError) as exc:
                self.last_error = _describe(exc)
                level = logging.WARNING if self.state == "registered" else logging.INFO
                if self.tls is not None and self.state != "registered" and _unavailable(exc):
                    self.last_error += (" (TLS: the proxy refuses certificates its --grpc-tls-client-ca did not "
                                        "sign, and this agent trusts only a proxy certificate signed by "
                                        "--proxy-tls-ca)")
                    level = logging.WARNING
                log.log(level, "proxy stream ended; reconnecting", extra={"fields": {
                    "proxy": str(self.proxy_addr), "reason": self.last_error}})
            except Exception as exc:  # never let the session thread die: the agent must keep trying
                self.last_error = _describe(exc)
                log.exception("unexpected error in the proxy session; reconnecting")
            finally:
                was_registered = self.state == "registered"
                self.state = "stopped" if self._stop.is_set() else "connecting"
                if was_registered:
                    self._on_disconnected()
                channel.close()
            if self._stop.is_set():
                return
            pause = delay if delay is not None else self._backoff.next_delay()
            self._stop.wait(pause)

    def _channel(self) -> grpc.Channel:
        """A new channel per connection attempt, so renewed certificate files are read on reconnect."""
        target = f"{self.proxy_addr.dial_host}:{self.proxy_addr.port}"
        options: list = channel_options(self.max_message_bytes)
        if self.tls is None:
            return grpc.insecure_channel(target, options=options)
        if self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return grpc.secure_channel(target, channel_credentials(self.tls), options=options)

    # --------------------------------------------------------------- one stream

    def _session(self, channel: grpc.Channel) -> None:
        stub = pb_grpc.FODCServiceStub(channel)
        outbox = Outbox()
        replies: queue.Queue[object] = queue.Queue(maxsize=64)
        outbox.put(pb.AgentMessage(register=registration_to_pb(self._registration())), self.send_timeout_s)
        call = stub.RegisterAgent(iter(outbox))
        reader = threading.Thread(target=_pump, args=(call, replies), name="proxy-session-reader", daemon=True)
        reader.start()
        try:
            result = self._await(replies, "registration result", call)
            if result.WhichOneof("body") != "registration":
                raise SessionError("proxy answered registration with something else")
            reg = result.registration
            if not reg.accepted:
                raise Refused(reg.error or "no reason given", max(1.0, reg.retry_after_ms / 1000))
            self.agent_id = reg.agent_id
            self.state = "registered"
            self.registrations += 1
            self.last_error = ""
            max_bytes = reg.max_message_bytes or self.max_message_bytes
            log.info("registered with proxy", extra={"fields": {
                "proxy": str(self.proxy_addr), "agent_id": reg.agent_id,
                "heartbeat_interval_ms": reg.heartbeat_interval_ms}})
            self._on_connected(Connected(reg.agent_id, channel, max_bytes, reg.stream_secret))
            self._heartbeat_loop(outbox, replies, call, max(0.1, reg.heartbeat_interval_ms / 1000 or 10.0))
        finally:
            outbox.close()
            call.cancel()
            reader.join(1.0)

    def _heartbeat_loop(self, outbox: Outbox, replies: queue.Queue[object], call: grpc.Future,
                        interval_s: float) -> None:
        while True:
            self._on_progress()
            if self._stop.wait(interval_s):
                outbox.put(pb.AgentMessage(goodbye=pb.Goodbye(reason="agent shutting down")), self.send_timeout_s)
                outbox.close()
                self._drain_until_end(replies, self.send_timeout_s)
                log.info("said goodbye to the proxy", extra={"fields": {"agent_id": self.agent_id}})
                return
            outbox.put(heartbeat_pb(now_ms(), self._heartbeat_info()), self.send_timeout_s)
            reply = self._await(replies, "heartbeat acknowledgement", call)
            body = reply.WhichOneof("body")
            if body == "registration" and not reply.registration.accepted:
                raise SessionError(f"proxy dropped our registration: {reply.registration.error}")
            if body == "heartbeat_ack":
                self._heard_warning(reply.heartbeat_ack.warning[:1000])

    def _heard_warning(self, warning: str) -> None:
        """What the proxy says this agent's operator must fix (another agent claiming our key): logged once."""
        if warning and warning != self.warning:
            log.error("the proxy warns: %s", warning, extra={"fields": {"proxy": str(self.proxy_addr),
                                                                      "agent_id": self.agent_id}})
        self.warning = warning

    def _await(self, replies: queue.Queue[object], what: str, call: grpc.Future) -> pb.ProxyMessage:
        try:
            item = replies.get(timeout=self.send_timeout_s)
        except queue.Empty:
            raise SessionError(f"no {what} from the proxy within {self.send_timeout_s:g}s") from None
        if isinstance(item, BaseException):
            raise item
        if item is _END:
            raise SessionError(f"proxy closed the stream while we waited for the {what}")
        return item  # type: ignore[return-value]

    @staticmethod
    def _drain_until_end(replies: queue.Queue[object], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = replies.get(timeout=left)
            except queue.Empty:
                return
            if item is _END or isinstance(item, BaseException):
                return


def _pump(call: Iterator[pb.ProxyMessage], replies: queue.Queue[object]) -> None:
    """Reader thread: moves proxy messages into a queue so the session can wait on them with a deadline."""
    try:
        for message in call:
            replies.put(message, timeout=30)
        replies.put(_END, timeout=5)
    except grpc.RpcError as exc:
        with contextlib.suppress(queue.Full):
            replies.put(exc, timeout=5)
    except queue.Full:
        pass


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and hasattr(exc, "code") and exc.code() == grpc.StatusCode.UNAVAILABLE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        code = exc.code()
        details = exc.details() if hasattr(exc, "details") else ""
        return f"{code.name if code else 'UNKNOWN'}: {details}"
    return str(exc) or type(exc).__name__
