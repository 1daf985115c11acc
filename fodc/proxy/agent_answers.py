"""Checks the typed results agents answer commands with before the proxy uses or stores any of it.

An answer is input from the network: one agent sending `"at_ms": "soon"` once made /incidents answer 500
for everyone, and, archived, stopped the proxy from starting. The result message's types rule out such
values on the wire; what is left to check here is their content (plausible times, names safe as file
names, known states, the JSON objects a message carries). Each check is pure: it either returns the answer,
as plain data, with every bad record left out (with the reasons, for the caller to count), or raises
BadAnswer when the answer as a whole is unusable, and that agent alone is then reported as failed.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, TypeGuard

from google.protobuf.message import DecodeError, Message

from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import capture_from_pb, incident_from_pb, ring_profile_from_pb, snapshot_from_pb

MAX_RECORDS = 10_000  # records in one answer (incidents, captures, snapshots)
MAX_TEXT = 256
MAX_FIELD_TEXT = 4096  # any other text of a result record (a summary, an error, a crash file's path)
# Plausible wall-clock times: after 2001 and before a day past now (a skewed clock, not a forged one).
MIN_TIME_MS = 1_000_000_000_000
FUTURE_SLACK_MS = 24 * 3600 * 1000

_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}")
INCIDENT_STATES = ("collecting", "complete", "failed")


class BadAnswer(ValueError):
    """The answer as a whole cannot be used; the agent that sent it is reported as failed. `unreadable`:
    it was not even the result message its request names."""

    def __init__(self, message: str, *, unreadable: bool = False) -> None:
        super().__init__(message)
        self.unreadable = unreadable


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


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    return repr(value)[:60]


def _bounded_texts(value: Any, name: str) -> None:
    """Every text in a result record (fields, list items, map keys and values, nested messages) within
    MAX_FIELD_TEXT; a *_json field is a document with its own bound (_json_object)."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_TEXT:
            raise BadRecord(f"{name} of {len(value)} characters; at most {MAX_FIELD_TEXT}")
    elif isinstance(value, Message):
        for field, inner in value.ListFields():
            if not field.name.endswith("_json"):
                _bounded_texts(inner, field.name)
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _bounded_texts(key, name)
            _bounded_texts(inner, name)
    elif isinstance(value, Sequence):
        for inner in value:
            _bounded_texts(inner, name)


@functools.cache
def _json_fields(message_name: str) -> tuple[str, ...]:
    return tuple(f.name for f in pb.DESCRIPTOR.message_types_by_name[message_name].fields
                 if f.name.endswith("_json"))


def _checked(record: Message, check: Callable[[Any], Any]) -> Any:
    """`check`, then the texts' bound (after it: its counts keep a walk of a huge map from happening). No text
    can be longer than the record's bytes outside its JSON documents, so a small record needs no walk."""
    usable = check(record)
    name = record.DESCRIPTOR.name
    documents = sum(len(getattr(record, field)) for field in _json_fields(name))
    if record.ByteSize() - documents > MAX_FIELD_TEXT:
        _bounded_texts(record, name)
    return usable


def _records(records: Sequence[Message], check: Callable[[Any], Any]) -> Checked:
    if len(records) > MAX_RECORDS:
        raise BadAnswer(f"{len(records)} records; at most {MAX_RECORDS}")
    kept, refused = [], []
    for record in records:
        try:
            kept.append(_checked(record, check))
        except BadRecord as exc:
            refused.append(str(exc))
    return kept, refused


def _single(record: Message, check: Callable[[Any], Any]) -> Checked:
    try:
        return _checked(record, check), []
    except BadRecord as exc:
        raise BadAnswer(str(exc)) from None


MAX_JSON_TEXT = 4 * 1024 * 1024  # one JSON object carried in a result message (an incident's detail, a snapshot)


