"""The fleet's crashes, grouped: the same panic on five nodes is one line that says "5 nodes".

Plain data in (incident summaries as agents list them), plain data out; no clocks, no I/O. A crash is an
incident whose detail carries `crash` (kind, message, top frames, signature: fodc.incident.gocrash); crashes
with one signature (kind, message with numbers blanked, top frames) are one group.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_FRAMES_SHOWN = 3


def crash_rows(incidents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per crash incident, newest first: node, time, kind, message, first frames, signature."""
    rows = []
    for incident in incidents:
        crash = (incident.get("detail") or {}).get("crash")
        if not isinstance(crash, dict):
            continue
        frames = crash.get("top_frames")
        at_ms = incident.get("at_ms")
        rows.append({"node_id": incident.get("node_id"), "role": incident.get("role"),
                     "at": incident.get("at"), "at_ms": at_ms if isinstance(at_ms, int) else 0,
                     "trigger": incident.get("trigger"), "kind": str(crash.get("kind") or "unknown"),
                     "message": str(crash.get("message") or ""),
                     "top_frames": [str(f) for f in frames[:MAX_FRAMES_SHOWN]] if isinstance(frames, list) else [],
                     "signature": str(crash.get("signature") or f"{crash.get('kind')}|{crash.get('message')}"),
                     "incident": incident.get("id"), "url": incident.get("url")})
    return sorted(rows, key=lambda r: r["at_ms"], reverse=True)


def group(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Crashes by signature, the one on most nodes first (then most crashes, then the latest)."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        found = groups.get(row["signature"])
        if found is None:
            found = groups[row["signature"]] = {
                "signature": row["signature"], "kind": row["kind"], "message": row["message"],
                "top_frames": row["top_frames"], "count": 0, "nodes": [], "roles": [],
                "first_at": row["at"], "first_at_ms": row["at_ms"], "last_at": row["at"], "last_at_ms": row["at_ms"]}
        found["count"] += 1
        for key, value in (("nodes", row["node_id"]), ("roles", row["role"])):
            if value not in found[key]:
                found[key].append(value)
        if row["at_ms"] < found["first_at_ms"]:
            found.update(first_at=row["at"], first_at_ms=row["at_ms"])
        if row["at_ms"] > found["last_at_ms"]:
            found.update(last_at=row["at"], last_at_ms=row["at_ms"])
    for found in groups.values():
        found["nodes"].sort()
        found["roles"].sort()
        found["node_count"] = len(found["nodes"])
    return sorted(groups.values(), key=lambda g: (g["node_count"], g["count"], g["last_at_ms"]), reverse=True)
