"""The sealed-block format: bit-exact round trips, a checked version byte, clean errors on bad bytes."""

from __future__ import annotations

import math
import struct
import zlib
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fodc.window import FORMAT_VERSION, Block, BlockColumn, CodecError, SeriesMeta, decode_block, encode_block
from fodc.window.codec import ABSENT, decode_lazily, encode_grid

T0 = 1_787_300_000_123
FAMILIES = (SeriesMeta("lat", "histogram", "latency of things", "seconds"), SeriesMeta("up", "gauge", "", ""))


def bits(values):
    return [None if v is None else struct.pack("<d", v) for v in values]


def block_of(columns, timestamps=None):
    rows = len(columns[0][1]) if columns else 1
    return Block("node-a", timestamps or [T0 + 15_000 * i for i in range(rows)], FAMILIES,
                 [BlockColumn(name, labels, "lat" if name.startswith("lat") else "up", values)
                  for (name, values), labels in zip(columns, [(("le", str(i)),) for i in range(len(columns))],
                                                    strict=True)])


def assert_same(decoded: Block, block: Block) -> None:
    assert decoded.source == block.source
    assert decoded.timestamps_ms == list(block.timestamps_ms)
    assert decoded.families == block.families
    assert [(c.name, c.labels, c.family) for c in decoded.columns] == \
        [(c.name, c.labels, c.family) for c in block.columns]
    for got, want in zip(decoded.columns, block.columns, strict=True):
        assert bits(got.values) == bits(want.values)


def test_special_floats_come_back_bit_exact():
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308, 0.1, -2.0**61, 2.0**70]
    block = block_of([("up", specials), ("lat_sum", list(reversed(specials)))])
    assert_same(decode_block(encode_block(block)), block)


def test_every_value_encoding_round_trips():
    rows = 50
    block = block_of([
        ("up", [42.0] * rows),  # constant
        ("lat_count", [float(1000 + 7 * i * i) for i in range(rows)]),  # integral counter
        ("lat_sum", [round(0.5 + i * 0.013, 3) for i in range(rows)]),  # few-digit decimal
        ("lat_bucket", [math.sin(i) for i in range(rows)]),  # arbitrary floats (XOR)
        ("up", [float(2**60 - i * 3**30) for i in range(rows)]),  # large integers
    ])
    assert_same(decode_block(encode_block(block)), block)


def test_absent_values_stay_absent():
    values = [1.0, None, None, 4.0, None, 6.5]
    block = block_of([("up", values), ("lat_bucket", [None, 2.0, None, None, None, None])])
    decoded = decode_block(encode_block(block))
    assert [c.values for c in decoded.columns] == [values, [None, 2.0, None, None, None, None]]


def test_grid_encoding_gives_the_same_block_as_the_value_lists():
    rows, stride = 5, 8  # the grid's columns are allocated longer than the rows written
    columns = [[1.0, 2.0, None, 4.0, 5.0], [0.25, None, None, None, -0.0]]
    grid = bytearray()
    for values in columns:
        cells = [ABSENT if v is None else struct.pack("=d", v) for v in values] + [ABSENT] * (stride - rows)
        grid += b"".join(cells)
    block = block_of([("up", columns[0]), ("lat_bucket", columns[1])])
    heads = [(c.name, c.labels, c.family) for c in block.columns]
    payload, present = encode_grid(block.source, block.timestamps_ms, block.families, heads, bytes(grid), stride)
    assert present == 6
    assert_same(decode_block(payload), block)


def test_timestamps_keep_milliseconds_and_irregular_steps():
    timestamps = [T0, T0 + 1, T0 + 15_001, T0 + 29_999, T0 + 10**9, T0 + 10**9 + 7]
    block = block_of([("up", [1.0] * 6)], timestamps)
    assert decode_block(encode_block(block)).timestamps_ms == timestamps


def test_first_byte_is_the_format_version():
    assert encode_block(block_of([("up", [1.0])]))[0] == FORMAT_VERSION


def test_unknown_version_is_a_clear_error():
    data = encode_block(block_of([("up", [1.0, 2.0])]))
    with pytest.raises(CodecError, match="unknown block format version 99"):
        decode_block(bytes([99]) + data[1:])


