"""The window file format: damage anywhere costs exactly the chunk it hits, and foreign files are refused clearly."""

from __future__ import annotations

import struct
import zlib

import pytest

from fodc.window.diskfiles import WindowFile, list_window_files, read_window_file
from fodc.window.diskformat import (
    CHECKSUM,
    CHUNK_OVERHEAD,
    FRAMING,
    HEADER_SIZE,
    KIND_ARCHIVE,
    KIND_INTERIM,
    TRUNCATED,
    Chunk,
    Damage,
    FormatError,
    encode_chunk,
    encode_header,
    parse_header,
    scan_chunks,
)

T0 = 1_787_300_000_000


def payloads(n: int) -> list[bytes]:
    # varied sizes and contents, including bytes that look like a sync word
    return [bytes([1]) + (b"\xd7FWC" * i) + bytes(range(i * 7 % 256)) * (i + 1) for i in range(n)]


def file_of(chunks: list[bytes]) -> tuple[bytes, list[tuple[int, int]]]:
    """A whole archive file, and each chunk's (start, end) byte range in it."""
    data = bytearray(encode_header(KIND_ARCHIVE, T0))
    spans = []
    for i, payload in enumerate(chunks):
        start = len(data)
        data += encode_chunk(payload, T0 + 1000 * i, T0 + 1000 * i + 999)
        spans.append((start, len(data)))
    return bytes(data), spans


def intact(data: bytes) -> list[bytes]:
    return [item.payload for item in scan_chunks(data) if isinstance(item, Chunk)]


def damage(data: bytes) -> list[Damage]:
    return [item for item in scan_chunks(data) if isinstance(item, Damage)]


def test_chunks_come_back_in_order_with_their_times():
    chunks = payloads(5)
    data, _ = file_of(chunks)
    assert parse_header(data).kind == KIND_ARCHIVE
    items = list(scan_chunks(data))
    assert [c.payload for c in items] == chunks
    assert [(c.first_ms, c.last_ms) for c in items] == [(T0 + 1000 * i, T0 + 1000 * i + 999) for i in range(5)]


def test_a_cut_anywhere_keeps_every_chunk_before_it_and_reports_the_torn_one():
    chunks = payloads(4)
    data, spans = file_of(chunks)
    for cut in range(HEADER_SIZE, len(data) + 1):
        whole = [i for i, (_, end) in enumerate(spans) if end <= cut]
        assert intact(data[:cut]) == [chunks[i] for i in whole], cut
        torn = damage(data[:cut])
        if cut in {end for _, end in spans} | {HEADER_SIZE}:
            assert torn == []
        else:
            assert [d.reason for d in torn] == [TRUNCATED], cut


def test_a_flipped_byte_anywhere_in_a_chunk_costs_only_that_chunk():
    chunks = payloads(5)
    data, spans = file_of(chunks)
    start, end = spans[2]
    for pos in range(start, end):
        damaged = bytearray(data)
        damaged[pos] ^= 0x41
        assert intact(bytes(damaged)) == chunks[:2] + chunks[3:], pos
        reasons = [d.reason for d in damage(bytes(damaged))]
        assert reasons == [CHECKSUM if pos >= start + CHUNK_OVERHEAD else FRAMING], pos


def test_garbage_between_chunks_is_skipped_as_one_stretch():
    chunks = payloads(3)
    data, spans = file_of(chunks)
    middle = spans[1][0]
    spliced = data[:middle] + b"\x00garbage\xd7FWC-not-a-frame" * 10 + data[middle:]
    assert intact(spliced) == chunks
    assert [(d.reason, d.length) for d in damage(spliced)] == [(FRAMING, len(b"\x00garbage\xd7FWC-not-a-frame") * 10)]


def test_a_zero_filled_tail_counts_as_a_torn_write():
    chunks = payloads(2)
    data, _ = file_of(chunks)
    assert intact(data + bytes(4096)) == chunks
    assert [d.reason for d in damage(data + bytes(4096))] == [TRUNCATED]


def _with_version(data: bytes, version: int, fix_crc: bool) -> bytes:
    head = bytearray(data[:HEADER_SIZE - 4])
    head[8] = version
    crc = struct.pack("<I", zlib.crc32(head)) if fix_crc else data[HEADER_SIZE - 4:HEADER_SIZE]
    return bytes(head) + crc + data[HEADER_SIZE:]


def test_another_format_version_is_a_clear_error():
    data, _ = file_of(payloads(1))
    with pytest.raises(FormatError, match="file format version 2; this build reads version 1"):
        parse_header(_with_version(data, 2, fix_crc=True))
    with pytest.raises(FormatError, match="damaged header"):
        parse_header(_with_version(data, 2, fix_crc=False))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (b"\x89FODCW", "truncated header"),
    (b"PK\x03\x04 a zip file, not ours" * 3, "no magic"),
])
def test_files_that_are_not_window_files_are_refused_with_the_reason(data, message):
    with pytest.raises(FormatError, match=message):
        parse_header(data)


def test_the_directory_listing_orders_archives_and_ignores_foreign_names(tmp_path):
    for name in ("window-00000010-20261124T010000Z.archive", "window-00000002-20261125T010000Z.archive",
                 "window.interim", "window.interim.tmp", "README", "window-x.archive", "core.1234"):
        (tmp_path / name).write_bytes(b"x")
    names = [f.path.name for f in list_window_files(tmp_path)]
    assert names == ["window-00000002-20261125T010000Z.archive", "window-00000010-20261124T010000Z.archive",
                     "window.interim"]


def test_reading_a_file_reports_chunks_damage_and_unreadable_files(tmp_path):
    chunks = payloads(3)
    data, spans = file_of(chunks)
    good = tmp_path / "window-00000001-20261124T010000Z.archive"
    good.write_bytes(data[:spans[2][0] + 40])  # the last chunk cut short
    contents = read_window_file(WindowFile(good, "archive", 1, good.stat().st_size))
    assert [c.payload for c in contents.chunks] == chunks[:2]
    assert [d.reason for d in contents.damage] == [TRUNCATED] and contents.error is None

    mislabelled = tmp_path / "window.interim"
    mislabelled.write_bytes(data)
    contents = read_window_file(WindowFile(mislabelled, "interim", 2, 0))
    assert contents.chunks == [] and "not what its name says" in contents.error

    other = tmp_path / "window-00000003-20261124T010000Z.archive"
    other.write_bytes(_with_version(encode_header(KIND_INTERIM, T0), 9, fix_crc=True))
    assert "format version 9" in read_window_file(WindowFile(other, "archive", 3, 0)).error
