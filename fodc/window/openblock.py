"""A source's newest scrapes, uncompressed: one float64 grid, a column per series, a row per scrape.

Each column is allocated for the block's full capacity when its series first appears, so a scrape writes
one cell per sample and memory does not creep between seals. A cell no scrape wrote holds MISSING
(codec.ABSENT), which sealing (codec.encode_grid) turns into "absent from that scrape".

Only the recorder touches an OpenBlock, under its lock.
"""

from __future__ import annotations

import sys
from array import array
from typing import Protocol, cast

from fodc.window.codec import ABSENT as MISSING


class Column(Protocol):
    base: int  # index of the column's first cell in the grid


class OpenBlock:
    __slots__ = ("capacity", "timestamps", "cells", "series", "samples", "_blank")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.timestamps = array("q")
        self.cells = array("d")
        self.series: list = []  # column owners, in column order
        self.samples = 0
        self._blank = MISSING * capacity

    @property
    def rows(self) -> int:
        return len(self.timestamps)

    def add_column(self, owner: Column) -> int:
        base = len(self.cells)
        self.cells.frombytes(self._blank)
        self.series.append(owner)
        return base

    def column_bytes(self, base: int, first: int, stop: int) -> bytes:
        return self.cells[base + first:base + stop].tobytes()

    def row_values(self, row: int) -> list[float | None]:
        """One scrape across every column (column order), None where a series was absent."""
        return cells_to_values(self.cells[row::self.capacity].tobytes())

    def clear_row(self, row: int) -> None:
        """Undoes a half-written scrape: every existing column's cell in `row` goes back to MISSING."""
        view = memoryview(self.cells).cast("B")
        try:
            for owner in self.series:
                offset = 8 * (owner.base + row)
                view[offset:offset + 8] = MISSING
        finally:
            view.release()

    def drop_columns_from(self, count: int) -> list:
        """Removes the columns added after the first `count` (a rolled-back scrape's new series)."""
        dropped = self.series[count:]
        del self.series[count:]
        del self.cells[count * self.capacity:]
        return dropped

    def nbytes(self) -> int:
        return (sys.getsizeof(self) + sys.getsizeof(self.timestamps) + sys.getsizeof(self.cells)
                + sys.getsizeof(self.series) + sys.getsizeof(self._blank))


def cells_to_values(raw: bytes) -> list[float | None]:
    """Native float64 cells -> values, None where the cell is MISSING."""
    values = cast("list[float | None]", array("d", raw).tolist())
    if MISSING in raw:  # fast pre-check; a match may be misaligned, so confirm cell by cell
        for i in range(len(values)):
            if raw[8 * i:8 * i + 8] == MISSING:
                values[i] = None
    return values
