"""The agent's own small HTTP endpoint: /metrics for Prometheus, /health for humans and probes.

Standard library server on purpose: it serves two read-only paths and must stay cheap when idle. It must also
never take what the agent needs to do its job: the stdlib server runs one thread per connection with no
timeout, so ~1,020 idle connections used up the agent's descriptors and every scrape failed with EMFILE.
Hence a cap on open connections (at the cap the oldest connection still waiting for its request is closed to
make room, so a real client gets in) and a timeout on every read and write of a connection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fodc.config import HostPort

log = logging.getLogger(__name__)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading server with at most `max_connections` open; at the cap an idle one makes room."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog; socketserver's 5 makes a burst of clients retry SYNs

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int,
                 on_close: Callable[[str], None]) -> None:
        super().__init__(address, handler)
        self.max_connections = max_connections
        self._on_close = on_close
        self._lock = threading.Lock()
        # Open connections, oldest first -> True once its request line and headers are in (busy).
        self._open: dict[Any, bool] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if len(self._open) >= self.max_connections:
                idle = next((conn for conn, busy in self._open.items() if not busy), None)
                if idle is None:  # every connection is being answered: this one waits its turn elsewhere
                    self._on_close("refused")
                    super().shutdown_request(request)
                    return
                del self._open[idle]
                self._on_close("evicted")
                with contextlib.suppress(OSError):
                    idle.shutdown(socket.SHUT_RDWR)  # its thread reads EOF and closes it
            self._open[request] = False
        super().process_request(request, client_address)

    def mark_busy(self, request: Any) -> None:
        with self._lock:
            if request in self._open:
                self._open[request] = True

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)


class AgentHTTPServer:
    def __init__(self, address: HostPort, metrics_page: Callable[[], str],
                 health: Callable[[], dict[str, object]], *, max_connections: int = 64,
                 client_timeout_s: float = 10.0, registry: CollectorRegistry | None = None) -> None:
        self._metrics_page = metrics_page
        self._health = health
        self._client_timeout_s = client_timeout_s
        self._closed = Counter("fodc_agent_http_connections_closed", "connections to the agent's HTTP endpoint "
                               "closed to stay within --http-max-connections, by reason",
                               ["reason"], registry=registry)
        handler = self._handler_class()
        host = address.host or "0.0.0.0"
        self._server = BoundedHTTPServer((host, address.port), handler, max_connections,
                                         lambda reason: self._closed.labels(reason).inc())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="agent-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "fodc-agent"
            timeout = outer._client_timeout_s  # every read and write of the connection

            def parse_request(self) -> bool:
                parsed = super().parse_request()
                if parsed:
                    outer._server.mark_busy(self.request)
                return parsed

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_METRICS, outer._metrics_page().encode())
                elif path in ("/health", "/healthz"):
                    health = outer._health()
                    self._send_json(200 if health.get("status") == "ok" else 503, health)
                else:
                    self._send_json(404, {"error": "not_found", "message": f"no such path {path}",
                                          "paths": ["/metrics", "/health"]})

            def do_POST(self) -> None:  # noqa: N802
                self._send_json(405, {"error": "method_not_allowed", "message": "read-only endpoint"})

            do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

            def _send_json(self, code: int, body: dict[str, object]) -> None:
                self._send(code, "application/json", json.dumps(body).encode())

            def _send(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("http " + fmt, *args)

        return Handler
