"""The Prometheus page of a simulated BanyanDB node, as a pure function of time.

`NodeModel(role, series, seed).render(now_s)` returns the text a real node's `/metrics` would serve at
wall-clock time `now_s`: the upstream naming (`banyandb_<scope>_<name>`, HELP equal to the name, counters
without a `_total` suffix, shard gauges labelled `group`/`seg`/`shard`, latency histograms with buckets
.005 … 10 s) plus the standard `go_*` and `process_*` families.

Values are closed-form functions of the time elapsed since the (simulated) process start, so counters only
grow (by varying increments), gauges drift slowly, histogram buckets stay cumulative, and two renders 15 s
apart differ while many series stay put. A reset moves the start forward, which restarts every counter from
zero exactly as a node restart would.

This module must never do I/O or read the clock: the caller passes `now_s` in. The series set and every
label string are built once in the constructor (`fodc.sim.catalog` says what is on the page, `builder`,
`rows` and `shapes` how it is built); a render only computes numbers and joins strings.
"""

from __future__ import annotations

import random

from fodc.config import ROLES
from fodc.sim.catalog import build_families
from fodc.sim.rows import LATENCY_BUCKETS

__all__ = ["DEFAULT_SERIES", "LATENCY_BUCKETS", "ROLES", "NodeModel"]

DEFAULT_SERIES = {"liaison": 1500, "datanode-hot": 2500, "datanode-warm": 2500, "datanode-cold": 2500}


class NodeModel:
    """One simulated node: a fixed series set built from (role, series, seed), values from time.

    `start_s` is the wall-clock second the simulated process started (it also dates the segments);
    `reset(now_s)` simulates a restart.
    """

    def __init__(self, role: str, series: int | None = None, seed: int = 0, start_s: float = 0.0) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        self.role = role
        self.target_series = series if series is not None else DEFAULT_SERIES[role]
        self.seed = seed
        self.start_s = start_s
        self.restarts = 0
        self._families, self.group_count = build_families(
            role, self.target_series, start_s, random.Random(f"{role}/{seed}"))

    @property
    def series_count(self) -> int:
        return sum(family.series_count for family in self._families)

    def family_types(self) -> dict[str, str]:
        """Family name -> Prometheus type, in page order."""
        return {family.name: family.kind for family in self._families}

    def reset(self, now_s: float) -> None:
        """Simulate a restart at `now_s`: counters start again from zero, the start time moves."""
        self.start_s = now_s
        self.restarts += 1

    def render(self, now_s: float) -> str:
        """The page at wall-clock `now_s` (text format 0.0.4)."""
        start = self.start_s
        t = max(0.0, now_s - start)
        out: list[str] = []
        for family in self._families:
            out.append(family.header)
            for row in family.rows:
                row.emit(out, t, start)
        return "".join(out)
