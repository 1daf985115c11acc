"""Plain data at the window's boundary: what callers put in (SeriesMeta) and get out (SeriesWindow, WindowStats).

Kept apart from the recorder so the codec and later readers (the on-disk window, the agent's answer path)
share the types without importing the recorder's locking machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

Labels = tuple[tuple[str, str], ...]


class WindowListener(Protocol):
    """Hears about new data so it can be kept elsewhere (the on-disk window). Called on the ingesting thread,
    after the recorder released its lock; an exception is logged by the recorder and goes no further."""

    def sealed(self, source: str, first_ms: int, last_ms: int, payload: bytes) -> None:
        """A block of `source` holding scrapes first_ms..last_ms was sealed: `payload` is its codec bytes."""

    def scraped(self, source: str, rows: int) -> None:
        """A scrape of `source` was added; its open block now holds `rows` scrapes."""


@dataclass(frozen=True, slots=True)
class OpenRows:
    """A copy of some scrapes of a source's open block (FlightRecorder.open_rows): `cells` holds each series'
    cells of those rows, series after series (codec.ABSENT where absent). (generation, end_row) is the mark to
    pass next time to get only the scrapes added since."""

    source: str
    generation: int
    first_row: int
    end_row: int
    timestamps_ms: list[int]
    families: tuple[SeriesMeta, ...]
    heads: list[tuple[str, Labels, str]]
    cells: bytes


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
    on_disk_bytes: int = 0  # of used_bytes: sealed blocks left in --window-dir, read from there when asked
    unreadable_blocks: int = 0  # blocks on disk found damaged or unreadable since (skipped by every read)
