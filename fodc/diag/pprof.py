"""Fetches one profile from the node's Go pprof endpoint into a file, cancellable at any moment.

A CPU profile's HTTP answer only starts after N seconds, so a socket timeout cannot tell "slow" from "busy
profiling". The fetch runs on its own thread with the whole deadline; the caller waits on it in short steps
and, on cancel or deadline, shuts the socket down, which ends the fetch at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from fodc.artifact_names import PROFILES


class FetchError(Exception):
    """The profile could not be taken; the message is what the operator reads."""


@dataclass(frozen=True, slots=True)
class Fetched:
    path: Path
    size: int
    sha256: str
    content_type: str
    url: str


def profile_url(base: str, profile: str, seconds: int | None) -> str:
    path, timed = PROFILES[profile]
    url = f"{base.rstrip('/')}/debug/pprof/{path}"
    return f"{url}?seconds={seconds}" if timed and seconds else url


class ProfileFetch:
    def __init__(self, url: str, dest: Path, *, max_bytes: int, timeout_s: float) -> None:
        self.url = url
        self.dest = dest
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._done = threading.Event()
        self._result: Fetched | None = None
        self._error: str = ""
        self._stopped_because = ""

    def run(self, cancelled: threading.Event) -> Fetched:
        """Blocks until fetched, cancelled (FetchError 'cancelled') or past the deadline."""
        thread = threading.Thread(target=self._fetch, name="pprof-fetch", daemon=True)
        thread.start()
        deadline = time.monotonic() + self.timeout_s
        while not self._done.wait(0.1):
            if cancelled.is_set():
                self._abort("cancelled")
            elif time.monotonic() > deadline:
                self._abort(f"no complete answer from {self.url} within {self.timeout_s:g}s")
        thread.join(1.0)
        if self._result is not None:
            return self._result
        self.dest.unlink(missing_ok=True)
        raise FetchError(self._stopped_because or self._error or "the fetch ended without a result")

    def _abort(self, why: str) -> None:
        if not self._stopped_because:
            self._stopped_because = why
            conn = self._conn
            if conn is not None and conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
        self._done.wait(2.0)

    def _fetch(self) -> None:
        try:
            self._result = self._download()
        except FetchError as exc:
            self._error = str(exc)
        except (OSError, http.client.HTTPException) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            self._error = f"cannot read {self.url}: {reason}"
        finally:
            if self._conn is not None:
                self._conn.close()
            self._done.set()

    def _download(self) -> Fetched:
        parts = urllib.parse.urlsplit(self.url)
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._conn = conn_type(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout_s)
        self._conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
        resp = self._conn.getresponse()
        if resp.status != 200:
            body = resp.read(512).decode(errors="replace").strip()
            raise FetchError(f"node answered {resp.status} for {self.url}: {body[:200]}")
        digest = hashlib.sha256()
        size = 0
        with open(self.dest, "wb") as out:
            while chunk := resp.read(64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"profile larger than --diagnostics-max-bytes ({self.max_bytes} bytes)")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise FetchError(f"node sent an empty profile from {self.url}")
        return Fetched(self.dest, size, digest.hexdigest(),
                       resp.getheader("Content-Type", "application/octet-stream"), self.url)
