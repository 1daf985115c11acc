"""Incident bundles on disk: one tar.gz per incident with manifest.json first, written atomically.

The manifest says what triggered the incident, when, the window range it holds, and each file's size and
sha256, plus every part that could not be collected and why; `fodc dump`-style tools and the proxy read it
without unpacking the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

from fodc.durablefile import atomic_file

MANIFEST = "manifest.json"
FORMAT = "fodc-incident/1"


def write_bundle(path: Path, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    """Writes `path` atomically; returns the manifest as written (with file sizes and hashes)."""
    manifest = {**manifest, "format": FORMAT,
                "files": {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                          for name, data in files.items()}}
    now = int(time.time())
    with atomic_file(path) as sink, tarfile.open(fileobj=sink, mode="w:gz") as tar:
        for name, data in [(MANIFEST, json.dumps(manifest, indent=2).encode()), *files.items()]:
            info = tarfile.TarInfo(f"{path.stem.removesuffix('.tar')}/{name}")
            info.size, info.mtime, info.mode = len(data), now, 0o640
            tar.addfile(info, io.BytesIO(data))
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.name.endswith("/" + MANIFEST):
                extracted = tar.extractfile(member)
                if extracted is not None:
                    return json.load(extracted)
            break
    raise ValueError(f"{path} has no manifest")
