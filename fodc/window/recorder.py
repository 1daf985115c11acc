"""The flight recorder: a bounded window of every series, recent scrapes raw, older ones sealed and compressed.

Each source (a scraped endpoint, OS telemetry, KTM) has its own open block with its own scrape timestamps —
upstream shared one timestamp ring across sources and paired values with the wrong times. When a source's
next scrape finds its open block full, the block is detached and compressed into a self-contained sealed
block (codec.py). The memory budget is a hard bound on accounted memory (the retained state; the short-lived
working copies of a seal or a query are not held against it): when over it, the oldest sealed block of any
source goes first. A series is forgotten (its name, labels and, with its family's last series, the family's
metadata) once no remaining block holds it, so churn does not leak: catalog.py keeps the series and families,
sealedqueue.py the sealed blocks in eviction order.

No clocks or threads here: callers pass timestamps. One lock guards the state, because ingest runs on the
scraper thread while gRPC threads query. Compression and decompression happen outside the lock: a detached
block is no longer written and a sealed block is immutable bytes, so queries never wait for a seal and a
long query never holds up ingest.
"""

from __future__ import annotations

import logging
import sys
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from fodc.saferegex import FullMatcher
from fodc.window.catalog import SeriesCatalog
from fodc.window.codec import FORMAT_VERSION, CodecError, encode_grid, summarize_block
from fodc.window.diskblocks import DiskBlock
from fodc.window.model import Labels, OpenRows, SeriesMeta, SeriesWindow, WindowListener, WindowStats
from fodc.window.openblock import OpenBlock, cells_to_values
from fodc.window.reads import (
    BATCH_POINTS,
    QueryPlan,
    TooManyPoints,
    batch_families,
    collect,
    family_filter,
    make_window,
    read_sealed,
    rows_in_range,
    widen,
)
from fodc.window.records import SEALED_RECORD_BYTES, RawBlock, SealedRecord, SeriesEntry, SourceState
from fodc.window.sealedqueue import SealedQueue
from fodc.window.sizing import DEFAULT_BYTES_PER_SAMPLE, estimate_window_seconds


class SampleLike(Protocol):
    """A sample as the window takes it (fodc.expfmt's Sample has this shape); the window imports no parser."""

    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Labels: ...
    @property
    def value(self) -> float: ...


