"""The agent's end of StreamMetrics: answers the proxy's id'd requests, several at a time, in chunks.

Each request is answered on a small worker pool so a long window query never holds up a /metrics scrape;
the replies of different requests may interleave on the stream, which is why every chunk repeats its id.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from fodc.agent.session import Connected, Outbox, SessionError
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Responder = Callable[[pb.MetricsRequest, int], Iterator[pb.MetricsReply]]


class MetricsStream:
    def __init__(self, responder: Responder, *, send_timeout_s: float = 10.0, workers: int = 4,
                 max_in_flight: int = 16) -> None:
        self._responder = responder
        self._send_timeout_s = send_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics-answer")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._generation = 0
        self._connected: Connected | None = None
        self._stopped = threading.Event()
        self.requests_answered = 0
        self.requests_failed = 0

    def connect(self, connected: Connected) -> None:
        """Called when the session registers; (re)opens the stream on the session's channel."""
        with self._lock:
            self._generation += 1
            self._connected = connected
            generation = self._generation
        threading.Thread(target=self._run, args=(connected, generation), name="metrics-stream",
                         daemon=True).start()

    def disconnect(self) -> None:
        with self._lock:
            self._generation += 1
            self._connected = None

    def stop(self) -> None:
        self._stopped.set()
        self.disconnect()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stopped.is_set()

    def _run(self, connected: Connected, generation: int) -> None:
        while self._current(generation):
            outbox = Outbox(size=64)
            stub = pb_grpc.FODCServiceStub(connected.channel)
            call = stub.StreamMetrics(iter(outbox))
            try:
                outbox.put(pb.MetricsReply(agent_id=connected.agent_id), self._send_timeout_s)
                for request in call:
                    if not self._current(generation):
                        break
                    self._dispatch(request, outbox, connected.max_message_bytes)
            except grpc.RpcError as exc:
                if self._current(generation):
                    log.info("metrics stream ended", extra={"fields": {"reason": str(exc.code())}})
            except SessionError as exc:
                log.warning("metrics stream stuck; reopening", extra={"fields": {"reason": str(exc)}})
            finally:
                outbox.close()
                call.cancel()
            self._stopped.wait(1.0)

    def _dispatch(self, request: pb.MetricsRequest, outbox: Outbox, max_message_bytes: int) -> None:
        if not self._slots.acquire(blocking=False):
            outbox.put(pb.MetricsReply(request_id=request.request_id, done=True,
                                       error="agent busy: too many metric requests in flight"),
                       self._send_timeout_s)
            return
        limit = min(max_message_bytes, request.max_chunk_bytes or max_message_bytes)
        try:
            self._pool.submit(self._answer, request, outbox, limit)
        except RuntimeError:  # pool shut down
            self._slots.release()

    def _answer(self, request: pb.MetricsRequest, outbox: Outbox, limit: int) -> None:
        try:
            for reply in self._responder(request, limit):
                outbox.put(reply, self._send_timeout_s)
            self.requests_answered += 1
        except SessionError as exc:
            self.requests_failed += 1
            log.warning("could not send metrics reply", extra={"fields": {
                "request_id": request.request_id, "reason": str(exc)}})
        except Exception as exc:
            self.requests_failed += 1
            log.exception("failed to answer metrics request %s", request.request_id)
            with contextlib.suppress(SessionError):
                outbox.put(pb.MetricsReply(request_id=request.request_id, done=True,
                                           error=f"agent failed to answer: {exc}"), self._send_timeout_s)
        finally:
            self._slots.release()
