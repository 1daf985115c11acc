"""The flight recorder: a bounded window of every series, recent scrapes raw, older ones sealed and compressed.

Each source (a scraped endpoint, OS telemetry, KTM) has its own open block with its own scrape timestamps —
upstream shared one timestamp ring across sources and paired values with the wrong times. When a source's
next scrape finds its open block full, the block is detached and compressed into a self-contained sealed
block (codec.py). The memory budget is a hard bound on accounted memory (the retained state; the short-lived
working copies of a seal or a query are not held against it): when over it, the oldest sealed block of any
source goes first. A series is forgotten (its name, labels and, with its family's last series, the family's
metadata) once no remaining block holds it, so churn does not leak.

No clocks or threads here: callers pass timestamps. One lock guards the state, because ingest runs on the
scraper thread while gRPC threads query. Compression and decompression happen outside the lock: a detached
block is no longer written and a sealed block is immutable bytes, so queries never wait for a seal and a
long query never holds up ingest.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from fodc.window.atoms import Atoms
from fodc.window.codec import CodecError, decode_block, encode_grid
from fodc.window.model import Labels, SeriesMeta, SeriesWindow, WindowStats
from fodc.window.openblock import OpenBlock, cells_to_values
from fodc.window.sizing import (
    DEFAULT_BYTES_PER_SAMPLE,
    estimate_window_seconds,
    meta_size,
    series_size,
)

log = logging.getLogger(__name__)

SeriesKey = tuple[str, Labels]
_UNTYPED = "untyped"


class _Series:
    """One series of one source. `base` is its column in the open block (-1: none); `last_block` the sequence
    number of the newest sealed block holding it (-1: none)."""

    __slots__ = ("name", "labels", "family", "base", "last_block", "cost")

    def __init__(self, name: str, labels: Labels, family: str) -> None:
        self.name = name
        self.labels = labels
        self.family = family
        self.base = -1
        self.last_block = -1
        self.cost = 0


class _Source:
    __slots__ = ("name", "series", "open", "newest_ms", "next_seq")

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.series: dict[SeriesKey, _Series] = {}
        self.open = OpenBlock(capacity)
        self.newest_ms: int | None = None
        self.next_seq = 0

    def nbytes(self) -> int:
        return sys.getsizeof(self) + sys.getsizeof(self.series) + self.open.nbytes()


class _Sealed:
    """One sealed block in the eviction queue. Between detaching a full open block and finishing its encoding
    (outside the lock) `payload` is None and `raw` holds the detached, no longer written, block."""

    __slots__ = ("source", "seq", "first_ms", "last_ms", "payload", "raw", "samples", "nbytes", "gone")

    def __init__(self, source: str, seq: int, first_ms: int, last_ms: int, raw: _Raw | None, samples: int,
                 nbytes: int) -> None:
        self.source = source
        self.seq = seq
        self.first_ms = first_ms
        self.last_ms = last_ms
        self.payload: bytes | None = None
        self.raw: _Raw | None = raw
        self.samples = samples
        self.nbytes = nbytes
        self.gone = False  # evicted or dropped while its encoding was under way


@dataclass(frozen=True, slots=True)
class _Raw:
    source: str
    block: OpenBlock
    heads: list[tuple[str, Labels, str]]
    metas: tuple[SeriesMeta, ...]

    def columns(self, first: int, stop: int, wanted: Callable[[str], bool] | None) -> Iterator[tuple]:
        capacity = self.block.capacity
        for i, (name, labels, family) in enumerate(self.heads):
            if wanted is None or wanted(family):
                yield name, labels, family, self.block.column_bytes(i * capacity, first, stop)


# The record object plus its int fields (timestamps and counts are beyond the small-int cache).
_SEALED_RECORD_BYTES = sys.getsizeof(_Sealed("", 0, 0, 0, None, 0, 0)) + 4 * 32


class FlightRecorder:
    """Bounded in-memory window of every series of every source. Thread-safe; see the module docstring."""

    def __init__(self, budget_bytes: int = 30 * 1024 * 1024, block_scrapes: int = 120) -> None:
        if budget_bytes <= 0 or block_scrapes <= 0:
            raise ValueError("budget_bytes and block_scrapes must be positive")
        self.budget_bytes = budget_bytes
        self.block_scrapes = block_scrapes
        self._lock = threading.Lock()
        self._sources: dict[str, _Source] = {}
        self._families: dict[str, SeriesMeta] = {}
        self._atoms = Atoms()
        self._family_refs: dict[str, int] = {}  # family -> live series of it
        self._family_bytes = 0
        self._series_bytes = 0
        self._sealed: deque[_Sealed] = deque()  # oldest first, all sources
        self._sealed_bytes = 0
        self._sealed_samples = 0
        self._payload_bytes = 0  # finished blocks only: the measured bytes/sample
        self._payload_samples = 0
        self._evicted = 0

    # ------------------------------------------------------------------ ingest

    def ingest(self, source: str, timestamp_ms: int, samples: Iterable[tuple[str, Labels, float]],
               families: Mapping[str, SeriesMeta] | None = None,
               sample_family: Mapping[str, str] | None = None) -> None:
        """Adds one scrape of `source`. Raises ValueError (and changes nothing) if the time is not after the
        source's newest; any other failure part-way also leaves the window as it was.

        `samples` is iterated under the lock: pass a ready list, not a generator that does slow work.
        When the source's open block is full it is detached under the lock and compressed after the lock is
        released, on this thread, so queries on other threads never wait for a seal."""
        detached = None
        try:
            with self._lock:
                state = self._sources.get(source)
                if state is not None and state.newest_ms is not None and timestamp_ms <= state.newest_ms:
                    raise ValueError(f"timestamp {timestamp_ms} of source {source!r} is not after its newest "
                                     f"({state.newest_ms}): the clock went back or the scrape repeated")
                if state is None:
                    state = self._sources[source] = _Source(source, self.block_scrapes)
                if state.open.rows >= self.block_scrapes:
                    detached = self._detach(state)
                self._write_row(state, timestamp_ms, samples, sample_family)
                state.newest_ms = timestamp_ms
                if families:
                    self._update_families(families)
                self._enforce_budget()
        finally:
            if detached is not None:  # also when the row failed: the full block is sealed all the same
                self._finish(detached)

    def ingest_families(self, source: str, timestamp_ms: int, families: Iterable[object]) -> None:
        """Adds a page parsed into Family-shaped objects (.name .type .help .unit .samples; each sample with
        .name .labels .value), as fodc.expfmt produces."""
        metas: dict[str, SeriesMeta] = {}
        sample_family: dict[str, str] = {}
        samples: list[tuple[str, Labels, float]] = []
        for family in families:
            name = family.name  # type: ignore[attr-defined]
            metas[name] = SeriesMeta(name, family.type, family.help, family.unit)  # type: ignore[attr-defined]
            for sample in family.samples:  # type: ignore[attr-defined]
                if sample.name != name:
                    sample_family[sample.name] = name
                samples.append((sample.name, sample.labels, sample.value))
        self.ingest(source, timestamp_ms, samples, metas, sample_family)

    def _write_row(self, state: _Source, timestamp_ms: int, samples: Iterable[tuple[str, Labels, float]],
                   sample_family: Mapping[str, str] | None) -> None:
        block = state.open
        row = block.rows
        cells = block.cells
        index = state.series
        columns_before = len(block.series)
        created: list[_Series] = []
        count = 0
        try:
            for name, labels, value in samples:
                series = index.get((name, labels))
                if series is None:
                    family = sample_family.get(name, name) if sample_family else name
                    series = self._new_series(state, name, labels, family)
                    created.append(series)
                if series.base < 0:
                    series.base = block.add_column(series)
                cells[series.base + row] = value
                count += 1
            block.timestamps.append(timestamp_ms)
        except BaseException:
            block.clear_row(row)
            for series in block.drop_columns_from(columns_before):
                series.base = -1
            for series in created:
                self._forget(state, series)
            raise
        block.samples += count

    def _new_series(self, state: _Source, name: str, labels: Labels, family: str) -> _Series:
        atoms = self._atoms
        name = atoms.take(name)
        labels = tuple(atoms.take(pair) for pair in labels)
        family = atoms.take(family)
        series = _Series(name, labels, family)
        key = (name, labels)
        series.cost = series_size(series, key, labels)
        state.series[key] = series
        self._series_bytes += series.cost
        self._family_refs[family] = self._family_refs.get(family, 0) + 1
        return series

    def _forget(self, state: _Source, series: _Series) -> None:
        del state.series[(series.name, series.labels)]
        self._series_bytes -= series.cost
        atoms = self._atoms
        atoms.give_back(series.name)
        for pair in series.labels:
            atoms.give_back(pair)
        atoms.give_back(series.family)
        refs = self._family_refs[series.family] - 1
        if refs:
            self._family_refs[series.family] = refs
            return
        del self._family_refs[series.family]
        meta = self._families.pop(series.family, None)
        if meta is not None:
            self._family_bytes -= meta_size(meta)

    def _update_families(self, families: Mapping[str, SeriesMeta]) -> None:
        known = self._families
        for name, meta in families.items():
            if name not in self._family_refs:
                continue  # no series of it held: keeping its metadata would leak under churn
            old = known.get(name)
            if old == meta:
                continue
            if old is not None:
                self._family_bytes -= meta_size(old)
            known[name] = meta
            self._family_bytes += meta_size(meta)

    # ------------------------------------------------------------------ sealing and eviction

    def _detach(self, state: _Source) -> _Sealed | None:
        """Moves the open block into the eviction queue as raw data, to be encoded by _finish()."""
        block = state.open
        rows = block.rows
        state.open = OpenBlock(self.block_scrapes)
        if rows == 0:
            return None
        seq = state.next_seq
        state.next_seq += 1
        heads = []
        for series in block.series:  # every column holds at least one value: columns start with one
            heads.append((series.name, series.labels, series.family))
            series.base = -1
            series.last_block = seq
        names = dict.fromkeys(head[2] for head in heads)
        metas = tuple(self._families.get(f) or SeriesMeta(f, _UNTYPED, "", "") for f in names)
        # Until it is encoded the block is priced at the size it is about to have, so that a seal does not
        # evict a block's worth of old data to make room for a raw copy that lives a fraction of a second.
        per_sample = self._payload_bytes / self._payload_samples if self._payload_samples else 8.0
        record = _Sealed(state.name, seq, block.timestamps[0], block.timestamps[-1],
                         _Raw(state.name, block, heads, metas), block.samples,
                         _SEALED_RECORD_BYTES + int(per_sample * block.samples))
        self._sealed.append(record)
        self._sealed_bytes += record.nbytes
        self._sealed_samples += record.samples
        return record

    def _finish(self, record: _Sealed) -> None:
        """Encodes a detached block outside the lock (nobody writes it any more), then installs it."""
        encoded = None if record.gone else _encode(record)
        with self._lock:
            self._install(record, encoded)

    def _install(self, record: _Sealed, encoded: tuple[bytes, int] | None) -> None:
        if record.gone:  # evicted or dropped meanwhile
            return
        if encoded is None:  # keep it raw, priced honestly
            raw_bytes = record.raw.block.nbytes() if record.raw else 0
            self._sealed_bytes += raw_bytes - record.nbytes
            record.nbytes = raw_bytes
        else:
            payload, samples = encoded
            nbytes = _SEALED_RECORD_BYTES + sys.getsizeof(payload)
            self._sealed_bytes += nbytes - record.nbytes
            self._sealed_samples += samples - record.samples
            self._payload_bytes += len(payload)
            self._payload_samples += samples
            record.payload, record.raw, record.samples, record.nbytes = payload, None, samples, nbytes
        self._enforce_budget()

    def _seal_now(self, state: _Source) -> None:
        """Detach and encode under the lock: only when the budget cannot hold even the open blocks."""
        record = self._detach(state)
        if record is not None:
            self._install(record, _encode(record))

    def _evict_oldest(self) -> None:
        record = self._sealed.popleft()
        self._drop_record(record)
        self._evicted += 1
        state = self._sources[record.source]
        # Blocks go oldest first, so a series whose newest sealed block this was has no sealed data left.
        for series in [s for s in state.series.values() if s.last_block <= record.seq]:
            if series.base < 0:
                self._forget(state, series)
            else:
                series.last_block = -1  # lives on in the open block

    def _drop_record(self, record: _Sealed) -> None:
        record.gone = True
        self._sealed_bytes -= record.nbytes
        self._sealed_samples -= record.samples
        if record.payload is not None:
            self._payload_bytes -= len(record.payload)
            self._payload_samples -= record.samples

    def _used_bytes(self) -> int:
        containers = (sys.getsizeof(self._sources) + sys.getsizeof(self._families) + sys.getsizeof(self._family_refs)
                      + sys.getsizeof(self._sealed) + sum(s.nbytes() for s in self._sources.values())
                      + self._atoms.total_bytes())
        return containers + self._family_bytes + self._series_bytes + self._sealed_bytes

    def _enforce_budget(self) -> None:
        while self._used_bytes() > self.budget_bytes:
            if self._sealed:
                self._evict_oldest()
                continue
            # Everything is still raw: seal the biggest open block so it can be compressed, then evicted.
            biggest = max((s for s in self._sources.values() if s.open.rows), key=lambda s: len(s.open.cells),
                          default=None)
            if biggest is None:
                return
            self._seal_now(biggest)

    def drop_source(self, source: str) -> None:
        """Forgets everything of `source` (an endpoint that went away for good)."""
        with self._lock:
            state = self._sources.pop(source, None)
            if state is None:
                return
            kept: deque[_Sealed] = deque()
            for record in self._sealed:
                if record.source != source:
                    kept.append(record)
                    continue
                self._drop_record(record)
            self._sealed = kept
            for series in list(state.series.values()):
                self._forget(state, series)

    # ------------------------------------------------------------------ read

    def latest(self) -> list[SeriesWindow]:
        """The newest point of every series present in its source's most recent scrape."""
        result: list[SeriesWindow] = []
        from_sealed: list[tuple[bytes | None, _Raw | None]] = []
        with self._lock:
            metas = dict(self._families)
            for state in self._sources.values():
                block = state.open
                rows = block.rows
                if rows == 0:  # only right after a forced seal: the newest scrape is in the last sealed block
                    record = next((r for r in reversed(self._sealed) if r.source == state.name), None)
                    if record is not None:
                        from_sealed.append((record.payload, record.raw))
                    continue
                timestamp = block.timestamps[-1]
                for series, value in zip(block.series, block.row_values(rows - 1), strict=True):
                    if value is not None:
                        result.append(_window(metas, state.name, series.name, series.labels, series.family,
                                              [timestamp], [value]))
        for payload, raw in from_sealed:
            for source, name, labels, family, block_metas, timestamps, values in _read_sealed(payload, raw, None):
                if values[-1] is not None:
                    result.append(_window(metas, source, name, labels, family, timestamps[-1:], values[-1:],
                                          block_metas))
        return result

    def query(self, start_ms: int | None = None, end_ms: int | None = None,
              names: Collection[str] | None = None,
              name_pattern: re.Pattern[str] | None = None) -> Iterator[SeriesWindow]:
        """Points with start_ms <= t <= end_ms, one SeriesWindow per series (per source), oldest point first.

        `names` and `name_pattern` (fullmatch) select by FAMILY name, so a histogram's buckets come with it.
        Only sealed blocks overlapping the range are decoded, after the lock is released. The points of the
        range are built in memory before the first series is yielded (~40 bytes a point as Python objects):
        bound the range or the names (a whole day of 5k series is ~29 M points), or walk it in time slices."""
        lo = -(2**63) if start_ms is None else start_ms
        hi = 2**63 if end_ms is None else end_ms
        wanted = _family_filter(names, name_pattern)
        with self._lock:
            metas = dict(self._families)
            sealed = [(r.payload, r.raw) for r in self._sealed if r.last_ms >= lo and r.first_ms <= hi]
            opened = []
            for state in self._sources.values():
                block = state.open
                if not block.rows or block.timestamps[0] > hi or block.timestamps[-1] < lo:
                    continue
                first, stop = bisect_left(block.timestamps, lo), bisect_right(block.timestamps, hi)
                columns = [(s.name, s.labels, s.family, block.column_bytes(s.base, first, stop))
                           for s in block.series if wanted is None or wanted(s.family)]
                opened.append((state.name, block.timestamps[first:stop].tolist(), columns))
        points: dict[tuple[str, str, Labels], tuple[str, Mapping[str, SeriesMeta], list[int], list[float]]] = {}
        for payload, raw in sealed:  # oldest first, so each series' points come out in time order
            for source, name, labels, family, block_metas, timestamps, values in _read_sealed(payload, raw, wanted):
                first, stop = bisect_left(timestamps, lo), bisect_right(timestamps, hi)
                _collect(points, source, name, labels, family, block_metas, timestamps[first:stop],
                         values[first:stop])
        for source, timestamps, columns in opened:
            for name, labels, family, cells in columns:
                _collect(points, source, name, labels, family, {}, timestamps, cells_to_values(cells))
        for (source, name, labels), (family, block_metas, timestamps, values) in points.items():
            if timestamps:
                yield _window(metas, source, name, labels, family, timestamps, values, block_metas)

    def stats(self, interval_s: float | None = None) -> WindowStats:
        """Figures about the window; `interval_s` (else the observed scrape interval) drives the estimate."""
        with self._lock:
            used = self._used_bytes()
            series = sum(len(s.series) for s in self._sources.values())
            live = sum(len(s.open.series) for s in self._sources.values()) or series
            samples = self._sealed_samples + sum(s.open.samples for s in self._sources.values())
            firsts = [r.first_ms for r in self._sealed] + [s.open.timestamps[0] for s in self._sources.values()
                                                           if s.open.rows]
            newest = max((s.newest_ms for s in self._sources.values() if s.newest_ms is not None), default=None)
            bytes_per_sample = (self._payload_bytes / self._payload_samples if self._payload_samples
                                else DEFAULT_BYTES_PER_SAMPLE)
            raw_cells = sum(8 * len(s.open.cells) for s in self._sources.values())
            interval = interval_s or self._observed_interval_s() or 15.0
            fixed = (used - self._sealed_bytes - raw_cells) / series if series else 0.0
            estimate = estimate_window_seconds(self.budget_bytes, live, interval, bytes_per_sample,
                                               block_scrapes=self.block_scrapes, fixed_bytes_per_series=fixed)
            return WindowStats(budget_bytes=self.budget_bytes, used_bytes=used, series=series, samples=samples,
                               oldest_ms=min(firsts, default=None), newest_ms=newest,
                               estimated_window_seconds=estimate, sealed_blocks=len(self._sealed),
                               evicted_blocks=self._evicted)

    def _observed_interval_s(self) -> float | None:
        """Mean scrape interval of the source with the most series in its open block."""
        busiest = max(self._sources.values(), key=lambda s: len(s.open.series), default=None)
        if busiest is None or busiest.open.rows < 2:
            return None
        stamps = busiest.open.timestamps
        return (stamps[-1] - stamps[0]) / (len(stamps) - 1) / 1000.0


