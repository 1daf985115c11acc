"""What an operator should notice about a node, from its agent's heartbeat figures (`runtime` in /cluster).

One place for the CLI's `fodc cluster` notes column, the proxy's /cluster `notes` and so the web console.
Pure: strings in, strings out.
"""

from __future__ import annotations

from collections.abc import Mapping


def node_notes(runtime: Mapping[str, str], incidents_total: Mapping[str, int] | None = None) -> list[str]:
    """Short phrases, most urgent first: node not answering, incidents, window disk failing, clock behind."""
    said = []
    up, _, total = runtime.get("scrape_targets_up", "").partition("/")
    if up == "0" and total not in ("", "0"):
        said.append("node not answering")
    if incidents_total:
        said.append("incidents " + ",".join(f"{trigger}={count}" for trigger, count in sorted(incidents_total.items())))
    if runtime.get("window_disk_last_error"):
        said.append("window disk failing")
    try:
        behind = float(runtime.get("clock_behind_s", "0") or 0)
    except ValueError:  # an agent's figure, not ours: a bad one is not a note
        behind = 0.0
    if behind > 0:
        said.append(f"host clock {runtime['clock_behind_s']}s behind")
    return said
