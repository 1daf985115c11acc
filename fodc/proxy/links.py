"""Per-agent request/reply plumbing over a bidirectional stream, matched by request id.

Upstream kept one reply channel per agent, so two concurrent /metrics scrapes overwrote each other's
replies. Here each request gets its own id and its own bounded reply queue; the stream reader routes every
reply chunk by id. Nothing here blocks forever: every put and get has a deadline.

Two sides meet here: HTTP threads send requests and read replies; the gRPC side (one asyncio event loop,
fodc/proxy/loop_thread.py) writes the requests out and routes the replies in. Requests cross over through a
thread-safe queue plus a wake-up scheduled on the loop; replies through each request's thread-safe queue, which
the loop fills without ever blocking (a full queue is retried, so a slow reader holds back only its agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_ids = itertools.count(1)


def new_request_id(prefix: str = "r") -> str:
    return f"{prefix}{next(_ids)}-{threading.get_ident() % 10000}"


class LinkClosed(Exception):
    """The agent's stream went away (or was never open)."""


class LinkBusy(Exception):
    """Too many requests queued for this agent; the caller should report it rather than wait."""


class ReplyTimeout(Exception):
    pass


class ReaderTooSlow(ReplyTimeout):
    """The agent answered, but the reply's reader (an HTTP client) fell so far behind that chunks were
    dropped: the data is lost for this request, and it is not the agent's fault."""


@dataclass
class _End:
    error: str | None = None
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class _Arrived:
    at: float  # time.monotonic() when the stream reader handed it over
    chunk: Any


class RequestBudget:
    """Bytes all the replies to one request may hold together, taken as chunks arrive (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if self._used + size > self.max_bytes:
                return False
            self._used += size
            return True


@dataclass(frozen=True)
class ReplyLimits:
    """Caps on one agent's reply: its bytes, its items (series), and the request's shared budget."""

    max_bytes: int | None = None
    max_items: int | None = None
    budget: RequestBudget | None = None


class PendingReply:
    """Chunks of one reply, in order, consumed by exactly one reader with a deadline per chunk."""

    put_timeout_s = 5.0  # how long the stream reader waits for room before the reply is dropped

    def __init__(self, request_id: str, max_chunks: int, limits: ReplyLimits | None = None) -> None:
        self.request_id = request_id
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=max_chunks)
        self.abandoned = False
        self.bytes_received = 0
        self._head: list[Any] = []  # an item peek() took, which chunks() gives first
        self.items_received = 0
        self.limits = limits or ReplyLimits()
        self.overflow = ""  # why the reply was cut off at a cap
        self.reader_fell_behind = False  # chunks were dropped because the reader did not keep up
        self.ended = False  # the end of the reply (or why it was cut off) is queued
        self._on_end: Callable[[str], None] | None = None
        # When the chunk chunks() yielded last, or the end of the reply, reached the proxy (monotonic):
        # a deadline is about the agent, so it is checked against this, not against when the reader got to it.
        self.arrived_at = 0.0

    def _over_limit(self, size: int, items: int) -> str:
        limits = self.limits
        if limits.max_bytes is not None and self.bytes_received > limits.max_bytes:
            return f"reply larger than {limits.max_bytes} bytes (--max-reply-bytes)"
        if limits.max_items is not None and self.items_received > limits.max_items:
            return f"reply has more than {limits.max_items} series (--max-reply-series)"
        if limits.budget is not None and not limits.budget.take(size):
            return (f"the replies to this request exceed the request's cap of {limits.budget.max_bytes} bytes "
                    "(--max-request-bytes)")
        return ""

    def _cut_off(self, reason: str) -> None:
        """Drops what is buffered (that memory is the point) and ends the reply with the reason."""
        self.abandoned = True
        self.overflow = reason
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):
            self._chunks.put_nowait(_End(reason, time.monotonic()))
        self._ended()

    async def deliver(self, chunk: Any, size: int, items: int = 0) -> bool:
        """Called by the stream reader on the event loop; False if the reader of this reply fell too far behind
        or the reply went over a cap. While the queue is full it waits (up to put_timeout_s) without blocking
        the loop: only this stream stops reading, so gRPC's flow control holds back only this agent."""
        if self.abandoned:
            return False
        self.bytes_received += size
        self.items_received += items
        reason = self._over_limit(size, items)
        if reason:
            self._cut_off(reason)
            return False
        if await self._put_in_time(_Arrived(time.monotonic(), chunk)):
            return True
        self.abandoned = self.reader_fell_behind = True
        return False

    async def _put_in_time(self, item: _Arrived | _End) -> bool:
        """Queues item, waiting on the loop up to put_timeout_s for the reader to make room; False when it did not
        (or gave the reply up meanwhile)."""
        deadline = time.monotonic() + self.put_timeout_s
        pause = 0.002
        while True:
            try:
                self._chunks.put_nowait(item)
                return True
            except queue.Full:
                pass
            left = deadline - time.monotonic()
            if self.abandoned or left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

    async def finish_in_time(self, error: str | None = None) -> None:
        """The end of the reply, from the stream reader: like a chunk, it waits for room rather than being lost
        to a reader one chunk behind."""
        if not await self._put_in_time(_End(error, time.monotonic())):
            self.abandoned = self.reader_fell_behind = True
        self._ended()

    def finish(self, error: str | None = None) -> None:
        try:
            self._chunks.put_nowait(_End(error, time.monotonic()))
        except queue.Full:
            self.abandoned = True
        self._ended()

    def _ended(self) -> None:
        self.ended = True
        on_end = self._on_end
        if on_end is not None:
            on_end(self.request_id)

    def when_ended(self, on_end: Callable[[str], None]) -> None:
        """Calls on_end(request_id) once the reply has ended (at once if it has): a reader of many replies
        takes them in the order they complete. It may be called twice; the reader ignores the repeat."""
        self._on_end = on_end
        if self.ended:
            on_end(self.request_id)

    def peek(self, timeout_s: float) -> Any | None:
        """The first chunk without consuming it (chunks() still yields it); None if the reply ended without
        one or nothing came within timeout_s."""
        if not self._head:
            try:
                self._head.append(self._chunks.get(timeout=timeout_s))
            except queue.Empty:
                return None
        return None if isinstance(self._head[0], _End) else self._head[0].chunk

    def chunks(self, timeout_s: float) -> Iterator[Any]:
        """Yields chunks until the reply is complete; raises ReplyTimeout or LinkClosed (with the reason)."""
        while True:
            try:
                item = self._head.pop() if self._head else self._chunks.get(timeout=timeout_s)
            except queue.Empty:
                if self.reader_fell_behind:
                    raise ReaderTooSlow("reply dropped: the HTTP client read the answer too slowly") from None
                raise ReplyTimeout(f"no reply chunk within {timeout_s:g}s") from None
            self.arrived_at = item.at
            if isinstance(item, _End):
                if item.error:
                    raise LinkClosed(item.error)
                return
            yield item.chunk


