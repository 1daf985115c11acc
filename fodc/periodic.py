"""A background loop that does one round of work every interval and survives its own bugs.

The agent's watches and the proxy's incident copier share this shape: a daemon thread, a stop event that
also cancels waits inside a round, an exception in one round logged instead of ending the loop, and a
watchdog beat after every round, so a wedged round (not a long interval) is what stops the systemd pings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    thread_name = "periodic"

    def __init__(self, interval_s: float, on_progress: Callable[[], None] = lambda: None) -> None:
        self.interval_s = interval_s
        self.on_progress = on_progress
        self._stop = threading.Event()

    def run_round(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        threading.Thread(target=self._loop, name=self.thread_name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_round()
            except Exception:  # a bug in one round must not end the loop
                log.exception("periodic round failed", extra={"fields": {"loop": self.thread_name}})
            self.on_progress()
