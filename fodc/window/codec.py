"""The sealed-block format of the flight recorder: versioned, self-contained bytes; pure encode/decode.

One block holds up to N scrapes of ONE source. Layout (everything after the version byte is one zlib stream):

    version byte (FORMAT_VERSION)
    zlib(
      source                                   text = varint length + UTF-8
      rows, timestamps                         integer column (columns.put_ints): ms, delta-of-delta
      catalog length                           varint: bytes of the two sections below
      families: count, then (name, type, help, unit) each
      series:   count, then (family index, sample name, label count, (label, value)...) each
      data:     per series: presence flag [+ bitmap of rows, LSB first], then its present values
    )

A second layout, RAW_FORMAT, carries a source's still open scrapes to the on-disk interim file: the same
header and catalog, then every series' cells as plain little-endian float64s (ABSENT where the series was not
scraped), compressed at a fast zlib level. Encoding it costs a copy and a zlib pass instead of a per-series
encoding, which matters because the interim file is written every few scrapes.

The catalog (families and series) is length-prefixed so that a reader of many blocks with the same series
(consecutive blocks of a source usually have them) parses it once: pass the same dict as `catalogs`.

Timestamps are stored once per scrape and shared by the block's series, so a sample costs only its value.
A block carries its own series names and family metadata, so a block written to disk decodes offline with
no other state. Decoding never trusts the bytes: anything malformed raises CodecError, never anything else.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from fodc.window.columns import (
    ColumnError,
    Reader,
    get_ints,
    get_values,
    put_ints,
    put_text,
    put_values,
    put_varint,
    skip_values,
)
from fodc.window.model import Labels, SeriesMeta

FORMAT_VERSION = 1
RAW_FORMAT = 2
# A signalling-NaN bit pattern no exposition parser produces: marks "absent from this scrape" in encode_grid's
# input (a caller value with exactly these bits would read back as absent; every other pattern round-trips).
ABSENT = struct.pack("=Q", 0x7FF00000DEADBEEF)
_ALL_PRESENT, _SOME_PRESENT = 0, 1
_MAX_ROWS = 1 << 20  # far above any block; guards allocations driven by corrupt counts


class CodecError(ValueError):
    """A block that cannot be decoded: unknown version, truncated or corrupt bytes."""


@dataclass(frozen=True, slots=True)
class BlockColumn:
    """One series in a block: one value per block row, None where the series was absent from that scrape."""

    name: str
    labels: Labels
    family: str
    values: list[float | None]


@dataclass(frozen=True, slots=True)
class Block:
    source: str
    timestamps_ms: list[int]
    families: tuple[SeriesMeta, ...]
    columns: list[BlockColumn]


def encode_block(block: Block, level: int = 6) -> bytes:
    """Block -> bytes. Timestamps must strictly increase; every column has one entry per timestamp."""
    rows = len(block.timestamps_ms)
    for column in block.columns:
        if len(column.values) != rows:
            raise ValueError(f"column {column.name} has {len(column.values)} values for {rows} timestamps")
    body = _heads(block.source, block.timestamps_ms, block.families,
                  [(c.name, c.labels, c.family) for c in block.columns])
    for column in block.columns:
        values = column.values
        if None in values:
            bitmap = bytearray((rows + 7) // 8)
            for i, v in enumerate(values):
                if v is not None:
                    bitmap[i >> 3] |= 1 << (i & 7)
            _put_column(body, bitmap, array("d", [v for v in values if v is not None]).tobytes())
        else:
            _put_column(body, None, array("d", cast("list[float]", values)).tobytes())  # no None: checked
    return bytes([FORMAT_VERSION]) + zlib.compress(body, level)


def encode_grid(source: str, timestamps_ms: Sequence[int], families: Sequence[SeriesMeta],
                heads: Sequence[tuple[str, Labels, str]], grid: bytes | memoryview, stride: int,
                level: int = 6) -> tuple[bytes, int]:
    """The recorder's fast path to the same bytes as encode_block, without a Python float per value.

    Column i's cells are native float64s at grid[8*i*stride : 8*(i*stride + rows)]; a cell holding ABSENT
    means the series was not in that scrape. Returns (block bytes, number of present values)."""
    rows = len(timestamps_ms)
    body = _heads(source, timestamps_ms, families, heads)
    present_total = 0
    for i in range(len(heads)):
        cells = bytes(grid[8 * i * stride:8 * (i * stride + rows)])
        if ABSENT not in cells:  # the common case; a hit may be misaligned, so confirm cell by cell below
            _put_column(body, None, cells)
            present_total += rows
            continue
        bitmap = bytearray((rows + 7) // 8)
        present = bytearray()
        for row in range(rows):
            cell = cells[8 * row:8 * row + 8]
            if cell != ABSENT:
                bitmap[row >> 3] |= 1 << (row & 7)
                present += cell
        _put_column(body, bitmap if len(present) < len(cells) else None, bytes(present))
        present_total += len(present) // 8
    return bytes([FORMAT_VERSION]) + zlib.compress(body, level), present_total


def _heads(source: str, timestamps_ms: Sequence[int], families: Sequence[SeriesMeta],
           heads: Sequence[tuple[str, Labels, str]]) -> bytearray:
    body = _prefix(source, timestamps_ms)
    catalog = encode_catalog(families, heads)
    put_varint(body, len(catalog))
    body += catalog
    return body


def _prefix(source: str, timestamps_ms: Sequence[int]) -> bytearray:
    rows = len(timestamps_ms)
    if rows == 0:
        raise ValueError("a block needs at least one timestamp")
    body = bytearray()
    put_text(body, source)
    put_varint(body, rows)
    put_ints(body, list(timestamps_ms))
    return body


def encode_catalog(families: Sequence[SeriesMeta], heads: Sequence[tuple[str, Labels, str]]) -> bytes:
    """The families and series of a block; a caller writing the same series again may reuse these bytes."""
    family_index = {meta.name: i for i, meta in enumerate(families)}
    body = bytearray()
    put_varint(body, len(families))
    for meta in families:
        for text in (meta.name, meta.type, meta.help, meta.unit):
            put_text(body, text)
    put_varint(body, len(heads))
    for name, labels, family in heads:
        put_varint(body, family_index[family])
        put_text(body, name)
        put_varint(body, len(labels))
        for label, value in labels:
            put_text(body, label)
            put_text(body, value)
    return bytes(body)


def encode_raw(source: str, timestamps_ms: Sequence[int], catalog: bytes, series: int, cells: bytes,
               level: int = 1) -> bytes:
    """A RAW_FORMAT block: `cells` holds `series` columns of len(timestamps_ms) native float64s each, column
    after column, ABSENT where a series was not in that scrape; `catalog` comes from encode_catalog."""
    if len(cells) != 8 * len(timestamps_ms) * series:
        raise ValueError(f"{len(cells)} bytes of cells for {series} series x {len(timestamps_ms)} rows")
    body = _prefix(source, timestamps_ms)
    put_varint(body, len(catalog))
    body += catalog
    body += _little(cells)
    return bytes([RAW_FORMAT]) + zlib.compress(body, level)


def _little(cells: bytes) -> bytes:
    if sys.byteorder == "little":
        return cells
    swapped = array("d", cells)
    swapped.byteswap()
    return swapped.tobytes()


def _put_column(body: bytearray, bitmap: bytearray | None, present: bytes) -> None:
    if bitmap is None:
        body.append(_ALL_PRESENT)
    else:
        body.append(_SOME_PRESENT)
        body += bitmap
    if present:
        put_values(body, present)


def decode_block(data: bytes, family_filter: Callable[[str], bool] | None = None,
                 catalogs: dict | None = None) -> Block:
    """bytes -> Block. With family_filter, series of other families are skipped without decoding values.
    `catalogs`: a dict the caller keeps across calls to parse each distinct catalog only once."""
    head, columns = _open(data, catalogs)
    return Block(head.source, head.timestamps_ms, head.families, list(columns(family_filter, None)))


def decode_lazily(data: bytes, family_filter: Callable[[str], bool] | None = None,
                  catalogs: dict | None = None) -> tuple[Block, Iterator[BlockColumn]]:
    """decode_block() that decodes each column only when the iterator reaches it, so a reader that moves each
    column's values elsewhere holds one column's Python floats at a time, not a whole block's. The Block
    returned holds no columns; a CodecError may also come from the iterator (a block damaged past its head)."""
    head, columns = _open(data, catalogs)
    return Block(head.source, head.timestamps_ms, head.families, []), columns(family_filter, None)


@dataclass(frozen=True, slots=True)
class BlockSummary:
    """A block without its values: what the recorder needs to take back a block it wrote to disk."""

    source: str
    timestamps_ms: list[int]
    families: tuple[SeriesMeta, ...]
    heads: list[tuple[str, Labels, str]]  # (sample name, labels, family) per series
    samples: int  # values present


def summarize_block(data: bytes, catalogs: dict | None = None) -> BlockSummary:
    """Reads a block's header and catalog and counts its values without decoding them."""
    head, columns = _open(data, catalogs)
    tally = [0]
    for _ in columns(_nothing, tally):
        pass
    return BlockSummary(head.source, head.timestamps_ms, head.families, head.catalog.heads(), tally[0])


