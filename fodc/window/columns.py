"""Packs one column of numbers into bytes and back, bit-exactly: the value encodings inside a sealed block.

Integers (timestamps, and float values that are exact integers) are stored as delta-of-delta, zigzagged, at
the narrowest fixed width that fits (1, 2, 4 or 8 bytes), split into byte planes: a steady counter or a
regular scrape cadence becomes planes of zeros that zlib (applied by codec.py over the whole block) squeezes
to almost nothing. Fixed widths instead of varints keep both directions in C-speed `array` operations.
Other floats are either decimals with few digits (stored as scaled integers, checked bit for bit) or the XOR
of successive float64 bit patterns, byte-planed the same way. Every choice is verified by re-encoding, so
what comes back is exactly what went in (NaN payloads, ±Inf and -0.0 included).

Never compresses and never frames: that is codec.py's job.
"""

from __future__ import annotations

import sys
from array import array
from itertools import accumulate, repeat
from operator import and_, lshift, neg, rshift, sub, truediv, xor

MODE_CONST, MODE_INT, MODE_DECIMAL, MODE_XOR = 0, 1, 2, 3
_INT_LIMIT = 2**61  # keeps zigzagged delta-of-deltas inside 64 bits
_MAX_DECIMALS = 9
_WIDTH_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_LITTLE = sys.byteorder == "little"


class ColumnError(ValueError):
    """Bytes that do not form a valid column (truncated or corrupt)."""


class Reader:
    """A cursor over a block body; every read checks bounds so corrupt input fails cleanly."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        data, pos, shift, result = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise ColumnError("truncated block")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift > 140:
                raise ColumnError("corrupt varint")

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ColumnError("truncated block")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ColumnError("truncated block")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def text(self) -> str:
        raw = self.take(self.varint())
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise ColumnError(f"corrupt text: {exc}") from None


def put_varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def put_text(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    put_varint(out, len(raw))
    out += raw


def _zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value) << 1) - 1


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _planes(data: bytes, width: int) -> bytes:
    """Byte k of every word together: high bytes that never change become long zero runs."""
    return data if width == 1 else b"".join(data[k::width] for k in range(width))


def _unplanes(data: bytes, width: int) -> bytes:
    if width == 1:
        return data
    count = len(data) // width
    out = bytearray(len(data))
    for k in range(width):
        out[k::width] = data[k * count:(k + 1) * count]
    return bytes(out)


def _words_to_bytes(words: list[int], width: int) -> bytes:
    packed = array(_WIDTH_CODES[width], words)
    if not _LITTLE:
        packed.byteswap()
    return packed.tobytes()


def _bytes_to_words(data: bytes, width: int) -> list[int]:
    packed = array(_WIDTH_CODES[width], data)
    if not _LITTLE:
        packed.byteswap()
    return packed.tolist()


def _little_floats(raw: bytes) -> bytes:
    """Native float64 bytes in the block's byte order (little-endian)."""
    if _LITTLE:
        return raw
    floats = array("d", raw)
    floats.byteswap()
    return floats.tobytes()


def _native_floats(little: bytes) -> list[float]:
    floats = array("d", little)
    if not _LITTLE:
        floats.byteswap()
    return floats.tolist()


def put_ints(out: bytearray, ints: list[int]) -> None:
    """First value and first delta as zigzag varints, then delta-of-deltas at one fixed width, byte-planed."""
    put_varint(out, _zigzag(ints[0]))
    if len(ints) == 1:
        return
    deltas = list(map(sub, ints[1:], ints))
    put_varint(out, _zigzag(deltas[0]))
    if len(ints) == 2:
        return
    dods = list(map(sub, deltas[1:], deltas))
    if not any(dods):  # a steady counter or a regular cadence
        out.append(0)
        return
    # zigzag, (d << 1) ^ (d >> 127), as C-level maps: this runs for every value of every sealed block
    zz = list(map(xor, map(lshift, dods, repeat(1)), map(rshift, dods, repeat(127))))
    top = max(zz)
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    if top >= 1 << 64:
        raise ValueError("delta-of-delta does not fit 64 bits")
    out.append(width)
    out += _planes(_words_to_bytes(zz, width), width)


