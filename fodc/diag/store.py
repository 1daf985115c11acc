"""The agent's diagnostics directory: one file per artifact, oldest removed beyond a count or byte cap."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

from fodc.eviction import beyond_caps

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """`text` as a file name on any filesystem: every run of other characters becomes one underscore."""
    return _UNSAFE.sub("_", text)


MAX_NAME_BYTES = 200  # below NAME_MAX (255) with room for a temporary file's prefix and suffix


def safe_file_name(text: str, suffix: str = "") -> str:
    """safe_name(text) + suffix, at most MAX_NAME_BYTES: a long text (a 201-character node id) is cut and
    carries a digest of the whole text, so two long texts never share a file and open() never fails on it."""
    name = safe_name(text)
    if len(name) + len(suffix) > MAX_NAME_BYTES:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        name = f"{name[:MAX_NAME_BYTES - len(suffix) - 17]}-{digest}"
    return name + suffix


class ArtifactStore:
    def __init__(self, directory: Path, *, keep: int, max_bytes: int) -> None:
        self.directory = directory
        self.keep = keep
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def new_path(self, stamp: str, action: str, command_id: str, suffix: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / safe_file_name(f"{stamp}-{action}-{command_id}", safe_name(suffix))

    def prune(self) -> list[Path]:
        """Removes the oldest artifacts until both caps hold; returns what was removed."""
        with self._lock:
            try:
                files = sorted((p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")),
                               key=lambda p: (p.stat().st_mtime, p.name))
            except FileNotFoundError:
                return []
            sizes = {p: p.stat().st_size for p in files}
            removed = []
            for oldest in beyond_caps(files, sizes.__getitem__, max_count=self.keep, max_bytes=self.max_bytes):
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
