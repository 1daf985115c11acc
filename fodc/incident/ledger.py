"""Incidents that outlive the agent process: what is on disk is what the agent lists after a restart.

A complete incident is its bundle, and the bundle's manifest (its first member) is its summary, so nothing
else needs keeping. An incident still collecting exists only in memory until its window has passed, so at the
trigger a marker `.collecting-<id>.json` is written beside the bundles; an agent killed before the bundle is
written finds the marker at start and finishes the incident from the window it recovered from disk. Marker
names start with a dot so the artifact store's count and byte caps never weigh or remove them.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

from fodc.durablefile import atomic_file, write_atomically
from fodc.incident.bundle import read_manifest

log = logging.getLogger(__name__)

MARKER_PREFIX = ".collecting-"
EVIDENCE_PREFIX = ".evidence-"  # files a trigger brought (a crash report), kept until its bundle is written
BUNDLE_SUFFIX = ".tar.gz"
_MANIFEST_ONLY = ("window", "format")


def marker_path(directory: Path, incident_id: str) -> Path:
    return directory / f"{MARKER_PREFIX}{incident_id}.json"


def write_marker(directory: Path, incident: dict[str, Any]) -> None:
    """Records an incident that is collecting (atomically, so a crash never leaves half a marker)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(marker_path(directory, incident["id"]), json.dumps(incident, default=str).encode())


def remove_marker(directory: Path, incident_id: str) -> None:
    marker_path(directory, incident_id).unlink(missing_ok=True)


def evidence_path(directory: Path, incident_id: str) -> Path:
    return directory / f"{EVIDENCE_PREFIX}{incident_id}.tar"


def write_evidence(directory: Path, incident_id: str, files: dict[str, bytes]) -> None:
    """Keeps what the trigger brought beside the marker (atomically), for a resumed collection."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_file(evidence_path(directory, incident_id)) as sink, tarfile.open(fileobj=sink, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def read_evidence(directory: Path, incident_id: str) -> dict[str, bytes]:
    """The files `write_evidence` kept ({} when there are none); raises OSError/TarError when unreadable."""
    path = evidence_path(directory, incident_id)
    if not path.exists():
        return {}
    files = {}
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name] = extracted.read()
    return files


def remove_evidence(directory: Path, incident_id: str) -> None:
    evidence_path(directory, incident_id).unlink(missing_ok=True)


def summary_from_bundle(path: Path) -> dict[str, Any]:
    """The listing entry of a complete incident, read back from its bundle's manifest."""
    manifest = read_manifest(path)
    summary = {k: v for k, v in manifest.items() if k not in _MANIFEST_ONLY}
    summary.update(state="complete", file=path.name, size=path.stat().st_size)
    return summary


def load(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(complete incidents, interrupted ones), each oldest first. A bundle or marker that cannot be read is
    logged and left where it is, for an operator to look at; it never stops the agent."""
    complete: list[dict[str, Any]] = []
    interrupted: list[dict[str, Any]] = []
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return [], []
    except OSError as exc:  # unreadable directory: new incidents will say why they cannot be written
        log.warning("cannot list the incident directory", extra={"fields": {"path": str(directory),
                                                                            "reason": str(exc)}})
        return [], []
    for path in entries:
        try:
            if path.name.startswith(MARKER_PREFIX) and path.name.endswith(".json"):
                interrupted.append(json.loads(path.read_text()))
            elif path.name.endswith(BUNDLE_SUFFIX) and not path.name.startswith("."):
                complete.append(summary_from_bundle(path))
        except (OSError, ValueError, KeyError, tarfile.TarError, EOFError) as exc:
            log.warning("cannot read an incident file; left in place", extra={"fields": {
                "path": str(path), "reason": f"{type(exc).__name__}: {exc}"}})
    done = {i.get("id") for i in complete}
    for incident in [i for i in interrupted if i.get("id") in done]:  # bundle written, marker not yet removed
        remove_marker(directory, incident["id"])
        interrupted.remove(incident)
    complete.sort(key=lambda i: i.get("at_ms", 0))
    interrupted.sort(key=lambda i: i.get("at_ms", 0))
    return complete, interrupted
