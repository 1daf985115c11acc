"""Disks a test can fill: small tmpfs mounts (root only) and a filler that writes until ENOSPC."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


def mount_tmpfs(path: Path, size: str) -> Path:
    """A fresh tmpfs of `size` (e.g. "1m") at `path`; undo with unmount()."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    return path


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(path: Path) -> Path:
    """Writes zeros under `path` until the filesystem says ENOSPC; returns the filler (unlink it to free)."""
    filler = path / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            while True:
                try:
                    if os.write(fd, b"\0" * size) < size:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler
