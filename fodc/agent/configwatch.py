"""Keeps the node's configuration history current: at start, on node restart, periodically, on request.

One thread owns the history. It polls the node's (pid, start time) every --config-check-interval, which
costs a /proc lookup, and re-captures only when that identity changes or the periodic interval is due.
Captures asked for over the command stream run on the caller's thread under the same lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from fodc.agent.settings import AgentSettings, CaptureSettings
from fodc.agent.streams import ActionContext
from fodc.nodeconf.capture import CaptureOptions, NodeConfigCapturer
from fodc.nodeconf.snapshot import ConfigHistory, Snapshot
from fodc.periodic import Periodic
from fodc.times import now_ms
from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import snapshot_to_pb

log = logging.getLogger(__name__)


def capture_options(capture: CaptureSettings) -> CaptureOptions:
    return CaptureOptions(
        pid_file=capture.pid_file, systemd_unit=capture.systemd_unit, process_name=capture.process_name,
        pprof_url=capture.pprof_url, env_allow=capture.env_allow, env_deny=capture.env_deny,
        secret_patterns=capture.secret_names, config_files=capture.config_files, file_max_bytes=capture.max_file_bytes,
    )


def effective_agent_config(settings: AgentSettings) -> dict[str, object]:
    """The agent's own settings as captured next to the node's (what this agent is doing, not just the node)."""
    out: dict[str, object] = {}
    for name, value in settings.option_values().items():
        if isinstance(value, (tuple, list)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        out[name] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
    return out


def version_from_series(series: Iterable[object]) -> str | None:
    """The node's version from a `*_build_info{version=...}` series (the Prometheus convention), if exported.

    `go_info` is not used: its version is the Go toolchain's, not the node's."""
    for item in series:
        if getattr(item, "name", "").endswith("_build_info"):
            version = dict(getattr(item, "labels", ()) or ()).get("version")
            if version:
                return version
    return None


class ConfigWatcher(Periodic):
    """Captures the node's configuration at agent start, when the node restarts, and every capture interval;
    the first round runs at once and takes the agent-start capture."""

    thread_name = "config-watch"

    def __init__(self, capturer: NodeConfigCapturer, *, history: int, check_interval_s: float,
                 capture_interval_s: float, history_file: str = "", on_progress: Callable[[], None] = lambda: None,
                 on_restart: Callable[[Snapshot], object] = lambda _s: None,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        super().__init__(check_interval_s, on_progress)
        self.capturer = capturer
        self.history = ConfigHistory(history, Path(history_file) if history_file else None)
        if kept := self.history.load():
            log.info("configuration history read back", extra={"fields": {"snapshots": kept}})
        self.check_interval_s = check_interval_s
        self.capture_interval_s = capture_interval_s
        self.on_restart = on_restart
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._started = False
        self._identity: tuple[int, int] | None = None
        self._seen_node = False
        self._last_capture = 0.0
        self.captures = 0

    # ---- capturing
    def capture_now(self, reason: str) -> Snapshot:
        """Takes a snapshot and records it; returns the history's latest entry (this one or the confirmed one)."""
        with self._lock:
            self._identity = self.capturer.identity()
            self._seen_node = self._seen_node or self._identity is not None
            snapshot = self.capturer.capture(reason, self._clock_ms())
            self._last_capture = time.monotonic()
            self.captures += 1
            if self.history.add(snapshot):
                log.info("node configuration captured", extra={"fields": {
                    "reason": reason, "hash": snapshot["hash"], "errors": snapshot["errors"]}})
            return self.history.latest() or snapshot

    def latest(self) -> Snapshot:
        with self._lock:
            latest = self.history.latest()
        return latest if latest is not None else self.capture_now("first-request")

    def entries(self, limit: int | None = None) -> list[Snapshot]:
        with self._lock:
            return self.history.entries(limit)

    # ---- the watch loop
    def first_delay_s(self) -> float:
        return 0.0

    def run_round(self) -> None:
        if not self._started:
            self._started = True
            self._safe_capture("agent-start")
            return
        identity = self.capturer.identity()
        if identity != self._identity:
            # Back after a gap (stopped, then started) is a restart too; "found" is the first sighting.
            reason = "node-gone" if identity is None else "node-restart" if self._seen_node else "node-found"
            snapshot = self._safe_capture(reason)
            if reason == "node-restart" and snapshot is not None:
                self.on_restart(snapshot)
        elif self.capture_interval_s and time.monotonic() - self._last_capture >= self.capture_interval_s:
            self._safe_capture("periodic")

    def _safe_capture(self, reason: str) -> Snapshot | None:
        try:
            return self.capture_now(reason)
        except Exception:  # a bug here must not stop restart detection
            self.note_failure("node configuration capture failed", {"reason": reason})
            return None

    # ---- command-stream actions
    def action_snapshot(self, ctx: ActionContext) -> None:
        """ConfigSnapshotRequest: the latest snapshot; with capture set a fresh one is taken first."""
        snapshot = self.capture_now("on-demand") if ctx.request.capture else self.latest()
        ctx.send_result(snapshot_to_pb(snapshot))

    def action_history(self, ctx: ActionContext) -> None:
        """ConfigHistoryRequest: the recorded snapshots, oldest first (the last `limit` when set)."""
        limit = ctx.request.limit or None
        ctx.send_result(pb.ConfigHistory(snapshots=[snapshot_to_pb(s) for s in self.entries(limit)]))
