"""Automatic heap + goroutine profiles when the node nears its memory limit (as upstream FODC does).

Checks the node's RSS against its limit every --memory-pressure-interval; at or above the threshold it
takes a heap and a goroutine profile into the diagnostics directory, then waits out a cooldown. At most
--memory-pressure-max-captures are taken per agent run, so a node stuck near its limit cannot fill the
disk with near-identical profiles. The proxy lists the captures with its jobs and downloads them on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fodc.agent.diagnostics import Diagnostics
from fodc.agent.streams import ActionContext, ActionFailed
from fodc.diag.memory import read_memory
from fodc.nodeconf.finder import NodeProcessFinder, NotFound
from fodc.periodic import Periodic
from fodc.times import now_ms, rfc3339
from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import capture_to_pb

log = logging.getLogger(__name__)

AUTO_PROFILES = ("heap", "goroutine")


class MemoryPressureWatch(Periodic):
    thread_name = "memory-pressure"

    def __init__(self, diagnostics: Diagnostics, finder: NodeProcessFinder, *, threshold_percent: float,
                 interval_s: float, cooldown_s: float, max_captures: int, explicit_limit: int | None,
                 on_progress: Callable[[], None] = lambda: None,
                 on_pressure: Callable[[dict[str, Any]], object] = lambda _d: None) -> None:
        self.diagnostics = diagnostics
        self.finder = finder
        self.threshold_percent = threshold_percent
        self.cooldown_s = cooldown_s
        self.max_captures = max_captures
        self.explicit_limit = explicit_limit
        self.on_pressure = on_pressure
        super().__init__(interval_s, on_progress)
        self._last_capture: float | None = None
        self._count = 0
        self._captures: deque[dict[str, Any]] = deque(maxlen=max(1, max_captures))
        self._lock = threading.Lock()
        self.last_reading = ""

    @property
    def enabled(self) -> bool:
        return self.threshold_percent > 0 and bool(self.diagnostics.pprof_url)

    def start(self) -> None:
        if self.enabled:
            super().start()

    def run_round(self) -> None:
        self.check()

    def check(self) -> dict[str, Any] | None:
        """One look at the node; returns the capture record when it captured."""
        try:
            reading = read_memory(self.finder.find().pid, explicit_limit=self.explicit_limit)
        except (NotFound, OSError) as exc:
            self.last_reading = f"unavailable: {exc}"
            return None
        self.last_reading = f"{reading.percent:.1f}% of {reading.limit_bytes} ({reading.limit_source})"
        if reading.percent < self.threshold_percent:
            return None
        self.on_pressure({"rss_bytes": reading.rss_bytes, "limit_bytes": reading.limit_bytes,
                          "limit_source": reading.limit_source, "percent": round(reading.percent, 1)})
        if self._count >= self.max_captures:
            return None
        if self._last_capture is not None and time.monotonic() - self._last_capture < self.cooldown_s:
            return None
        self._last_capture = time.monotonic()
        self._count += 1
        record: dict[str, Any] = {
            "id": f"auto-{now_ms()}", "trigger": "memory-pressure",
            "time": rfc3339(now_ms()), "rss_bytes": reading.rss_bytes,
            "limit_bytes": reading.limit_bytes, "limit_source": reading.limit_source,
            "percent": round(reading.percent, 1), "files": [], "errors": {},
        }
        log.warning("node memory at the capture threshold; taking heap and goroutine profiles", extra={"fields": {
            "rss_bytes": reading.rss_bytes, "limit_bytes": reading.limit_bytes, "percent": record["percent"]}})
        for profile in AUTO_PROFILES:
            try:
                fetched = self.diagnostics.take(profile, None, record["id"], self._stop, time.monotonic() + 60)
            except ActionFailed as exc:
                record["errors"][profile] = str(exc)
                continue
            if fetched is not None:
                record["files"].append({"profile": profile, "file": fetched.path.name, "size": fetched.size,
                                        "sha256": fetched.sha256})
        with self._lock:
            self._captures.append(record)
        return record

    # ---- command-stream actions
    def action_list(self, ctx: ActionContext) -> None:
        """AutomaticListRequest: the automatic captures of this run, oldest first (files may since be pruned)."""
        with self._lock:
            records = [dict(r, files=[f for f in r["files"] if self._path(f["file"]).exists()])
                       for r in self._captures]
        ctx.send_result(pb.AutomaticCaptureList(captures=[capture_to_pb(r) for r in records]))

    def action_fetch(self, ctx: ActionContext) -> None:
        """AutomaticFetchRequest: one stored artifact by file name (only names in the diagnostics directory)."""
        name = ctx.request.file
        path = self._path(name)
        if not name or "/" in name or name.startswith(".") or not path.is_file():
            raise ActionFailed(f"no such diagnostics file {name!r}")
        ctx.send_file(path, pb.ArtifactInfo(content_type="application/octet-stream", file_name=name))

    def _path(self, name: str) -> Path:
        return self.diagnostics.store.directory / name
