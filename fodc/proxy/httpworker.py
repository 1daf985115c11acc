"""The proxy's gunicorn worker: gthread, except that slow or silent clients never hold a worker thread.

gunicorn's gthread worker hands each accepted connection to a thread, which then blocks reading the request:
16 sockets that sent half a header held all 16 threads (every endpoint, /health included, stopped for as long
as they were held), and silent sockets held them 5 s each in turn. Here the worker's event loop reads each
request head itself, without blocking, and a thread only ever gets a connection whose head has fully arrived:

- a head must be complete within the client timeout (from the accept, or from the first byte of the next
  request on a kept-alive connection), else the connection is closed;
- a head over MAX_HEAD_BYTES is answered 431 and closed;
- at the connection cap the connection that has waited longest for its head (then the oldest idle one) is
  closed to make room, so sockets an attacker holds never lock out a real client;
- in a thread, a body read or a response write that makes no progress for the client timeout fails
  (SO_RCVTIMEO/SO_SNDTIMEO), which frees the thread;
- a closed connection's unread bytes are drained in the loop, never by blocking it.

With HTTPS the loop also does the TLS handshake (non-blocking, as the client's bytes arrive) before it
gathers the decrypted head, under the same deadline; only HTTP/1.1 is offered. gunicorn's own error answers
(bad request line, 414, 431) are JSON like the API's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import selectors
import socket
import ssl
import struct
import time
from collections import Counter
from functools import partial
from typing import Any, cast

from gunicorn import http, util
from gunicorn import sock as gunicorn_sock
from gunicorn.http.parser import RequestParser
from gunicorn.workers import gthread

HEAD_END = b"\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024

# Why connections were closed by the worker, for the proxy's /metrics (fodc_proxy_http_connections_closed_total).
CLOSED: Counter[str] = Counter()


def json_error_response(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response in the API's error shape, closing the connection."""
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, json_error_response(status_int, reason, mesg))


# gunicorn writes its own error pages through this one function, as HTML; the API speaks JSON everywhere.
util.write_error = _write_json_error


class _QuietSocketTimeouts(logging.Filter):
    """A client that stopped reading or sending until SO_*TIMEO fired is routine: one line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.ETIMEDOUT):
            CLOSED["stalled"] += 1
            record.msg, record.args, record.exc_info, record.levelno, record.levelname = (
                "closed a connection whose client stopped reading or sending", (), None, logging.INFO, "INFO")
        return True


LINGER_S = 2.0  # how long a closed connection's unread request bytes are drained (gunicorn's own figure)
LINGER_BYTES = 64 * 1024


class _Conn(gthread.TConn):
    """gunicorn's connection, except that its graceful close (drain what the client still sends, so the
    kernel does not reset the answer away) happens in the worker's event loop instead of blocking it (upstream
    lingers up to 2 s on the loop's thread, per closed connection, for a client that never hangs up), and a
    TLS socket the loop already wrapped and handshook is not wrapped again."""

    linger: Any = None
    head: bytearray | None = None  # the request head while the worker's loop gathers it
    handshaking = False  # TLS: the loop has not finished the handshake yet

    def init(self) -> None:
        if self.initialized or not isinstance(self.sock, ssl.SSLSocket):
            super().init()
            return
        # The loop did the TLS handshake and read the head (HTTP/1.1 only: no ALPN is offered).
        self.initialized = True
        self.sock.setblocking(True)
        self.parser = http.get_parser(self.cfg, self.sock, self.client)

    def close(self, graceful: bool = False) -> None:
        if graceful and self.linger is not None:
            self.linger(self)
        else:
            super().close()


def _read_some(sock: socket.socket, size: int) -> bytes | None:
    """What a non-blocking socket has: None if nothing yet, b"" if the peer is gone (closed or an error)."""
    try:
        return sock.recv(size)
    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    except OSError:
        return b""


def worker_class(client_timeout_s: float) -> type[gthread.ThreadWorker]:
    """The worker class for gunicorn's `worker_class` setting, with the client timeout baked in."""
    return type("FodcThreadWorker", (SlowClientShieldWorker,), {"client_timeout_s": client_timeout_s})


