"""Snapshots as plain JSON-able dicts: a content hash, and a small bounded history per node.

The hash covers what the node runs with (argv, flags, environment, files, binary, version, the agent's own
settings), not when or why it was captured, so a periodic capture of an unchanged node adds no entry; it
only moves `confirmed_at` forward. A restart adds an entry even when nothing changed, because "the node
restarted at 03:12" is itself what an operator looks for after an incident. With a file, the history
outlives the agent: a node restarted with other flags while its agent (or host) was down still shows as a
change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

from fodc.durablefile import write_atomically
from fodc.times import rfc3339

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]

HASHED_FIELDS = ("argv", "flags", "positional", "env", "files", "binary", "version", "agent")


def content_hash(snapshot: Snapshot) -> str:
    canonical = json.dumps({k: snapshot.get(k) for k in HASHED_FIELDS}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def stamp(snapshot: Snapshot, now_ms: int) -> Snapshot:
    """Adds capture time and content hash (in place; returns the snapshot)."""
    snapshot["captured_at_ms"] = snapshot["confirmed_at_ms"] = now_ms
    snapshot["captured_at"] = snapshot["confirmed_at"] = rfc3339(now_ms)
    snapshot["captures"] = 1
    snapshot["hash"] = content_hash(snapshot)
    return snapshot


def process_identity(snapshot: Snapshot) -> tuple[Any, Any]:
    process = snapshot.get("process") or {}
    return process.get("pid"), process.get("start_time_ms")


class ConfigHistory:
    """The last `max_entries` distinct snapshots of one node, oldest first. Not thread-safe: one owner."""

    def __init__(self, max_entries: int = 16, path: Path | None = None) -> None:
        self._entries: deque[Snapshot] = deque(maxlen=max(2, max_entries))
        self.path = path  # where the entries are kept across restarts; None: memory only

    def load(self) -> int:
        """Reads the entries an earlier run kept; an unreadable file is logged and left for a person to see."""
        if self.path is None:
            return 0
        try:
            entries = json.loads(self.path.read_text())
            if not isinstance(entries, list) or not all(isinstance(e, dict) and "hash" in e for e in entries):
                raise ValueError("not a list of snapshots")
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("cannot read the configuration history; starting a new one", extra={"fields": {
                "path": str(self.path), "reason": str(exc)}})
            return 0
        self._entries.extend(entries)
        return len(self._entries)

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(list(self._entries)).encode())
        except OSError as exc:  # the history is still kept in memory
            log.warning("cannot write the configuration history", extra={"fields": {
                "path": str(self.path), "reason": str(exc)}})

    def add(self, snapshot: Snapshot) -> bool:
        """Records a capture; True when it is a new entry, False when it only confirmed the latest one."""
        latest = self._entries[-1] if self._entries else None
        if (latest is not None and latest["hash"] == snapshot["hash"]
                and process_identity(latest) == process_identity(snapshot)
                and latest.get("errors") == snapshot.get("errors")):
            latest["confirmed_at_ms"] = snapshot["captured_at_ms"]
            latest["confirmed_at"] = snapshot["captured_at"]
            latest["captures"] += 1
            return False
        self._entries.append(snapshot)
        self._save()
        return True

    def latest(self) -> Snapshot | None:
        return copy.deepcopy(self._entries[-1]) if self._entries else None

    def entries(self, limit: int | None = None) -> list[Snapshot]:
        """Newest last; the last `limit` entries when given."""
        items = list(self._entries)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return copy.deepcopy(items)

    def __len__(self) -> int:
        return len(self._entries)
