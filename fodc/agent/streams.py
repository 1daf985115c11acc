"""The agent's ends of the proxy's request streams (StreamMetrics, StreamCommands).

The agent opens each stream with a hello carrying its agent id; the proxy then sends id'd requests and the
agent answers each on a small worker pool, so a long request never holds up a short one. Replies of
different requests may interleave on the stream, which is why every message repeats its id.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Generic, Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from fodc.agent.session import Connected, Outbox, SessionError
from fodc.heap import release_free_heap
from fodc.saferegex import PatternError
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc
from fodc.window.reads import TooManyPoints

log = logging.getLogger(__name__)

MetricsResponder = Callable[[pb.MetricsRequest, int], Iterator[pb.MetricsReply]]
Request = TypeVar("Request", bound=Message)
Received = TypeVar("Received", bound=Message, covariant=True)


class StreamCall(Protocol[Received]):
    """A gRPC bidi call as the agent reads it: the proxy's requests, and a way to end the call."""

    def __iter__(self) -> Iterator[Received]: ...

    def cancel(self) -> bool: ...


class RequestStream(Generic[Request]):
    """Keeps one request stream open while the session is registered, and answers what arrives on it."""

    kind = "requests"

    def __init__(self, *, send_timeout_s: float = 10.0, workers: int = 4, max_in_flight: int = 16) -> None:
        self._send_timeout_s = send_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.kind}-answer")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._generation = 0
        self._stopped = threading.Event()
        self.answered = 0
        self.failed = 0

    # ---- to be provided by each stream kind
    def _open(self, stub: pb_grpc.FODCServiceStub, outbox: Outbox) -> StreamCall[Request]:
        raise NotImplementedError

    def _hello(self, connected: Connected) -> object:
        """The stream's first message: our agent id and the registration's stream secret."""
        raise NotImplementedError

    def _handle(self, request: Request, outbox: Outbox, max_bytes: int) -> None:
        """Runs on the worker pool; sends the reply messages through `send`."""
        raise NotImplementedError

    def _busy_reply(self, request: Request) -> object | None:
        return None

    # ---- lifecycle
    def connect(self, connected: Connected) -> None:
        """Called when the session registers; (re)opens the stream on the session's channel."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        # The stub is made here, on the session's thread while its channel is open: grpcio crashes the process
        # (SIGSEGV) when a stub is made on a channel that was closed meanwhile.
        stub = pb_grpc.FODCServiceStub(connected.channel)
        threading.Thread(target=self._run, args=(connected, stub, generation), name=f"{self.kind}-stream",
                         daemon=True).start()

    def disconnect(self) -> None:
        with self._lock:
            self._generation += 1

    def stop(self) -> None:
        self._stopped.set()
        self.disconnect()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stopped.is_set()

    def send(self, outbox: Outbox, message: object, nbytes: int = 0) -> None:
        outbox.put(message, self._send_timeout_s, nbytes)

    def _run(self, connected: Connected, stub: pb_grpc.FODCServiceStub, generation: int) -> None:
        while self._current(generation):
            outbox = Outbox(size=64)
            try:
                call = self._open(stub, outbox)
            except ValueError:  # the session closed this channel meanwhile; it calls connect() once registered
                log.info(f"{self.kind} stream not opened: the session's channel was closed")
                return
            try:
                self.send(outbox, self._hello(connected))
                for request in call:
                    if not self._current(generation):
                        break
                    self._dispatch(request, outbox, connected.max_message_bytes)
            except grpc.RpcError as exc:
                if self._current(generation):
                    log.info(f"{self.kind} stream ended", extra={"fields": {"reason": str(exc.code())}})
            except SessionError as exc:
                log.warning(f"{self.kind} stream stuck; reopening", extra={"fields": {"reason": str(exc)}})
            finally:
                outbox.close()
                call.cancel()
            self._stopped.wait(1.0)

    def _dispatch(self, request: Request, outbox: Outbox, max_bytes: int) -> bool:
        """Hands the request to the pool; False when it was answered busy (or the pool is gone) instead."""
        if not self._slots.acquire(blocking=False):
            busy = self._busy_reply(request)
            if busy is not None:
                self.send(outbox, busy)
            return False
        try:
            self._pool.submit(self._guarded, request, outbox, max_bytes)
        except RuntimeError:  # pool shut down
            self._slots.release()
            return False
        return True

    def _guarded(self, request: Request, outbox: Outbox, max_bytes: int) -> None:
        try:
            self._handle(request, outbox, max_bytes)
            self.answered += 1
        except SessionError as exc:
            self.failed += 1
            log.warning(f"could not send a {self.kind} reply", extra={"fields": {"reason": str(exc)}})
        except Exception:
            self.failed += 1
            log.exception(f"failed to answer a {self.kind} request")
        finally:
            self._slots.release()


# Window reads (not /metrics' latest values) one agent answers at once; more get "agent busy" at once. Each
# holds one query batch (fodc.window.reads.BATCH_POINTS) and one reply chunk, so this bounds their memory.
MAX_WINDOW_READS = 2
# Reply chunks of a window read stay below this, whatever the proxy's message limit allows.
WINDOW_CHUNK_BYTES = 1024 * 1024
# Window reads under flow control (MetricsRequest.window_credit): the most chunks one grant may allow, and how
# long a read waits for a grant before it gives up (the proxy went away without cancelling).
MAX_GRANT = 64
GRANT_WAIT_S = 120.0


class MetricsStream(RequestStream[pb.MetricsRequest]):
    """Answers the proxy's metrics requests. A window read can be cancelled by the proxy (its requester went
    away): the reply stops at the next chunk and nothing more is sent."""

    kind = "metrics"

    def __init__(self, responder: MetricsResponder, *, max_window_reads: int = MAX_WINDOW_READS,
                 on_window_read: Callable[[str], None] = lambda outcome: None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._responder = responder
        self._window_slots = threading.BoundedSemaphore(max_window_reads)
        self._max_window_reads = max_window_reads
        self._on_window_read = on_window_read
        self._cancels: dict[str, threading.Event] = {}
        self._credits: dict[str, threading.Semaphore] = {}  # window reads under the proxy's flow control
        self._cancels_lock = threading.Lock()

    def _open(self, stub: pb_grpc.FODCServiceStub, outbox: Outbox) -> StreamCall[pb.MetricsRequest]:
        return stub.StreamMetrics(iter(outbox))

    def _hello(self, connected: Connected) -> pb.MetricsReply:
        return pb.MetricsReply(agent_id=connected.agent_id, stream_secret=connected.stream_secret)

    def _busy_reply(self, request: pb.MetricsRequest) -> pb.MetricsReply:
        return pb.MetricsReply(request_id=request.request_id, done=True,
                               error="agent busy: too many metric requests in flight")

    def _dispatch(self, request: pb.MetricsRequest, outbox: Outbox, max_bytes: int) -> bool:
        if request.cancel:  # never queued behind the work it cancels
            with self._cancels_lock:
                cancel = self._cancels.get(request.request_id)
            if cancel is not None:
                cancel.set()
            return False
        if request.grant:  # the proxy read chunks of a window read: that many more may go
            with self._cancels_lock:
                credit = self._credits.get(request.request_id)
            if credit is not None:
                credit.release(min(request.grant, MAX_GRANT))
            return False
        if request.latest_only:
            return super()._dispatch(request, outbox, max_bytes)
        if not self._window_slots.acquire(blocking=False):
            self._on_window_read("busy")
            self.send(outbox, pb.MetricsReply(
                request_id=request.request_id, done=True,
                error=f"agent busy: {self._max_window_reads} window reads in flight; try again shortly"))
            return False
        with self._cancels_lock:
            self._cancels[request.request_id] = threading.Event()
            if request.window_credit:
                self._credits[request.request_id] = threading.Semaphore(min(request.window_credit, MAX_GRANT))
        if not super()._dispatch(request, outbox, max_bytes):
            self._window_done(request.request_id)
        return True

    def _window_done(self, request_id: str) -> None:
        with self._cancels_lock:
            self._cancels.pop(request_id, None)
            self._credits.pop(request_id, None)
        self._window_slots.release()

    def _handle(self, request: pb.MetricsRequest, outbox: Outbox, max_bytes: int) -> None:
        limit = min(max_bytes, request.max_chunk_bytes or max_bytes)
        if request.latest_only:
            self._answer(request, outbox, limit, None)
            return
        with self._cancels_lock:
            cancel = self._cancels.get(request.request_id)
            credit = self._credits.get(request.request_id)
        try:
            outcome = self._answer(request, outbox, min(limit, WINDOW_CHUNK_BYTES), cancel, credit)
            self._on_window_read(outcome)
        finally:
            self._window_done(request.request_id)
            release_free_heap()  # the read's batches and chunks are garbage now: give the pages back

    def _answer(self, request: pb.MetricsRequest, outbox: Outbox, limit: int,
                cancel: threading.Event | None, credit: threading.Semaphore | None = None) -> str:
        replies = self._responder(request, limit)
        try:
            for reply in replies:
                if cancel is not None and cancel.is_set():
                    log.info("window read cancelled by the proxy", extra={"fields": {
                        "request_id": request.request_id, "chunks_sent": reply.seq}})
                    return "cancelled"
                if credit is not None and not self._wait_for_credit(credit, cancel):
                    cancelled = cancel is not None and cancel.is_set()
                    log.info("window read cancelled by the proxy" if cancelled else
                             "window read stopped: the proxy granted no more chunks", extra={"fields": {
                                 "request_id": request.request_id, "chunks_sent": reply.seq}})
                    return "cancelled"
                self.send(outbox, reply, reply.ByteSize())
        except TooManyPoints as exc:
            self.send(outbox, pb.MetricsReply(request_id=request.request_id, done=True, error=str(exc),
                                              refused_points=exc.points))
            return "refused"
        except PatternError as exc:  # the request's fault, not ours: answer it, no traceback
            self.send(outbox, pb.MetricsReply(request_id=request.request_id, done=True,
                                              error=f"invalid name_regex: {exc}"))
            return "refused"
        except SessionError:
            raise
        except Exception as exc:
            with contextlib.suppress(SessionError):
                self.send(outbox, pb.MetricsReply(request_id=request.request_id, done=True,
                                                  error=f"agent failed to answer: {exc}"))
            raise
        finally:
            close = getattr(replies, "close", None)
            if close is not None:
                close()  # a generator: ends the query and frees its batch now
        return "answered"

    def _wait_for_credit(self, credit: threading.Semaphore, cancel: threading.Event | None) -> bool:
        """Waits until the proxy may take one more chunk; False when cancelled, stopped or no grant came for
        GRANT_WAIT_S (a proxy that went away without cancelling)."""
        deadline = time.monotonic() + GRANT_WAIT_S
        while not credit.acquire(timeout=0.2):
            if (cancel is not None and cancel.is_set()) or self._stopped.is_set() or time.monotonic() > deadline:
                return False
        return True


class ActionFailed(Exception):
    """An action could not do its work; the message goes to the proxy as the FAILED reason, as is."""


class ActionContext:
    """What a running action may use: its id, its typed request, a cancel flag, and a way to report progress,
    chunks and its result."""

    def __init__(self, command_id: str, request: Message, timeout_s: float, send: Callable[[object], None],
                 max_bytes: int) -> None:
        self.command_id = command_id
        self.request: Any = request  # the Command.body message of this action (e.g. pb.ProfileRequest)
        self.timeout_s = timeout_s
        self.cancelled = threading.Event()
        self._send = send
        self.max_chunk = max(4096, max_bytes - 4096)

    def reply(self, state: pb.CommandReply.State, *, data: bytes = b"", offset: int = 0, error: str = "",
              progress: pb.Progress | None = None, artifact: pb.ArtifactInfo | None = None) -> None:
        self._send(pb.CommandReply(command_id=self.command_id, state=state, data=data, offset=offset, error=error,
                                   progress=progress, artifact=artifact))

    def send_result(self, result: Message) -> None:
        """The action's typed result (the message its request names in fodc.proto), serialized and chunked."""
        self._send_chunks(io.BytesIO(result.SerializeToString()), pb.ArtifactInfo(content_type=RESULT_CONTENT_TYPE))

    def send_file(self, path: str | os.PathLike[str], info: pb.ArtifactInfo) -> None:
        """An artifact read from its file chunk by chunk, so a large profile is never all in memory."""
        with open(path, "rb") as f:
            self._send_chunks(f, info)

    def _send_chunks(self, source: BinaryIO, info: pb.ArtifactInfo) -> None:
        """Streams `source` in chunks below the message limit, then DONE with its description (and size)."""
        size = 0
        while chunk := source.read(self.max_chunk):
            if self.cancelled.is_set():
                return
            self.reply(pb.CommandReply.CHUNK, data=chunk, offset=size)
            size += len(chunk)
        info.size = size
        self.reply(pb.CommandReply.DONE, artifact=info)


