"""Per-client budget for refused requests, so a flood of bad tokens cannot flood the audit log or the journal.

A token bucket per client address: `burst` refusals at once, refilled at `per_second`. Past it a client's
refused requests are answered 429 and only counted; the next audit line written for that client says how
many were held back. Pure: the caller passes `now` (seconds, monotonic). The table of clients is bounded;
the client seen least recently is forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

BURST = 20
PER_SECOND = 1.0
MAX_CLIENTS = 4096


@dataclass
class _Bucket:
    tokens: float
    at: float
    suppressed: int = 0


class RefusalLimiter:
    def __init__(self, burst: int = BURST, per_second: float = PER_SECOND, max_clients: int = MAX_CLIENTS) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, client: str, now: float) -> tuple[bool, int]:
        """(whether this refusal may be logged and audited, refusals held back before it that the caller
        should report with it). A refusal that may not is counted towards the next report."""
        bucket = self._clients.pop(client, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            while len(self._clients) >= self.max_clients:
                self._clients.popitem(last=False)
        self._clients[client] = bucket
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens < 1:
            bucket.suppressed += 1
            return False, 0
        bucket.tokens -= 1
        held_back, bucket.suppressed = bucket.suppressed, 0
        return True, held_back

    def retry_after(self, client: str) -> int:
        """Whole seconds until `client` may be refused with a record again."""
        bucket = self._clients.get(client)
        if bucket is None or bucket.tokens >= 1:
            return 0
        return max(1, int((1 - bucket.tokens) / self.per_second + 0.999))
