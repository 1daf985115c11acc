"""The agent's own small HTTP endpoint: /metrics for Prometheus, /health for humans and probes.

Standard library server on purpose: it serves two read-only paths and must stay cheap when idle.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fodc.config import HostPort

log = logging.getLogger(__name__)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


class AgentHTTPServer:
    def __init__(self, address: HostPort, metrics_page: Callable[[], str],
                 health: Callable[[], dict[str, object]]) -> None:
        self._metrics_page = metrics_page
        self._health = health
        handler = self._handler_class()
        host = address.host or "0.0.0.0"
        self._server = ThreadingHTTPServer((host, address.port), handler)
        self._server.daemon_threads = True
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

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_METRICS, outer._metrics_page().encode())
                elif path in ("/health", "/healthz"):
                    self._send_json(200, outer._health())
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
