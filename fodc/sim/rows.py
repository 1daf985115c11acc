"""Rows of the simulated page: the text lines one label set renders to at a given time.

A `SampleRow` is one series (prefix + a shape's value); a `HistogramRow` is a whole latency histogram
derived from one counter, so its buckets stay cumulative. Label text is escaped once, at construction;
`emit` only computes numbers and joins strings.
"""

from __future__ import annotations

import math

from fodc.expfmt import escape_label_value
from fodc.sim.shapes import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def format_value(value: float) -> str:
    """Integers without a trailing `.0`, as Go's client prints whole counts; others as repr."""
    if value == math.floor(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class SampleRow:
    """One series: its fixed `name{labels} ` prefix and the shape that gives its value."""

    __slots__ = ("prefix", "shape")

    def __init__(self, prefix: str, shape: object) -> None:
        self.prefix, self.shape = prefix, shape

    def emit(self, out: list[str], t: float, start: float) -> None:
        out.append(f"{self.prefix}{format_value(self.shape.at(t, start))}\n")  # type: ignore[attr-defined]


class HistogramRow:
    """Buckets derived from one count: bucket_i = floor(count * cdf(le_i)), so they are cumulative,
    non-decreasing over time, and `+Inf` equals `_count`."""

    __slots__ = ("bucket_prefixes", "fractions", "inf_prefix", "sum_prefix", "count_prefix", "count", "mean")

    def __init__(self, name: str, labels: str, count: Counter, median_s: float, sigma: float) -> None:
        sep = "," if labels else ""
        self.bucket_prefixes = tuple(f'{name}_bucket{{{labels}{sep}le="{le:g}"}} ' for le in LATENCY_BUCKETS)
        self.fractions = tuple(_lognormal_cdf(le, median_s, sigma) for le in LATENCY_BUCKETS)
        self.inf_prefix = f'{name}_bucket{{{labels}{sep}le="+Inf"}} '
        braces = f"{{{labels}}}" if labels else ""
        self.sum_prefix = f"{name}_sum{braces} "
        self.count_prefix = f"{name}_count{braces} "
        self.count = count
        self.mean = median_s * math.exp(sigma * sigma / 2.0)

    def emit(self, out: list[str], t: float, start: float) -> None:
        count = int(self.count.at(t, start))
        for prefix, fraction in zip(self.bucket_prefixes, self.fractions, strict=True):
            out.append(f"{prefix}{int(count * fraction)}\n")
        out.append(f"{self.inf_prefix}{count}\n")
        out.append(f"{self.sum_prefix}{format_value(count * self.mean)}\n")
        out.append(f"{self.count_prefix}{count}\n")


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1.0 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2.0))))


def label_text(labels: dict[str, str]) -> str:
    """The inside of `{...}`, escaped once here so that a render never escapes again."""
    return ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels.items())
