"""Which of the window's samples a receiver is sent next: the regular push and an incident's backfill.

Pure: the caller reads the window and passes its series here with where each stream stopped. A stream keeps,
per source, the timestamp of the last scrape it went through (its cursor); a source it has no cursor for starts
after the stream's origin. Sources are scraped on their own clocks, and a scrape is stamped when it starts
but lands in the window when it ends, so one cursor per source (never one for all) is what loses nothing.

With --remote-write-interval 0 the regular push sends every scrape. With a coarser interval it sends the first
scrape of each source in every interval-long slot of wall time (the grid) and skips the others; an incident's
backfill later sends exactly the skipped ones of its window (and anything before the stream's origin), so the
two together hold every scrape of the incident window, each sent once. Whether a scrape is on the grid depends
only on the scrape before it, which the stream reads as context: the same answer for both, whenever asked.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fodc.remotewrite.encode import Labels, Series, label_bytes, series_labels
from fodc.window.model import SeriesWindow


@dataclass
class Stream:
    """Where one stream of sends stands: `origin_ms` (exclusive) for sources without a cursor yet, `cursors`
    the time each source is gone through up to, `last` each source's last scrape seen (what decides whether
    the next one is on the grid), `end_ms` the last scrape time it covers (None: open-ended)."""

    origin_ms: int
    cursors: dict[str, int] = field(default_factory=dict)
    end_ms: int | None = None
    last: dict[str, int] = field(default_factory=dict)

    def read_from(self, sources: Iterable[str], interval_ms: int) -> int:
        """The oldest timestamp a read must start at: after every cursor, with one slot of context before the
        origin for sources without one (to tell whether their first scrape is on the grid)."""
        context = self.origin_ms - interval_ms + 1 if interval_ms else self.origin_ms + 1
        return min((self.cursors[s] + 1 if s in self.cursors else context for s in sources), default=context)


@dataclass(frozen=True, slots=True)
class Picked:
    """A round's outcome: the series to send, how many samples, and each source's cursor and last scrape once
    they are sent."""

    series: list[Series]
    samples: int
    cursors: dict[str, int]
    last: dict[str, int]


def on_grid(prev_ms: int | None, ts_ms: int, interval_ms: int) -> bool:
    """Whether the scrape at `ts_ms` is the first of its source in its interval-long slot."""
    return not interval_ms or prev_ms is None or prev_ms // interval_ms != ts_ms // interval_ms


def pick(windows: Iterable[SeriesWindow], stream: Stream, *, interval_ms: int, backfill_until_ms: int | None,
         added: Labels, read_to_ms: int, labels: LabelCache | None = None) -> Picked:
    """The samples of `windows` (a read of the window up to `read_to_ms`) that `stream` sends next.

    `backfill_until_ms` None: the regular push (scrapes on the grid). Otherwise a backfill: the scrapes off the
    grid, and every scrape up to `backfill_until_ms` (the regular stream's origin: it never covered those).
    Scrapes after `stream.end_ms` are left for a later round of nobody (a backfill stops there)."""
    windows = list(windows)
    rows: dict[str, set[int]] = {}
    for window in windows:
        rows.setdefault(window.source, set()).update(window.timestamps_ms)
    keep: dict[str, set[int]] = {}
    cursors = dict(stream.cursors)
    last = dict(stream.last)
    for source, stamps in rows.items():
        keep[source], prev = _choose(sorted(stamps), stream, source, interval_ms=interval_ms,
                                     backfill_until_ms=backfill_until_ms, read_to_ms=read_to_ms)
        cursor = stream.cursors.get(source)
        if prev is not None:
            last[source] = prev
            if cursor is None or prev > cursor:
                cursors[source] = prev  # also context alone: a source is gone through up to what was read of it
    out, samples = _cut(windows, keep, _whole_spans(keep, rows), labels if labels is not None else LabelCache(),
                        added)
    return Picked(out, samples, cursors, last)


def _choose(stamps: list[int], stream: Stream, source: str, *, interval_ms: int, backfill_until_ms: int | None,
            read_to_ms: int) -> tuple[set[int], int | None]:
    """One source's scrapes (sorted) that the stream sends, and the last scrape gone through (sent, or read
    as context before the stream's cursor)."""
    cursor = stream.cursors.get(source)
    prev = stream.last.get(source)
    chosen: set[int] = set()
    floor = stream.origin_ms if cursor is None else max(cursor, stream.origin_ms)
    end = stream.end_ms
    for ts in stamps:
        if ts > read_to_ms or (end is not None and ts > end):
            break
        if ts <= floor:
            prev = ts  # context: the scrape before the first one this stream goes through
            continue
        grid = on_grid(prev, ts, interval_ms)
        if (grid if backfill_until_ms is None else (not grid or ts <= backfill_until_ms)):
            chosen.add(ts)
        prev = ts
    return chosen, prev


def _whole_spans(keep: dict[str, set[int]], rows: dict[str, set[int]]) -> dict[str, tuple[int, int]]:
    """The sources whose chosen scrapes are all their scrapes between the first and last chosen (every scrape
    is sent: the usual case): their series' points are cut out by position, not tested one by one."""
    spans: dict[str, tuple[int, int]] = {}
    for source, chosen in keep.items():
        if chosen:
            lo, hi = min(chosen), max(chosen)
            if len(chosen) == sum(1 for t in rows[source] if lo <= t <= hi):
                spans[source] = (lo, hi)
    return spans


def _cut(windows: list[SeriesWindow], keep: dict[str, set[int]], spans: dict[str, tuple[int, int]],
         names: LabelCache, added: Labels) -> tuple[list[Series], int]:
    """Each series' chosen points with its labels as sent, and how many samples that is."""
    out: list[Series] = []
    samples = 0
    for window in windows:
        kept = keep.get(window.source)
        if not kept:
            continue
        scrape_ms = window.timestamps_ms
        span = spans.get(window.source)
        if span is not None:
            first, stop = bisect_left(scrape_ms, span[0]), bisect_right(scrape_ms, span[1])
            times, values = scrape_ms[first:stop], window.values[first:stop]
        else:
            pairs = [(t, v) for t, v in zip(scrape_ms, window.values, strict=True) if t in kept]
            times, values = [t for t, _ in pairs], [v for _, v in pairs]
        if times:
            sent_labels, encoded = names.get(window.name, window.labels, added)
            out.append(Series(sent_labels, times, values, encoded))
            samples += len(times)
    return out, samples


class LabelCache:
    """Each series' labels as sent (series_labels) and their wire encoding, worked out once per series rather
    than once per round; forgotten whole beyond `max_series`, so series churn cannot grow it without bound."""

    def __init__(self, max_series: int = 200_000) -> None:
        self.max_series = max_series
        self._labels: dict[tuple[str, Labels], tuple[Labels, bytes]] = {}

    def get(self, name: str, own: Labels, added: Labels) -> tuple[Labels, bytes]:
        key = (name, own)
        found = self._labels.get(key)
        if found is None:
            if len(self._labels) >= self.max_series:
                self._labels.clear()
            labels = series_labels(name, own, added)
            found = self._labels[key] = (labels, label_bytes(labels))
        return found


def advance(stream: Stream, picked: Picked, newest: Mapping[str, int], read_to_ms: int) -> bool:
    """Moves the stream past a round whose samples were delivered; True if it moved. `newest`: the sources the
    round read and each one's newest scrape, taken before the read. Every scrape of a source up to there was in
    the window when it was read, so the source is gone through up to it, rows or not (a gap in the window, a
    narrowed read, a backfill's end); later scrapes, even ones stamped earlier than `read_to_ms`, come next."""
    cursors = dict(picked.cursors)
    for source, ts in newest.items():
        through = min(read_to_ms, ts)
        cursors[source] = max(cursors.get(source, through), through)
    moved = cursors != stream.cursors
    stream.cursors.update(cursors)
    stream.last.update(picked.last)
    return moved


def lag_ms(stream: Stream, newest: Mapping[str, int | None]) -> int:
    """How far behind the window's newest scrape the stream is, over all sources (0: caught up)."""
    behind = [ts - stream.cursors.get(source, stream.origin_ms) for source, ts in newest.items() if ts is not None]
    return max(0, max(behind, default=0))
