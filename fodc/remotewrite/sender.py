"""Sending the window to one remote-write receiver: rounds of reads, sharded senders, retries with backoff.

One thread per receiver runs rounds. A round reads the window after the stream's cursors (an incident's
backfill first, then the regular push), bounded to a number of samples, picks what to send (plan.py), hands
each shard its series (a series always goes to the same shard, so its samples arrive in order), and waits until
every shard has either delivered its requests or dropped those the receiver refused for good. Only then do the
cursors move and get written down. A receiver that fails or hangs therefore costs lag only: the scraper and the
window never wait for it, and nothing the window still holds is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fodc.agent.backoff import Backoff
from fodc.periodic import Periodic
from fodc.remotewrite.client import DROP, SENT, Client, endpoint_name
from fodc.remotewrite.encode import Labels, Series, compress, encode, split
from fodc.remotewrite.plan import LabelCache, Stream, advance, lag_ms, pick
from fodc.remotewrite.state import MAX_BACKFILLS, Backfill, ReceiverState, StateFile
from fodc.times import now_ms
from fodc.window import FlightRecorder
from fodc.window.reads import TooManyPoints

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024  # uncompressed; a bigger request is cut in two
REFUSAL_LOG_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class SenderOptions:
    interval_ms: int = 0  # 0: every scrape
    timeout_s: float = 30.0  # one send, whole
    shards: int = 2
    max_samples: int = 2000  # per request
    round_samples: int = 40000  # read from the window per round, at most
    max_backoff_s: float = 30.0
    poll_s: float = 1.0  # how often a caught-up stream looks for new scrapes
    lateness_ms: int = 30000  # a backfill ends this long after its window: the last scrapes have landed
    save_every_s: float = 2.0  # least time between two state writes


@dataclass
class Counters:
    """What self-metrics read; written by the receiver's threads (plain increments: races cost a count)."""

    sent: int = 0
    backfill_sent: int = 0
    failed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    queued: int = 0  # samples picked and not yet delivered or dropped
    backfills_done: int = 0
    backfills_dropped: int = 0
    last_error: str = ""
    last_sent_ms: int = 0


