"""The window directory: which files are the window's, in which order, and reading one back with its damage.

Archive files are named window-<sequence>-<UTC creation time>.archive; the sequence orders them (a clock that
went back cannot reorder them) and the time helps an operator pick files. The interim file is window.interim;
it is replaced whole through a temporary file beside it (fodc.durablefile). Files with other names are not
the window's: they are never read, counted or removed. Used by the agent's store and recovery, and by
`fodc dump` on a copied directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fodc.times import compact_utc
from fodc.window.diskformat import (
    KIND_ARCHIVE,
    KIND_INTERIM,
    Chunk,
    Damage,
    FormatError,
    parse_header,
    scan_chunks,
)

ARCHIVE = "archive"
INTERIM = "interim"
INTERIM_NAME = "window.interim"
TEMP_SUFFIX = ".tmp"
_ARCHIVE_NAME = re.compile(r"window-(\d{8,12})-\d{8}T\d{6}Z\.archive")
_KINDS = {ARCHIVE: KIND_ARCHIVE, INTERIM: KIND_INTERIM}


def archive_name(seq: int, created_ms: int) -> str:
    return f"window-{seq:08d}-{compact_utc(created_ms)}.archive"


@dataclass(frozen=True, slots=True)
class WindowFile:
    path: Path
    kind: str  # ARCHIVE or INTERIM
    seq: int  # archives in write order; the interim file sorts after all of them
    size: int


@dataclass(frozen=True, slots=True)
class FileContents:
    file: WindowFile
    chunks: list[Chunk]
    damage: list[Damage]
    error: str | None = None  # why nothing of the file could be read


def list_window_files(directory: Path) -> list[WindowFile]:
    """The window's files in `directory`, oldest archive first, the interim file last. Raises OSError if the
    directory cannot be listed."""
    found = []
    for entry in directory.iterdir():
        if entry.name == INTERIM_NAME:
            kind, seq = INTERIM, 1 << 62
        else:
            match = _ARCHIVE_NAME.fullmatch(entry.name)
            if match is None:
                continue
            kind, seq = ARCHIVE, int(match.group(1))
        try:
            stat = entry.stat()
        except FileNotFoundError:  # removed meanwhile (rotation on a live directory)
            continue
        if entry.is_file():
            found.append(WindowFile(entry, kind, seq, stat.st_size))
    return sorted(found, key=lambda f: (f.seq, f.path.name))


def read_window_file(file: WindowFile) -> FileContents:
    """Every intact chunk of `file` and every damaged stretch; `error` instead when the file as a whole is
    unreadable (not a window file, another format version, a damaged header, an I/O error)."""
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        return FileContents(file, [], [], f"cannot read: {exc.strerror or exc}")
    try:
        header = parse_header(data)
    except FormatError as exc:
        return FileContents(file, [], [], str(exc))
    if header.kind != _KINDS[file.kind]:
        return FileContents(file, [], [], f"holds kind {chr(header.kind)!r}, not what its name says ({file.kind})")
    chunks: list[Chunk] = []
    damage: list[Damage] = []
    for item in scan_chunks(data):
        if isinstance(item, Chunk):
            chunks.append(item)
        else:
            damage.append(item)
    return FileContents(file, chunks, damage)
