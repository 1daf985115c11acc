"""One incident as a page shows it: trigger and onset, the series that moved most (with their points, so they
can be plotted), the configuration at the incident and what changed since the snapshot before, the node's
last log lines and the profiles in the bundle. Pure: built from the bundle's files and, when the node's agent
answered, its configuration history; the ranking itself is fodc.incident.triage's.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from fodc.incident.bundle import MANIFEST
from fodc.incident.rules import RuleError, parse_rule
from fodc.incident.triage import rank, rule_onset, series_name
from fodc.nodeconf.drift import node_changes

MAX_TOP = 50
LOG_LINES = 60
MAX_LISTED = 50  # names of stopped/started series listed (the counts are always complete)
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # a bundle member bigger than this is not read (hostile or broken bundle)


class BadBundle(ValueError):
    pass


def read_files(data: bytes) -> dict[str, bytes]:
    """A bundle's files by name (without the bundle's top directory)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = {}
            for member in tar:
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    continue
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[member.name.split("/", 1)[-1]] = extracted.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BadBundle(f"unreadable bundle: {exc}") from None
    if MANIFEST not in files:
        raise BadBundle("not an incident bundle (no manifest.json)")
    return files


def previous_snapshot(history: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any] | None:
    """The newest snapshot of `history` taken before `current` with a different content."""
    before = [s for s in history if s.get("captured_at_ms", 0) < current.get("captured_at_ms", 0)
              and s.get("hash") != current.get("hash")]
    return before[-1] if before else None


def focus_and_onset(manifest: dict, window: dict) -> tuple[tuple[str, dict[str, str]] | None, int | None]:
    """A rule incident's own series, and the onset: the agent's when it recorded one, else (for a rule) the
    first breach found in the window."""
    detail = manifest.get("detail") or {}
    onset = manifest.get("onset_ms")
    focus = None
    if str(manifest.get("trigger", "")).startswith("rule:") and isinstance(detail.get("series"), str):
        focus = (detail["series"], {str(k): str(v) for k, v in (detail.get("labels") or {}).items()})
        if onset is None:
            try:
                rule = parse_rule(str(detail.get("expr", "")))
                onset = rule_onset(window, manifest["at_ms"], focus, rule.holds)
            except RuleError:
                pass
    return focus, onset if isinstance(onset, int) else None


def crash_report(files: dict[str, bytes]) -> dict | None:
    """The node's crash as the agent parsed it (crash.json), or None when there is none or it is unreadable."""
    try:
        crash = json.loads(files["crash.json"]) if "crash.json" in files else None
    except ValueError:
        return None
    return crash if isinstance(crash, dict) else None


def build(files: dict[str, bytes], top: int, history: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The page's JSON; `history` is the node's configuration history (None when its agent is not online)."""
    manifest = json.loads(files[MANIFEST])
    window = json.loads(files.get("window.json", b'{"series": []}'))
    by_name = {series_name(s): s for s in window.get("series", [])}
    focus, onset_ms = focus_and_onset(manifest, window)
    result = rank(window, manifest["at_ms"], onset_ms=onset_ms, focus=focus)
    changes = []
    for change in result.changes[:max(1, min(top, MAX_TOP))]:
        series = by_name.get(change.series, {})
        changes.append({**change.to_json(), "name": series.get("name"), "type": series.get("type"),
                        "labels": series.get("labels", {}), "points": series.get("points", [])})
    config = json.loads(files["config.json"]) if "config.json" in files else None
    previous = previous_snapshot(history, config) if (history is not None and config) else None
    log_tail = files.get("node.log", b"").decode(errors="replace").splitlines()[-LOG_LINES:]
    return {
        "manifest": {k: v for k, v in manifest.items() if k != "files"},
        "files": manifest.get("files", {}),
        "split": {"at_ms": result.split_ms, "by": "onset" if result.split_ms != manifest["at_ms"] else "trigger"},
        "compared": result.compared,
        "stopped": {"count": len(result.stopped), "series": result.stopped[:MAX_LISTED]},
        "started": {"count": len(result.started), "series": result.started[:MAX_LISTED]},
        "changes": changes,
        "log_tail": log_tail,
        "crash": crash_report(files),
        "config": config,
        "config_previous": ({"captured_at": previous.get("captured_at"), "hash": previous.get("hash"),
                             "reason": previous.get("reason")} if previous else None),
        "config_changes": node_changes(previous, config) if previous and config else None,
        "config_history": "available" if history is not None else "the node's agent is not online",
        "profiles": sorted(name for name in manifest.get("files", {}) if name.endswith((".pb.gz", ".pb"))),
    }