def _read_sealed(payload: bytes | None, raw: _Raw | None,
                 wanted: Callable[[str], bool] | None) -> Iterator[tuple]:
    """(source, name, labels, family, block metas, timestamps, values) of every wanted series of a sealed block,
    from its bytes, or from its raw form while it is still being encoded."""
    if payload is not None:
        try:
            decoded = decode_block(payload, wanted)
        except CodecError as exc:
            log.error("flight recorder: unreadable sealed block skipped: %s", exc)
            return
        block_metas = {m.name: m for m in decoded.families}
        for column in decoded.columns:
            yield (decoded.source, column.name, column.labels, column.family, block_metas, decoded.timestamps_ms,
                   column.values)
    elif raw is not None:
        block_metas = {m.name: m for m in raw.metas}
        timestamps = raw.block.timestamps.tolist()
        for name, labels, family, cells in raw.columns(0, len(timestamps), wanted):
            yield raw.source, name, labels, family, block_metas, timestamps, cells_to_values(cells)


def _encode(record: _Sealed) -> tuple[bytes, int] | None:
    raw = record.raw
    if raw is None:
        return None
    grid = memoryview(raw.block.cells).cast("B")
    try:
        return encode_grid(record.source, raw.block.timestamps.tolist(), raw.metas, raw.heads, grid,
                           raw.block.capacity)
    except Exception:  # never expected; losing compression must not lose the data or the scraper thread
        log.exception("flight recorder: sealing a block of %s failed; it stays uncompressed", record.source)
        return None
    finally:
        grid.release()


