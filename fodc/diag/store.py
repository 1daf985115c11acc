"""The agent's diagnostics directory: one file per artifact, oldest removed beyond a count or byte cap."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """`text` as a file name on any filesystem: every run of other characters becomes one underscore."""
    return _UNSAFE.sub("_", text)


class ArtifactStore:
    def __init__(self, directory: Path, *, keep: int, max_bytes: int) -> None:
        self.directory = directory
        self.keep = keep
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def new_path(self, stamp: str, action: str, command_id: str, suffix: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / safe_name(f"{stamp}-{action}-{command_id}{suffix}")

    def prune(self) -> list[Path]:
        """Removes the oldest artifacts until both caps hold; returns what was removed."""
        with self._lock:
            try:
                files = sorted((p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")),
                               key=lambda p: (p.stat().st_mtime, p.name))
            except FileNotFoundError:
                return []
            sizes = {p: p.stat().st_size for p in files}
            total = sum(sizes.values())
            removed = []
            while files and (len(files) > self.keep or total > self.max_bytes):
                oldest = files.pop(0)
                total -= sizes[oldest]
                try:
                    os.unlink(oldest)
                    removed.append(oldest)
                except OSError as exc:
                    log.warning("cannot remove an old diagnostics artifact", extra={"fields": {
                        "path": str(oldest), "reason": str(exc)}})
            return removed

    def usage(self) -> tuple[int, int]:
        """(files, bytes) currently kept."""
        try:
            files = [p for p in self.directory.iterdir() if p.is_file()]
        except FileNotFoundError:
            return 0, 0
        return len(files), sum(p.stat().st_size for p in files)
