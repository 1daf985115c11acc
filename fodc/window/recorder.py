"""The flight recorder: a bounded window of every series, recent points raw, older ones sealed and compressed.

Each source (a scraped endpoint, OS telemetry, KTM) has its own open block with its own scrape timestamps —
upstream shared one timestamp ring across sources and paired values with the wrong times. When an open block
holds `block_scrapes` scrapes it is sealed (codec.py). The memory budget is a hard bound: the oldest sealed
block goes first. Series that vanish are forgotten once no block refers to them, so churn does not leak.

No clocks or threads here: callers pass timestamps. One lock guards the state (ingest runs on the scraper
thread while gRPC threads query); sealed blocks are immutable, so they are decoded outside the lock.
"""

from __future__ import annotations

import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from fodc.window.codec import Block, Column, decode_block, encode_block

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]

# Accounting constants (bytes), calibrated with tracemalloc in tests/test_window.py.
_SERIES_OVERHEAD = 260     # series table entry: key tuple, dict slots, refcount, family link
_OPEN_COLUMN_OVERHEAD = 200  # Column object, array header, dict slot in the open block
_SEALED_BLOCK_OVERHEAD = 300
_LATEST_OVERHEAD = 100     # per series: newest value kept for /metrics
DEFAULT_BYTES_PER_SAMPLE = 1.5


@dataclass(frozen=True, slots=True)
class SeriesMeta:
    name: str
    type: str
    help: str
    unit: str


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    name: str          # the sample name (e.g. foo_bucket)
    labels: Labels
    type: str
    help: str
    unit: str
    source: str
    timestamps_ms: list[int]
    values: list[float]
    family: str = ""   # the family name (e.g. foo); filters match on it


@dataclass(frozen=True, slots=True)
class WindowStats:
    budget_bytes: int
    used_bytes: int
    series: int
    samples: int
    oldest_ms: int | None
    newest_ms: int | None
    estimated_window_seconds: float
    sealed_blocks: int
    evicted_blocks: int


@dataclass(slots=True)
class _Sealed:
    source: str
    first_ms: int
    last_ms: int
    key_ids: array  # array('I')
    payload: bytes
    samples: int

    @property
    def nbytes(self) -> int:
        return len(self.payload) + 4 * len(self.key_ids) + _SEALED_BLOCK_OVERHEAD


class _OpenBlock:
    __slots__ = ("timestamps", "columns")

    def __init__(self) -> None:
        self.timestamps: list[int] = []
        self.columns: dict[int, Column] = {}


def estimate_window_seconds(budget_bytes: int, series: int, interval_s: float, bytes_per_sample: float) -> float:
    """How long a window `budget_bytes` holds for `series` series sampled every `interval_s`."""
    if series <= 0 or interval_s <= 0:
        return 0.0
    per_series_fixed = _SERIES_OVERHEAD + _LATEST_OVERHEAD + _OPEN_COLUMN_OVERHEAD
    room = budget_bytes - series * per_series_fixed
    return max(0.0, room / (series * max(bytes_per_sample, 0.01))) * interval_s


