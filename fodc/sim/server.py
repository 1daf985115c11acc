"""HTTP adapter for the simulated node: serves the model's page and applies faults.

Endpoints: `GET /metrics` (text format 0.0.4, gzip when asked), `GET /healthz`, `GET /debug/pprof/cmdline`
(argv, NUL-separated, as Go's pprof serves it), `GET /-/fault` (current fault as JSON) and
`POST /-/fault` (set one; JSON body, form body or query parameters, see `faults.parse_fault`).
The fault answer also counts the node's own storage reads (`storage_reads`, null when it makes none).

`SimNodeServer` owns the listener, the current fault and the model; request threads only read them.
A `down` fault closes the listening socket (clients get "connection refused") and a worker thread binds it
again when the fault ends. A `slow-reads` fault only changes the delay the storage-read threads
(`reads.StorageReads`, when the node makes reads) ask for before each read().
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from fodc.sim.faults import CRASH_EXIT_STATUS, Fault, garbage_page, garble, padding, parse_fault
from fodc.sim.page import NodeModel
from fodc.sim.reads import StorageReads

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger("fodc.sim")


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], node: SimNodeServer) -> None:
        self.node = node
        super().__init__(address, _Handler)


class SimNodeServer:
    """One simulated node on one address. `start()` binds and serves in a thread; `close()` stops."""

    def __init__(self, model: NodeModel, host: str, port: int, cmdline: Sequence[str],
                 clock: Callable[[], float] = time.time, reads_per_s: float = 0.0, comm: str | None = None) -> None:
        self.model = model
        self.host, self.port = host, port
        self.cmdline = tuple(cmdline)
        self.clock = clock
        self._fault = Fault()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listener: _Listener | None = None
        self._serve_thread: threading.Thread | None = None
        self._padding_cache: dict[int, str] = {}
        self.renders = 0
        self.reads = StorageReads(reads_per_s, self.read_delay, comm) if reads_per_s > 0 else None

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._bind()
        if self.reads is not None:
            self.reads.start()

    def _bind(self) -> None:
        listener = _Listener((self.host, self.port), self)
        self.port = listener.server_address[1]
        thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.1},
                                  name="sim-http-serve", daemon=True)
        self._listener, self._serve_thread = listener, thread
        thread.start()

    def _unbind(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown()
            listener.server_close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._unbind()
        if self.reads is not None:
            self.reads.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # --- faults ----------------------------------------------------------------------------------------

    def fault(self) -> Fault:
        return self._fault.current(self.clock())

    def reset(self) -> None:
        """Counter reset, as a node restart would do (also triggered by SIGHUP)."""
        self.model.reset(self.clock())
        log.info("counters reset (restart #%d)", self.model.restarts)

    def read_delay(self) -> float:
        """Seconds the next storage read() should block: the `slow-reads` delay while it is in force."""
        fault = self.fault()
        return fault.delay_s if fault.mode == "slow-reads" else 0.0

    def apply(self, fault: Fault) -> Fault:
        """Put `fault` in force and return the fault now in force (`reset` is done once, not kept).

        Raises ValueError for `slow-reads` on a node that makes no reads of its own: nothing would slow.
        """
        if fault.mode == "slow-reads" and self.reads is None:
            raise ValueError("slow-reads needs a node started with --reads-per-s")
        if fault.mode == "reset":
            self.reset()
            return self.fault()
        if fault.mode == "crash":
            threading.Thread(target=self._crash, args=(fault.crash_text,), name="sim-fault-crash", daemon=True).start()
            return fault
        self._fault = fault
        log.info("fault now %s", fault.as_dict())
        if fault.mode == "down":
            self._refuse_now()
            threading.Thread(target=self._down_for, args=(fault.duration_s or 0.0,), name="sim-fault-down",
                             daemon=True).start()
        return fault

    def _crash(self, text: str) -> None:
        """Dies the way a Go program does: the report on stderr, exit status 2 (after the fault's answer)."""
        time.sleep(0.2)
        sys.stderr.flush()
        os.write(2, text.encode())
        os._exit(CRASH_EXIT_STATUS)

    def _refuse_now(self) -> None:
        """Stop listening at once (new connections are refused), before the slower shutdown finishes,
        so a caller that has seen the fault acknowledged can rely on it."""
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):
                    self._listener.socket.shutdown(socket.SHUT_RDWR)

    def _down_for(self, seconds: float) -> None:
        with self._lock:
            self._unbind()
        if self._closed.wait(seconds):
            return
        while not self._closed.is_set():
            try:
                with self._lock:
                    if not self._closed.is_set():
                        self._bind()
                return
            except OSError as err:  # someone else holds the port for a moment; keep trying
                log.warning("rebinding %s:%d failed: %s", self.host, self.port, err)
                self._closed.wait(0.2)

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when the server closes. True when closed."""
        return self._closed.wait(seconds)

    # --- page ------------------------------------------------------------------------------------------

    def metrics_body(self) -> str:
        fault = self.fault()
        now = self.clock()
        self.renders += 1
        if fault.mode == "garbage" and fault.variant == "total":
            return garbage_page(seed=self.renders)
        page = self.model.render(now)
        if fault.mode == "garbage":
            return garble(page, seed=self.renders)
        if fault.mode == "huge":
            size = int(fault.size_mb * 1024 * 1024)
            extra = self._padding_cache.get(size)
            if extra is None:
                extra = self._padding_cache[size] = padding(max(0, size - len(page)))
            return page + extra
        return page


class _Handler(BaseHTTPRequestHandler):
    server: _Listener
    server_version = "fodc-sim"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object) -> None:
        self._reply(status, json.dumps(payload).encode() + b"\n", "application/json")

    def _fault_payload(self) -> dict[str, object]:
        node = self.server.node
        return {"fault": node.fault().as_dict(), "restarts": node.model.restarts,
                "start_time": node.model.start_s,
                "storage_reads": node.reads.reads if node.reads is not None else None}

    def do_GET(self) -> None:
        node = self.server.node
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics(node)
        elif path == "/healthz":
            self._reply(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/debug/pprof/cmdline":
            body = "\x00".join(node.cmdline).encode()
            self._reply(HTTPStatus.OK, body, "text/plain; charset=utf-8", {"X-Content-Type-Options": "nosniff"})
        elif path == "/-/fault":
            self._json(HTTPStatus.OK, self._fault_payload())
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"404 page not found\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    def _metrics(self, node: SimNodeServer) -> None:
        fault = node.fault()
        if fault.mode == "slow" and node.wait(fault.delay_s):
            return
        body = node.metrics_body().encode()
        extra = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            extra["Content-Encoding"] = "gzip"
        self._reply(HTTPStatus.OK, body, METRICS_CONTENT_TYPE, extra)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/-/fault":
            self._reply(HTTPStatus.NOT_FOUND, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        params: dict[str, object] = dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            params.update(_body_params(raw))
            # For `down` the listener stops before this answer goes out (the answer still reaches the caller
            # on its already accepted connection), so "acknowledged" means "now refusing".
            self.server.node.apply(parse_fault(params, self.server.node.clock()))
        except ValueError as err:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            return
        self._json(HTTPStatus.OK, self._fault_payload())


def _body_params(raw: bytes) -> dict[str, object]:
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"body is not valid JSON: {err}") from None
        if not isinstance(payload, dict):
            raise ValueError("JSON body must be an object")
        return payload
    return dict(parse_qsl(text))