@pytest.mark.parametrize("damage", [
    lambda d: b"",
    lambda d: d[:1],
    lambda d: d[:-3],
    lambda d: d[:10] + bytes(b ^ 0x5A for b in d[10:20]) + d[20:],
    lambda d: d[:1] + zlib.compress(zlib.decompress(d[1:])[:-4]),  # valid zlib, truncated body
    lambda d: d[:1] + zlib.compress(zlib.decompress(d[1:]) + b"\x00"),  # trailing garbage
    lambda d: d[:1] + zlib.compress(b"\xff" * 40),
], ids=["empty", "version-only", "truncated", "flipped", "short-body", "trailing", "garbage-body"])
def test_corrupt_bytes_raise_codec_error_only(damage):
    data = encode_block(block_of([("up", [1.0, 2.5, None, 4.0]), ("lat_sum", [0.1, 0.2, 0.3, 0.4])]))
    with pytest.raises(CodecError):
        decode_block(damage(data))


def test_a_lazy_decode_gives_the_same_columns_and_a_damaged_tail_fails_in_the_iterator():
    block = block_of([("up", [1.0, 2.5, None, 4.0]), ("lat_sum", [0.1, 0.2, 0.3, 0.4])])
    data = encode_block(block)
    head, columns = decode_lazily(data, catalogs={})
    assert (head.source, head.timestamps_ms, head.columns) == (block.source, list(block.timestamps_ms), [])
    assert_same(Block(head.source, head.timestamps_ms, head.families, list(columns)), block)
    short = data[:1] + zlib.compress(zlib.decompress(data[1:])[:-4])  # head intact, last column cut
    head, columns = decode_lazily(short)
    assert head.source == "node-a"
    with pytest.raises(CodecError):
        list(columns)


def test_family_filter_skips_other_series():
    block = block_of([("up", [1.0, 2.0]), ("lat_bucket", [3.0, None]), ("lat_sum", [0.5, 0.7])])
    decoded = decode_block(encode_block(block), lambda family: family == "lat")
    assert [(c.name, c.values) for c in decoded.columns] == [("lat_bucket", [3.0, None]), ("lat_sum", [0.5, 0.7])]


any_float = (st.floats(allow_nan=True, allow_infinity=True)
             | st.sampled_from([0.0, -0.0, math.inf, -math.inf, 2.0**53, -(2.0**61), 1e300])
             | st.integers(-(2**62), 2**62).map(float)
             | st.integers(-10**6, 10**6).map(lambda n: n / 1000))


@st.composite
def blocks(draw):
    steps = draw(st.lists(st.integers(1, 10**7), min_size=0, max_size=70))
    timestamps = [draw(st.integers(-(2**45), 2**45))]
    for step in steps:
        timestamps.append(timestamps[-1] + step)
    rows = len(timestamps)
    columns = []
    for i in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["any", "counter", "const"]))
        if kind == "counter":
            start = draw(st.integers(0, 2**40))
            incs = draw(st.lists(st.integers(0, 10**6), min_size=rows, max_size=rows))
            values = [float(start + sum(incs[:j + 1])) for j in range(rows)]
        elif kind == "const":
            values = [draw(any_float)] * rows
        else:
            values = draw(st.lists(any_float, min_size=rows, max_size=rows))
        present = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
        values = [v if keep else None for v, keep in zip(values, present, strict=True)]
        columns.append(BlockColumn(f"m{i}", ((f"l{i}", draw(st.text(max_size=8))),), "up", values))
    return Block(draw(st.text(max_size=10)), timestamps, FAMILIES, columns)


@settings(max_examples=300, deadline=None)
@given(blocks())
def test_any_block_round_trips_bit_exactly(block):
    assert_same(decode_block(encode_block(block)), block)


@settings(max_examples=100, deadline=None)
@given(blocks())
def test_grid_and_list_encodings_agree_on_any_block(block):
    rows = len(block.timestamps_ms)
    grid = bytearray()
    for column in block.columns:
        cells = array("d", [0.0 if v is None else v for v in column.values]).tobytes()
        grid += b"".join(ABSENT if v is None else cells[8 * i:8 * i + 8] for i, v in enumerate(column.values))
    heads = [(c.name, c.labels, c.family) for c in block.columns]
    payload, present = encode_grid(block.source, block.timestamps_ms, block.families, heads, bytes(grid), rows)
    assert present == sum(v is not None for c in block.columns for v in c.values)
    assert_same(decode_block(payload), block)
