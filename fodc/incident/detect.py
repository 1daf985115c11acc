"""Built-in triggers as small state machines over plain observations (time passed in, no I/O).

Each detector fires once per episode: it re-arms only after its condition has cleared, so a node that stays
down is one incident, not one per check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeAnswer:
    """How the node's metrics endpoints answered lately, as the scraper saw it."""

    ok: bool | None  # None before the first attempt; True when any endpoint answered
    reason: str = ""  # the endpoints' last errors
    timed_out: bool = False  # every failing endpoint was too slow (accepted, never answered), none refused
    failing_since_ms: int = 0  # the first failed scrape of this failure (unix ms; 0 when not failing)
    failing_for_s: float = 0.0  # since the first failed scrape of this failure began (0 while it answers)

    def down(self) -> bool | None:
        """For node-down: failing other than by slowness (refused, reset, gone, garbage)."""
        return None if self.ok is None else not self.ok and not self.timed_out

    def unresponsive(self) -> bool | None:
        """For node-unresponsive: failing only by scrape timeouts."""
        return None if self.ok is None else not self.ok and self.timed_out


@dataclass
class NodeDown:
    """Every scrape of the node failing (in the way the caller observes) for `for_s` seconds. Used for both
    node-down (refused, reset, gone) and node-unresponsive (scrape timeouts)."""

    for_s: float
    _failing_since: float | None = None
    _fired: bool = False

    def observe(self, scrape_ok: bool | None, now_s: float, reason: str = "",
                first_failed_ms: int = 0, failing_for_s: float = 0.0) -> dict[str, object] | None:
        """`scrape_ok` from completed scrapes only (None: none yet). `failing_for_s`: how long before `now_s` the
        first failed scrape began, so an outage is timed from it, not from the check that first saw it."""
        if scrape_ok is None:  # no scrape result yet
            return None
        if scrape_ok:
            self._failing_since, self._fired = None, False
            return None
        if self._failing_since is None:
            self._failing_since = now_s - max(0.0, failing_for_s)
        if not self._fired and now_s - self._failing_since >= self.for_s:
            self._fired = True
            return {"failing_for_s": round(now_s - self._failing_since, 3), "last_error": reason,
                    **({"first_failed_ms": first_failed_ms} if first_failed_ms else {})}
        return None


SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, labels)


@dataclass
class CounterResets:
    """Most counters going backwards between two looks: the node restarted (its counters start at 0)."""

    min_fraction: float = 0.5
    _previous: Mapping[SeriesKey, float] | None = None

    def observe(self, counters: Mapping[SeriesKey, float]) -> dict[str, object] | None:
        previous, self._previous = self._previous, dict(counters)
        if not previous:
            return None
        common = [key for key in counters if previous.get(key, 0) > 0]  # a counter at 0 cannot go back
        if not common:
            return None
        reset = sum(counters[key] < previous[key] for key in common)
        if reset and reset >= self.min_fraction * len(common):
            return {"counters_reset": reset, "counters_compared": len(common)}
        return None


def quantile_from_buckets(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a histogram given as (upper bound, cumulative count), by linear interpolation
    inside the bucket (as PromQL's histogram_quantile does); None when there are no observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return ordered[-1][0]


@dataclass
class LatencyRise:
    """p99 of the observations since the last look, against a slow-moving baseline of earlier looks."""

    factor: float = 4.0
    floor_s: float = 0.001
    min_samples: int = 50
    alpha: float = 0.2
    baseline: float | None = None
    _previous: dict[float, float] | None = None
    _fired: bool = False

    def observe(self, cumulative: Mapping[float, float]) -> dict[str, object] | None:
        previous, self._previous = self._previous, dict(cumulative)
        if previous is None:
            return None
        delta = [(le, cumulative[le] - previous.get(le, 0.0)) for le in cumulative]
        if any(d < 0 for _, d in delta):  # counters reset: start over
            self.baseline, self._fired = None, False
            return None
        total = max((d for _, d in delta), default=0.0)
        p99 = quantile_from_buckets(delta, 0.99)
        if p99 is None or total < self.min_samples:
            return None
        if self.baseline is None:
            self.baseline = p99
            return None
        rising = p99 >= self.factor * self.baseline and p99 >= self.floor_s
        if rising and not self._fired:
            self._fired = True
            return {"p99_s": p99, "baseline_p99_s": self.baseline, "observations": total}
        if not rising:
            self._fired = False
            self.baseline = (1 - self.alpha) * self.baseline + self.alpha * p99
        return None
