"""Building a simulated page: families in first-use order, rows drawn from a seeded generator.

`PageBuilder` is what the catalog (`fodc.sim.catalog`) talks to: `counter`, `gauge`, `histogram` and `fixed`
add a series with its own rate, phase and period, so two builders with the same seed build the same page.
"""

from __future__ import annotations

import math
import random

from fodc.sim.rows import LATENCY_BUCKETS, HistogramRow, SampleRow, label_text
from fodc.sim.shapes import Counter, Gauge, Plateau


class Family:
    """One metric family: its HELP/TYPE header and the rows rendered under it."""

    __slots__ = ("name", "kind", "header", "rows")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind = name, kind
        self.header = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
        self.rows: list[SampleRow | HistogramRow] = []

    @property
    def series_count(self) -> int:
        per_row = len(LATENCY_BUCKETS) + 3 if self.kind == "histogram" else 1
        return per_row * len(self.rows)


class PageBuilder:
    """Collects families in first-use order; later groups append rows to families already created."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.families: dict[str, Family] = {}
        self.series_count = 0

    def _family(self, name: str, kind: str, help_text: str | None) -> Family:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = Family(name, kind, help_text or name)
        return family

    def _add(self, name: str, kind: str, labels: dict[str, str], shape: object, help_text: str | None,
             family: str | None = None) -> None:
        text = label_text(labels)
        prefix = f"{name}{{{text}}} " if text else f"{name} "
        self._family(family or name, kind, help_text).rows.append(SampleRow(prefix, shape))
        self.series_count += 1

    # Shapes drawn from the seeded generator: every series gets its own rate, phase and period.

    def counter_shape(self, rate: float, *, stable_share: float = 0.0, integer: bool = True) -> object:
        rng = self.rng
        if rng.random() < stable_share:
            return Plateau(float(rng.choice((0, 0, 0, 1, 2, 3, 7))), rng.uniform(5.0, 60.0))
        return Counter(
            rate * rng.uniform(0.3, 1.7),
            rng.uniform(0.2, 0.9),
            2.0 * math.pi / rng.uniform(30.0, 600.0),
            rng.uniform(0.0, 2.0 * math.pi),
            integer,
        )

    def gauge_shape(self, base: float, *, swing: float = 0.1, integer: bool = False) -> object:
        rng = self.rng
        return Gauge(
            base * rng.uniform(0.7, 1.3),
            swing * rng.uniform(0.5, 1.0),
            2.0 * math.pi / rng.uniform(600.0, 7200.0),
            rng.uniform(0.0, 2.0 * math.pi),
            integer,
        )

    def counter(self, name: str, labels: dict[str, str], rate: float, *, stable_share: float = 0.0,
                integer: bool = True, help_text: str | None = None) -> None:
        shape = self.counter_shape(rate, stable_share=stable_share, integer=integer)
        self._add(name, "counter", labels, shape, help_text)

    def gauge(self, name: str, labels: dict[str, str], base: float, *, swing: float = 0.1,
              integer: bool = False, help_text: str | None = None) -> None:
        self._add(name, "gauge", labels, self.gauge_shape(base, swing=swing, integer=integer), help_text)

    def fixed(self, name: str, kind: str, labels: dict[str, str], shape: object,
              help_text: str | None = None, *, family: str | None = None) -> None:
        """A series with an explicit shape; `family` names the family when the sample name differs
        (a summary's `_sum` and `_count`)."""
        self._add(name, kind, labels, shape, help_text, family)

    def histogram(self, name: str, labels: dict[str, str], rate: float, median_s: float,
                  help_text: str | None = None) -> None:
        rng = self.rng
        count = Counter(
            rate * rng.uniform(0.3, 1.7),
            rng.uniform(0.2, 0.9),
            2.0 * math.pi / rng.uniform(30.0, 600.0),
            rng.uniform(0.0, 2.0 * math.pi),
            True,
        )
        row = HistogramRow(name, label_text(labels), count, median_s * rng.uniform(0.5, 2.0),
                            rng.uniform(0.6, 1.4))
        family = self._family(name, "histogram", help_text)
        family.rows.append(row)
        self.series_count += len(LATENCY_BUCKETS) + 3
