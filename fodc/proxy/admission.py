"""Who may hold a gRPC stream: hello deadlines, and the names a client certificate gives.

Every agent stream holds one of the server's stream slots (`maximum_concurrent_rpcs`). A client that opens
streams and never says who it is, or registers thousands of made-up agents, would otherwise hold them all and
lock real agents out.
Pure bookkeeping over plain data (the caller passes the clock readings); the servicer acts on the verdicts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class _Waiting:
    deadline: float
    cancel: Callable[[], None]


class HelloGate:
    """Streams that have not identified themselves yet: each must do so within `timeout_s`, and at most
    `max_waiting` may be waiting at once (beyond that a new stream is refused at once)."""

    def __init__(self, timeout_s: float, max_waiting: int) -> None:
        self.timeout_s = timeout_s
        self.max_waiting = max_waiting
        self._waiting: dict[int, _Waiting] = {}
        self._next = 0
        self._lock = threading.Lock()

    def enter(self, now: float, cancel: Callable[[], None]) -> int | None:
        """A ticket to pass to `leave` once the stream said hello; None when too many are waiting."""
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                return None
            self._next += 1
            self._waiting[self._next] = _Waiting(now + self.timeout_s, cancel)
            return self._next

    def leave(self, ticket: int | None) -> None:
        if ticket is not None:
            with self._lock:
                self._waiting.pop(ticket, None)

    def expire(self, now: float) -> int:
        """Cancels the streams past their deadline; returns how many. Called by the sweeper's thread, so each
        `cancel` must be safe from any thread (the servicer's go through the event loop: StreamStop)."""
        with self._lock:
            overdue = [t for t, w in self._waiting.items() if w.deadline <= now]
            cancels = [self._waiting.pop(t).cancel for t in overdue]
        for cancel in cancels:
            cancel()
        return len(cancels)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)


def peer_host(peer: str) -> str:
    """'ipv4:10.0.0.5:41234' -> '10.0.0.5', 'ipv6:[::1]:5000' -> '::1' (the port changes per connection)."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host = rest.rsplit(":", 1)[0]
        return host.strip("[]")
    return peer


def certificate_names(auth_context: Mapping[str, Any]) -> frozenset[str]:
    """The names a verified client certificate carries: its common name and subject alternative names.
    `auth_context` is gRPC's: each property a list of bytes (types-grpcio's stub says bytes, which it is not)."""
    names: set[str] = set()
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth_context.get(key, ()):
            names.add(value.decode(errors="replace"))
    return frozenset(names)
