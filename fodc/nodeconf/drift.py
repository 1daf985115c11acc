"""Where configurations differ: between nodes of one role, and between a node's last two snapshots.

Snapshots are flattened to `kind.name -> text` settings (flag.grpc-port, env.GOMAXPROCS, file./etc/x.yaml,
binary, version, agent.scrape_interval) so both comparisons are the same dictionary difference. A config
file that differs also gets a unified diff of its (redacted, size-capped) contents. Settings that differ
between peers by design (listen ports, node ids, data paths, host names) are set apart by a list of globs,
DEFAULT_IGNORE, which the proxy's --config-drift-ignore and the request's `ignore` extend.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Iterable, Mapping
from typing import Any

from fodc.nodeconf.snapshot import Snapshot

# Settings that name the node itself, or where it keeps its data, differ between peers by design; listing
# them as drift would bury the differences an operator is looking for. Globs over the flattened names.
DEFAULT_IGNORE = (
    "agent.node_id", "agent.node_address", "agent.node_gossip_address", "agent.node_labels",
    "agent.http_listen_addr", "agent.node_metrics_url*", "agent.node_pprof_url*", "agent.*_dir", "agent.*_file",
    "flag.*port", "flag.*-port-*", "flag.*addr", "flag.*address", "flag.*listen*", "flag.*host*",
    "flag.*node-id", "flag.*node-name", "flag.*-path", "flag.*-dir", "flag.pid-file",
    "env.HOSTNAME", "env.HOST", "env.NODE_ID", "env.NODE_NAME", "env.POD_NAME", "env.POD_IP", "env.PWD",
)
MAX_DIFF_LINES = 120  # a diff longer than this is cut, with a line saying how much was left out


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


def ignored(key: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, glob) for glob in globs)


def role_drift(latest_by_node: Mapping[str, Snapshot],
               ignore: Iterable[str] = DEFAULT_IGNORE) -> dict[str, dict[str, str | None]]:
    """For settings whose value is not the same on every node: node -> value (None where absent); settings
    matching `ignore` are left out (see `ignored_drift` for them)."""
    globs = tuple(ignore)
    return {key: values for key, values in _differing(latest_by_node).items() if not ignored(key, globs)}


def ignored_drift(latest_by_node: Mapping[str, Snapshot], ignore: Iterable[str] = DEFAULT_IGNORE) -> list[str]:
    """The differing settings that `ignore` sets apart, so a reader knows they were there."""
    globs = tuple(ignore)
    return [key for key in _differing(latest_by_node) if ignored(key, globs)]


def _differing(latest_by_node: Mapping[str, Snapshot]) -> dict[str, dict[str, str | None]]:
    flat = {node: flatten(snap) for node, snap in latest_by_node.items()}
    drift: dict[str, dict[str, str | None]] = {}
    for key in sorted(set().union(*flat.values())) if flat else []:
        values = {node: settings.get(key) for node, settings in sorted(flat.items())}
        if len(set(values.values())) > 1:
            drift[key] = values
    return drift


def file_diff(path: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
              before_label: str, after_label: str) -> str | None:
    """A unified diff of a config file's captured contents (secrets already redacted), at most MAX_DIFF_LINES
    lines; None when either side's contents were not kept (too big, a secret file, unreadable)."""
    old = "" if before is None else before.get("content")
    new = "" if after is None else after.get("content")
    if not isinstance(old, str) or not isinstance(new, str):
        return None
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"{path} ({before_label})",
                                      f"{path} ({after_label})", n=2, lineterm=""))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more diff lines"]
    return "\n".join(lines)


def role_file_diffs(latest_by_node: Mapping[str, Snapshot], drift: Mapping[str, Mapping[str, str | None]]
                    ) -> dict[str, dict[str, str]]:
    """For each differing config file: node -> its diff against the first node (by name) that has it."""
    diffs: dict[str, dict[str, str]] = {}
    for key in drift:
        if not key.startswith("file."):
            continue
        path = key[len("file."):]
        nodes = sorted(latest_by_node)
        files = {node: (latest_by_node[node].get("files") or {}).get(path) for node in nodes}
        reference = next((node for node in nodes if files[node] is not None), None)
        if reference is None:
            continue
        for node in nodes:
            if node != reference and drift[key].get(node) != drift[key].get(reference):
                diff = file_diff(path, files[reference], files[node], reference, node)
                if diff:
                    diffs.setdefault(path, {})[node] = diff
    return diffs


def node_changes(before: Snapshot, after: Snapshot) -> dict[str, dict[str, str | None]]:
    """Settings added, removed or changed from `before` to `after`: key -> {before, after}; a changed config
    file also has `diff`, the unified diff of its contents."""
    old, new = flatten(before), flatten(after)
    changes: dict[str, dict[str, str | None]] = {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        changes[key] = {"before": old.get(key), "after": new.get(key)}
        if key.startswith("file."):
            path = key[len("file."):]
            diff = file_diff(path, (before.get("files") or {}).get(path), (after.get("files") or {}).get(path),
                             str(before.get("captured_at") or "before"), str(after.get("captured_at") or "after"))
            if diff:
                changes[key]["diff"] = diff
    return changes


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