def _json_object(text: str, name: str) -> dict[str, Any]:
    if len(text) > MAX_JSON_TEXT:
        raise BadRecord(f"{name} of {len(text)} characters; at most {MAX_JSON_TEXT}")
    try:
        value = json.loads(text or "{}")
    except (ValueError, RecursionError) as exc:
        raise BadRecord(f"{name} is not JSON: {str(exc)[:100]}") from None
    if not isinstance(value, dict):
        raise BadRecord(f"{name} must be a JSON object, not {type(value).__name__}")
    return value


def _counted(entries: Sized, name: str, most: int = 256) -> None:
    if len(entries) > most:
        raise BadRecord(f"{name} has more than {most} entries")


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


def _incident_pb(msg: pb.Incident, now_ms: int) -> dict[str, Any]:
    _counted(msg.errors, "errors")
    _counted(msg.files, "files", MAX_RECORDS)
    _counted(msg.ring_profiles, "ring_profiles")
    return check_incident(incident_from_pb(msg, _json_object(msg.detail_json, "detail_json")), now_ms)


def incidents(answer: pb.IncidentList, now_ms: int) -> Checked:
    return _records(answer.incidents, lambda msg: _incident_pb(msg, now_ms))


def captured_incident(answer: pb.Incident, now_ms: int) -> Checked:
    return _single(answer, lambda msg: _incident_pb(msg, now_ms))


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


def _automatic_capture(msg: pb.AutomaticCapture) -> dict:
    _counted(msg.errors, "errors")
    return _capture(capture_from_pb(msg))


def automatic_captures(answer: pb.AutomaticCaptureList, _now_ms: int) -> Checked:
    return _records(answer.captures, _automatic_capture)


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


def _snapshot_pb(msg: pb.ConfigSnapshot) -> dict:
    return _snapshot(snapshot_from_pb(msg, _json_object(msg.content_json, "content_json")))


def config_history(answer: pb.ConfigHistory, _now_ms: int) -> Checked:
    return _records(answer.snapshots, _snapshot_pb)


def config_snapshot(answer: pb.ConfigSnapshot, _now_ms: int) -> Checked:
    return _single(answer, _snapshot_pb)


def _ring_profile(msg: pb.RingProfile) -> dict:
    record = ring_profile_from_pb(msg)
    _text(record, "name", pattern=_FILE_NAME)
    _text(record, "kind")
    return record


def ring_profiles(answer: pb.RingProfileList, _now_ms: int) -> Checked:
    return _records(answer.profiles, _ring_profile)


# request (its Command.body field) -> the result message it answers and that result's check
RESULTS: dict[str, tuple[type[Message], Callable[[Any, int], Checked]]] = {
    "incident_list": (pb.IncidentList, incidents),
    "incident_capture": (pb.Incident, captured_incident),
    "automatic_list": (pb.AutomaticCaptureList, automatic_captures),
    "config_history": (pb.ConfigHistory, config_history),
    "config_snapshot": (pb.ConfigSnapshot, config_snapshot),
    "ring_list": (pb.RingProfileList, ring_profiles),
}


# list request -> its record message and that record's check: fodc.proxy.answer_stream reads a list answer
# record by record as it arrives instead of whole
RECORD_LISTS: dict[str, tuple[type[Message], Callable[[Any, int], Any]]] = {
    "incident_list": (pb.Incident, _incident_pb),
    "automatic_list": (pb.AutomaticCapture, lambda msg, _now_ms: _automatic_capture(msg)),
    "config_history": (pb.ConfigSnapshot, lambda msg, _now_ms: _snapshot_pb(msg)),
    "ring_list": (pb.RingProfile, lambda msg, _now_ms: _ring_profile(msg)),
}
checked_record = _checked  # one record of a list answer, checked as a whole answer's records are


def check_result(request: str, data: bytes, now_ms: int) -> Checked:
    """The result of `request` (a Command.body field) read from its bytes and checked."""
    message_type, check = RESULTS[request]
    try:
        answer = message_type.FromString(data)
    except (DecodeError, RecursionError) as exc:
        raise BadAnswer(f"not a {message_type.DESCRIPTOR.name}: {str(exc)[:100]}", unreadable=True) from None
    return check(answer, now_ms)