def get_ints(reader: Reader, count: int) -> list[int]:
    first = _unzigzag(reader.varint())
    if count == 1:
        return [first]
    delta = _unzigzag(reader.varint())
    if count == 2:
        return [first, first + delta]
    width = reader.byte()
    if width == 0:
        dods = [0] * (count - 2)
    elif width in _WIDTH_CODES:
        zz = _bytes_to_words(_unplanes(reader.take((count - 2) * width), width), width)
        dods = list(map(xor, map(rshift, zz, repeat(1)), map(neg, map(and_, zz, repeat(1)))))
    else:
        raise ColumnError(f"bad integer width {width}")
    return list(accumulate(accumulate(dods, initial=delta), initial=first))


def _skip_ints(reader: Reader, count: int) -> None:
    reader.varint()
    if count > 1:
        reader.varint()
    if count > 2:
        width = reader.byte()
        if width and width not in _WIDTH_CODES:
            raise ColumnError(f"bad integer width {width}")
        reader.take((count - 2) * width)


def _as_ints(values: list[float], raw: bytes) -> list[int] | None:
    """The values as ints if every one is an exact integer of modest size (bit-checked, so -0.0 stays out)."""
    try:
        if not -_INT_LIMIT < min(values) <= max(values) < _INT_LIMIT:
            return None
        ints = list(map(int, values))
    except (ValueError, OverflowError):  # NaN or ±Inf
        return None
    return ints if array("d", ints).tobytes() == raw else None


def _as_decimals(values: list[float], raw: bytes) -> tuple[int, list[int]] | None:
    """(k, n) with value == n / 10**k bit for bit, for the smallest k that works; None if no k does."""
    head = values[:4]
    for k in range(1, _MAX_DECIMALS + 1):
        scale = 10.0**k
        try:
            if any(round(v * scale) / scale != v for v in head):
                continue
            ints = [round(v * scale) for v in values]
        except (ValueError, OverflowError):
            return None
        if -_INT_LIMIT < min(ints) <= max(ints) < _INT_LIMIT \
                and array("d", map(truediv, ints, repeat(scale))).tobytes() == raw:
            return k, ints
    return None


def put_values(out: bytearray, raw: bytes) -> None:
    """Encodes float64 values given as their native bytes (8 per value, at least one value)."""
    count = len(raw) // 8
    if raw == raw[:8] * count:
        out.append(MODE_CONST)
        out += _little_floats(raw[:8])
        return
    values = array("d", raw).tolist()
    ints = _as_ints(values, raw)
    if ints is not None:
        out.append(MODE_INT)
        put_ints(out, ints)
        return
    decimals = _as_decimals(values, raw)
    if decimals is not None:
        out.append(MODE_DECIMAL)
        out.append(decimals[0])
        put_ints(out, decimals[1])
        return
    out.append(MODE_XOR)
    # XOR never carries, so one big-int operation XORs every word with its predecessor.
    words = int.from_bytes(_little_floats(raw), "little")
    xored = ((words ^ (words << 64)) & ((1 << (64 * count)) - 1)).to_bytes(8 * count, "little")
    out += _planes(xored, 8)


def get_values(reader: Reader, count: int) -> list[float]:
    mode = reader.byte()
    if mode == MODE_CONST:
        return _native_floats(reader.take(8)) * count
    if mode == MODE_INT:
        return list(map(float, get_ints(reader, count)))
    if mode == MODE_DECIMAL:
        k = reader.byte()
        if not 1 <= k <= _MAX_DECIMALS:
            raise ColumnError(f"bad decimal scale {k}")
        scale = 10.0**k
        return list(map(truediv, get_ints(reader, count), repeat(scale)))
    if mode == MODE_XOR:
        xored = int.from_bytes(_unplanes(reader.take(8 * count), 8), "little")
        shift = 64
        while shift < 64 * count:  # prefix XOR by doubling: log2(count) big-int steps
            xored ^= xored << shift
            shift *= 2
        return _native_floats((xored & ((1 << (64 * count)) - 1)).to_bytes(8 * count, "little"))
    raise ColumnError(f"unknown value mode {mode}")


def skip_values(reader: Reader, count: int) -> None:
    """Steps over an encoded column without decoding it (for filtered reads)."""
    mode = reader.byte()
    if mode == MODE_CONST:
        reader.take(8)
    elif mode == MODE_INT:
        _skip_ints(reader, count)
    elif mode == MODE_DECIMAL:
        reader.byte()
        _skip_ints(reader, count)
    elif mode == MODE_XOR:
        reader.take(8 * count)
    else:
        raise ColumnError(f"unknown value mode {mode}")
