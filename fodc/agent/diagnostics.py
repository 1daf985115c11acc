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
from pathlib import Path

from fodc.agent.streams import ActionContext, ActionFailed
from fodc.artifact_names import PROFILES
from fodc.diag.checks import profile_warning
from fodc.diag.pprof import Fetched, FetchError, ProfileFetch, profile_url
from fodc.diag.store import ArtifactStore
from fodc.v1 import fodc_pb2 as pb

log = logging.getLogger(__name__)

DEFAULT_CPU_SECONDS = 30


class HeavySlot:
    """One holder at a time and at most `max_waiting` waiting; waits end on cancel or deadline.

    The holder says what it is and when it expects to be done, so a waiter can be told what it waits for
    and for how long (the profile ring's periodic capture holds the slot at most its own length)."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._held = False
        self._waiting = 0
        self._holder = ""
        self._holder_ends = 0.0  # monotonic; 0 when unknown

    def busy_with(self) -> str:
        """What holds the slot now, e.g. "the periodic ring capture (cpu, about 7s left)"; "" when free."""
        with self._lock:
            if not self._held:
                return ""
            left = self._holder_ends - time.monotonic() if self._holder_ends else 0.0
            return self._holder + (f" (about {max(left, 0.0):.0f}s left)" if self._holder_ends else "")

    def _take(self, holder: str, expected_s: float) -> None:
        self._held, self._holder = True, holder
        self._holder_ends = time.monotonic() + expected_s if expected_s else 0.0

    @contextmanager
    def hold(self, cancelled: threading.Event, deadline: float, on_queued: Callable[[int], None],
             holder: str = "a profile", expected_s: float = 0.0) -> Iterator[bool]:
        """Yields True once held; False if cancelled or the deadline passed while waiting."""
        with self._lock:
            if not self._held:
                self._take(holder, expected_s)
                position = 0
            elif self._waiting >= self.max_waiting:
                raise ActionFailed(f"node busy: {self._holder} is running and {self._waiting} are queued "
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
                    self._take(holder, expected_s)
        else:
            got = True
        with self._holding(got) as held:
            yield held

    @contextmanager
    def try_hold(self, holder: str, expected_s: float = 0.0) -> Iterator[bool]:
        """Yields True when the slot was free and nobody waits for it (then held), else False at once:
        background work never queues ahead of, or beside, an operator's request."""
        with self._lock:
            got = not self._held and not self._waiting
            if got:
                self._take(holder, expected_s)
        with self._holding(got) as held:
            yield held

    @contextmanager
    def _holding(self, got: bool) -> Iterator[bool]:
        """Yields `got`; a slot that was got is released on the way out."""
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._held, self._holder, self._holder_ends = False, "", 0.0
            self._free.notify()


class Diagnostics:
    def __init__(self, pprof_url: str | None, store: ArtifactStore, *, max_bytes: int, max_seconds: int,
                 queue: int) -> None:
        self.pprof_url = pprof_url
        self.store = store
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.slot = HeavySlot(queue)

    def action_profile(self, ctx: ActionContext) -> None:
        """ProfileRequest: one profile of the node, streamed as an artifact."""
        request: pb.ProfileRequest = ctx.request
        profile = pb.ProfileKind.Name(request.kind).lower()
        if profile not in PROFILES:
            raise ActionFailed(f"no such profile kind {request.kind} (known: {', '.join(PROFILES)})")
        self.profile(profile, ctx, request.seconds)

    def _seconds(self, profile: str, asked: int) -> int | None:
        if not PROFILES[profile][1]:
            return None
        seconds = asked or DEFAULT_CPU_SECONDS
        if not 1 <= seconds <= self.max_seconds:
            raise ActionFailed(f"seconds must be from 1 to {self.max_seconds}, not {seconds}")
        return seconds

    def profile(self, profile: str, ctx: ActionContext, asked_seconds: int = 0) -> None:
        seconds = self._seconds(profile, asked_seconds)
        waited: list[tuple[float, str]] = []  # (since, what held the slot) when this request had to wait

        def queued(position: int) -> None:
            busy = self.slot.busy_with()
            waited.append((time.monotonic(), busy))
            ctx.reply(pb.CommandReply.RUNNING, progress=pb.Progress(
                phase="queued", position=position, waiting_for=f"waiting for {busy}" if busy else ""))

        started: list[float] = []

        def running() -> None:
            started.append(time.monotonic())
            ctx.reply(pb.CommandReply.RUNNING, progress=pb.Progress(phase="running"))

        fetched = self.take(profile, seconds, ctx.command_id, ctx.cancelled, time.monotonic() + ctx.timeout_s,
                            queued, running)
        if fetched is None:  # cancelled
            return
        info = pb.ArtifactInfo(content_type=fetched.content_type, sha256=fetched.sha256, file_name=f"{profile}.pb.gz",
                               profile=profile, seconds=seconds or 0, source=fetched.url,
                               warning=profile_warning(profile, fetched.path) or "")
        if waited and waited[0][1] and started:  # say what it waited for, and how long
            info.note = f"waited {started[0] - waited[0][0]:.1f}s for {waited[0][1].split(' (about ')[0]}"
        ctx.send_file(fetched.path, info)

    def take(self, profile: str, seconds: int | None, label: str, cancelled: threading.Event, deadline: float,
             on_queued: Callable[[int], None] = lambda _n: None,
             on_running: Callable[[], None] = lambda: None, *, holder: str = "",
             wait: bool = True, dest: Path | None = None) -> Fetched | None:
        """Takes one profile into the store, or to `dest` (holding the heavy slot); None when cancelled, or
        when `wait` is False and the slot is taken or wanted."""
        if not self.pprof_url:
            raise ActionFailed("profiling is off: --node-pprof-url is empty")
        holder = holder or f"an on-demand {profile} profile"
        expected = float(seconds or 0) + 5.0
        slot = (self.slot.hold(cancelled, deadline, on_queued, holder, expected) if wait
                else self.slot.try_hold(holder, expected))
        with slot as held:
            if not held:
                if cancelled.is_set() or not wait:
                    return None
                raise ActionFailed("timed out waiting for the profile running before this one")
            on_running()
            url = profile_url(self.pprof_url, profile, seconds)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            path = dest or self.store.new_path(stamp, profile, label, ".pb.gz")
            fetch = ProfileFetch(url, path, max_bytes=self.max_bytes, timeout_s=max(1.0, deadline - time.monotonic()))
            try:
                fetched = fetch.run(cancelled)
            except FetchError as exc:
                if cancelled.is_set():
                    return None
                raise ActionFailed(str(exc)) from None
        if dest is None:
            self.store.prune()
        log.info("profile taken", extra={"fields": {"profile": profile, "seconds": seconds, "bytes": fetched.size,
                                                    "path": str(fetched.path)}})
        return fetched
