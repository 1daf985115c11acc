"""Names agent and proxy agree on: the pprof profiles an agent takes, file names safe for any id, and the
profile ring's file names. One module for both sides, so the proxy needs nothing of the agent's fodc.diag."""

from __future__ import annotations

import hashlib
import re

# profile (its ProfileKind in fodc.proto, lower case) -> (pprof path, takes seconds)
PROFILES = {
    "cpu": ("profile", True),
    "heap": ("heap", False),
    "allocs": ("allocs", False),
    "goroutine": ("goroutine", False),
    "block": ("block", False),
    "mutex": ("mutex", False),
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_BYTES = 200  # below NAME_MAX (255) with room for a temporary file's prefix and suffix


def safe_name(text: str) -> str:
    """`text` as a file name on any filesystem: every run of other characters becomes one underscore."""
    return _UNSAFE.sub("_", text)


def safe_file_name(text: str, suffix: str = "") -> str:
    """safe_name(text) + suffix, at most MAX_NAME_BYTES: a long text (a 201-character node id) is cut and
    carries a digest of the whole text, so two long texts never share a file and open() never fails on it."""
    name = safe_name(text)
    if len(name) + len(suffix) > MAX_NAME_BYTES:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        name = f"{name[:MAX_NAME_BYTES - len(suffix) - 17]}-{digest}"
    return name + suffix


RING_KINDS = ("cpu", "heap")
_RING_NAME = re.compile(r"^(\d{10,16})-(cpu|heap)(?:-(\d{1,5})s)?\.pb\.gz$")


def ring_entry_name(kind: str, taken_ms: int, seconds: int) -> str:
    """A profile ring file's name: `<taken unix ms>-<kind>[-<seconds>s].pb.gz`."""
    return f"{taken_ms}-{kind}" + (f"-{seconds}s" if seconds else "") + ".pb.gz"


def parse_ring_name(name: str) -> tuple[str, int, int] | None:
    """(kind, taken_ms, seconds) of a ring file name; None for any other name."""
    match = _RING_NAME.match(name)
    if match is None:
        return None
    return match.group(2), int(match.group(1)), int(match.group(3) or 0)
