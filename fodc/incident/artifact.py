"""A crash artifact a node wrote into its crash directory, read as a crash report.

BanyanDB (and other Go services) can write one JSON file or one directory per crash: `panic.json` with
`message`, `stack` (a Go stack as `debug.Stack()` prints it, or a list of lines), `breadcrumbs` (what it did
last), maybe a `time`, next to text files such as the goroutine dump. This module turns the artifact's files
(names and bytes, already read and capped by the caller) into a CrashReport: the JSON's fields when there is
one, else the last Go crash report in its text files, else the raw text with kind `unknown`. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from fodc.incident import gocrash

MESSAGE_KEYS = ("message", "msg", "panic", "error", "err", "reason")
STACK_KEYS = ("stack", "stacktrace", "stack_trace", "trace", "goroutine")
KIND_KEYS = ("kind", "type", "level")
MAX_BREADCRUMBS = 50


def _first(doc: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((doc[k] for k in keys if k in doc and doc[k] not in (None, "")), None)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _from_json(doc: dict[str, Any]) -> tuple[gocrash.CrashReport, list[Any]]:
    message = _text(_first(doc, MESSAGE_KEYS) or "")
    stack = _text(_first(doc, STACK_KEYS) or "")
    kind_value = str(_first(doc, KIND_KEYS) or "panic").lower()
    kind = gocrash.FATAL if "fatal" in kind_value else gocrash.PANIC if message or stack else gocrash.UNKNOWN
    found = gocrash.find_report(stack) if stack else None
    if found is not None:  # the stack field holds the whole runtime report
        report = gocrash.parse_report(found)
        return report, _breadcrumbs(doc)
    frames = gocrash.parse_stack(stack) if stack else ()
    failing = gocrash.Goroutine(None, "running", frames=frames) if frames else None
    raw = json.dumps(doc, indent=2)
    report = gocrash.CrashReport(kind, message[:gocrash.MAX_MESSAGE_CHARS], raw, failing=failing,
                                 goroutines=1 if failing else 0, truncated=not frames)
    return report, _breadcrumbs(doc)


def _breadcrumbs(doc: dict[str, Any]) -> list[Any]:
    crumbs = doc.get("breadcrumbs")
    return list(crumbs[-MAX_BREADCRUMBS:]) if isinstance(crumbs, list) else []


def read_artifact(files: Mapping[str, bytes]) -> tuple[gocrash.CrashReport, list[Any]]:
    """(the crash report, breadcrumbs) of an artifact's files; never raises on what the files hold. A JSON
    file's fields come first; a Go crash report in a text file beside it gives the frames the JSON lacks."""
    from_json: tuple[gocrash.CrashReport, list[Any]] | None = None
    for name in sorted(files, key=lambda n: (not n.endswith("panic.json"), n)):
        if not name.endswith(".json"):
            continue
        try:
            doc = json.loads(files[name])
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's parser goes
            continue
        if isinstance(doc, dict):
            from_json = _from_json(doc)
            break
    if from_json is not None and from_json[0].failing is not None:
        return from_json
    texts = {name: data.decode(errors="replace") for name, data in sorted(files.items())}
    for name, text in texts.items():
        if not name.endswith(".json") and (found := gocrash.find_report(text)) is not None:
            report = gocrash.parse_report(found)
            if from_json is not None and from_json[0].message:
                report = dataclasses.replace(report, message=from_json[0].message)
            return report, from_json[1] if from_json else []
    if from_json is not None:
        return from_json
    raw = "\n".join(f"==> {name} <==\n{text}" for name, text in texts.items())
    return gocrash.CrashReport(gocrash.UNKNOWN, "", raw, truncated=True), []
