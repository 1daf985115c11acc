"""Where each receiver's sending stands, kept on disk (--remote-write-state-file) so a restart resumes there.

One JSON file for all receivers, written whole through fodc.durablefile (never half a file). A crash between
two writes sends the last few seconds again, which receivers take as the same samples. The file is read as
hostile input: bounded in size and count, and a damaged file costs its own contents only (sending starts
afresh from now, with a warning), never the agent.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fodc.durablefile import write_atomically
from fodc.remotewrite.plan import Stream

log = logging.getLogger(__name__)

VERSION = 1
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_SOURCES = 1024
MAX_BACKFILLS = 16


@dataclass
class Backfill:
    """An incident's window still to be sent at full resolution."""

    incident: str
    stream: Stream


@dataclass
class ReceiverState:
    regular: Stream
    backfills: list[Backfill] = field(default_factory=list)


class StateError(ValueError):
    pass


def _stream(data: object) -> Stream:
    if not isinstance(data, dict):
        raise StateError("a stream is not an object")
    origin, end = data.get("origin_ms"), data.get("end_ms")
    if type(origin) is not int:
        raise StateError("a stream's origin_ms is not an integer")
    if end is not None and type(end) is not int:
        raise StateError("a stream's end_ms is not an integer")
    return Stream(origin, _times(data.get("cursors", {})), end, _times(data.get("last", {})))


def _times(data: object) -> dict[str, int]:
    """Per-source timestamps: a bounded object of source -> integer."""
    if not isinstance(data, dict) or len(data) > MAX_SOURCES:
        raise StateError("per-source times are not an object or too many")
    if not all(isinstance(k, str) and len(k) <= 4096 and type(v) is int for k, v in data.items()):
        raise StateError("a per-source time is malformed")
    return dict(data)


def _stream_json(stream: Stream) -> dict[str, object]:
    return {"origin_ms": stream.origin_ms, "cursors": stream.cursors, "last": stream.last, "end_ms": stream.end_ms}


def parse(text: bytes) -> dict[str, ReceiverState]:
    """The receivers' states from the file's bytes; StateError when they are not a state file of ours."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StateError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("receivers"), dict):
        raise StateError(f"not a version {VERSION} remote-write state file")
    out: dict[str, ReceiverState] = {}
    for key, entry in data["receivers"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("backfills", []), list):
            raise StateError(f"receiver {key[:100]!r} is malformed")
        backfills = []
        for item in entry.get("backfills", [])[:MAX_BACKFILLS]:
            if not isinstance(item, dict) or not isinstance(item.get("incident"), str):
                raise StateError("a backfill is malformed")
            stream = _stream(item.get("stream"))
            if stream.end_ms is None:
                raise StateError("a backfill has no end")
            backfills.append(Backfill(item["incident"][:200], stream))
        out[key] = ReceiverState(_stream(entry.get("regular")), backfills)
    return out


def render(receivers: dict[str, ReceiverState]) -> bytes:
    return json.dumps({"version": VERSION, "receivers": {
        key: {"regular": _stream_json(state.regular),
              "backfills": [{"incident": b.incident, "stream": _stream_json(b.stream)} for b in state.backfills]}
        for key, state in receivers.items()}}, separators=(",", ":")).encode()


class StateFile:
    """The receivers' states and their file (None: memory only). Thread-safe; save() writes when asked to."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.lock = threading.Lock()
        self.receivers: dict[str, ReceiverState] = {}
        self.last_error = ""
        self.writes = 0
        if self.path is not None:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        try:
            with open(path, "rb") as f:
                text = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.last_error = f"cannot read {path}: {exc.strerror or exc}"
            log.warning("remote-write state unreadable; sending starts from now", extra={"fields": {
                "reason": self.last_error}})
            return
        try:
            if len(text) > MAX_FILE_BYTES:
                raise StateError(f"larger than {MAX_FILE_BYTES} bytes")
            self.receivers = parse(text)
        except StateError as exc:
            self.last_error = f"{path}: {exc}"
            log.warning("remote-write state damaged; sending starts from now", extra={"fields": {
                "reason": self.last_error}})

    def receiver(self, key: str, now_ms: int) -> ReceiverState:
        """The state of receiver `key`; a new receiver starts at `now_ms` (the window before it is not sent)."""
        with self.lock:
            state = self.receivers.get(key)
            if state is None:
                state = self.receivers[key] = ReceiverState(Stream(now_ms))
            return state

    def save(self, keep: set[str] | None = None) -> bool:
        """Writes every receiver's state (only those in `keep`, if given: receivers no longer configured are
        forgotten). False, with last_error set, if the file cannot be written; the state in memory goes on."""
        with self.lock:
            if keep is not None:
                self.receivers = {k: v for k, v in self.receivers.items() if k in keep}
            data = render(self.receivers)
        if self.path is None:
            return True
        try:
            write_atomically(self.path, data)
        except OSError as exc:
            if not self.last_error:
                log.warning("cannot write the remote-write state; a restart would send again from the last "
                            "state written", extra={"fields": {"path": str(self.path), "reason": str(exc)}})
            self.last_error = f"cannot write {self.path}: {exc.strerror or exc}"
            return False
        self.last_error = ""
        self.writes += 1
        return True
