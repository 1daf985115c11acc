"""Checks the JSON answers agents send to command actions before the proxy uses or stores any of it.

An answer is input from the network: one agent sending `"at_ms": "soon"` once made /incidents answer 500
for everyone, and, archived, stopped the proxy from starting. Each check here is pure: it either returns the
answer with every bad record left out (with the reasons, for the caller to count), or raises BadAnswer when
the answer as a whole is unusable, and that agent alone is then reported as failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MAX_RECORDS = 10_000  # records in one answer (incidents, captures, snapshots)
MAX_TEXT = 256
# Plausible wall-clock times: after 2001 and before a day past now (a skewed clock, not a forged one).
MIN_TIME_MS = 1_000_000_000_000
FUTURE_SLACK_MS = 24 * 3600 * 1000

_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}")
INCIDENT_STATES = ("collecting", "complete", "failed")


class BadAnswer(ValueError):
    """The answer as a whole cannot be used; the agent that sent it is reported as failed."""


class BadRecord(ValueError):
    """One record of an answer is refused; the rest of the answer is used."""


Checked = tuple[Any, list[str]]  # (the usable answer, why each left-out record was refused)


def _text(record: dict, key: str, *, required: bool = True, pattern: re.Pattern[str] | None = None) -> None:
    if key not in record and not required:
        return
    value = record.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise BadRecord(f"{key} must be a text of 1 to {MAX_TEXT} characters, not {_show(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadRecord(f"{key} {_show(value)} has characters that are not allowed")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    return repr(value)[:60]


def _records(payload: Any, check: Callable[[Any], Any]) -> Checked:
    if not isinstance(payload, list):
        raise BadAnswer(f"expected a list of records, got {type(payload).__name__}")
    if len(payload) > MAX_RECORDS:
        raise BadAnswer(f"{len(payload)} records; at most {MAX_RECORDS}")
    kept, refused = [], []
    for record in payload:
        try:
            if not isinstance(record, dict):
                raise BadRecord(f"a record must be an object, not {type(record).__name__}")
            kept.append(check(record))
        except BadRecord as exc:
            refused.append(str(exc))
    return kept, refused


def check_incident(record: Any, now_ms: int) -> dict[str, Any]:
    """One incident summary, as listed by an agent or read back from the proxy's archive."""
    if not isinstance(record, dict):
        raise BadRecord(f"an incident must be an object, not {type(record).__name__}")
    _text(record, "id", pattern=_RECORD_ID)
    _text(record, "trigger")
    _text(record, "at", required=False)
    at_ms = record.get("at_ms")
    if not _integer(at_ms) or not MIN_TIME_MS <= at_ms <= now_ms + FUTURE_SLACK_MS:
        raise BadRecord(f"at_ms must be a plausible time in milliseconds, not {_show(at_ms)}")
    if record.get("state") not in INCIDENT_STATES:
        raise BadRecord(f"state must be one of {', '.join(INCIDENT_STATES)}, not {_show(record.get('state'))}")
    if "size" in record and (not _integer(record["size"]) or record["size"] < 0):
        raise BadRecord(f"size must be a count of bytes, not {_show(record['size'])}")
    if "file" in record:
        _text(record, "file", pattern=_FILE_NAME)
    return record


def incidents(payload: Any, now_ms: int) -> Checked:
    return _records(payload, lambda record: check_incident(record, now_ms))


def _capture(record: dict) -> dict:
    _text(record, "time")
    files = record.get("files")
    if not isinstance(files, list) or len(files) > 64:
        raise BadRecord(f"files must be a list of at most 64 files, not {_show(files)}")
    for file in files:
        if not isinstance(file, dict):
            raise BadRecord("a file entry must be an object")
        _text(file, "file", pattern=_FILE_NAME)
    return record


def automatic_captures(payload: Any, _now_ms: int) -> Checked:
    return _records(payload, _capture)


_SECTIONS = ("flags", "env", "agent", "files", "errors")


def _snapshot(record: dict) -> dict:
    _text(record, "hash")
    _text(record, "captured_at")
    _text(record, "confirmed_at")
    for section in _SECTIONS:
        if record.get(section) is not None and not isinstance(record[section], dict):
            raise BadRecord(f"{section} must be an object, not {type(record[section]).__name__}")
    for path, info in (record.get("files") or {}).items():
        if not isinstance(info, dict):
            raise BadRecord(f"files[{path[:60]!r}] must be an object")
    return record


def config_history(payload: Any, _now_ms: int) -> Checked:
    return _records(payload, _snapshot)


def config_snapshot(payload: Any, _now_ms: int) -> Checked:
    if not isinstance(payload, dict):
        raise BadAnswer(f"expected a configuration snapshot, got {type(payload).__name__}")
    try:
        return _snapshot(payload), []
    except BadRecord as exc:
        raise BadAnswer(str(exc)) from None


# action -> its check; an action without one is passed through as decoded.
CHECKS: dict[str, Callable[[Any, int], Checked]] = {
    "incidents.list": incidents,
    "diagnostics.auto": automatic_captures,
    "config.history": config_history,
    "config.snapshot": config_snapshot,
}