class Receiver(Periodic):
    """One --remote-write-url: its thread, its shards' connections, its counters. A round that sent or went
    through anything is followed at once; a caught-up stream looks again every `poll_s`."""

    thread_name = "remote-write"

    def __init__(self, url: str, recorder: FlightRecorder, state_file: StateFile, options: SenderOptions, *,
                 added: Labels, clock: Callable[[], float] = time.time,
                 client: Callable[[str], Client] | None = None) -> None:
        super().__init__(options.poll_s)
        self.url = url
        self.name = endpoint_name(url)
        self.recorder = recorder
        self.state_file = state_file
        self.options = options
        self.added = added
        self.clock = clock
        self.counters = Counters()
        self.state: ReceiverState = state_file.receiver(url, int(clock() * 1000))
        make = client or (lambda u: Client(u, timeout_s=options.timeout_s))
        self._clients = [make(url) for _ in range(options.shards)]
        self._pool = ThreadPoolExecutor(max_workers=options.shards, thread_name_prefix="remote-write-shard")
        self._saved_at = 0.0
        self._failing = False
        self._labels = LabelCache()  # touched by the round thread only
        self._refusal_lock = threading.Lock()  # shards refuse concurrently
        self._last_refusal: tuple[str, float, int] = ("", -REFUSAL_LOG_EVERY_S, 0)

    # ------------------------------------------------------------------ control

    def first_delay_s(self) -> float:
        return 0.0

    def stop(self, timeout_s: float = 5.0) -> None:
        super().stop()
        self.join(timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.state_file.save()
        for client in self._clients:
            client.close()

    def backfill(self, incident: str, start_ms: int, end_ms: int) -> None:
        """Queues an incident's window [start_ms, end_ms] to be sent at full resolution; the oldest queued
        backfill is dropped (and counted) beyond MAX_BACKFILLS."""
        with self.state_file.lock:
            backfills = self.state.backfills
            backfills.append(Backfill(incident, Stream(start_ms - 1, end_ms=end_ms)))
            while len(backfills) > MAX_BACKFILLS:
                backfills.pop(0)
                self.counters.backfills_dropped += 1
        self._save(force=True)

    # ------------------------------------------------------------------ figures

    def lag_seconds(self) -> float:
        return lag_ms(self.state.regular, self.recorder.newest()) / 1000

    def pending_backfills(self) -> int:
        return len(self.state.backfills)

    # ------------------------------------------------------------------ rounds

    def run_round(self) -> bool:
        """One read-pick-send-commit round of the first stream with work: the queued backfills in order, then
        the regular push (a backfill waiting for the end of its window holds nothing up). True if it sent or
        went through anything, so the next round follows at once."""
        with self.state_file.lock:
            backfills = list(self.state.backfills)
        for backfill in backfills:
            done = self._stream_round(backfill.stream, backfill)
            if done is not None:
                return done
        return bool(self._stream_round(self.state.regular, None))

    def _stream_round(self, stream: Stream, backfill: Backfill | None) -> bool | None:
        """A round of one stream; None when it has nothing to send now."""
        newest = full = self.recorder.newest()
        if stream.end_ms is not None:
            newest = {s: min(t, stream.end_ms) for s, t in newest.items()}
        active = [s for s, t in newest.items() if stream.cursors.get(s, stream.origin_ms) < t]
        if not active:
            if backfill is not None and self.clock() * 1000 > (stream.end_ms or 0) + self.options.lateness_ms:
                self._finish_backfill(backfill)
                return True
            return None
        lo = stream.read_from(active, self.options.interval_ms)
        hi = max(newest[s] for s in active)
        windows, hi = self._read(lo, hi)
        picked = pick(windows, stream, interval_ms=self.options.interval_ms, added=self.added, read_to_ms=hi,
                      backfill_until_ms=None if backfill is None else self.state.regular.origin_ms,
                      labels=self._labels)
        del windows
        if picked.samples and not self._send(picked.series, picked.samples, backfill is not None):
            return False  # stopping: the cursors stay where they were
        with self.state_file.lock:
            moved = advance(stream, picked, {s: full[s] for s in active}, hi)
        self._save()
        return moved

    def _read(self, lo: int, hi: int) -> tuple[list, int]:
        """The window's series in [lo, hi], the range narrowed until it holds at most round_samples points
        (at least one scrape's worth, whatever its size)."""
        budget = self.options.round_samples
        while True:
            try:
                return list(self.recorder.query(lo, hi, max_points=budget)), hi
            except TooManyPoints as exc:
                if hi <= lo:
                    budget = exc.points
                    continue
                hi = lo + (hi - lo) // 2

    def _finish_backfill(self, backfill: Backfill) -> None:
        with self.state_file.lock:
            if backfill in self.state.backfills:
                self.state.backfills.remove(backfill)
        self.counters.backfills_done += 1
        log.info("incident window sent to the receiver", extra={"fields": {"receiver": self.name,
                                                                          "incident": backfill.incident}})
        self._save(force=True)

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._saved_at >= self.options.save_every_s:
            self._saved_at = now
            self.state_file.save()

    # ------------------------------------------------------------------ sending

    def _send(self, series: list[Series], samples: int, backfill: bool) -> bool:
        """Delivers every series (each shard its own, in order); False if stopped before all were."""
        shards: list[list[Series]] = [[] for _ in self._clients]
        for one in series:
            shards[hash(one.labels) % len(shards)].append(one)  # the same shard all along this process' life
        self.counters.queued += samples
        try:
            futures = [self._pool.submit(self._deliver_all, self._clients[i], part, backfill)
                       for i, part in enumerate(shards) if part]
        except RuntimeError:  # the pool was shut down: stopping
            return False
        return all(f.result() for f in futures)

    def _deliver_all(self, client: Client, series: list[Series], backfill: bool) -> bool:
        return all(self._deliver(client, body, samples, backfill) for body, samples in self._bodies(series))

    def _bodies(self, series: list[Series]) -> Iterator[tuple[bytes, int]]:
        for request in split(series, self.options.max_samples):
            yield from self._fit(request)

    def _fit(self, request: list[Series]) -> Iterator[tuple[bytes, int]]:
        samples = sum(len(s) for s in request)
        body = encode(request)
        if len(body) <= MAX_BODY_BYTES or samples <= 1:
            yield compress(body), samples
            return
        half = max(1, samples // 2)
        for part in split(request, half):
            yield from self._fit(part)

    def _log_refusal(self, message: str, samples: int) -> None:
        """One line per refusal, but at most one a minute while the receiver says the same (a receiver that
        refuses everything would otherwise write a line per request); the counters have every one."""
        now = time.monotonic()
        with self._refusal_lock:
            last_message, last_at, quiet = self._last_refusal
            if message == last_message and now - last_at < REFUSAL_LOG_EVERY_S:
                self._last_refusal = (last_message, last_at, quiet + 1)
                return
            self._last_refusal = (message, now, 0)
        log.warning("remote-write receiver refused a request; its samples are dropped", extra={"fields": {
            "receiver": self.name, "samples": samples, "reason": message,
            **({"same_refusals_not_logged": quiet} if quiet else {})}})

    def _deliver(self, client: Client, body: bytes, samples: int, backfill: bool) -> bool:
        """Sends one request until it is taken or refused for good; False if stopped meanwhile."""
        backoff = Backoff(initial_s=0.25, max_s=self.options.max_backoff_s)
        c = self.counters
        while True:
            outcome = client.post(body)
            c.requests[outcome.kind] = c.requests.get(outcome.kind, 0) + 1
            if outcome.kind == SENT:
                c.sent += samples
                if backfill:
                    c.backfill_sent += samples
                c.bytes_sent += len(body)
                c.queued -= samples
                c.last_sent_ms = now_ms()
                c.last_error = ""  # /cluster shows trouble that lasts, not one long gone
                if self._failing:
                    self._failing = False
                    log.info("remote-write receiver takes samples again", extra={"fields": {"receiver": self.name}})
                return True
            c.last_error = outcome.message
            if outcome.kind == DROP:
                reason = f"http_{outcome.status}" if outcome.status else "refused"
                c.dropped[reason] = c.dropped.get(reason, 0) + samples
                c.queued -= samples
                self._log_refusal(outcome.message, samples)
                return True
            c.failed += samples
            if not self._failing:
                self._failing = True
                log.warning("remote-write send failed; retrying with backoff", extra={"fields": {
                    "receiver": self.name, "reason": outcome.message}})
            delay = backoff.next_delay()
            if outcome.retry_after_s is not None:
                delay = min(max(delay, outcome.retry_after_s), self.options.max_backoff_s)
            if self._stop.wait(delay):
                c.queued -= samples
                return False
