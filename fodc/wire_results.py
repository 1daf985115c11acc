"""The typed command results (fodc.v1 Incident, ConfigSnapshot, AutomaticCapture, RingProfile) to and from the
plain dicts agent and proxy work with, converted once here at the wire edge.

The agent writes them (`*_to_pb`); the proxy reads them (`*_from_pb`) only after fodc.proxy.agent_answers has
checked them, and serves the dicts as they always were in its JSON API. Open documents (an incident's
`detail`, a snapshot's captured content) travel as JSON text inside the typed message: their keys differ per
trigger and per node, and the proxy passes them on rather than reading them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fodc.v1 import fodc_pb2 as pb

# Typed keys of an incident summary; any other key an older agent's ledger holds is not carried.
_INCIDENT_TEXTS = ("id", "node_id", "role", "trigger", "at", "state")
_INCIDENT_OPTIONAL = ("onset", "onset_ms", "complete_by_ms")  # left out, not zero, when the agent did not say
_SNAPSHOT_TEXTS = ("hash", "captured_at", "confirmed_at")


def _json_object(value: Any) -> str:
    return json.dumps(value if isinstance(value, dict) else {}, separators=(",", ":"))


def incident_to_pb(incident: Mapping[str, Any]) -> pb.Incident:
    fields: dict[str, Any] = {k: str(incident.get(k) or "") for k in _INCIDENT_TEXTS}
    fields["at_ms"] = int(incident.get("at_ms") or 0)
    fields.update({k: str(incident[k]) if k == "onset" else int(incident[k])
                   for k in _INCIDENT_OPTIONAL if incident.get(k) is not None})
    msg = pb.Incident(**fields, detail_json=_json_object(incident.get("detail")),
                      errors={str(k): str(v) for k, v in (incident.get("errors") or {}).items()},
                      ring_profiles=[str(n) for n in incident.get("ring_profiles") or ()])
    if incident.get("summary"):
        msg.summary = str(incident["summary"])
    if incident.get("file") is not None:
        msg.file = str(incident["file"])
    if incident.get("size") is not None:
        msg.size = int(incident["size"])
    for name, digest in (incident.get("files") or {}).items():
        msg.files[str(name)].CopyFrom(pb.FileDigest(size=int(digest.get("size") or 0),
                                                    sha256=str(digest.get("sha256") or "")))
    return msg


def incident_from_pb(msg: pb.Incident, detail: dict[str, Any]) -> dict[str, Any]:
    """The summary dict the proxy serves; `detail` is the already checked decoding of msg.detail_json."""
    out: dict[str, Any] = {"id": msg.id, "node_id": msg.node_id, "role": msg.role, "trigger": msg.trigger}
    if msg.HasField("summary"):
        out["summary"] = msg.summary
    out.update(detail=detail, at=msg.at, at_ms=msg.at_ms)
    out.update({key: getattr(msg, key) for key in _INCIDENT_OPTIONAL if msg.HasField(key)})
    out.update(state=msg.state, errors=dict(msg.errors))
    if msg.HasField("file"):
        out["file"] = msg.file
    if msg.HasField("size"):
        out["size"] = msg.size
    if msg.files:
        out["files"] = {name: {"size": d.size, "sha256": d.sha256} for name, d in sorted(msg.files.items())}
    if msg.ring_profiles:
        out["ring_profiles"] = list(msg.ring_profiles)
    return out


def snapshot_to_pb(snapshot: Mapping[str, Any]) -> pb.ConfigSnapshot:
    content = {k: v for k, v in snapshot.items() if k not in _SNAPSHOT_TEXTS}
    return pb.ConfigSnapshot(**{k: str(snapshot.get(k) or "") for k in _SNAPSHOT_TEXTS},
                             content_json=json.dumps(content, separators=(",", ":")))


def snapshot_from_pb(msg: pb.ConfigSnapshot, content: dict[str, Any]) -> dict[str, Any]:
    """The snapshot dict; `content` is the already checked decoding of msg.content_json."""
    return {**content, "hash": msg.hash, "captured_at": msg.captured_at, "confirmed_at": msg.confirmed_at}


def capture_to_pb(record: Mapping[str, Any]) -> pb.AutomaticCapture:
    return pb.AutomaticCapture(
        id=str(record.get("id") or ""), trigger=str(record.get("trigger") or ""), time=str(record.get("time") or ""),
        rss_bytes=int(record.get("rss_bytes") or 0), limit_bytes=int(record.get("limit_bytes") or 0),
        limit_source=str(record.get("limit_source") or ""), percent=float(record.get("percent") or 0.0),
        files=[pb.CapturedFile(profile=str(f.get("profile") or ""), file=str(f.get("file") or ""),
                               size=int(f.get("size") or 0), sha256=str(f.get("sha256") or ""))
               for f in record.get("files") or ()],
        errors={str(k): str(v) for k, v in (record.get("errors") or {}).items()})


def capture_from_pb(msg: pb.AutomaticCapture) -> dict[str, Any]:
    return {"id": msg.id, "trigger": msg.trigger, "time": msg.time, "rss_bytes": msg.rss_bytes,
            "limit_bytes": msg.limit_bytes, "limit_source": msg.limit_source, "percent": msg.percent,
            "files": [{"profile": f.profile, "file": f.file, "size": f.size, "sha256": f.sha256} for f in msg.files],
            "errors": dict(msg.errors)}


def ring_profile_to_pb(entry: Mapping[str, Any]) -> pb.RingProfile:
    return pb.RingProfile(name=str(entry["name"]), kind=str(entry["kind"]), taken=str(entry["taken"]),
                          taken_ms=int(entry["taken_ms"]), seconds=int(entry.get("seconds") or 0),
                          size=int(entry.get("size") or 0))


def ring_profile_from_pb(msg: pb.RingProfile) -> dict[str, Any]:
    return {"name": msg.name, "kind": msg.kind, "taken": msg.taken, "taken_ms": msg.taken_ms,
            "seconds": msg.seconds, "size": msg.size}
