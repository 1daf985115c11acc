"""What moved at the first occurrence: the series of an incident's window ranked by how much they changed.

An incident bundle holds thousands of series; the operator's first question is which of them behaved
differently after the trigger than before it. For a counter that is its rate (per second, across resets),
for a gauge its mean; a series is compared only when it has points on both sides (counters: two on each).
Series that stopped at the trigger are counted apart: when most of a node's series stop, the node stopped
answering, and ranking what is left would only rank noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

CUMULATIVE = ("_count", "_sum", "_bucket")


@dataclass(frozen=True)
class Change:
    series: str
    kind: str  # "rate" (counters, per second) or "mean" (gauges)
    before: float
    after: float

    @property
    def factor(self) -> float:
        """How many times bigger the larger side is (∞ when one side is zero and the other is not)."""
        low, high = sorted((abs(self.before), abs(self.after)))
        if high == 0:
            return 1.0
        return math.inf if low == 0 else high / low

    def to_json(self) -> dict[str, Any]:
        factor = self.factor
        return {"series": self.series, "kind": self.kind, "before": self.before, "after": self.after,
                "factor": None if math.isinf(factor) else round(factor, 3)}


@dataclass(frozen=True)
class Triage:
    changes: list[Change]  # biggest change first
    compared: int
    stopped: list[str]  # series with points before the trigger and none after
    started: list[str]  # series with points after the trigger only


def series_name(series: dict[str, Any]) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(series.get("labels", {}).items()))
    return f"{series['name']}{{{labels}}}" if labels else series["name"]


def _numbers(points: Iterable[list[Any]]) -> list[tuple[int, float]]:
    out = []
    for t, v in points:
        if isinstance(v, (int, float)) and math.isfinite(v):
            out.append((int(t), float(v)))
    return out


def _rate(points: list[tuple[int, float]]) -> float | None:
    """Per-second increase over the points, a drop read as a counter reset (as Prometheus does)."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    grown = sum(b - a if b >= a else b for (_, a), (_, b) in pairwise(points))
    return grown / ((points[-1][0] - points[0][0]) / 1000)


def _is_counter(series: dict[str, Any]) -> bool:
    """Counters, and the cumulative samples of histograms and summaries (their _count, _sum, _bucket)."""
    kind = series.get("type")
    return kind == "counter" or (kind in ("histogram", "summary") and series["name"].endswith(CUMULATIVE))


def rank(window: dict[str, Any], at_ms: int, *, include_buckets: bool = False) -> Triage:
    """Compares every series of an incident window (`window.json`) before and after `at_ms`."""
    changes: list[Change] = []
    stopped: list[str] = []
    started: list[str] = []
    compared = 0
    for series in window.get("series", []):
        if not include_buckets and series["name"].endswith("_bucket"):
            continue
        points = _numbers(series.get("points", []))
        before = [p for p in points if p[0] < at_ms]
        after = [p for p in points if p[0] >= at_ms]
        name = series_name(series)
        if before and not after:
            stopped.append(name)
            continue
        if after and not before:
            started.append(name)
            continue
        if _is_counter(series):
            b, a = _rate(before), _rate(after)
            kind = "rate"
        else:
            b = sum(v for _, v in before) / len(before) if before else None
            a = sum(v for _, v in after) / len(after) if after else None
            kind = "mean"
        if a is None or b is None:
            continue
        compared += 1
        change = Change(name, kind, b, a)
        if change.factor > 1.0:
            changes.append(change)
    changes.sort(key=lambda c: (c.factor, abs(c.after - c.before)), reverse=True)
    return Triage(changes, compared, sorted(stopped), sorted(started))
