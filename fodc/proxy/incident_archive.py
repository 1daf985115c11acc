"""The proxy's copy of every complete incident bundle, so the first occurrence survives the node's host.

An incident lives on its agent's disk, beside the node; when that host is gone (disk failure, a VM deleted
after the crash it recorded) the agent's copy goes with it. The proxy keeps its own: `<dir>/<node>/<id>.json`
(the summary the agent listed) and `<id>.tar.gz` (the bundle, checked against the size the agent announced),
both written atomically, within a byte budget and a count, the oldest incidents evicted first. The summaries
have a byte budget of their own: an agent writes them (a detail of up to 4 MiB, ten thousand file digests), and
every kept summary is also held in memory, so a thousand fat ones would otherwise cost GiBs. A summary counts
as its JSON's bytes; one bigger than that whole budget is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fodc.artifact_names import safe_name
from fodc.durablefile import write_atomically
from fodc.eviction import beyond_caps
from fodc.proxy.agent_answers import BadRecord, check_incident
from fodc.proxy.agent_refusals import Refusals
from fodc.times import now_ms

log = logging.getLogger(__name__)

def _safe(name: str) -> str:
    cleaned = safe_name(name).lstrip(".")
    return cleaned or "_"


@dataclass
class Archived:
    summary: dict[str, Any]
    bundle: Path
    size: int
    summary_bytes: int  # its JSON on disk; memory holds a small multiple of it

    @property
    def key(self) -> tuple[str, str]:
        return self.summary["node_id"], self.summary["id"]


class IncidentArchive:
    def __init__(self, directory: Path, *, budget_bytes: int, max_incidents: int, summary_budget_bytes: int,
                 refusals: Refusals | None = None) -> None:
        self.directory = directory
        self.refusals = refusals or Refusals()
        self.budget_bytes = budget_bytes
        self.max_incidents = max_incidents
        self.summary_budget_bytes = summary_budget_bytes
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], Archived] = {}
        self._evicted_keys: OrderedDict[tuple[str, str], None] = OrderedDict()  # recent, so not fetched again
        self.evicted = 0

    def load(self) -> int:
        """Reads what an earlier run kept; a summary without its bundle, unreadable or invalid (an earlier
        version stored what agents sent unchecked) is dropped, logged and counted: one bad entry never stops
        the proxy from starting."""
        self.directory.mkdir(parents=True, exist_ok=True)
        found = 0
        now = now_ms()
        for summary_path in sorted(self.directory.glob("*/*.json")):
            bundle = summary_path.with_suffix(".tar.gz")
            try:
                text = summary_path.read_bytes()
                summary = check_incident(json.loads(text), now)
                _text_field(summary, "node_id")
                item = Archived(summary, bundle, bundle.stat().st_size, len(text))
                with self._lock:
                    self._items[item.key] = item
                found += 1
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                self.refusals.refuse("archived_incident", f"{type(exc).__name__}: {exc}", path=str(summary_path))
                summary_path.unlink(missing_ok=True)
                bundle.unlink(missing_ok=True)
        self._evict()
        return found

    def known(self, node_id: str, incident_id: str) -> bool:
        """Kept, or evicted for room during this run (fetching it again would only evict it again)."""
        with self._lock:
            return (node_id, incident_id) in self._items or (node_id, incident_id) in self._evicted_keys

    def get(self, node_id: str, incident_id: str) -> Archived | None:
        with self._lock:
            return self._items.get((node_id, incident_id))

    def put(self, summary: dict[str, Any], bundle: bytes) -> None:
        """Keeps one agent's incident; raises ValueError when the summary is invalid or the bytes are not
        what the agent listed."""
        check_incident(summary, now_ms())
        _text_field(summary, "node_id")
        announced = summary.get("size")
        if announced is not None and announced != len(bundle):
            raise ValueError(f"bundle is {len(bundle)} bytes, the agent listed {announced}")
        summary_json = json.dumps(summary).encode()
        if len(summary_json) > self.summary_budget_bytes:
            raise ValueError(f"summary is {len(summary_json)} bytes, over the archive's summary budget of "
                             f"{self.summary_budget_bytes}")
        folder = self.directory / _safe(summary["node_id"])
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / _safe(summary["id"])
        bundle_path = stem.with_name(stem.name + ".tar.gz")
        write_atomically(bundle_path, bundle)
        write_atomically(stem.with_name(stem.name + ".json"), summary_json)
        item = Archived(dict(summary), bundle_path, len(bundle), len(summary_json))
        with self._lock:
            self._items[item.key] = item
        self._evict()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item.summary) for item in self._items.values()]

    def usage(self) -> tuple[int, int]:
        with self._lock:
            return len(self._items), sum(item.size for item in self._items.values())

    def summary_usage(self) -> int:
        """Bytes of the kept summaries' JSON."""
        with self._lock:
            return sum(item.summary_bytes for item in self._items.values())

    def _evict(self) -> None:
        with self._lock:
            order = sorted(self._items.values(), key=lambda item: item.summary.get("at_ms", 0))
            doomed = beyond_caps(order, lambda item: item.size, max_count=self.max_incidents,
                                 max_bytes=self.budget_bytes)
            gone = {item.key for item in doomed}
            rest = [item for item in order if item.key not in gone]
            doomed += beyond_caps(rest, lambda item: item.summary_bytes, max_bytes=self.summary_budget_bytes)
            for item in doomed:
                del self._items[item.key]
                self._evicted_keys[item.key] = None
                while len(self._evicted_keys) > 10 * self.max_incidents:
                    self._evicted_keys.popitem(last=False)
            self.evicted += len(doomed)
        for item in doomed:
            item.bundle.unlink(missing_ok=True)
            item.bundle.with_name(item.bundle.name.removesuffix(".tar.gz") + ".json").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                item.bundle.parent.rmdir()  # only when this node has nothing else kept


def _text_field(summary: dict[str, Any], key: str) -> None:
    if not isinstance(summary.get(key), str) or not summary[key]:
        raise BadRecord(f"{key} must be a non-empty text")