_MAX_CACHED_CATALOGS = 8


def _nothing(_family: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class _Head:
    source: str
    timestamps_ms: list[int]
    families: tuple[SeriesMeta, ...]
    catalog: _Catalog


def _open(data: bytes, catalogs: dict | None) -> tuple[_Head, Callable[..., Iterator[BlockColumn]]]:
    """Decompresses a block and reads its head and catalog; returns the head and a function that iterates the
    columns (wanted families only, `tally[0]` counting the values present of every column) and checks that the
    block ends where its last column does."""
    if not data:
        raise CodecError("empty block")
    layout = data[0]
    if layout not in (FORMAT_VERSION, RAW_FORMAT):
        raise CodecError(f"unknown block format version {layout} (this build reads versions "
                         f"{FORMAT_VERSION} and {RAW_FORMAT})")
    try:
        body = zlib.decompress(data[1:])
    except zlib.error as exc:
        raise CodecError(f"corrupt block: {exc}") from None
    reader = Reader(body)
    try:
        source = reader.text()
        rows = reader.varint()
        if not 0 < rows <= _MAX_ROWS:
            raise CodecError(f"corrupt block: {rows} rows")
        timestamps = get_ints(reader, rows)
        raw_catalog = reader.take(reader.varint())
        catalog = catalogs.get(raw_catalog) if catalogs is not None else None
        if catalog is None:
            catalog = _Catalog(raw_catalog)
            if catalogs is not None:
                if len(catalogs) >= _MAX_CACHED_CATALOGS:
                    del catalogs[next(iter(catalogs))]
                catalogs[raw_catalog] = catalog
    except (ColumnError, IndexError, KeyError) as exc:
        raise CodecError(f"corrupt block: {exc}") from None
    read = _raw_columns if layout == RAW_FORMAT else _coded_columns

    def columns(wanted: Callable[[str], bool] | None, tally: list[int] | None) -> Iterator[BlockColumn]:
        try:
            yield from read(reader, rows, catalog, wanted, tally if tally is not None else [0])
            if reader.pos != len(reader.data):
                raise CodecError("corrupt block: trailing bytes after the last series")
        except (ColumnError, IndexError, KeyError) as exc:
            raise CodecError(f"corrupt block: {exc}") from None

    return _Head(source, timestamps, catalog.families, catalog), columns


class _Catalog:
    """A block's series list, checked once: each series' family, and where its name and labels lie in the
    catalog's bytes. Names and labels are decoded only for the series a reader wants, so a read of a few
    families of a 6,400-series block holds no objects for the others, and a read of all of them holds one
    column's at a time rather than the whole list for the length of the read."""

    __slots__ = ("families", "raw", "family_of", "offsets")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        reader = Reader(raw)
        self.families = tuple(SeriesMeta(reader.text(), reader.text(), reader.text(), reader.text())
                              for _ in range(_count(reader)))
        self.family_of: list[str] = []  # the families' own name strings, shared
        self.offsets = array("Q")
        for _ in range(_count(reader)):
            self.family_of.append(self.families[reader.varint()].name)
            self.offsets.append(reader.pos)
            reader.text()  # decoded to check it, then let go
            for _ in range(_count(reader)):
                reader.text()
                reader.text()
        if reader.pos != len(raw):
            raise CodecError("corrupt block: trailing bytes after the catalog")

    def head(self, i: int) -> tuple[str, Labels, str]:
        """(sample name, labels, family) of series `i`."""
        reader = Reader(self.raw)
        reader.pos = self.offsets[i]
        name = reader.text()
        return name, tuple((reader.text(), reader.text()) for _ in range(reader.varint())), self.family_of[i]

    def heads(self) -> list[tuple[str, Labels, str]]:
        return [self.head(i) for i in range(len(self.offsets))]


def _coded_columns(reader: Reader, rows: int, catalog: _Catalog,
                   wanted: Callable[[str], bool] | None, tally: list[int]) -> Iterator[BlockColumn]:
    bitmap_len = (rows + 7) // 8
    for i, family in enumerate(catalog.family_of):
        flag = reader.byte()
        if flag == _ALL_PRESENT:
            present_rows = None
            present = rows
        elif flag == _SOME_PRESENT:
            bitmap = reader.take(bitmap_len)
            present_rows = [r for r in range(rows) if bitmap[r >> 3] >> (r & 7) & 1]
            present = len(present_rows)
        else:
            raise CodecError(f"corrupt block: presence flag {flag}")
        tally[0] += present
        if wanted is not None and not wanted(family):
            if present:
                skip_values(reader, present)
            continue
        values = cast("list[float | None]", get_values(reader, present) if present else [])
        if len(values) != present:
            raise CodecError("corrupt block: value count mismatch")
        if present_rows is not None:
            spread: list[float | None] = [None] * rows
            for row, v in zip(present_rows, values, strict=True):
                spread[row] = v
            values = spread
        name, labels, _ = catalog.head(i)
        yield BlockColumn(name, labels, family, values)


def _raw_columns(reader: Reader, rows: int, catalog: _Catalog,
                 wanted: Callable[[str], bool] | None, tally: list[int]) -> Iterator[BlockColumn]:
    for i, family in enumerate(catalog.family_of):
        cells = _little(reader.take(8 * rows))  # the swap is its own inverse
        absent = [r for r in range(rows) if cells[8 * r:8 * r + 8] == ABSENT] if ABSENT in cells else []
        tally[0] += rows - len(absent)
        if wanted is not None and not wanted(family):
            continue
        values = cast("list[float | None]", array("d", cells).tolist())
        for row in absent:
            values[row] = None
        name, labels, _ = catalog.head(i)
        yield BlockColumn(name, labels, family, values)


def _count(reader: Reader) -> int:
    count = reader.varint()
    if count > len(reader.data):  # every counted item takes at least one byte
        raise CodecError(f"corrupt block: count {count} exceeds the block")
    return count

