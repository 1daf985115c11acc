"""Incidents someone asks for: an operator (`fodc capture`, through the proxy), the node or a script (a trigger
file appearing), or whoever can signal the agent (SIGUSR2). Each freezes a `manual` incident now, whatever the
cooldowns; only one manual incident collects at a time, so a script touching the file in a loop costs one.

The signal handler only raises a flag; the capture itself runs in this watch's own thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from fodc.agent.crashes import open_regular
from fodc.agent.incidents import IncidentRecorder
from fodc.agent.streams import ActionContext, ActionFailed
from fodc.periodic import Periodic
from fodc.wire_results import incident_to_pb

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 300
MANUAL = "manual"


def clean_reason(text: str) -> str:
    """One printable line of at most MAX_REASON_CHARS: a reason comes from a file or a request, never trusted."""
    line = (text or "").splitlines()[0] if (text or "").strip() else ""
    return "".join(c if c.isprintable() else "?" for c in line.strip())[:MAX_REASON_CHARS]


class ManualCapture(Periodic):
    thread_name = "manual-capture"

    def __init__(self, recorder: IncidentRecorder, *, trigger_file: str | None, interval_s: float,
                 node_up: Callable[[], bool], on_progress: Callable[[], None] = lambda: None) -> None:
        self.recorder = recorder
        self.trigger_file = trigger_file
        self.node_up = node_up
        self._signalled = threading.Event()
        self._file_seen: tuple[int, int] | None = None  # (mtime_ns, inode) of a trigger file we could not remove
        self._file_error = ""
        self._lock = threading.Lock()
        super().__init__(interval_s, on_progress)

    def signalled(self) -> None:
        """From a signal handler: only a flag, the capture happens on the next round."""
        self._signalled.set()

    def run_round(self) -> None:
        if self._signalled.is_set():
            self._signalled.clear()
            self._try("SIGUSR2 to the agent", "signal")
        if self.trigger_file:
            self._check_file(self.trigger_file)

    def capture(self, reason: str, source: str, by: str | None = None) -> dict[str, Any]:
        """Starts a manual incident now; raises ActionFailed while another one is still collecting."""
        with self._lock:
            busy = next((i for i in self.recorder.summaries()
                         if i.get("trigger") == MANUAL and i.get("state") == "collecting"), None)
            if busy is not None:
                raise ActionFailed(f"a manual incident is still collecting ({busy['id']}); try again once it is "
                                   "complete")
            detail = {"reason": clean_reason(reason) or "(none given)", "source": source, **({"by": by} if by else {})}
            incident = self.recorder.trigger(MANUAL, detail, node_up=self.node_up(), force=True)
        assert incident is not None  # forced: never held back by a cooldown
        return incident

    def _try(self, reason: str, source: str) -> None:
        try:
            self.capture(reason, source)
        except ActionFailed as exc:
            log.warning("manual capture refused", extra={"fields": {"source": source, "reason": str(exc)}})

    def _check_file(self, path: str) -> None:
        try:
            with open_regular(path) as f:
                stat = os.fstat(f.fileno())
                first = f.read(4096).decode(errors="replace")
        except FileNotFoundError:
            self._file_seen, self._file_error = None, ""
            return
        except OSError as exc:  # e.g. a FIFO or a directory there: said once, not every second
            if str(exc) != self._file_error:
                log.warning("cannot read the trigger file", extra={"fields": {"path": path, "reason": str(exc)}})
            self._file_error = str(exc)
            return
        self._file_error = ""
        if self._file_seen == (stat.st_mtime_ns, stat.st_ino):
            return  # the one we already acted on and could not remove
        try:
            os.unlink(path)
            self._file_seen = None
        except OSError:
            self._file_seen = (stat.st_mtime_ns, stat.st_ino)  # touched again later: a new capture
        self._try(first or f"trigger file {path}", "trigger-file")

    def action_capture(self, ctx: ActionContext) -> None:
        """IncidentCaptureRequest: a manual incident now; answers its summary."""
        request = ctx.request  # pb.IncidentCaptureRequest
        incident = self.capture(request.reason, "operator", clean_reason(request.requested_by))
        ctx.send_result(incident_to_pb(incident))
