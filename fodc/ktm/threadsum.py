"""A monotonic per-process total built from per-thread counters.

/proc/<pid>/schedstat describes the main thread only; a Go server does its work on other threads, so the
process's run delay is the sum over /proc/<pid>/task/*/schedstat. Summing live threads alone would make the
"counter" drop whenever a thread exits; this keeps what exited threads had reached, so the total only grows
(until the process itself changes, which the caller signals with `reset`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ThreadSum:
    """Totals of N per-thread counters; pure state, fed with one snapshot per collection."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._retired = [0] * width
        self._last: dict[int, Sequence[int]] = {}

    def reset(self) -> None:
        self._retired = [0] * self._width
        self._last = {}

    def update(self, per_thread: Mapping[int, Sequence[int]]) -> tuple[int, ...]:
        """Take {tid: values} for the threads alive now; return the process totals."""
        for tid, values in self._last.items():
            if tid not in per_thread:
                for i in range(self._width):
                    self._retired[i] += values[i]
        self._last = dict(per_thread)
        totals = list(self._retired)
        for values in per_thread.values():
            for i in range(self._width):
                totals[i] += values[i]
        return tuple(totals)
