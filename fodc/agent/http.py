"""The agent's own small HTTP endpoint: /metrics for Prometheus, /health for humans and probes.

Standard library server on purpose: it serves two read-only paths and must stay cheap when idle. It must also
never take what the agent needs to do its job: the stdlib server runs one thread per connection with no
timeout, so ~1,020 idle connections used up the agent's descriptors and every scrape failed with EMFILE.
Hence a cap on open connections (at the cap the oldest connection still waiting for its request is closed to
make room, so a real client gets in) and a timeout on every read and write of a connection.

With --http-tls-cert the endpoint speaks HTTPS (the handshake runs in the connection's own thread under the
client timeout, so a stalled handshake never blocks accepting others); with --http-auth-users-file or
--http-auth-tokens-file every path but /health needs basic or bearer credentials (fodc/agent/httpauth.py).
Refusals are counted; a client refused too often is answered 429 without its credentials being checked, so a
flood of guesses costs neither bcrypt time nor log lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fodc.agent.httpauth import CredentialFiles
from fodc.config import HostPort
from fodc.refusals import RefusalLimiter
from fodc.tls import ReloadingHttpsContext

log = logging.getLogger(__name__)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"
OPEN_PATHS = ("/health", "/healthz")  # probes and the Ansible role's readiness wait need no credentials


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading server with at most `max_connections` open; at the cap an idle one makes room."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog; socketserver's 5 makes a burst of clients retry SYNs

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int,
                 on_close: Callable[[str], None], tls: ReloadingHttpsContext | None = None,
                 handshake_timeout_s: float = 10.0, on_handshake_failure: Callable[[str], None] | None = None) -> None:
        super().__init__(address, handler)
        self.max_connections = max_connections
        self._on_close = on_close
        self._tls = tls
        self._handshake_timeout_s = handshake_timeout_s
        self._on_handshake_failure = on_handshake_failure or (lambda reason: None)
        self._lock = threading.Lock()
        # Open connections, oldest first -> True once its request line and headers are in (busy).
        self._open: dict[Any, bool] = {}
        # A TLS connection's socket -> the accepted socket it took over (the key of _open).
        self._accepted: dict[Any, Any] = {}

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
                live = next((tls for tls, accepted in self._accepted.items() if accepted is idle), idle)
                with contextlib.suppress(OSError):
                    live.shutdown(socket.SHUT_RDWR)  # its thread reads EOF and closes it
            self._open[request] = False
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the connection's own thread: the TLS handshake (bounded by the timeout), then the request."""
        if self._tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(self._handshake_timeout_s)
        try:
            tls = self._tls.current().wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            return
        with self._lock:
            self._accepted[tls] = request
        try:
            try:
                tls.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                self._on_handshake_failure(_handshake_reason(exc))
                log.debug("TLS handshake failed", extra={"fields": {"remote": client_address[0],
                                                                   "reason": str(exc)}})
                return
            super().finish_request(tls, client_address)  # the handler reads and writes through TLS
        finally:
            with self._lock:
                self._accepted.pop(tls, None)
            with contextlib.suppress(OSError):
                tls.close()

    def mark_busy(self, request: Any) -> None:
        with self._lock:
            request = self._accepted.get(request, request)
            if request in self._open:
                self._open[request] = True

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)


def _handshake_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "protocol" if "CERTIFICATE" not in str(exc).upper() else "client_certificate"
    return "connection"


class AgentHTTPServer:
    def __init__(self, address: HostPort, metrics_page: Callable[[], str],
                 health: Callable[[], dict[str, object]], *, max_connections: int = 64,
                 client_timeout_s: float = 10.0, registry: CollectorRegistry | None = None,
                 tls: ReloadingHttpsContext | None = None, credentials: CredentialFiles | None = None,
                 refusals: RefusalLimiter | None = None) -> None:
        self._metrics_page = metrics_page
        self._health = health
        self._client_timeout_s = client_timeout_s
        self._credentials = credentials
        self._refusals = refusals or RefusalLimiter()
        self._refusals_lock = threading.Lock()
        self.tls = tls is not None
        self._closed = Counter("fodc_agent_http_connections_closed", "connections to the agent's HTTP endpoint "
                               "closed to stay within --http-max-connections, by reason",
                               ["reason"], registry=registry)
        self._auth_failures = Counter("fodc_agent_http_auth_failures", "requests to the agent's HTTP endpoint "
                                      "refused for their credentials, by reason (missing, malformed, wrong; "
                                      "rate_limited: answered 429 without a check)", ["reason"], registry=registry)
        self._handshake_failures = Counter("fodc_agent_http_tls_handshake_failures", "HTTPS handshakes with the "
                                           "agent's endpoint that failed, by reason", ["reason"], registry=registry)
        handler = self._handler_class()
        host = address.host or "0.0.0.0"
        self._server = BoundedHTTPServer((host, address.port), handler, max_connections,
                                         lambda reason: self._closed.labels(reason).inc(), tls=tls,
                                         handshake_timeout_s=client_timeout_s,
                                         on_handshake_failure=lambda r: self._handshake_failures.labels(r).inc())
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
                if path not in OPEN_PATHS and not outer._authorized(self):
                    return
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

            def _send_json(self, code: int, body: dict[str, object],
                           headers: tuple[tuple[str, str], ...] = ()) -> None:
                self._send(code, "application/json", json.dumps(body).encode(), headers)

            def _send(self, code: int, content_type: str, body: bytes,
                      headers: tuple[tuple[str, str], ...] = ()) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("http " + fmt, *args)

        return Handler

    def _authorized(self, handler: Any) -> bool:
        """True when the request may go on; otherwise the refusal (401 or 429) has been sent."""
        if self._credentials is None:
            return True
        credentials, reload_error = self._credentials.current()
        if reload_error:
            log.error("cannot reload the HTTP credentials", extra={"fields": {"reason": reload_error}})
        header = handler.headers.get("Authorization")
        if credentials.remembered(header) is not None:
            return True
        client = handler.client_address[0]
        with self._refusals_lock:
            retry_after = self._refusals.retry_after(client)
            if retry_after:  # refused too often: no bcrypt check, no log line, just counted
                self._refusals.admit(client, time.monotonic())
        if retry_after:
            self._auth_failures.labels("rate_limited").inc()
            handler._send_json(429, {"error": "too_many_requests", "message": f"too many refused requests from "
                                     f"{client}; retry in {retry_after}s with valid credentials"},
                               (("Retry-After", str(retry_after)), ("Connection", "close")))
            return False
        verdict = credentials.check(header)
        if verdict.who:
            return True
        self._auth_failures.labels(verdict.reason).inc()
        with self._refusals_lock:
            recorded, held_back = self._refusals.admit(client, time.monotonic())
        if recorded:
            log.warning("HTTP request refused", extra={"fields": {
                "remote": client, "reason": verdict.reason, "path": handler.path[:256],
                **({"refusals_not_logged": held_back} if held_back else {})}})
        challenges = tuple(("WWW-Authenticate", f'{scheme} realm="fodc-agent"') for scheme in credentials.schemes())
        handler._send_json(401, {"error": "unauthorized", "message": f"{verdict.reason} credentials: this "
                                 f"endpoint needs {' or '.join(credentials.schemes())} authentication"}, challenges)
        return False
