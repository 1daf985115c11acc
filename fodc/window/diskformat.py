"""The on-disk window's file format: a checked header, then framed chunks. Pure bytes in, bytes out.

    file   = header chunk*
    header = magic "\\x89FODCWIN" (8) | version u8 | kind u8 ('A' archive, 'I' interim) | reserved u16 (0)
             | created_ms i64 | crc32 of the 20 bytes before it, u32                               = 24 bytes
    chunk  = sync "\\xd7FWC" (4) | payload length u32 | first_ms i64 | last_ms i64 | crc32 of the payload u32
             | crc32 of the 28 header bytes before it, u32 | payload (one codec block)            = 32 + n bytes

All integers little-endian. Every chunk checks its own framing and its own payload, so damage costs only the
chunk it hits: a chunk whose payload fails its checksum is skipped by its (checked) length; a chunk whose
frame is damaged is skipped by searching for the next sync word whose frame checks out; a file that ends
inside a chunk (a write cut short by a crash) loses that chunk only. docs/window-format.md has the full story.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"\x89FODCWIN"
FILE_VERSION = 1
KIND_ARCHIVE = ord("A")
KIND_INTERIM = ord("I")
SYNC = b"\xd7FWC"
MAX_PAYLOAD = 256 * 1024 * 1024  # far above any block; a larger length is damage, not data

_HEADER = struct.Struct("<8sBBHq")
_CHUNK = struct.Struct("<4sIqqI")
HEADER_SIZE = _HEADER.size + 4
CHUNK_OVERHEAD = _CHUNK.size + 4

# Reasons a stretch of a file is skipped, as counted and reported.
TRUNCATED = "truncated"  # the file ends inside a chunk: a write cut short
CHECKSUM = "checksum"  # the payload does not match its checksum
FRAMING = "framing"  # a damaged chunk header; reading resumed at the next intact one


class FormatError(ValueError):
    """A file that is not a window file this build can read (bad magic, other version, damaged header)."""


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    kind: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class Chunk:
    offset: int
    first_ms: int
    last_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    offset: int
    length: int  # bytes skipped
    reason: str


def encode_header(kind: int, created_ms: int) -> bytes:
    head = _HEADER.pack(MAGIC, FILE_VERSION, kind, 0, created_ms)
    return head + struct.pack("<I", zlib.crc32(head))


def parse_header(data: bytes) -> Header:
    """The header at the start of `data`; FormatError says plainly why a file cannot be read."""
    if not data:
        raise FormatError("empty file (created, then the agent stopped before writing to it)")
    if len(data) < HEADER_SIZE:
        if MAGIC.startswith(data[:len(MAGIC)]):
            raise FormatError(f"truncated header ({len(data)} of {HEADER_SIZE} bytes)")
        raise FormatError("not a FODC window file (no magic)")
    magic, version, kind, _, created_ms = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a FODC window file (no magic)")
    (crc,) = struct.unpack_from("<I", data, _HEADER.size)
    if crc != zlib.crc32(data[:_HEADER.size]):
        raise FormatError("damaged header (checksum mismatch)")
    if version != FILE_VERSION:
        raise FormatError(f"file format version {version}; this build reads version {FILE_VERSION}")
    if kind not in (KIND_ARCHIVE, KIND_INTERIM):
        raise FormatError(f"unknown file kind {kind}")
    return Header(version, kind, created_ms)


def encode_chunk(payload: bytes, first_ms: int, last_ms: int) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"chunk of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = _CHUNK.pack(SYNC, len(payload), first_ms, last_ms, zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def _frame_at(data: bytes, pos: int) -> tuple[int, int, int, int] | None:
    """(length, first_ms, last_ms, payload crc) if an intact chunk header starts at pos."""
    if data[pos:pos + 4] != SYNC or len(data) - pos < CHUNK_OVERHEAD:
        return None
    (crc,) = struct.unpack_from("<I", data, pos + _CHUNK.size)
    if crc != zlib.crc32(data[pos:pos + _CHUNK.size]):
        return None
    _, length, first_ms, last_ms, payload_crc = _CHUNK.unpack_from(data, pos)
    if length > MAX_PAYLOAD:
        return None
    return length, first_ms, last_ms, payload_crc


def _next_frame(data: bytes, pos: int) -> int | None:
    while True:
        pos = data.find(SYNC, pos)
        if pos < 0:
            return None
        if _frame_at(data, pos) is not None:
            return pos
        pos += 1


def scan_chunks(data: bytes, start: int = HEADER_SIZE) -> Iterator[Chunk | Damage]:
    """Every intact chunk of a file's bytes, in file order, and a Damage for every stretch skipped."""
    pos = start
    end = len(data)
    while pos < end:
        frame = _frame_at(data, pos)
        if frame is None:
            resume = _next_frame(data, pos + 1)
            if resume is None:  # nothing intact after: a torn final write (zeros, a cut header) or damage
                tail = data[pos:]
                torn = len(tail) < CHUNK_OVERHEAD or tail.startswith(SYNC) or not tail.strip(b"\0")
                yield Damage(pos, end - pos, TRUNCATED if torn else FRAMING)
                return
            yield Damage(pos, resume - pos, FRAMING)
            pos = resume
            continue
        length, first_ms, last_ms, payload_crc = frame
        stop = pos + CHUNK_OVERHEAD + length
        if stop > end:
            yield Damage(pos, end - pos, TRUNCATED)
            return
        payload = data[pos + CHUNK_OVERHEAD:stop]
        if zlib.crc32(payload) != payload_crc:
            yield Damage(pos, stop - pos, CHECKSUM)
        else:
            yield Chunk(pos, first_ms, last_ms, payload)
        pos = stop
