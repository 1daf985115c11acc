"""--node-crash-dir watched: each new crash artifact the node writes there is a `node-crash` incident.

Polled every --incident-check-interval. An entry (a file, or a directory of files) counts once it looks the
same on two looks in a row (the node has finished writing it). Its files are read within --node-crash-max-bytes
in all (at most MAX_FILES, no symlinks followed), parsed (fodc.incident.artifact) and put into the bundle under
`crash-artifact/`. Entries already handled are remembered in `.crash-dir-seen.json` beside the bundles, so an
agent restart does not report them again; on the very first look, what is already there is taken as old.
The same crash again (one signature) within --incident-cooldown is counted, not bundled again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fodc.agent.crashes import Evidence, crash_detail, headline, open_regular
from fodc.agent.incidents import IncidentRecorder
from fodc.durablefile import write_atomically
from fodc.incident.artifact import read_artifact
from fodc.periodic import Periodic

log = logging.getLogger(__name__)

SEEN_FILE = ".crash-dir-seen.json"
MAX_ENTRIES = 1000  # entries looked at per round (newest first); the rest wait
MAX_FILES = 64  # files read from one artifact directory
MAX_SEEN = 2000


class CrashDirWatch(Periodic):
    thread_name = "crash-dir"

    def __init__(self, recorder: IncidentRecorder, directory: str, *, state_dir: Path, max_bytes: int,
                 interval_s: float, cooldown_s: float, on_progress: Callable[[], None] = lambda: None) -> None:
        self.recorder = recorder
        self.directory = Path(directory)
        self.state_path = state_dir / SEEN_FILE
        self.max_bytes = max_bytes
        self.cooldown_s = cooldown_s
        self._pending: dict[str, tuple] = {}  # entry name -> its look last round
        self._signatures: dict[str, float] = {}  # signature -> monotonic time of its last incident
        self._seen, first_run = self._load()
        self._baseline = first_run
        self.repeats = 0
        self.unreadable = 0
        super().__init__(interval_s, on_progress)

    def _load(self) -> tuple[dict[str, None], bool]:
        try:
            names = json.loads(self.state_path.read_text())
            return dict.fromkeys(str(n) for n in names[-MAX_SEEN:]), False
        except FileNotFoundError:
            return {}, True
        except (OSError, ValueError, TypeError) as exc:
            log.warning("cannot read the crash directory state; starting afresh", extra={"fields": {
                "path": str(self.state_path), "reason": str(exc)}})
            return {}, True

    def _save(self) -> None:
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.state_path, json.dumps(list(self._seen)[-MAX_SEEN:]).encode())
        except OSError as exc:
            log.warning("cannot save the crash directory state", extra={"fields": {"reason": str(exc)}})

    def _mark(self, name: str) -> None:
        self._seen[name] = None
        while len(self._seen) > MAX_SEEN:
            self._seen.pop(next(iter(self._seen)))

    def run_round(self) -> None:
        self.check()

    def check(self) -> list[dict[str, Any]]:
        """One look; returns the incidents it started."""
        try:
            entries = sorted(self.directory.iterdir(), key=_mtime, reverse=True)[:MAX_ENTRIES]
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot list the crash directory", extra={"fields": {"path": str(self.directory),
                                                                             "reason": str(exc)}})
            return []
        entries = [e for e in entries if not e.name.startswith(".") and e.name not in self._seen
                   and not e.is_symlink()  # a link could point anywhere on the host
                   and (e.is_file() or e.is_dir())]  # a FIFO or a socket is no artifact
        if self._baseline:  # first look ever: what is there is from before this agent
            for entry in entries:
                self._mark(entry.name)
            self._baseline = False
            self._save()
            return []
        started = []
        for entry in entries:
            look = _look(entry)
            if self._pending.get(entry.name) != look:  # new, or still being written
                self._pending[entry.name] = look
                continue
            self._pending.pop(entry.name, None)
            self._mark(entry.name)
            try:
                incident = self._report(entry)
            except Exception as exc:  # one artifact the agent cannot handle costs that artifact only
                self.unreadable += 1
                log.error("cannot make an incident of a crash artifact", extra={"fields": {
                    "artifact": entry.name, "reason": f"{type(exc).__name__}: {exc}"}})
                continue
            if incident is not None:
                started.append(incident)
        self._pending = {name: look for name, look in self._pending.items() if name not in self._seen}
        if started or entries:
            self._save()
        return started

    def _report(self, entry: Path) -> dict[str, Any] | None:
        files, truncated = self._read(entry)
        report, breadcrumbs = read_artifact(files)
        signature = report.signature
        now = time.monotonic()
        last = self._signatures.get(signature)
        if last is not None and now - last < self.cooldown_s:
            self.repeats += 1
            log.info("crash artifact repeats a recent crash; not bundled again", extra={"fields": {
                "artifact": entry.name, "signature": signature}})
            return None
        self._signatures = {sig: at for sig, at in self._signatures.items() if now - at < self.cooldown_s}
        self._signatures[signature] = now
        digest = hashlib.sha256(b"".join(name.encode() + data for name, data in sorted(files.items()))).hexdigest()
        crash = crash_detail(report, f"crash-dir:{entry.name}", digest)
        detail = {"crash": crash, "artifact": entry.name, "artifact_files": sorted(files),
                  "artifact_bytes": sum(len(d) for d in files.values()), "artifact_truncated": truncated}
        out = {f"crash-artifact/{name}": data for name, data in files.items()}
        out["crash.json"] = json.dumps({**report.to_json(), "source": crash["source"], "sha256": digest,
                                        "breadcrumbs": breadcrumbs}, indent=2, default=str).encode()
        out["crash.txt"] = report.raw.encode(errors="replace")
        evidence = Evidence("node-crash", headline(report.kind, report.message), detail, out)
        return self.recorder.trigger("node-crash", {}, evidence=evidence, node_up=False, force=True)

    def _read(self, entry: Path) -> tuple[dict[str, bytes], bool]:
        """The artifact's files (relative names), within the byte cap; whether anything was left out."""
        paths = [entry] if not entry.is_dir() else sorted(  # JSON first: small, and says the most
            (p for p in itertools.islice(entry.rglob("*"), MAX_FILES * 4) if p.is_file() and not p.is_symlink()),
            key=lambda p: (p.suffix != ".json", str(p)))
        truncated = len(paths) > MAX_FILES
        budget = self.max_bytes
        files: dict[str, bytes] = {}
        for path in paths[:MAX_FILES]:
            if path.is_symlink():
                continue
            name = path.name if path == entry else str(path.relative_to(entry))
            try:
                with open_regular(path) as f:
                    data = f.read(budget + 1)
            except OSError as exc:
                self.unreadable += 1
                files[f"{name}.unreadable"] = f"{exc.strerror or exc}\n".encode()
                continue
            if len(data) > budget:
                data, truncated = data[:budget], True
            files[name] = data
            budget -= len(data)
            if budget <= 0:
                truncated = truncated or path != paths[min(len(paths), MAX_FILES) - 1]
                break
        return files, truncated


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _look(entry: Path) -> tuple:
    """What an entry looks like now: its files' sizes and times (a directory's, bounded)."""
    try:
        if not entry.is_dir():
            stat = entry.lstat()
            return (stat.st_size, stat.st_mtime_ns)
        return tuple(sorted((str(p), p.lstat().st_size, p.lstat().st_mtime_ns)
                            for p in itertools.islice(entry.rglob("*"), MAX_FILES * 4)))
    except OSError:
        return ()
