"""Files that are either wholly there or not at all, across crashes and power loss.

A file is written under a temporary name, fsynced, renamed over its final name, and then its directory is
fsynced so the rename itself is durable. Readers therefore never see half a file; a crash leaves at most a
temporary file (`.<name>.<random>.tmp`, so writers of the same file never share one), which the owner may
remove at start. Every file that must survive a crash whole is written through here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o640) -> Iterator[BinaryIO]:
    """A binary file to fill that becomes `path` when the block ends cleanly (fsync, rename, directory
    fsync); an exception in the block or an OSError leaves `path` as it was and no temporary file behind."""
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as sink:
            os.fchmod(sink.fileno(), mode)
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def commit(temp: Path, path: Path) -> None:
    """Makes a file another writer filled at `temp` (in `path`'s directory: a profile fetched straight to
    disk) become `path` durably: fsync, rename, directory fsync."""
    fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_directory(path.parent)


def write_atomically(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Writes `path` whole or not at all; OSError leaves the old file (if any) untouched."""
    with atomic_file(path, mode) as sink:
        sink.write(data)
