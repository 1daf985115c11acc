"""Reading the recorder's blocks back into series: the pure helpers behind FlightRecorder.query and .latest.

Kept apart from recorder.py so the recorder holds only its state and locking; nothing here takes a lock.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from fodc.names import SAMPLE_SUFFIXES
from fodc.saferegex import FullMatcher
from fodc.window.codec import CodecError, decode_lazily
from fodc.window.diskblocks import BlockUnreadable, DiskBlock, block_bytes
from fodc.window.model import Labels, SeriesMeta, SeriesWindow
from fodc.window.openblock import cells_to_values
from fodc.window.records import RawBlock

log = logging.getLogger("fodc.window.recorder")

UNTYPED = "untyped"

# Points one query batch holds at once (~40 bytes each as Python lists): ~8 MiB, whatever the range. Each
# batch decodes the blocks it overlaps again, so smaller batches cost CPU (100k: 2x the time of one batch).
BATCH_POINTS = 200_000


class TooManyPoints(ValueError):
    """A query would return more points than it may; raised before anything is read."""

    def __init__(self, points: int, series: int, limit: int) -> None:
        super().__init__(f"the answer would hold about {points:,} points ({series:,} series) and the limit is "
                         f"{limit:,}: narrow start/end or the names, or use a coarser step")
        self.points = points
        self.series = series
        self.limit = limit


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What a query reads, taken under the recorder's lock; read after it is released."""

    metas: dict[str, SeriesMeta]
    sealed: Sequence[tuple[bytes | DiskBlock | None, RawBlock | None]]  # (payload, raw) of overlapping sealed blocks
    opened: list[tuple]  # per open block in range: source, timestamps, the block, wanted columns, row range
    family_points: dict[str, int]  # estimated points per wanted family
    series: int

    @property
    def points(self) -> int:
        return sum(self.family_points.values())


def rows_in_range(first_ms: int, last_ms: int, rows: int, lo: int, hi: int) -> int:
    """Scrapes of a block from first_ms to last_ms that fall in [lo, hi], assuming even spacing (rounded up)."""
    if rows <= 1 or (lo <= first_ms and last_ms <= hi):
        return rows
    span = last_ms - first_ms
    covered = min(hi, last_ms) - max(lo, first_ms)
    return max(1, min(rows, -(-rows * covered // span) + 1)) if span > 0 else rows


def widen(span: tuple[int, int] | None, first_ms: int, last_ms: int) -> tuple[int, int]:
    return (first_ms, last_ms) if span is None else (min(span[0], first_ms), max(span[1], last_ms))


def batch_families(family_points: Mapping[str, int], batch_points: int) -> list[list[str]]:
    """Families in name order, grouped so each group holds about `batch_points` points (a bigger family
    is a group of its own)."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for family in sorted(family_points):
        points = family_points[family]
        if current and size + points > batch_points:
            batches.append(current)
            current, size = [], 0
        current.append(family)
        size += points
    if current:
        batches.append(current)
    return batches


def read_sealed(payload: bytes | DiskBlock | None, raw: RawBlock | None,
                 wanted: Callable[[str], bool] | None, catalogs: dict | None = None) -> Iterator[tuple]:
    """(source, name, labels, family, block metas, timestamps, values) of every wanted series of a sealed block,
    from its bytes (in memory or on disk), or from its raw form while it is still being encoded. `catalogs`:
    codec.decode_block's. A block that cannot be read or decoded yields nothing and is logged (a block on disk
    once: it stays unreadable, and every later read skips it quietly)."""
    if payload is not None:
        try:
            decoded, columns = decode_lazily(block_bytes(payload), wanted, catalogs)
            block_metas = {m.name: m for m in decoded.families}
            for column in columns:  # decoded one at a time: the caller moves each into arrays before the next
                yield (decoded.source, column.name, column.labels, column.family, block_metas,
                       decoded.timestamps_ms, column.values)
        except BlockUnreadable as exc:
            if exc.first:
                log.error("flight recorder: sealed block on disk unreadable, skipped from now on: %s", exc)
        except CodecError as exc:
            log.error("flight recorder: unreadable sealed block skipped: %s", exc)
            if isinstance(payload, DiskBlock):
                payload.damage = payload.damage or f"undecodable: {exc}"
    elif raw is not None:
        block_metas = {m.name: m for m in raw.metas}
        timestamps = raw.block.timestamps.tolist()
        for name, labels, family, cells in raw.columns(0, len(timestamps), wanted):
            yield raw.source, name, labels, family, block_metas, timestamps, cells_to_values(cells)


def family_filter(names: Collection[str] | None, pattern: FullMatcher | None) -> Callable[[str], bool] | None:
    """A family-name test that matches each family once per query and remembers the answer, so a query can
    match the known families before it takes the lock the scrape path needs. A pattern picks a family when it
    matches the family name or one of the sample names the family may have (fodc.names)."""
    if names is None and pattern is None:
        return None
    wanted = None if names is None else frozenset(names)
    seen: dict[str, bool] = {}

    def test(family: str) -> bool:
        verdict = seen.get(family)
        if verdict is None:
            verdict = seen[family] = ((wanted is None or family in wanted)
                                      and (pattern is None or any(pattern.fullmatch(family + suffix) is not None
                                                                  for suffix in SAMPLE_SUFFIXES)))
        return verdict
    return test


def collect(points: dict, source: str, name: str, labels: Labels, family: str,
             block_metas: Mapping[str, SeriesMeta], timestamps: list[int], values: list[float | None]) -> None:
    """Appends a block's points of one series to `points`, in arrays: 16 bytes a point instead of two Python
    objects, so a query batch stays small and leaves no trail of freed objects behind."""
    entry = points.get((source, name, labels))
    if entry is None:
        entry = points[(source, name, labels)] = (family, block_metas, array("q"), array("d"))
    out_times, out_values = entry[2], entry[3]
    if None not in values:
        out_times.extend(timestamps)
        out_values.extend(cast("list[float]", values))  # no None in it: checked just above
        return
    for timestamp, value in zip(timestamps, values, strict=True):
        if value is not None:
            out_times.append(timestamp)
            out_values.append(value)


def make_window(metas: Mapping[str, SeriesMeta], source: str, name: str, labels: Labels, family: str,
            timestamps: list[int], values: list[float],
            block_metas: Mapping[str, SeriesMeta] | None = None) -> SeriesWindow:
    meta = metas.get(family) or (block_metas.get(family) if block_metas else None)
    if meta is None:
        meta = SeriesMeta(family, UNTYPED, "", "")
    return SeriesWindow(name, labels, meta.type, meta.help, meta.unit, source, timestamps, values, family)
