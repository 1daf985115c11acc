"""Files that are either wholly there or not at all, across crashes and power loss.

A file is written under a temporary name, fsynced, renamed over its final name, and then its directory is
fsynced so the rename itself is durable. Readers therefore never see half a file; a crash leaves at most a
temporary file, which the owner removes at start.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

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


def write_atomically(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Writes `path` through `.<name>.tmp` beside it; OSError leaves the old file (if any) untouched."""
    temp = path.with_name(f"{TEMP_PREFIX}{path.name}{TEMP_SUFFIX}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
