"""Which entries a bounded on-disk store gives up, oldest first, so that both its count and byte caps hold.

The diagnostics artifacts, the incident bundles, the proxy's incident archive, its diagnostics jobs, the
profile ring and the window's archive files all keep "the newest that fit". The policy is here once; each
store keeps its own entries and removes their files. Pure: no files, clocks or locks here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Entry = TypeVar("Entry")
NO_CAP = float("inf")


def beyond_caps(oldest_first: Sequence[Entry], size: Callable[[Entry], int], *, max_count: float = NO_CAP,
                max_bytes: float = NO_CAP, removable: Callable[[Entry], bool] = lambda _: True) -> list[Entry]:
    """The entries to remove, oldest first: taken from the front until the rest are at most `max_count`
    entries and `max_bytes` bytes. An entry that is not `removable` (a job still running) stays and keeps
    counting, so the caps may still be exceeded while it lives."""
    count, total = len(oldest_first), sum(size(entry) for entry in oldest_first)
    doomed: list[Entry] = []
    for entry in oldest_first:
        if count <= max_count and total <= max_bytes:
            break
        if removable(entry):
            doomed.append(entry)
            count -= 1
            total -= size(entry)
    return doomed