Action = Callable[[ActionContext], None]
RESULT_CONTENT_TYPE = "application/x-protobuf"


class CommandStream(RequestStream[pb.Command]):
    """Runs the typed requests the proxy sends (Command.body: profiles, config, incidents), each by the action
    registered for its request message type; each reply carries the command id."""

    kind = "commands"

    def __init__(self, actions: dict[type[Message], Action], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._actions = actions
        self._running: dict[str, ActionContext] = {}
        self._running_lock = threading.Lock()

    def _open(self, stub: pb_grpc.FODCServiceStub, outbox: Outbox) -> StreamCall[pb.Command]:
        return stub.StreamCommands(iter(outbox))

    def _hello(self, connected: Connected) -> pb.CommandReply:
        return pb.CommandReply(agent_id=connected.agent_id, stream_secret=connected.stream_secret)

    def _busy_reply(self, request: pb.Command) -> pb.CommandReply:
        return pb.CommandReply(command_id=request.command_id, state=pb.CommandReply.REJECTED,
                               error="agent busy: too many commands in flight; try later")

    def _dispatch(self, request: pb.Command, outbox: Outbox, max_bytes: int) -> bool:
        if request.WhichOneof("body") == "cancel":  # never queued behind the work it cancels
            with self._running_lock:
                ctx = self._running.get(request.command_id)
            if ctx is not None:
                ctx.cancelled.set()
            return False
        return super()._dispatch(request, outbox, max_bytes)

    def _handle(self, request: pb.Command, outbox: Outbox, max_bytes: int) -> None:
        name = request.WhichOneof("body") or ""
        body: Message = getattr(request, name) if name else request
        action = self._actions.get(type(body)) if name else None
        ctx = ActionContext(request.command_id, body, (request.timeout_ms or 30_000) / 1000,
                            lambda m: self.send(outbox, m), max_bytes)
        if action is None:
            ctx.reply(pb.CommandReply.REJECTED, error=f"unknown request {name or 'none'!r} (known: "
                      f"{', '.join(sorted(kind.DESCRIPTOR.name for kind in self._actions))})")
            return
        with self._running_lock:
            self._running[request.command_id] = ctx
        try:
            ctx.reply(pb.CommandReply.ACCEPTED)
            action(ctx)
            if ctx.cancelled.is_set():
                ctx.reply(pb.CommandReply.CANCELLED, error="cancelled by the proxy")
        except SessionError:
            raise
        except ActionFailed as exc:
            log.warning("action failed", extra={"fields": {"action": name, "reason": str(exc)}})
            with contextlib.suppress(SessionError):
                ctx.reply(pb.CommandReply.FAILED, error=str(exc))
        except Exception as exc:
            log.exception("action %s failed", name)
            with contextlib.suppress(SessionError):
                ctx.reply(pb.CommandReply.FAILED, error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._running_lock:
                self._running.pop(request.command_id, None)
