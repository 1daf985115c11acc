"""The sealed-block format of the flight recorder: versioned bytes, pure encode/decode.

One block holds up to N scrapes of ONE source: the scrape timestamps once (delta-of-delta varints), then one
column per series. A column is zigzag varint delta-of-delta when every value is an exact integer (most
BanyanDB counters, bucket counts and byte gauges), else the XOR of successive float64 bit patterns; series
that appear late start at an offset, and gaps (missed scrapes) are listed. zlib over the whole block turns
unchanged series into almost nothing. The same bytes go to disk later, so the first byte is a version.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

FORMAT_VERSION = 1
_INT_LIMIT = 2**53
_MODE_INT, _MODE_XOR = 0, 1


class CodecError(ValueError):
    """A block that cannot be decoded (unknown version, truncated or corrupt bytes)."""


@dataclass(slots=True)
class Column:
    """One series within a block: values for scrapes start..start+len(values)-1, except the gap indices."""

    key_id: int
    start: int
    values: array  # array('d')
    gaps: set[int] = field(default_factory=set)  # indices (into values) that are missing


@dataclass(slots=True)
class Block:
    timestamps_ms: list[int]
    columns: list[Column]


def _varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value) << 1) - 1


def _unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        data, pos, shift, result = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise CodecError("truncated block")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift > 70:
                raise CodecError("corrupt varint")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CodecError("truncated block")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def _dod(out: bytearray, values: Sequence[int]) -> None:
    prev, prev_delta = 0, 0
    for v in values:
        delta = v - prev
        _varint(out, _zigzag(delta - prev_delta))
        prev, prev_delta = v, delta


def _undod(reader: _Reader, n: int) -> list[int]:
    result, prev, prev_delta = [], 0, 0
    for _ in range(n):
        delta = prev_delta + _unzigzag(reader.varint())
        prev += delta
        prev_delta = delta
        result.append(prev)
    return result


def _all_integral(values: Sequence[float]) -> bool:
    for v in values:
        if not (v == v and -_INT_LIMIT < v < _INT_LIMIT and v == int(v)) or (v == 0 and str(v)[0] == "-"):
            return False
    return True


def encode_block(block: Block, level: int = 6) -> bytes:
    body = bytearray()
    _varint(body, len(block.timestamps_ms))
    _varint(body, len(block.columns))
    _dod(body, block.timestamps_ms)
    for col in block.columns:
        _varint(body, col.key_id)
        _varint(body, col.start)
        _varint(body, len(col.values))
        _varint(body, len(col.gaps))
        for gap in sorted(col.gaps):
            _varint(body, gap)
        present = [v for i, v in enumerate(col.values) if i not in col.gaps] if col.gaps else col.values
        if _all_integral(present):
            body.append(_MODE_INT)
            _dod(body, [int(v) for v in present])
        else:
            body.append(_MODE_XOR)
            bits = array("Q", array("d", present).tobytes())
            prev = 0
            xored = array("Q", bytes(8 * len(bits)))
            for i, b in enumerate(bits):
                xored[i] = b ^ prev
                prev = b
            body += xored.tobytes()
    return bytes([FORMAT_VERSION]) + zlib.compress(bytes(body), level)


def decode_block(data: bytes) -> Block:
    if not data:
        raise CodecError("empty block")
    if data[0] != FORMAT_VERSION:
        raise CodecError(f"unknown block format version {data[0]} (this build reads version {FORMAT_VERSION})")
    try:
        body = zlib.decompress(data[1:])
    except zlib.error as exc:
        raise CodecError(f"corrupt block: {exc}") from None
    reader = _Reader(body)
    n_ts, n_cols = reader.varint(), reader.varint()
    timestamps = _undod(reader, n_ts)
    columns = []
    for _ in range(n_cols):
        key_id, start, n_values, n_gaps = reader.varint(), reader.varint(), reader.varint(), reader.varint()
        if start + n_values > n_ts:
            raise CodecError("column longer than the block")
        gaps = {reader.varint() for _ in range(n_gaps)}
        present_n = n_values - len(gaps)
        mode = reader.take(1)[0]
        if mode == _MODE_INT:
            present = array("d", (float(v) for v in _undod(reader, present_n)))
        elif mode == _MODE_XOR:
            xored = array("Q", reader.take(8 * present_n))
            prev = 0
            for i, x in enumerate(xored):
                prev ^= x
                xored[i] = prev
            present = array("d", xored.tobytes())
        else:
            raise CodecError(f"unknown column mode {mode}")
        if gaps:
            it = iter(present)
            values = array("d", (float("nan") if i in gaps else next(it) for i in range(n_values)))
        else:
            values = present
        columns.append(Column(key_id, start, values, gaps))
    if reader.pos != len(body):
        raise CodecError("trailing bytes after the last column")
    return Block(timestamps, columns)


def float_bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]
