"""The profile ring: the node's recent periodic CPU and heap profiles, kept on disk so the minutes *before*
a first occurrence have profiles too (on-demand and incident profiles are all taken after it).

One file per profile, `<taken unix ms>-<kind>[-<seconds>s].pb.gz`, gzipped, written atomically (temp file,
fsync, rename, directory fsync, as the window's files), oldest removed first beyond a byte cap. The ring is
read back from its directory at start, so it survives agent restarts; files of other names are not its own
and are left alone. No clocks or threads here: the capture loop passes the time in.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from fodc.artifact_names import RING_KINDS, parse_ring_name, ring_entry_name
from fodc.durablefile import TEMP_PREFIX, TEMP_SUFFIX, commit, write_atomically
from fodc.eviction import beyond_caps
from fodc.times import rfc3339

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class RingEntry:
    name: str
    kind: str
    taken_ms: int  # when the capture started (a CPU profile covers `seconds` from then)
    seconds: int  # 0 for heap
    size: int

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "taken": rfc3339(self.taken_ms), "taken_ms": self.taken_ms,
                "seconds": self.seconds, "size": self.size}


class ProfileRing:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: list[RingEntry] = []  # oldest first
        self.writes = 0
        self.bytes_written = 0
        self.evicted = 0

    def load(self) -> int:
        """Lists what an earlier run kept and removes its half-written temp files; returns how many."""
        self.directory.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.directory.iterdir():
            if path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            parsed = parse_ring_name(path.name)
            if parsed is None or not path.is_file():
                continue
            kind, taken_ms, seconds = parsed
            found.append(RingEntry(path.name, kind, taken_ms, seconds, path.stat().st_size))
        with self._lock:
            self._entries = sorted(found, key=lambda e: (e.taken_ms, e.name))
        self._evict()
        return len(self._entries)

    def add(self, kind: str, taken_ms: int, seconds: int, data: bytes) -> RingEntry:
        """Keeps one profile (gzipped if it is not yet), then removes the oldest beyond the byte cap.
        OSError when it cannot be written; ValueError when it alone exceeds the cap."""
        if kind not in RING_KINDS:
            raise ValueError(f"the ring keeps {', '.join(RING_KINDS)} profiles, not {kind!r}")
        if data[:2] != _GZIP_MAGIC:
            data = gzip.compress(data, compresslevel=6)
        if len(data) > self.max_bytes:
            raise ValueError(f"a {len(data)}-byte profile does not fit --profile-ring-bytes {self.max_bytes}")
        entry = RingEntry(ring_entry_name(kind, taken_ms, seconds), kind, taken_ms, seconds, len(data))
        write_atomically(self.directory / entry.name, data)
        with self._lock:
            self._entries = [e for e in self._entries if e.name != entry.name] + [entry]
            self._entries.sort(key=lambda e: (e.taken_ms, e.name))
            self.writes += 1
            self.bytes_written += len(data)
        self._evict()
        return entry

    def adopt(self, kind: str, taken_ms: int, seconds: int, path: Path) -> RingEntry:
        """Keeps the profile already written at `path` (in the ring's directory, e.g. by the fetch itself):
        fsynced and renamed into place, so the bytes are written to disk once. Other files are read and
        kept through `add`. `path` is gone afterwards either way."""
        try:
            with open(path, "rb") as f:
                gzipped = f.read(2) == _GZIP_MAGIC
            if not gzipped or path.parent != self.directory:
                return self.add(kind, taken_ms, seconds, path.read_bytes())
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ValueError(f"a {size}-byte profile does not fit --profile-ring-bytes {self.max_bytes}")
            entry = RingEntry(ring_entry_name(kind, taken_ms, seconds), kind, taken_ms, seconds, size)
            commit(path, self.directory / entry.name)
        finally:
            path.unlink(missing_ok=True)
        with self._lock:
            self._entries = [e for e in self._entries if e.name != entry.name] + [entry]
            self._entries.sort(key=lambda e: (e.taken_ms, e.name))
            self.writes += 1
            self.bytes_written += size
        self._evict()
        return entry

    def temp_path(self, kind: str) -> Path:
        """Where a fetch may write a profile that `adopt` then keeps (a temp name load() cleans up)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"{TEMP_PREFIX}{kind}-fetch{TEMP_SUFFIX}"

    def _evict(self) -> None:
        with self._lock:
            doomed = beyond_caps(self._entries, lambda entry: entry.size, max_bytes=self.max_bytes)
            del self._entries[:len(doomed)]
            self.evicted += len(doomed)
            for oldest in doomed:
                try:
                    (self.directory / oldest.name).unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("cannot remove an old ring profile", extra={"fields": {
                        "name": oldest.name, "reason": str(exc)}})

    def entries(self, since_ms: int | None = None) -> list[RingEntry]:
        """Oldest first; with `since_ms`, only profiles taken at or after it."""
        with self._lock:
            return [e for e in self._entries if since_ms is None or e.taken_ms >= since_ms]

    def path(self, name: str) -> Path | None:
        """The file of ring entry `name`, or None (any name that is not one of the ring's is refused)."""
        with self._lock:
            known = any(e.name == name for e in self._entries)
        return self.directory / name if known and parse_ring_name(name) else None

    def before(self, at_ms: int, window_start_ms: int, max_count: int = 16) -> list[RingEntry]:
        """What an incident at `at_ms` keeps: the latest CPU and heap profile taken before it, and every
        profile taken within [window_start_ms, at_ms]; the newest `max_count` of those, oldest first."""
        earlier = [e for e in self.entries() if e.taken_ms <= at_ms]
        chosen = {e.name: e for e in earlier if e.taken_ms >= window_start_ms}
        for kind in RING_KINDS:
            latest = [e for e in earlier if e.kind == kind]
            if latest:
                chosen[latest[-1].name] = latest[-1]
        return sorted(chosen.values(), key=lambda e: (e.taken_ms, e.name))[-max_count:]

    def usage(self) -> tuple[int, int]:
        """(profiles, bytes) kept now."""
        with self._lock:
            return len(self._entries), sum(e.size for e in self._entries)
