"""Feeds kernel (eBPF) and OS telemetry into the flight recorder on its own cadence and timestamps.

The BCC compile runs once on this thread, after READY, so a slow compile never delays startup or the
watchdog; until it finishes the OS fallback metrics flow on their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fodc.ktm import KernelTelemetry
from fodc.periodic import Periodic
from fodc.window import FlightRecorder, NotAfterNewest

log = logging.getLogger(__name__)

SOURCE = "kernel-telemetry"


class TelemetryFeeder(Periodic):
    thread_name = "kernel-telemetry"

    def __init__(self, telemetry: KernelTelemetry, recorder: FlightRecorder, interval_s: float,
                 on_progress: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(interval_s, on_progress)
        self.telemetry = telemetry
        self._clock = clock
        self.recorder = recorder
        self.last_error = ""

    def start(self) -> None:
        threading.Thread(target=self.telemetry.start, name="ktm-compile", daemon=True).start()
        super().start()

    def stop(self) -> None:
        super().stop()
        self.telemetry.close()

    def run_round(self) -> None:
        now_ms = int(self._clock() * 1000)
        try:
            self.recorder.ingest_families(SOURCE, now_ms, self.telemetry.collect(now_ms))
            self.last_error = ""
        except NotAfterNewest as exc:  # refused by the window (a guard: the window clock never goes back)
            self.last_error = str(exc)
            log.warning("kernel telemetry sample refused by the window", extra={"fields": {"reason": str(exc)}})
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
