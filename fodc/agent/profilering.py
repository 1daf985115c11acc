"""The agent's periodic profiles: every --profile-every a CPU profile (--profile-cpu-seconds) and a heap
profile of the node go into the on-disk profile ring, so an incident has profiles from before its trigger.

Background work yields to operators: a capture only starts when no profile runs or waits, and an operator's
request that arrives while one runs waits at most the rest of it (the heavy slot tells it so). A capture
that cannot be taken is counted and logged, never retried in a loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fodc.agent.diagnostics import Diagnostics
from fodc.agent.streams import ActionContext, ActionFailed
from fodc.diag.ring import ProfileRing, RingEntry
from fodc.periodic import Periodic
from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import ring_profile_to_pb

log = logging.getLogger(__name__)

FIRST_CAPTURE_AFTER_S = 30.0  # the first capture soon after start, not a whole --profile-every later


class ProfileRingCapture(Periodic):
    thread_name = "profile-ring"

    def __init__(self, ring: ProfileRing, diagnostics: Diagnostics, *, every_s: float, cpu_seconds: int,
                 clock: Callable[[], float] = time.time, on_progress: Callable[[], None] = lambda: None) -> None:
        super().__init__(every_s, on_progress)
        self.ring = ring
        self.diagnostics = diagnostics
        self.cpu_seconds = cpu_seconds
        self.clock = clock
        self.skipped = 0  # captures left out because an operator's profile ran or waited
        self.failures = 0
        self.last_error = ""

    def first_delay_s(self) -> float:
        return min(self.interval_s, FIRST_CAPTURE_AFTER_S)

    def run_round(self) -> None:
        if self.cpu_seconds:
            self.capture("cpu", self.cpu_seconds)
        self.capture("heap", 0)

    def capture(self, kind: str, seconds: int) -> RingEntry | None:
        """Takes one profile into the ring; None when skipped (slot busy) or failed (counted, logged)."""
        taken_ms = int(self.clock() * 1000)
        try:
            dest = self.ring.temp_path(kind)
            fetched = self.diagnostics.take(kind, seconds or None, "ring", self._stop,
                                            time.monotonic() + seconds + 60,
                                            holder=f"the periodic ring capture ({kind})", wait=False, dest=dest)
        except (ActionFailed, OSError) as exc:
            self._failed(kind, str(exc))
            return None
        if fetched is None:
            if not self._stop.is_set():
                self.skipped += 1
                log.info("ring capture skipped: an operator's profile runs or waits", extra={"fields": {
                    "kind": kind}})
            return None
        try:
            return self.ring.adopt(kind, taken_ms, seconds, Path(fetched.path))
        except (OSError, ValueError) as exc:
            self._failed(kind, str(exc))
            return None

    def _failed(self, kind: str, reason: str) -> None:
        self.failures += 1
        self.last_error = f"{kind}: {reason}"
        log.warning("ring capture failed", extra={"fields": {"kind": kind, "reason": reason}})
        return None

    def summary(self) -> dict[str, str]:
        """Figures for the agent's runtime info (shown in /cluster)."""
        count, size = self.ring.usage()
        info = {"profile_ring": f"{count} profiles, {size} bytes"}
        if self.skipped or self.failures:
            info["profile_ring_missed"] = f"skipped={self.skipped} failed={self.failures}"
        return info


class RingCollector(Collector):
    """The ring's figures on the agent's /metrics, read at scrape time."""

    def __init__(self, capture: ProfileRingCapture) -> None:
        self.capture = capture

    def collect(self) -> Iterator[Metric]:
        ring = self.capture.ring
        count, size = ring.usage()
        yield GaugeMetricFamily("fodc_agent_profile_ring_profiles", "profiles kept in the profile ring", value=count)
        yield GaugeMetricFamily("fodc_agent_profile_ring_bytes", "bytes of profiles kept in the profile ring",
                                value=size)
        for name, doc, value in (
                ("writes", "profiles written into the ring", ring.writes),
                ("written_bytes", "bytes written into the ring", ring.bytes_written),
                ("evicted", "profiles removed from the ring to stay within --profile-ring-bytes", ring.evicted),
                ("skipped", "ring captures left out because an operator's profile ran or waited",
                 self.capture.skipped),
                ("failures", "ring captures that failed", self.capture.failures)):
            yield CounterMetricFamily(f"fodc_agent_profile_ring_{name}", doc, value=value)


class RingActions:
    """RingListRequest / RingFetchRequest on the command stream; answers 'off' when the ring is off."""

    def __init__(self, ring: ProfileRing | None, off_reason: str) -> None:
        self.ring = ring
        self.off_reason = off_reason

    def _ring(self) -> ProfileRing:
        if self.ring is None:
            raise ActionFailed(f"the profile ring is off on this agent: {self.off_reason}")
        return self.ring

    def action_list(self, ctx: ActionContext) -> None:
        """RingListRequest: the ring's profiles, oldest first (those taken from since_unix_ms on, when set)."""
        since_ms = ctx.request.since_unix_ms
        entries = self._ring().entries(since_ms if since_ms > 0 else None)
        ctx.send_result(pb.RingProfileList(profiles=[ring_profile_to_pb(e.to_json()) for e in entries]))

    def action_fetch(self, ctx: ActionContext) -> None:
        """RingFetchRequest: one ring profile by name."""
        name = ctx.request.name
        path = self._ring().path(name)
        if path is None:
            raise ActionFailed(f"no profile {name[:100]!r} in the ring (it may have been rotated out)")
        ctx.send_file(path, pb.ArtifactInfo(content_type="application/octet-stream", file_name=name))
