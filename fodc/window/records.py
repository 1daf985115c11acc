"""The recorder's bookkeeping records: one per series, per source and per sealed block (recorder.py owns them).

Plain mutable slots objects, touched only under the recorder's lock; kept apart so recorder.py holds the logic.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fodc.window.diskblocks import DiskBlock
from fodc.window.model import Labels, SeriesMeta
from fodc.window.openblock import OpenBlock

SeriesKey = tuple[str, Labels]


class SeriesEntry:
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


class SourceState:
    __slots__ = ("name", "series", "open", "newest_ms", "next_seq")

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.series: dict[SeriesKey, SeriesEntry] = {}
        self.open = OpenBlock(capacity)
        self.newest_ms: int | None = None
        self.next_seq = 0

    def nbytes(self) -> int:
        return sys.getsizeof(self) + sys.getsizeof(self.series) + self.open.nbytes()


class SealedRecord:
    """One sealed block in the eviction queue. Between detaching a full open block and finishing its encoding
    (outside the lock) `payload` is None and `raw` holds the detached, no longer written, block. Once the block
    is safely on disk, `payload` is None and `stored` says where it lies (diskblocks.py); `size` is the encoded
    length either way."""

    __slots__ = ("source", "seq", "first_ms", "last_ms", "payload", "raw", "samples", "nbytes", "gone", "rows",
                 "stored", "size")

    def __init__(self, source: str, seq: int, first_ms: int, last_ms: int, raw: RawBlock | None, samples: int,
                 nbytes: int, rows: int = 0) -> None:
        self.source = source
        self.seq = seq
        self.first_ms = first_ms
        self.last_ms = last_ms
        self.payload: bytes | None = None
        self.raw: RawBlock | None = raw
        self.samples = samples
        self.nbytes = nbytes
        self.gone = False  # evicted or dropped while its encoding was under way
        self.rows = rows  # scrapes in the block: what a query's size estimate counts
        self.stored: DiskBlock | None = None
        self.size = 0

    @property
    def key(self) -> tuple[str, int, int]:
        return self.source, self.first_ms, self.last_ms

    @property
    def held(self) -> bytes | DiskBlock | None:
        """The encoded block, in memory or on disk; None while it is still raw."""
        return self.payload if self.payload is not None else self.stored


@dataclass(frozen=True, slots=True)
class RawBlock:
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
SEALED_RECORD_BYTES = sys.getsizeof(SealedRecord("", 0, 0, 0, None, 0, 0)) + 4 * 32
