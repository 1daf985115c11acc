"""Where configurations differ: between nodes of one role, and between a node's last two snapshots.

Snapshots are flattened to `kind.name -> text` settings (flag.grpc-port, env.GOMAXPROCS, file./etc/x.yaml,
binary, version, agent.scrape_interval) so both comparisons are the same dictionary difference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fodc.nodeconf.snapshot import Snapshot

# Settings that name the node itself differ between peers by design; listing them as drift would bury
# the differences an operator is looking for.
PER_NODE_SETTINGS = frozenset({
    "agent.node_id", "agent.node_address", "agent.node_gossip_address", "agent.node_labels",
    "agent.http_listen_addr",
})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def flatten(snapshot: Snapshot) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key in ("binary", "version"):
        if snapshot.get(key) is not None:
            settings[key] = _text(snapshot[key])
    if snapshot.get("positional"):
        settings["args"] = _text(snapshot["positional"])
    for kind, section in (("flag", "flags"), ("env", "env"), ("agent", "agent")):
        for name, value in (snapshot.get(section) or {}).items():
            settings[f"{kind}.{name}"] = _text(value)
    for path, info in (snapshot.get("files") or {}).items():
        settings[f"file.{path}"] = info.get("sha256") or f"unreadable: {info.get('error', '')}"
    return settings


def role_drift(latest_by_node: Mapping[str, Snapshot]) -> dict[str, dict[str, str | None]]:
    """For settings whose value is not the same on every node: node -> value (None where absent)."""
    flat = {node: flatten(snap) for node, snap in latest_by_node.items()}
    keys = sorted(set().union(*flat.values()) - PER_NODE_SETTINGS) if flat else []
    drift: dict[str, dict[str, str | None]] = {}
    for key in keys:
        values = {node: settings.get(key) for node, settings in sorted(flat.items())}
        if len(set(values.values())) > 1:
            drift[key] = values
    return drift


def node_changes(before: Snapshot, after: Snapshot) -> dict[str, dict[str, str | None]]:
    """Settings added, removed or changed from `before` to `after`: key -> {before, after}."""
    old, new = flatten(before), flatten(after)
    return {key: {"before": old.get(key), "after": new.get(key)}
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)}


def last_change_pair(snapshots: list[Snapshot]) -> tuple[Snapshot, Snapshot] | None:
    """(previous, latest) to compare, oldest first: snapshots taken while the node was gone (no argv) are
    skipped, so "stopped, then started with a new flag" shows the flag, not "everything appeared"."""
    if not snapshots:
        return None
    latest = snapshots[-1]
    for previous in reversed(snapshots[:-1]):
        if (previous.get("argv") is None) == (latest.get("argv") is None):
            return previous, latest
    return None
