"""A background loop that does one round of work every interval and survives its own bugs.

Every background loop of both daemons has this shape: a daemon thread named for its job, a stop event that
also cancels waits inside a round, an exception in one round logged and counted instead of ending the loop,
and a watchdog beat after every round, so a wedged round (not a long interval) is what stops the systemd
pings. The counts per loop are the self-metric `fodc_agent_loop_failures_total` /
`fodc_proxy_loop_failures_total{loop}`: a loop that keeps failing is seen without reading the logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily

log = logging.getLogger(__name__)


class LoopFailures:
    """Rounds that raised, per loop name, since the process started (one daemon per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def declare(self, loop: str) -> None:
        """A loop that runs: listed (at 0) before its first failure, so a rate over it is defined."""
        with self._lock:
            self._counts.setdefault(loop, 0)

    def count(self, loop: str) -> None:
        with self._lock:
            self._counts[loop] = self._counts.get(loop, 0) + 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


FAILURES = LoopFailures()


class LoopFailuresCollector:
    """The failure counts as a prometheus-client collector named `<prefix>_loop_failures`."""

    def __init__(self, prefix: str, failures: LoopFailures = FAILURES) -> None:
        self.prefix = prefix
        self.failures = failures

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(f"{self.prefix}_loop_failures", "rounds of a background loop that raised; "
                                     "the loop logged the error and carried on", labels=["loop"])
        for loop, count in sorted(self.failures.counts().items()):
            family.add_metric([loop], count)
        yield family


class Periodic:
    thread_name = "periodic"
    # False: `interval_s` between the end of one round and the start of the next. True: rounds start every
    # `interval_s` (a scrape schedule); a round that overruns skips the missed slots instead of bursting.
    fixed_rate = False

    def __init__(self, interval_s: float, on_progress: Callable[[], None] = lambda: None) -> None:
        self.interval_s = interval_s
        self.on_progress = on_progress
        self.round_failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_round(self) -> bool | None:
        """One round of work; True when more is waiting, so the next round runs at once."""
        raise NotImplementedError

    def first_delay_s(self) -> float:
        """How long after start() the first round runs (one interval unless a loop says otherwise)."""
        return self.interval_s

    def start(self) -> None:
        FAILURES.declare(self.thread_name)
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        """Waits (at most `timeout_s`) for the round in progress to end after stop()."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def note_failure(self, message: str = "periodic round failed", fields: dict[str, str] | None = None) -> None:
        """Logs the exception being handled and counts it; also for a loop that catches inside its round."""
        self.round_failures += 1
        FAILURES.count(self.thread_name)
        log.exception(message, extra={"fields": {"loop": self.thread_name, **(fields or {})}})

    def _loop(self) -> None:
        next_at = time.monotonic() + self.first_delay_s()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                more = self.run_round()
            except Exception:  # a bug in one round must not end the loop
                self.note_failure()
                more = False
            self.on_progress()
            now = time.monotonic()
            if more:
                next_at = now
            elif not self.fixed_rate:
                next_at = now + self.interval_s
            else:
                next_at += self.interval_s
                if next_at < now:  # fell behind: skip the missed slots instead of bursting
                    next_at = now + self.interval_s


class PeriodicCall(Periodic):
    """A Periodic whose round is a function: for a loop that belongs to an object with more jobs."""

    def __init__(self, name: str, interval_s: float, round_fn: Callable[[], None],
                 on_progress: Callable[[], None] = lambda: None) -> None:
        super().__init__(interval_s, on_progress)
        self.thread_name = name
        self._round_fn = round_fn

    def run_round(self) -> None:
        self._round_fn()
