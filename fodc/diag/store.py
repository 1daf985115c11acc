"""The agent's diagnostics directory: one file per artifact, oldest removed beyond a count or byte cap."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from fodc.artifact_names import safe_file_name, safe_name
from fodc.eviction import beyond_caps

log = logging.getLogger(__name__)

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
