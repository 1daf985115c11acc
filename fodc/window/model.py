"""Plain data at the window's boundary: what callers put in (SeriesMeta) and get out (SeriesWindow, WindowStats).

Kept apart from the recorder so the codec and later readers (the on-disk window, the agent's answer path)
share the types without importing the recorder's locking machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SeriesMeta:
    """Per-family metadata; the recorder keeps the latest seen per family name."""

    name: str
    type: str
    help: str
    unit: str


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """One series' points in a time range (oldest first), with its family's metadata."""

    name: str  # the sample name, e.g. foo_bucket
    labels: Labels
    type: str
    help: str
    unit: str
    source: str
    timestamps_ms: list[int]
    values: list[float]
    family: str = ""  # the family name, e.g. foo; name filters match on it


@dataclass(frozen=True, slots=True)
class WindowStats:
    budget_bytes: int
    used_bytes: int
    series: int
    samples: int
    oldest_ms: int | None
    newest_ms: int | None
    estimated_window_seconds: float
    sealed_blocks: int
    evicted_blocks: int