def _family_filter(names: Collection[str] | None, pattern: re.Pattern[str] | None) -> Callable[[str], bool] | None:
    if names is None and pattern is None:
        return None
    wanted = None if names is None else frozenset(names)
    return lambda family: ((wanted is None or family in wanted)
                           and (pattern is None or pattern.fullmatch(family) is not None))


def _collect(points: dict, source: str, name: str, labels: Labels, family: str,
             block_metas: Mapping[str, SeriesMeta], timestamps: list[int], values: list[float | None]) -> None:
    entry = points.get((source, name, labels))
    if entry is None:
        entry = points[(source, name, labels)] = (family, block_metas, [], [])
    out_times, out_values = entry[2], entry[3]
    if None not in values:
        out_times.extend(timestamps)
        out_values.extend(values)
        return
    for timestamp, value in zip(timestamps, values, strict=True):
        if value is not None:
            out_times.append(timestamp)
            out_values.append(value)


def _window(metas: Mapping[str, SeriesMeta], source: str, name: str, labels: Labels, family: str,
            timestamps: list[int], values: list[float],
            block_metas: Mapping[str, SeriesMeta] | None = None) -> SeriesWindow:
    meta = metas.get(family) or (block_metas.get(family) if block_metas else None)
    if meta is None:
        meta = SeriesMeta(family, _UNTYPED, "", "")
    return SeriesWindow(name, labels, meta.type, meta.help, meta.unit, source, timestamps, values, family)
