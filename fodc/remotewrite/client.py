"""One HTTP connection to a remote-write receiver: POST a body, say what became of it.

Each outcome is one of three: sent; retry (5xx, 429, a network error, no answer in time: the receiver may take
it later); drop (any other 4xx: the receiver will never take this body, so retrying would block the queue
forever). Every send is bounded in time as a whole, however slowly a receiver trickles its answer, and reads at
most a few KiB of the answer.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from fodc import __version__
from fodc.remotewrite.encode import HEADERS

MAX_ANSWER_BYTES = 4096
SENT, RETRY, DROP = "sent", "retry", "drop"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # SENT, RETRY or DROP
    status: int | None  # the HTTP status, None when there was no answer
    message: str  # one line: what the receiver said, or what went wrong
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Auth:
    """How the agent proves itself to a receiver: a bearer token, or basic auth (both read from files)."""

    bearer_token: str | None = field(default=None, repr=False)  # never in a log line or a config snapshot
    basic_user: str | None = None
    basic_password: str | None = field(default=None, repr=False)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.bearer_token, self.basic_password) if s)

    def header(self) -> str | None:
        if self.bearer_token:
            return f"Bearer {self.bearer_token}"
        if self.basic_user is not None:
            pair = f"{self.basic_user}:{self.basic_password or ''}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None


def endpoint_name(url: str) -> str:
    """The receiver as named in self-metrics and logs: scheme, host, port and path, never a query string."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def check_url(url: str) -> str:
    """The URL if it is one the sender can use; ValueError with the reason otherwise."""
    if not url.isprintable() or any(c.isspace() for c in url) or len(url) > 2048:
        raise ValueError(f"{url[:100]!r} holds spaces or control characters, or is longer than 2048 characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError(f"{endpoint_name(url)}: credentials in the URL would be logged; use "
                         "--remote-write-basic-auth-user and --remote-write-basic-auth-password-file")
    if parts.fragment:
        raise ValueError(f"{url!r} has a #fragment")
    return url


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 6:
        return float(value.strip())
    return None


def _one_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return " ".join(text.split())[:300]


class Client:
    """A kept-alive connection to one receiver, for one sender thread (not shared between threads)."""

    def __init__(self, url: str, *, timeout_s: float, auth: Auth | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.url = check_url(url)
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout_s = timeout_s
        self.tls = tls if tls is not None else (ssl.create_default_context() if self.https else None)
        self.headers = {**HEADERS, "User-Agent": f"fodc-agent/{__version__}"}
        if auth is not None and (value := auth.header()):
            self.headers["Authorization"] = value
        # A receiver may quote the credentials it refused (vmauth does): they never reach a log line.
        self._secrets = (*auth.secrets(), value) if auth is not None and value else ()
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                                         context=self.tls)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, body: bytes) -> Outcome:
        """Sends one compressed WriteRequest; never raises for anything the receiver or network does."""
        conn = self._connection()
        expired = threading.Event()

        def cut() -> None:  # the whole send is over its time: break the socket under the blocked call
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout_s, cut)
        timer.daemon = True
        timer.start()
        started = time.monotonic()
        try:
            conn.request("POST", self.target, body=body, headers=self.headers)
            response = conn.getresponse()
            answer = response.read(MAX_ANSWER_BYTES)
            status = response.status
            retry_after = _retry_after(response.getheader("Retry-After"))
            if not response.isclosed():  # an answer longer than we read: this connection cannot be reused
                self.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            if expired.is_set() or isinstance(exc, TimeoutError):
                return Outcome(RETRY, None, f"no answer within {self.timeout_s:g}s")
            return Outcome(RETRY, None, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__)
        finally:
            timer.cancel()
        if expired.is_set():
            self.close()
            return Outcome(RETRY, None, f"no answer within {self.timeout_s:g}s "
                           f"({time.monotonic() - started:.1f}s)")
        if 200 <= status < 300:
            return Outcome(SENT, status, "")
        said = _one_line(answer)
        for secret in sorted(self._secrets, key=len, reverse=True):
            said = said.replace(secret, "<redacted>")
        message = f"HTTP {status}: {said}".rstrip(": ")
        if status == 429 or status >= 500:
            return Outcome(RETRY, status, message, retry_after)
        return Outcome(DROP, status, message)