class FlightRecorder:
    def __init__(self, budget_bytes: int = 30 * 1024 * 1024, block_scrapes: int = 120) -> None:
        self.budget_bytes = budget_bytes
        self.block_scrapes = block_scrapes
        self._lock = threading.Lock()
        self._key_ids: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._family_of: dict[int, str] = {}
        self._refs: dict[int, int] = {}
        self._next_id = 1
        self._families: dict[str, SeriesMeta] = {}
        self._open: dict[str, _OpenBlock] = {}
        self._sealed: list[_Sealed] = []  # oldest first
        self._latest: dict[str, tuple[int, dict[int, float]]] = {}
        self._newest_ms: dict[str, int] = {}
        self._open_bytes = 0
        self._sealed_bytes = 0
        self._evicted = 0
        self._sealed_samples = 0

    # ------------------------------------------------------------------ ingest

    def ingest(self, source: str, timestamp_ms: int, samples: Iterable[tuple[str, Labels, float]],
               families: Mapping[str, SeriesMeta] | None = None,
               sample_family: Mapping[str, str] | None = None) -> None:
        with self._lock:
            newest = self._newest_ms.get(source)
            if newest is not None and timestamp_ms <= newest:
                raise ValueError(f"timestamp {timestamp_ms} of source {source!r} is not after its newest "
                                 f"({newest}); the clock went back or the scrape repeated")
            if families:
                self._families.update(families)
            block = self._open.setdefault(source, _OpenBlock())
            index = len(block.timestamps)
            block.timestamps.append(timestamp_ms)
            latest: dict[int, float] = {}
            added = 0
            for name, labels, value in samples:
                key_id = self._intern(name, labels, sample_family.get(name, name) if sample_family else name)
                if key_id in latest:
                    continue  # a duplicate series in one page: the first one counts
                latest[key_id] = value
                column = block.columns.get(key_id)
                if column is None:
                    column = block.columns[key_id] = Column(key_id, index, array("d"))
                    self._refs[key_id] = self._refs.get(key_id, 0) + 1
                    added += _OPEN_COLUMN_OVERHEAD
                missing = index - (column.start + len(column.values))
                for _ in range(missing):  # the series skipped scrapes: record the gaps
                    column.gaps.add(len(column.values))
                    column.values.append(float("nan"))
                column.values.append(value)
                added += 8 * (missing + 1)
            self._open_bytes += added
            previous = self._latest.get(source)
            self._latest[source] = (timestamp_ms, latest)
            if previous is not None:
                self._open_bytes -= _LATEST_OVERHEAD * len(previous[1])
                for key_id in previous[1].keys() - latest.keys():
                    self._release(key_id, latest_only=True)
            self._open_bytes += _LATEST_OVERHEAD * len(latest)
            self._newest_ms[source] = timestamp_ms
            if len(block.timestamps) >= self.block_scrapes:
                self._seal(source)
            self._enforce_budget()

    def ingest_families(self, source: str, timestamp_ms: int, families: Iterable[object]) -> None:
        """Convenience for pages parsed by fodc.expfmt (Family/Sample shaped objects)."""
        metas: dict[str, SeriesMeta] = {}
        sample_family: dict[str, str] = {}
        samples: list[tuple[str, Labels, float]] = []
        for family in families:
            metas[family.name] = SeriesMeta(family.name, family.type, family.help, family.unit)
            for sample in family.samples:
                if sample.name != family.name:
                    sample_family[sample.name] = family.name
                samples.append((sample.name, sample.labels, sample.value))
        self.ingest(source, timestamp_ms, samples, metas, sample_family)

    def _intern(self, name: str, labels: Labels, family: str) -> int:
        key = (name, labels)
        key_id = self._key_ids.get(key)
        if key_id is None:
            key_id = self._next_id
            self._next_id += 1
            self._key_ids[key] = key_id
            self._keys[key_id] = key
            self._family_of[key_id] = family
            self._refs[key_id] = 1  # held by the latest map until it drops out of a scrape
            self._open_bytes += _SERIES_OVERHEAD + len(name) + sum(len(k) + len(v) for k, v in labels)
        return key_id

    def _release(self, key_id: int, latest_only: bool = False) -> None:
        self._refs[key_id] -= 1
        if self._refs[key_id] <= 0:
            name, labels = self._keys.pop(key_id)
            del self._key_ids[(name, labels)]
            del self._refs[key_id]
            del self._family_of[key_id]
            self._open_bytes -= _SERIES_OVERHEAD + len(name) + sum(len(k) + len(v) for k, v in labels)

    def _seal(self, source: str) -> None:
        block = self._open.pop(source, None)
        if block is None or not block.timestamps:
            return
        columns = list(block.columns.values())
        payload = encode_block(Block(block.timestamps, columns))
        samples = sum(len(c.values) - len(c.gaps) for c in columns)
        sealed = _Sealed(source, block.timestamps[0], block.timestamps[-1],
                         array("I", (c.key_id for c in columns)), payload, samples)
        self._open_bytes -= sum(8 * len(c.values) + _OPEN_COLUMN_OVERHEAD for c in columns)
        self._sealed.append(sealed)
        self._sealed_bytes += sealed.nbytes
        self._sealed_samples += samples

    def _enforce_budget(self) -> None:
        while self._open_bytes + self._sealed_bytes > self.budget_bytes:
            if not self._sealed:
                # Everything is still raw: seal the largest open block early so it can be compressed/evicted.
                largest = max(self._open, key=lambda s: len(self._open[s].columns) * len(self._open[s].timestamps),
                              default=None)
                if largest is None or not self._open[largest].timestamps:
                    return
                self._seal(largest)
                continue
            oldest = self._sealed.pop(0)
            self._sealed_bytes -= oldest.nbytes
            self._sealed_samples -= oldest.samples
            self._evicted += 1
            for key_id in oldest.key_ids:
                self._release(key_id)

    def drop_source(self, source: str) -> None:
        with self._lock:
            block = self._open.pop(source, None)
            if block is not None:
                for column in block.columns.values():
                    self._open_bytes -= 8 * len(column.values) + _OPEN_COLUMN_OVERHEAD
                    self._release(column.key_id)
            latest = self._latest.pop(source, None)
            if latest is not None:
                self._open_bytes -= _LATEST_OVERHEAD * len(latest[1])
                for key_id in latest[1]:
                    self._release(key_id)
            self._newest_ms.pop(source, None)
            kept = []
            for sealed in self._sealed:
                if sealed.source == source:
                    self._sealed_bytes -= sealed.nbytes
                    self._sealed_samples -= sealed.samples
                    for key_id in sealed.key_ids:
                        self._release(key_id)
                else:
                    kept.append(sealed)
            self._sealed = kept

    # ------------------------------------------------------------------ read

    def _window(self, key_id: int, source: str, timestamps: list[int], values: list[float],
                name_family: tuple[str, Labels, str]) -> SeriesWindow:
        name, labels, family = name_family
        meta = self._families.get(family) or SeriesMeta(family, "untyped", "", "")
        return SeriesWindow(name, labels, meta.type, meta.help, meta.unit, source, timestamps, values, family)

    def latest(self) -> list[SeriesWindow]:
        """The newest point of every series present in its source's most recent scrape."""
        with self._lock:
            result = []
            for source, (timestamp_ms, values) in self._latest.items():
                for key_id, value in values.items():
                    name, labels = self._keys[key_id]
                    result.append(self._window(key_id, source, [timestamp_ms], [value],
                                               (name, labels, self._family_of[key_id])))
            return result

    def query(self, start_ms: int | None = None, end_ms: int | None = None,
              names: Collection[str] | None = None,
              name_pattern: re.Pattern[str] | None = None) -> Iterator[SeriesWindow]:
        """Points with start_ms <= t <= end_ms, grouped per series; filters match the family name."""
        lo = start_ms if start_ms is not None else -(2**63)
        hi = end_ms if end_ms is not None else 2**63

        def wanted(family: str) -> bool:
            return (names is None or family in names) and (name_pattern is None or bool(name_pattern.fullmatch(family)))

        with self._lock:
            sealed = [s for s in self._sealed if s.last_ms >= lo and s.first_ms <= hi]
            open_copies = {source: (list(b.timestamps), {k: (c.start, array("d", c.values), set(c.gaps))
                                                         for k, c in b.columns.items()})
                           for source, b in self._open.items()}
            keys = dict(self._keys)
            family_of = dict(self._family_of)
        points: dict[tuple[str, int], tuple[list[int], list[float]]] = {}

        def add(source: str, timestamps: list[int], key_id: int, start: int, values: array, gaps: set[int]) -> None:
            if key_id not in keys or not wanted(family_of[key_id]):
                return
            first = max(0, bisect_left(timestamps, lo) - start)
            last = min(len(values), bisect_right(timestamps, hi) - start)
            if first >= last:
                return
            ts_out, vs_out = points.setdefault((source, key_id), ([], []))
            if not gaps:
                ts_out.extend(timestamps[start + first:start + last])
                vs_out.extend(values[first:last])
                return
            for i in range(first, last):
                if i not in gaps:
                    ts_out.append(timestamps[start + i])
                    vs_out.append(values[i])

        for block in sealed:  # oldest first, so points come out in time order
            decoded = decode_block(block.payload)
            for column in decoded.columns:
                add(block.source, decoded.timestamps_ms, column.key_id, column.start, column.values, column.gaps)
        for source, (timestamps, columns) in open_copies.items():
            for key_id, (start, values, gaps) in columns.items():
                add(source, timestamps, key_id, start, values, gaps)
        for (source, key_id), (timestamps, values) in points.items():
            if timestamps:
                name, labels = keys[key_id]
                yield self._window(key_id, source, timestamps, values, (name, labels, family_of[key_id]))

    def stats(self, interval_s: float | None = None) -> WindowStats:
        with self._lock:
            open_samples = sum(len(c.values) - len(c.gaps) for b in self._open.values() for c in b.columns.values())
            oldest = min([s.first_ms for s in self._sealed] +
                         [b.timestamps[0] for b in self._open.values() if b.timestamps], default=None)
            newest = max(self._newest_ms.values(), default=None)
            series = len(self._keys)
            bytes_per_sample = (sum(len(s.payload) for s in self._sealed) / self._sealed_samples
                                if self._sealed_samples else DEFAULT_BYTES_PER_SAMPLE)
            live_series = sum(len(v) for _, v in self._latest.values())
            return WindowStats(
                budget_bytes=self.budget_bytes,
                used_bytes=self._open_bytes + self._sealed_bytes,
                series=series,
                samples=open_samples + self._sealed_samples,
                oldest_ms=oldest,
                newest_ms=newest,
                estimated_window_seconds=estimate_window_seconds(self.budget_bytes, live_series or series,
                                                                 interval_s or 15.0, bytes_per_sample),
                sealed_blocks=len(self._sealed),
                evicted_blocks=self._evicted,
            )