class FamilyLike(Protocol):
    """A metric family as the window takes it (fodc.expfmt's Family has this shape)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def samples(self) -> Sequence[SampleLike]: ...

log = logging.getLogger(__name__)


class NotAfterNewest(ValueError):
    """The window refused a scrape or block that is not after its source's newest (the clock went back or it
    repeated); nothing was changed."""


class FlightRecorder:
    """Bounded in-memory window of every series of every source. Thread-safe; see the module docstring."""

    def __init__(self, budget_bytes: int = 30 * 1024 * 1024, block_scrapes: int = 120) -> None:
        if budget_bytes <= 0 or block_scrapes <= 0:
            raise ValueError("budget_bytes and block_scrapes must be positive")
        self.budget_bytes = budget_bytes
        self.block_scrapes = block_scrapes
        self._lock = threading.Lock()
        self._sources: dict[str, SourceState] = {}
        self._catalog = SeriesCatalog()
        self._sealed = SealedQueue()
        self.listener: WindowListener | None = None  # set before the first ingest; see model.WindowListener
        self.latest_from_ms: int | None = None  # latest() leaves out sources not scraped since
        self._outbox: list[tuple[str, int, int, bytes]] = []  # sealed payloads the listener has not been given yet

    # ------------------------------------------------------------------ ingest

    def ingest(self, source: str, timestamp_ms: int, samples: Iterable[tuple[str, Labels, float]],
               families: Mapping[str, SeriesMeta] | None = None,
               sample_family: Mapping[str, str] | None = None) -> None:
        """Adds one scrape of `source`. Raises NotAfterNewest (and changes nothing) if the time is not after the
        source's newest; any other failure part-way also leaves the window as it was.

        `samples` is iterated under the lock: pass a ready list, not a generator that does slow work.
        When the source's open block is full it is detached under the lock and compressed after the lock is
        released, on this thread, so queries on other threads never wait for a seal."""
        detached = None
        rows = 0
        try:
            with self._lock:
                state = self._sources.get(source)
                if state is not None and state.newest_ms is not None and timestamp_ms <= state.newest_ms:
                    raise NotAfterNewest(f"timestamp {timestamp_ms} of source {source!r} is not after its newest "
                                     f"({state.newest_ms}): the clock went back or the scrape repeated")
                if state is None:
                    state = self._sources[source] = SourceState(source, self.block_scrapes)
                if state.open.rows >= self.block_scrapes:
                    detached = self._detach(state)
                self._write_row(state, timestamp_ms, samples, sample_family)
                state.newest_ms = timestamp_ms
                if families:
                    self._catalog.update_families(families)
                self._enforce_budget()
                rows = state.open.rows
        finally:
            if detached is not None:  # also when the row failed: the full block is sealed all the same
                self._finish(detached)
            if self.listener is not None:
                self._tell_listener(source, rows)

    def _tell_listener(self, source: str, rows: int) -> None:
        listener = self.listener
        if listener is None:
            return
        with self._lock:
            sealed, self._outbox = self._outbox, []
        calls: list[tuple[Callable[..., None], tuple[object, ...]]] = [(listener.sealed, item) for item in sealed]
        if rows:
            calls.append((listener.scraped, (source, rows)))
        for call, args in calls:
            try:
                call(*args)
            except Exception:  # the window in memory is intact; losing the copy elsewhere must not fail the scrape
                log.exception("flight recorder: the window listener failed")

    def ingest_families(self, source: str, timestamp_ms: int, families: Iterable[FamilyLike]) -> None:
        """Adds a page parsed into families, as fodc.expfmt produces them."""
        metas: dict[str, SeriesMeta] = {}
        sample_family: dict[str, str] = {}
        samples: list[tuple[str, Labels, float]] = []
        for family in families:
            name = family.name
            metas[name] = SeriesMeta(name, family.type, family.help, family.unit)
            for sample in family.samples:
                if sample.name != name:
                    sample_family[sample.name] = name
                samples.append((sample.name, sample.labels, sample.value))
        self.ingest(source, timestamp_ms, samples, metas, sample_family)

    def _write_row(self, state: SourceState, timestamp_ms: int, samples: Iterable[tuple[str, Labels, float]],
                   sample_family: Mapping[str, str] | None) -> None:
        block = state.open
        row = block.rows
        cells = block.cells
        index = state.series
        columns_before = len(block.series)
        created: list[SeriesEntry] = []
        count = 0
        try:
            for name, labels, value in samples:
                series = index.get((name, labels))
                if series is None:
                    family = sample_family.get(name, name) if sample_family else name
                    series = self._catalog.new_series(state, name, labels, family)
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
                self._catalog.forget(state, series)
            raise
        block.samples += count

    # ------------------------------------------------------------------ sealing and eviction

    def _detach(self, state: SourceState) -> SealedRecord | None:
        """Moves the open block into the eviction queue as raw data, to be encoded by _finish()."""
        block = state.open
        rows = block.rows
        state.open = OpenBlock(self.block_scrapes)
        if rows == 0:
            return None
        seq = state.next_seq
        state.next_seq += 1
        heads, metas = self._catalog.heads(block)
        for series in block.series:  # every column holds at least one value: columns start with one
            series.base = -1
            series.last_block = seq
        # Until it is encoded the block is priced at the size it is about to have, so that a seal does not
        # evict a block's worth of old data to make room for a raw copy that lives a fraction of a second.
        per_sample = self._sealed.bytes_per_sample(8.0)
        record = SealedRecord(state.name, seq, block.timestamps[0], block.timestamps[-1],
                         RawBlock(state.name, block, heads, metas), block.samples,
                         SEALED_RECORD_BYTES + int(per_sample * block.samples), rows)
        self._sealed.push(record)
        return record

    def _finish(self, record: SealedRecord) -> None:
        """Encodes a detached block outside the lock (nobody writes it any more), then installs it."""
        encoded = None if record.gone else _encode(record)
        with self._lock:
            self._install(record, encoded)

    def _install(self, record: SealedRecord, encoded: tuple[bytes, int] | None) -> None:
        if record.gone:  # evicted or dropped meanwhile
            return
        if encoded is None:  # keep it raw, priced honestly
            self._sealed.reprice(record, record.raw.block.nbytes() if record.raw else 0)
        else:
            payload, samples = encoded
            self._sealed.encoded(record, payload, samples, SEALED_RECORD_BYTES + sys.getsizeof(payload))
            if self.listener is not None:
                self._outbox.append((record.source, record.first_ms, record.last_ms, payload))
        self._enforce_budget()

    def _seal_now(self, state: SourceState) -> None:
        """Detach and encode under the lock: only when the budget cannot hold even the open blocks."""
        record = self._detach(state)
        if record is not None:
            self._install(record, _encode(record))

    def _evict_oldest(self) -> None:
        record = self._sealed.pop_oldest()
        state = self._sources[record.source]
        # Blocks go oldest first, so a series whose newest sealed block this was has no sealed data left.
        for series in [s for s in state.series.values() if s.last_block <= record.seq]:
            if series.base < 0:
                self._catalog.forget(state, series)
            else:
                series.last_block = -1  # lives on in the open block

    def _used_bytes(self) -> int:
        return (sys.getsizeof(self._sources) + sum(s.nbytes() for s in self._sources.values())
                + self._catalog.nbytes() + self._sealed.container_bytes() + self._sealed.nbytes)

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

    # ------------------------------------------------------------------ persistence (see fodc.window.durable)

    def open_rows(self, source: str, mark: tuple[int, int] | None = None) -> OpenRows | None:
        """A copy of the scrapes in `source`'s open block, only those after `mark` if that block is still open;
        None if there are none. The copy is taken under the lock (a memory copy); encoding is the caller's."""
        with self._lock:
            state = self._sources.get(source)
            if state is None:
                return None
            block = state.open
            first = mark[1] if mark is not None and mark[0] == state.next_seq else 0
            if block.rows <= first:
                return None
            heads, metas = self._catalog.heads(block)
            grid = memoryview(block.cells).cast("B")
            try:  # one copy: slices of the view, joined
                cells = b"".join([grid[8 * (s.base + first):8 * (s.base + block.rows)] for s in block.series])
            finally:
                grid.release()  # an exported buffer would stop the grid from growing
            return OpenRows(source, state.next_seq, first, block.rows, block.timestamps[first:].tolist(), metas,
                            heads, cells)

    def sealed_payloads(self, keys: Collection[tuple[str, int, int]] | None
                        ) -> list[tuple[tuple[str, int, int], bytes | DiskBlock]]:
        """The encoded sealed blocks still held whose (source, first_ms, last_ms) is in `keys` (None: all), oldest
        first, in memory or on disk (diskblocks.block_bytes reads either): what a listener must write again (its
        copy was lost). Evicted blocks are simply absent."""
        with self._lock:
            return [(r.key, r.held) for r in self._sealed
                    if r.held is not None and (keys is None or r.key in keys)]

    def stored(self, key: tuple[str, int, int], block: DiskBlock) -> bool:
        """The sealed block `key` is now safely on disk at `block`: its bytes in memory are let go, and read from
        there when asked. False if the recorder no longer holds that block."""
        with self._lock:
            for record in reversed(self._sealed):  # a block just written is among the newest
                if record.key == key and record.held is not None:
                    record.payload, record.stored = None, block
                    return True
            return False

    def restore(self, payload: bytes, catalogs: dict | None = None, stored: DiskBlock | None = None) -> int:
        """Takes back a sealed block a listener was given (read from disk after a restart) as the newest sealed
        block of its source, and returns its sample count. Blocks go back oldest first and before the source's
        next scrape; one that is not newer than what the source holds raises NotAfterNewest, bad bytes CodecError.
        `catalogs` (codec.decode_block) saves parsing the same series list again for each block of a source.
        With `stored` (where `payload` lies on disk) the block is read from there when asked, not held."""
        summary = summarize_block(payload, catalogs)
        if payload[0] != FORMAT_VERSION:
            raise CodecError(f"a block of format {payload[0]} holds open scrapes, not a sealed block")
        first, last = summary.timestamps_ms[0], summary.timestamps_ms[-1]
        with self._lock:
            state = self._sources.get(summary.source)
            if state is None:
                state = self._sources[summary.source] = SourceState(summary.source, self.block_scrapes)
            if state.open.rows or (state.newest_ms is not None and first <= state.newest_ms):
                raise NotAfterNewest(f"block of {summary.source!r} from {first} is not after what the source holds")
            seq = state.next_seq
            state.next_seq += 1
            for name, labels, family in summary.heads:
                series = state.series.get((name, labels)) or self._catalog.new_series(state, name, labels, family)
                series.last_block = seq
            record = SealedRecord(summary.source, seq, first, last, None, summary.samples,
                             SEALED_RECORD_BYTES + sys.getsizeof(payload), len(summary.timestamps_ms))
            record.size = len(payload)
            if stored is None:
                record.payload = payload
            else:
                record.stored = stored
            self._sealed.push(record)
            state.newest_ms = last
            self._catalog.update_families({meta.name: meta for meta in summary.families})
            self._enforce_budget()
        return summary.samples

    def drop_source(self, source: str) -> None:
        """Forgets everything of `source` (an endpoint that went away for good)."""
        with self._lock:
            state = self._sources.pop(source, None)
            if state is None:
                return
            self._sealed.drop_source(source)
            for series in list(state.series.values()):
                self._catalog.forget(state, series)

    # ------------------------------------------------------------------ read

    def latest_key(self) -> Hashable | None:
        """A key that changes whenever latest() could answer differently (a scrape, a block swapped, the cut-off
        moved), so an answer built from latest() can be reused until then; None when latest() would read a
        sealed block (right after a forced seal), which is not worth keying."""
        with self._lock:
            sources = []
            for name, state in self._sources.items():
                if state.open.rows == 0:
                    return None
                sources.append((name, state.newest_ms, state.open.rows, id(state.open)))
            return self.latest_from_ms, tuple(sources)

    def latest(self) -> list[SeriesWindow]:
        """The newest point of every series present in its source's most recent scrape (none of a source whose
        most recent scrape is older than `latest_from_ms`)."""
        result: list[SeriesWindow] = []
        from_sealed: list[tuple[bytes | DiskBlock | None, RawBlock | None]] = []
        with self._lock:
            metas = dict(self._catalog.families)
            for state in self._sources.values():
                if self.latest_from_ms is not None and (state.newest_ms or 0) < self.latest_from_ms:
                    continue  # e.g. read back from disk: history, not what the node reports now
                block = state.open
                rows = block.rows
                if rows == 0:  # only right after a forced seal: the newest scrape is in the last sealed block
                    record = next((r for r in reversed(self._sealed) if r.source == state.name), None)
                    if record is not None:
                        from_sealed.append((record.held, record.raw))
                    continue
                timestamp = block.timestamps[-1]
                for series, value in zip(block.series, block.row_values(rows - 1), strict=True):
                    if value is not None:
                        result.append(make_window(metas, state.name, series.name, series.labels, series.family,
                                              [timestamp], [value]))
        for payload, raw in from_sealed:
            for source, name, labels, family, block_metas, timestamps, values in read_sealed(payload, raw, None):
                if values[-1] is not None:
                    result.append(make_window(metas, source, name, labels, family, timestamps[-1:], values[-1:],
                                          block_metas))
        return result

    def query(self, start_ms: int | None = None, end_ms: int | None = None,
              names: Collection[str] | None = None, name_pattern: FullMatcher | None = None, *,
              max_points: int | None = None, step_ms: int = 0,
              batch_points: int = BATCH_POINTS) -> Iterator[SeriesWindow]:
        """Points with start_ms <= t <= end_ms, one SeriesWindow per series (per source), oldest point first.

        `names` select by FAMILY name, so a histogram's buckets come with it; `name_pattern` (fullmatch) selects
        a series whose family name or sample name matches (fodc.names).
        The families are read in batches of about `batch_points` points: each batch decodes (after the lock
        is released) only its families from the sealed blocks overlapping the range, and is yielded before
        the next is read, so a query holds one batch's points (~40 bytes each) whatever its range. With
        `max_points`, a query estimated above it raises TooManyPoints before anything is read; with `step_ms`
        that estimate counts at most one point per step per series (the caller downsamples)."""
        lo = -(2**63) if start_ms is None else start_ms
        hi = 2**63 if end_ms is None else end_ms
        wanted = family_filter(names, name_pattern)
        if wanted is not None:  # match the known families before taking the lock the scrape path needs
            with self._lock:
                known = list(self._catalog.families)
            for family in known:
                wanted(family)
        plan = self._plan(lo, hi, wanted, step_ms)
        if max_points is not None and plan.points > max_points:
            raise TooManyPoints(plan.points, plan.series, max_points)
        catalogs: dict = {}  # each distinct series list is parsed once per query, not once per batch
        for batch in batch_families(plan.family_points, batch_points):
            in_batch = frozenset(batch).__contains__
            points: dict = {}
            for payload, raw in plan.sealed:  # oldest first, so each series' points come out in time order
                for source, name, labels, family, block_metas, timestamps, values in read_sealed(
                        payload, raw, in_batch, catalogs):
                    first, stop = bisect_left(timestamps, lo), bisect_right(timestamps, hi)
                    collect(points, source, name, labels, family, block_metas, timestamps[first:stop],
                            values[first:stop])
            for source, timestamps, block, columns, first, stop in plan.opened:
                with self._lock:  # copied per batch: the whole open block would be MiBs held all along
                    cells = [(name, labels, family, block.column_bytes(base, first, stop))
                             for name, labels, family, base in columns if in_batch(family)]
                for name, labels, family, column in cells:
                    collect(points, source, name, labels, family, {}, timestamps, cells_to_values(column))
            for key in list(points):
                family, block_metas, timestamps, values = points.pop(key)  # each series freed once yielded
                source, name, labels = key
                if timestamps and (name_pattern is None or name_pattern.fullmatch(family)
                                   is not None or name_pattern.fullmatch(name) is not None):
                    yield make_window(plan.metas, source, name, labels, family, timestamps.tolist(),
                                      values.tolist(), block_metas)

    def _plan(self, lo: int, hi: int, wanted: Callable[[str], bool] | None, step_ms: int) -> QueryPlan:
        """Under the lock: the blocks a query reads, copies of the open blocks' wanted cells, and its size."""
        with self._lock:
            metas = dict(self._catalog.families)
            sealed, rows = [], dict.fromkeys(self._sources, 0)
            spans: dict[str, tuple[int, int]] = {}
            for record in self._sealed:
                if record.last_ms >= lo and record.first_ms <= hi:
                    sealed.append((record.held, record.raw))
                    rows[record.source] += rows_in_range(record.first_ms, record.last_ms, record.rows, lo, hi)
                    spans[record.source] = widen(spans.get(record.source), record.first_ms, record.last_ms)
            opened = []
            family_points: dict[str, int] = {}
            series = 0
            for state in self._sources.values():
                block = state.open
                if block.rows and block.timestamps[0] <= hi and block.timestamps[-1] >= lo:
                    first, stop = bisect_left(block.timestamps, lo), bisect_right(block.timestamps, hi)
                    rows[state.name] += stop - first
                    spans[state.name] = widen(spans.get(state.name), block.timestamps[0], block.timestamps[-1])
                    # The block object is kept, not its cells: rows before `stop` are never written again,
                    # also once the block is sealed and replaced, so each batch copies its columns later.
                    columns = [(s.name, s.labels, s.family, s.base)
                               for s in block.series if wanted is None or wanted(s.family)]
                    opened.append((state.name, block.timestamps[first:stop].tolist(), block, columns, first, stop))
                scrapes = rows[state.name]
                if not scrapes:
                    continue
                if step_ms > 0:
                    first_ms, last_ms = spans[state.name]
                    scrapes = min(scrapes, (min(hi, last_ms) - max(lo, first_ms)) // step_ms + 1)
                for entry in state.series.values():
                    if wanted is None or wanted(entry.family):
                        family_points[entry.family] = family_points.get(entry.family, 0) + scrapes
                        series += 1
        return QueryPlan(metas, sealed, opened, family_points, series)

    def newest(self) -> dict[str, int]:
        """Each source's newest scrape time (sources with none left out): what a reader can poll cheaply."""
        with self._lock:
            return {name: s.newest_ms for name, s in self._sources.items() if s.newest_ms is not None}

    def stats(self, interval_s: float | None = None) -> WindowStats:
        """Figures about the window; `interval_s` (else the observed scrape interval) drives the estimate."""
        with self._lock:
            used = self._used_bytes()
            series = sum(len(s.series) for s in self._sources.values())
            live = sum(len(s.open.series) for s in self._sources.values()) or series
            samples = self._sealed.samples + sum(s.open.samples for s in self._sources.values())
            firsts = [r.first_ms for r in self._sealed] + [s.open.timestamps[0] for s in self._sources.values()
                                                           if s.open.rows]
            newest = max((s.newest_ms for s in self._sources.values() if s.newest_ms is not None), default=None)
            bytes_per_sample = self._sealed.bytes_per_sample(DEFAULT_BYTES_PER_SAMPLE)
            raw_cells = sum(8 * len(s.open.cells) for s in self._sources.values())
            interval = interval_s or self._observed_interval_s() or 15.0
            fixed = (used - self._sealed.nbytes - raw_cells) / series if series else 0.0
            estimate = estimate_window_seconds(self.budget_bytes, live, interval, bytes_per_sample,
                                               block_scrapes=self.block_scrapes, fixed_bytes_per_series=fixed)
            on_disk = [r for r in self._sealed if r.payload is None and r.stored is not None]
            return WindowStats(budget_bytes=self.budget_bytes, used_bytes=used, series=series, samples=samples,
                               oldest_ms=min(firsts, default=None), newest_ms=newest,
                               estimated_window_seconds=estimate, sealed_blocks=len(self._sealed),
                               evicted_blocks=self._sealed.evicted,
                               on_disk_bytes=sum(r.nbytes for r in on_disk),
                               unreadable_blocks=sum(1 for r in on_disk if r.stored is not None and r.stored.damage))

    def _observed_interval_s(self) -> float | None:
        """Mean scrape interval of the source with the most series in its open block."""
        busiest = max(self._sources.values(), key=lambda s: len(s.open.series), default=None)
        if busiest is None or busiest.open.rows < 2:
            return None
        stamps = busiest.open.timestamps
        return (stamps[-1] - stamps[0]) / (len(stamps) - 1) / 1000.0


def _encode(record: SealedRecord) -> tuple[bytes, int] | None:
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