class RequestLink:
    """One agent's request/reply stream: a bounded outbound queue and the replies pending by id.

    `loop` is the event loop whose stream writer awaits `next_request`; send/post/close may be called from any
    thread and wake that writer through the loop."""

    def __init__(self, agent_id: str, *, max_queued: int = 64, max_chunks: int = 256,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.agent_id = agent_id
        self._outbound: queue.Queue[Any] = queue.Queue(maxsize=max_queued)
        self._pending: dict[str, PendingReply] = {}
        self._lock = threading.Lock()
        self._max_chunks = max_chunks
        self.closed = threading.Event()
        self.close_reason = ""
        self._loop = loop
        self._ready = asyncio.Event() if loop is not None else None  # touched on the loop only

    def _wake(self) -> None:
        """Tells the writer (on its loop) that a request is queued or the link closed; from any thread."""
        if self._loop is not None and self._ready is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: its writer is gone with it
                self._loop.call_soon_threadsafe(self._ready.set)

    def send(self, request_id: str, message: Any, limits: ReplyLimits | None = None) -> PendingReply:
        """Queues a request; the returned PendingReply yields its reply chunks."""
        if self.closed.is_set():
            raise LinkClosed(f"stream to agent {self.agent_id} is closed: {self.close_reason}")
        pending = PendingReply(request_id, self._max_chunks, limits)
        with self._lock:
            self._pending[request_id] = pending
        try:
            self._outbound.put_nowait(message)
        except queue.Full:
            self.forget(request_id)
            raise LinkBusy(f"agent {self.agent_id} has too many requests queued") from None
        self._wake()
        return pending

    def post(self, message: Any) -> bool:
        """Queues a message that expects no reply (a cancel); False when the stream is closed or full."""
        if self.closed.is_set():
            return False
        try:
            self._outbound.put_nowait(message)
        except queue.Full:
            return False
        self._wake()
        return True

    def forget(self, request_id: str) -> None:
        """The caller is done with a request (answered, timed out or abandoned); late chunks are dropped."""
        with self._lock:
            pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending.abandoned = True

    async def next_request(self) -> Any | None:
        """For the stream writer, on the link's loop: the next request to send, or None once the link is closed.
        Waits without polling: send/post/close wake it (a wake-up cannot be lost: the flag is cleared before the
        queue is looked at, and a wake-up scheduled after that sets it again)."""
        assert self._ready is not None, "a link written by a stream needs its loop"
        while not self.closed.is_set():
            self._ready.clear()
            try:
                return self._outbound.get_nowait()
            except queue.Empty:
                pass
            if self.closed.is_set():
                break
            await self._ready.wait()
        return None

    async def route(self, request_id: str, chunk: Any, size: int, done: bool, error: str | None = None,
                    items: int = 0) -> bool:
        """For the stream reader: hands a reply chunk to its request; False for unknown/abandoned ids."""
        with self._lock:
            pending = self._pending.get(request_id)
        if pending is None:
            return False
        if chunk is not None and not await pending.deliver(chunk, size, items):
            self.forget(request_id)
            return False
        if done or error:
            with self._lock:
                self._pending.pop(request_id, None)
            await pending.finish_in_time(error)
        return True

    def close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        self._wake()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for p in pending:
            p.finish(f"stream to agent {self.agent_id} closed: {reason}")

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)


class LinkTable:
    """agent id -> its current request link for one stream kind (metrics or commands)."""

    def __init__(self) -> None:
        self._links: dict[str, RequestLink] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def put(self, link: RequestLink) -> RequestLink | None:
        with self._lock:
            old = self._links.get(link.agent_id)
            self._links[link.agent_id] = link
            self._changed.notify_all()
        return old

    def wait(self, agent_id: str, timeout_s: float) -> RequestLink | None:
        """The agent's link, waiting up to timeout_s for it: an agent opens its streams just after it
        registers, so a request right after registration would otherwise find none."""
        with self._lock:
            self._changed.wait_for(lambda: agent_id in self._links, timeout_s)
            return self._links.get(agent_id)

    def remove(self, link: RequestLink) -> None:
        with self._lock:
            if self._links.get(link.agent_id) is link:
                del self._links[link.agent_id]

    def get(self, agent_id: str) -> RequestLink | None:
        with self._lock:
            return self._links.get(agent_id)

    def close(self, agent_id: str, reason: str) -> None:
        link = self.get(agent_id)
        if link is not None:
            link.close(reason)

    def close_all(self, reason: str) -> None:
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.close(reason)
