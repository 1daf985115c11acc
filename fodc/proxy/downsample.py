"""Server-side downsampling of window points for /metrics-windows?step=: one point per step per series.

A 24 h window scraped every 15 s is 5,760 points a series; a plot 1,000 pixels wide can show 1,000. Each
step (aligned to multiples of the step since the epoch, so repeated queries line up) becomes one point at
the time of its last raw point, valued by `agg`: last, min, max or avg of its finite values. Cumulative
series (counters, and the _bucket/_count/_sum samples of histograms and summaries) always take `last`:
min/max/avg of a counter mixes values from different times, while the last value of each step keeps the
series monotone between resets and its rate exact. Pure: no I/O, no clock.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from fodc.config import duration

AGGREGATIONS = ("last", "min", "max", "avg")
MIN_STEP_MS = 1
MAX_STEP_MS = 7 * 24 * 3600 * 1000
CUMULATIVE_SUFFIXES = ("_bucket", "_count", "_sum")


def is_cumulative(family_type: str, sample_name: str) -> bool:
    return family_type == "counter" or (family_type in ("histogram", "summary")
                                        and sample_name.endswith(CUMULATIVE_SUFFIXES))


def step_millis(text: str) -> int:
    """`step` as given in a query ("60", "60s", "1m", "500ms"; a bare number is seconds) -> milliseconds.
    ValueError with the reason for anything else, or outside 1 ms .. 7 days."""
    try:
        seconds = duration(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc).replace("duration", "step", 1)) from None
    step_ms = round(seconds * 1000)
    if not MIN_STEP_MS <= step_ms <= MAX_STEP_MS:
        raise ValueError(f"invalid step {text!r}: from 1ms to 7d")
    return step_ms


def downsample(points: list[list[Any]], step_ms: int, agg: str) -> list[list[Any]]:
    """points: [[unix_ms, value], ...] in time order (value a float or "NaN"/"+Inf"/"-Inf")."""
    if step_ms <= 0 or len(points) < 2:
        return points
    out: list[list[Any]] = []
    bucket: list[list[Any]] = []
    current = None
    for point in points:
        index = point[0] // step_ms
        if index != current and bucket:
            out.append(_reduce(bucket, agg))
            bucket = []
        current = index
        bucket.append(point)
    if bucket:
        out.append(_reduce(bucket, agg))
    return out


def _reduce(bucket: list[list[Any]], agg: str) -> list[Any]:
    last = bucket[-1]
    if agg == "last" or len(bucket) == 1:
        return last
    finite = [v for _, v in bucket if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return last
    if agg == "min":
        return [last[0], min(finite)]
    if agg == "max":
        return [last[0], max(finite)]
    return [last[0], sum(finite) / len(finite)]
