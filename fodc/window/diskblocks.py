"""Sealed blocks the recorder leaves on disk: where a block's bytes lie in an archive file, read when asked.

With --window-dir, a sealed block, once appended and fsynced, is already on disk; holding its bytes in memory as
well would double what the window costs (the sealed blocks are most of it). So the recorder swaps the bytes for
a DiskBlock — file, offset, length and checksum — and a query reads the block back with pread(2), checks the
checksum and decodes it like a block held in memory. The page cache keeps recently read blocks; they are not
the agent's memory.

Each archive file is held open read-only by the DiskBlocks in it (BlockFile, closed when the last of them is
evicted): a file removed under the agent (the directory cap, an `rm -rf`) stays readable until then, so the
window returns exactly what it would have with the bytes in memory, and the blocks can be written again into
a new file. A block whose bytes cannot be read back or no longer match their checksum costs only that block:
it is skipped with an error, logged once, and counted.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from pathlib import Path

from fodc.window.codec import CodecError


class BlockUnreadable(CodecError):
    """A block on disk that cannot be read back intact; `first` is True only for its first failure."""

    def __init__(self, message: str, first: bool) -> None:
        super().__init__(message)
        self.first = first


class BlockFile:
    """A read-only descriptor of one archive file, shared by the blocks in it; closed with the last of them."""

    __slots__ = ("fd", "name")

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self.fd)


class DiskBlock:
    """One sealed block's payload in an archive file. `damage` says why it can no longer be read ('' if fine)."""

    __slots__ = ("file", "offset", "length", "crc", "damage")

    def __init__(self, file: BlockFile, offset: int, length: int, crc: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length
        self.crc = crc
        self.damage = ""

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        """The block's bytes, checked against the checksum they were written with; BlockUnreadable if not."""
        if self.damage:
            raise BlockUnreadable(self.damage, first=False)
        try:
            data = os.pread(self.file.fd, self.length, self.offset)
        except OSError as exc:
            data, why = b"", f"read failed: {exc.strerror or exc}"
        else:
            why = (f"short read ({len(data)} of {self.length} bytes)" if len(data) != self.length
                   else "checksum mismatch" if zlib.crc32(data) != self.crc else "")
        if why:
            self.damage = f"block at byte {self.offset} of {self.file.name}: {why}"
            raise BlockUnreadable(self.damage, first=True)
        return data


def block_bytes(held: bytes | DiskBlock) -> bytes:
    """The payload of a sealed block, whether held in memory or on disk (BlockUnreadable if unreadable)."""
    return held if isinstance(held, bytes) else held.read()
