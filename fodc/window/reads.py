"""Reading the recorder's blocks back into series: the pure helpers behind FlightRecorder.query and .latest.

Kept apart from recorder.py so the recorder holds only its state and locking; nothing here takes a lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping

from fodc.saferegex import FullMatcher
from fodc.window.codec import CodecError, decode_block
from fodc.window.model import Labels, SeriesMeta, SeriesWindow
from fodc.window.openblock import cells_to_values

log = logging.getLogger("fodc.window.recorder")

UNTYPED = "untyped"


def read_sealed(payload: bytes | None, raw: object | None,
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


def family_filter(names: Collection[str] | None, pattern: FullMatcher | None) -> Callable[[str], bool] | None:
    """A family-name test that matches each family once per query and remembers the answer, so a query can
    match the known families before it takes the lock the scrape path needs."""
    if names is None and pattern is None:
        return None
    wanted = None if names is None else frozenset(names)
    seen: dict[str, bool] = {}

    def test(family: str) -> bool:
        verdict = seen.get(family)
        if verdict is None:
            verdict = seen[family] = ((wanted is None or family in wanted)
                                      and (pattern is None or pattern.fullmatch(family) is not None))
        return verdict
    return test


def collect(points: dict, source: str, name: str, labels: Labels, family: str,
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


def make_window(metas: Mapping[str, SeriesMeta], source: str, name: str, labels: Labels, family: str,
            timestamps: list[int], values: list[float],
            block_metas: Mapping[str, SeriesMeta] | None = None) -> SeriesWindow:
    meta = metas.get(family) or (block_metas.get(family) if block_metas else None)
    if meta is None:
        meta = SeriesMeta(family, UNTYPED, "", "")
    return SeriesWindow(name, labels, meta.type, meta.help, meta.unit, source, timestamps, values, family)
