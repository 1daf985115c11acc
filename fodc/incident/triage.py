"""What moved at the first occurrence: the series of an incident's window ranked by how much they changed.

An incident bundle holds thousands of series; the operator's first question is which of them behaved
differently after the trigger than before it. For a counter that is its rate (per second, across resets),
for a gauge its mean; a series is compared only when it has points on both sides (counters: two on each).
Series that stopped at the trigger are counted apart: when most of a node's series stop, the node stopped
answering, and ranking what is left would only rank noise. Before and after are divided at the incident's
onset (the first failed scrape, the first breach) when it is known: the trigger itself fires later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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
    focus: bool = False  # the series the incident's own rule watched

    @property
    def factor(self) -> float:
        """How many times bigger the larger side is (∞ when one side is zero and the other is not): the rank."""
        low, high = sorted((abs(self.before), abs(self.after)))
        if high == 0:
            return 1.0
        return math.inf if low == 0 else high / low

    @property
    def change(self) -> str:
        """Direction and size as people read them: `-72 %`, `+45 %`, `+3.1×`, `from 0`."""
        if self.before == self.after:
            return "0 %"
        if self.before == 0:
            return "from 0"
        percent = (self.after - self.before) / abs(self.before) * 100
        if percent >= 100:
            return f"+{self.after / self.before:.2g}×"
        return f"{percent:+.0f} %" if abs(percent) >= 10 else f"{percent:+.2g} %"

    def to_json(self) -> dict[str, Any]:
        factor = self.factor
        return {"series": self.series, "kind": self.kind, "before": self.before, "after": self.after,
                "change": self.change, "direction": "up" if self.after > self.before else
                "down" if self.after < self.before else "flat",
                "factor": None if math.isinf(factor) else round(factor, 3), **({"focus": True} if self.focus else {})}


@dataclass(frozen=True)
class Triage:
    changes: list[Change]  # the rule's own series first, then biggest change first
    compared: int
    stopped: list[str]  # series with points before the split and none after: "gone"
    started: list[str]  # series with points after the split only: "new"
    split_ms: int = 0  # where before and after were divided: the onset when known, else the trigger


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


def _focus_match(series: dict[str, Any], focus: tuple[str, dict[str, str]] | None) -> bool:
    if focus is None:
        return False
    name, labels = focus
    own = series.get("labels", {})
    return series["name"] == name and all(own.get(k) == v for k, v in labels.items())


def rank(window: dict[str, Any], at_ms: int, *, include_buckets: bool = False, onset_ms: int | None = None,
         focus: tuple[str, dict[str, str]] | None = None) -> Triage:
    """Compares every series of an incident window (`window.json`) before and after the onset (the trigger
    when the onset is not known). `focus` (name, labels) puts the rule's own series first, changed or not."""
    split = onset_ms if onset_ms is not None and onset_ms <= at_ms else at_ms
    changes: list[Change] = []
    stopped: list[str] = []
    started: list[str] = []
    compared = 0
    for series in window.get("series", []):
        focused = _focus_match(series, focus)
        if not include_buckets and series["name"].endswith("_bucket") and not focused:
            continue
        points = _numbers(series.get("points", []))
        before = [p for p in points if p[0] < split]
        after = [p for p in points if p[0] >= split]
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
        change = Change(name, kind, b, a, focused)
        if change.factor > 1.0 or focused:
            changes.append(change)
    changes.sort(key=lambda c: (c.focus, c.factor, abs(c.after - c.before)), reverse=True)
    return Triage(changes, compared, sorted(stopped), sorted(started), split)


def rule_onset(window: dict[str, Any], at_ms: int, focus: tuple[str, dict[str, str]],
               holds: Callable[[float], bool]) -> int | None:
    """The first breach of a rule: the start of the last unbroken run of points of its series, up to the
    trigger, on which the condition `holds` (the agent checks every few seconds; the window has every scrape)."""
    onset = None
    for series in window.get("series", []):
        if not _focus_match(series, focus):
            continue
        run_start = None
        for t, v in _numbers(series.get("points", [])):
            if t > at_ms:
                break
            run_start = (run_start if run_start is not None else t) if holds(v) else None
        if run_start is not None:
            onset = run_start if onset is None else min(onset, run_start)
    return onset
