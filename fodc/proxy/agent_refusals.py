"""What the proxy refused from agents, counted by kind and logged: the trace a hostile or broken agent leaves.

Everything an agent sends is input from the network. A refused piece (a record, a series, a stream, a
registration) costs only itself; this keeps the count that `/metrics` exports as
fodc_proxy_refused_agent_input_total{kind} and logs each refusal, at most once a second per kind so a flood
of bad input cannot flood the log too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LOG_EVERY_S = 1.0


class Refusals(Collector):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}

    def refuse(self, kind: str, reason: str, count: int = 1, **fields: object) -> None:
        """Counts `count` refused pieces of `kind` (a fixed word chosen by the caller, never agent input)."""
        now = self._clock()
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + count
            quiet = now - self._logged_at.get(kind, -LOG_EVERY_S) < LOG_EVERY_S
            if not quiet:
                self._logged_at[kind] = now
        if not quiet:
            log.warning("refused agent input", extra={"fields": {
                "kind": kind, "count": count, "reason": reason[:300], **fields}})

    def count(self, kind: str) -> int:
        with self._lock:
            return self._counts.get(kind, 0)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("fodc_proxy_refused_agent_input",
                                     "pieces of agent input the proxy refused (invalid, oversized or unbound)",
                                     labels=["kind"])
        with self._lock:
            counts = sorted(self._counts.items())
        for kind, count in counts:
            family.add_metric([kind], count)
        yield family
