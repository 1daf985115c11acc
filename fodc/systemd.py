"""systemd supervision: sd_notify messages and a watchdog that pings only while the daemon makes progress.

A watchdog that pings from a timer thread proves only that the timer thread is alive. Here every main loop
registers a `Beat` and ticks it each iteration; WATCHDOG=1 goes out only while every beat is fresh, so a
wedged loop stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sdnotify

from fodc.periodic import Periodic

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify state strings; a no-op when the process was not started by systemd (no NOTIFY_SOCKET).

    Created once per daemon, before anything forks: the proxy's gunicorn master creates it, removes
    NOTIFY_SOCKET from the environment (so gunicorn does not announce READY before we serve), and the worker
    inherits the connected socket.
    """

    def __init__(self, *, take_from_environment: bool = False) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        if self._notifier is not None:
            # A datagram queue that nobody drains (10 messages by default) must never block a daemon loop:
            # drop the message instead (sdnotify swallows the resulting BlockingIOError).
            self._notifier.socket.setblocking(False)
        self.watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        if take_from_environment:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)

    def send(self, *states: str) -> None:
        if self._notifier is not None:
            self._notifier.notify("\n".join(states))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")


@dataclass
class Beat:
    """Progress marker of one loop; `tick()` each iteration. A loop may be idle for at most `max_silence` s."""

    name: str
    max_silence: float
    clock: Callable[[], float] = time.monotonic
    last: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last = self.clock()

    def tick(self) -> None:
        self.last = self.clock()

    def stale(self, now: float) -> bool:
        return now - self.last > self.max_silence


class ProgressWatchdog(Periodic):
    """Pings WATCHDOG=1 every half watchdog period, but only while all registered beats are fresh."""

    thread_name = "sd-watchdog"

    def __init__(self, notifier: Notifier, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(notifier.watchdog_usec / 2e6 if notifier.watchdog_usec else 0.0)
        self._notifier = notifier
        self._clock = clock
        self._beats: list[Beat] = []
        self._lock = threading.Lock()
        self._started = False
        self._warned = False

    @property
    def interval(self) -> float:
        """Seconds between pings; 0 when systemd asked for no watchdog."""
        return self.interval_s

    def register(self, name: str, max_silence: float) -> Beat:
        beat = Beat(name, max_silence, self._clock)
        with self._lock:
            self._beats.append(beat)
        return beat

    def stale_beats(self) -> list[str]:
        now = self._clock()
        with self._lock:
            return [b.name for b in self._beats if b.stale(now)]

    def check_and_ping(self) -> bool:
        """One watchdog round; returns whether a ping was sent."""
        stale = self.stale_beats()
        if stale:
            if not self._warned:
                log.error("main loops stalled; withholding the systemd watchdog ping",
                          extra={"fields": {"stalled": ",".join(stale)}})
                self._warned = True
            return False
        self._warned = False
        self._notifier.watchdog()
        return True

    def start(self) -> None:
        if not self.interval_s or self._started:
            return
        self._started = True
        super().start()

    def run_round(self) -> None:
        self.check_and_ping()