class SlowClientShieldWorker(gthread.ThreadWorker):
    client_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections whose head is still arriving -> their deadline; insertion order is arrival order.
        self._gathering: dict[_Conn, float] = {}
        # Closed connections still draining the client's unread bytes -> [deadline, bytes drained].
        self._lingering: dict[_Conn, list[float]] = {}
        self.log.error_log.addFilter(_QuietSocketTimeouts())

    # ---------------------------------------------------------------- accepting
    def set_accept_enabled(self, enabled: bool | None) -> None:
        # gunicorn stops accepting at worker_connections; we make room instead (see _make_room), so a full
        # house of held sockets cannot keep a real client out. Only a stopping worker stops accepting.
        super().set_accept_enabled(enabled or self.alive)

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        if self.nr_conns >= self.worker_connections:
            self._make_room()
        self.nr_conns += 1
        timeout = struct.pack("ll", int(self.client_timeout_s), int(self.client_timeout_s % 1 * 1e6))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        conn = _Conn(self.cfg, client, address, listener.getsockname())
        conn.linger = self._linger
        if self.cfg.is_ssl:
            try:  # the handshake itself happens in _on_head_bytes, as the client's bytes arrive
                client.setblocking(False)
                conn.sock = gunicorn_sock.ssl_context(self.cfg).wrap_socket(
                    client, server_side=True, do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
            except (OSError, ValueError) as exc:
                self.log.warning("cannot set up TLS for a connection: %s", exc)
                self.nr_conns -= 1
                util.close(client)
                return
            conn.handshaking = True
        self._gather(conn)

    def _make_room(self) -> None:
        if self._gathering:
            CLOSED["evicted_waiting"] += 1
            self._drop(next(iter(self._gathering)))
            return
        for queue, reason in ((self.keepalived_conns, "evicted_idle"), (self.pending_conns, "evicted_waiting")):
            if queue:
                CLOSED[reason] += 1
                conn = queue.popleft()
                self._unregister(conn)
                self.nr_conns -= 1
                conn.close()
                return

    # ---------------------------------------------------------------- gathering request heads
    def _gather(self, conn: _Conn) -> None:
        conn.head = bytearray()
        conn.sock.setblocking(False)
        self._gathering[conn] = time.monotonic() + self.client_timeout_s
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_bytes, conn))

    def _on_head_bytes(self, conn: _Conn, sock: socket.socket) -> None:
        if conn.handshaking and isinstance(sock, ssl.SSLSocket):
            try:
                sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return  # more of the client's handshake to come (the server's part fits the send buffer)
            except (ssl.SSLError, OSError):
                CLOSED["tls_failed"] += 1
                self._drop(conn)
                return
            conn.handshaking = False
        data = _read_some(sock, MAX_HEAD_BYTES)
        if data is None:
            return
        if not data:
            self._drop(conn)
            return
        pending = getattr(sock, "pending", None)
        while pending is not None and pending() and len(data) <= MAX_HEAD_BYTES:
            data += sock.recv(pending())  # TLS: decrypted bytes the poller cannot see
        head = conn.head
        if head is None:  # not gathering (cannot happen: the poller calls this only while it is)
            return
        seen = len(head)
        head += data
        if head.find(HEAD_END, max(0, seen - 3)) >= 0:
            self._unregister(conn)
            del self._gathering[conn]
            conn.data_ready = True
            self.enqueue_req(conn)
        elif len(head) > MAX_HEAD_BYTES:
            CLOSED["head_too_large"] += 1
            with contextlib.suppress(OSError):
                sock.send(json_error_response(431, "Request Header Fields Too Large",
                                              f"request head over {MAX_HEAD_BYTES} bytes"))
            self._drop(conn)

    def on_client_socket_readable(self, conn: gthread.TConn, client: socket.socket) -> None:
        # A kept-alive connection's next request: its head is gathered like a new connection's.
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._gather(cast(_Conn, conn))  # accept() makes every connection a _Conn

    def handle(self, conn: gthread.TConn) -> Any:
        head = conn.head if isinstance(conn, _Conn) else None
        if isinstance(conn, _Conn) and head is not None:
            conn.head = None
            conn.sock.setblocking(True)
            conn.init()
            parser = conn.parser
            assert isinstance(parser, RequestParser)  # HTTP/1.1 only: no ALPN is offered
            parser.unreader.unread(bytes(head))
        return super().handle(conn)

    # ---------------------------------------------------------------- timeouts and closing
    def _linger(self, conn: _Conn) -> None:
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_bytes, conn))
        except (OSError, ValueError, KeyError):
            util.close(conn.sock)
            return
        self._lingering[conn] = [time.monotonic() + LINGER_S, 0]

    def _on_linger_bytes(self, conn: _Conn, sock: socket.socket) -> None:
        data = _read_some(sock, LINGER_BYTES)
        if data is None:
            return
        state = self._lingering[conn]
        state[1] += len(data)
        if not data or state[1] >= LINGER_BYTES:
            self._end_linger(conn)

    def _end_linger(self, conn: _Conn) -> None:
        self._unregister(conn)
        del self._lingering[conn]
        util.close(conn.sock)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c, (deadline, _) in self._lingering.items() if deadline <= now or not self.alive]:
            self._end_linger(conn)
        while self._gathering:
            conn, deadline = next(iter(self._gathering.items()))
            if deadline > now and self.alive:
                break
            CLOSED["head_timeout"] += 1
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        self._unregister(conn)
        self._gathering.pop(conn, None)
        self.nr_conns -= 1
        conn.close()

    def _unregister(self, conn: gthread.TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
