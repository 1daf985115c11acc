"""The agent's diagnostics actions: Go pprof profiles of the node, one at a time, queued within a bound.

Profiling is the heaviest thing an agent asks of its node, and Go allows only one CPU profile at a time, so
every profile takes the single "heavy" slot; a few more may wait for it (reported as phase=queued), beyond
that the request is refused at once. Each artifact is written to --diagnostics-dir first (kept within a count
and byte cap) and then streamed to the proxy in chunks.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fodc.agent.streams import Action, ActionContext, ActionFailed
from fodc.diag.checks import profile_warning
from fodc.diag.pprof import PROFILES, Fetched, FetchError, ProfileFetch, profile_url
from fodc.diag.store import ArtifactStore
from fodc.v1 import fodc_pb2 as pb

log = logging.getLogger(__name__)

DEFAULT_CPU_SECONDS = 30


class HeavySlot:
    """One holder at a time and at most `max_waiting` waiting; waits end on cancel or deadline."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._held = False
        self._waiting = 0

    @contextmanager
    def hold(self, cancelled: threading.Event, deadline: float,
             on_queued: Callable[[int], None]) -> Iterator[bool]:
        """Yields True once held; False if cancelled or the deadline passed while waiting."""
        with self._lock:
            if not self._held:
                self._held, position = True, 0
            elif self._waiting >= self.max_waiting:
                raise ActionFailed(f"node busy: a profile is running and {self._waiting} are queued "
                                   f"(--diagnostics-queue {self.max_waiting}); try later")
            else:
                self._waiting += 1
                position = self._waiting
        if position:
            on_queued(position)
            with self._lock:
                try:
                    while self._held and not cancelled.is_set() and time.monotonic() < deadline:
                        self._free.wait(0.2)
                finally:
                    self._waiting -= 1
                got = not self._held and not cancelled.is_set()
                if got:
                    self._held = True
            if not got:
                yield False
                return
        try:
            yield True
        finally:
            with self._lock:
                self._held = False
                self._free.notify()


class Diagnostics:
    def __init__(self, pprof_url: str | None, store: ArtifactStore, *, max_bytes: int, max_seconds: int,
                 queue: int) -> None:
        self.pprof_url = pprof_url
        self.store = store
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.slot = HeavySlot(queue)

    def actions(self) -> dict[str, Action]:
        return {f"profile.{name}": self._action(name) for name in PROFILES}

    def _action(self, profile: str) -> Action:
        return lambda ctx: self.profile(profile, ctx)

    def _seconds(self, profile: str, ctx: ActionContext) -> int | None:
        if not PROFILES[profile][1]:
            return None
        raw = ctx.params.get("seconds", str(DEFAULT_CPU_SECONDS))
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_seconds:
            raise ActionFailed(f"seconds must be a whole number from 1 to {self.max_seconds}, not {raw!r}")
        return int(raw)

    def profile(self, profile: str, ctx: ActionContext) -> None:
        seconds = self._seconds(profile, ctx)
        queued = lambda n: ctx.reply(pb.CommandReply.RUNNING, meta={"phase": "queued", "position": str(n)})  # noqa: E731
        running = lambda: ctx.reply(pb.CommandReply.RUNNING, meta={"phase": "running"})  # noqa: E731
        fetched = self.take(profile, seconds, ctx.command_id, ctx.cancelled, time.monotonic() + ctx.timeout_s,
                            queued, running)
        if fetched is None:  # cancelled
            return
        meta = {"content_type": fetched.content_type, "sha256": fetched.sha256, "file_name": f"{profile}.pb.gz",
                "profile": profile, "seconds": str(seconds or ""), "source": fetched.url}
        warning = profile_warning(profile, fetched.path)
        if warning:
            meta["warning"] = warning
        ctx.send_file(fetched.path, meta)

    def take(self, profile: str, seconds: int | None, label: str, cancelled: threading.Event, deadline: float,
             on_queued: Callable[[int], None] = lambda _n: None,
             on_running: Callable[[], None] = lambda: None) -> Fetched | None:
        """Takes one profile into the store (holding the heavy slot); None when cancelled."""
        if not self.pprof_url:
            raise ActionFailed("profiling is off: --node-pprof-url is empty")
        with self.slot.hold(cancelled, deadline, on_queued) as held:
            if not held:
                if cancelled.is_set():
                    return None
                raise ActionFailed("timed out waiting for the profile running before this one")
            on_running()
            url = profile_url(self.pprof_url, profile, seconds)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            path = self.store.new_path(stamp, profile, label, ".pb.gz")
            fetch = ProfileFetch(url, path, max_bytes=self.max_bytes, timeout_s=max(1.0, deadline - time.monotonic()))
            try:
                fetched = fetch.run(cancelled)
            except FetchError as exc:
                if cancelled.is_set():
                    return None
                raise ActionFailed(str(exc)) from None
        self.store.prune()
        log.info("profile taken", extra={"fields": {"profile": profile, "seconds": seconds, "bytes": fetched.size,
                                                    "path": str(fetched.path)}})
        return fetched
