"""Reconnect pacing: exponential backoff with full jitter, forever, capped.

Jitter keeps a fleet of agents from redialing a restarted proxy in lockstep. Pure: the random source is
passed in so tests can pin it.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float = 0.2, max_s: float = 30.0, factor: float = 2.0,
                 rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The pause before the next attempt: uniform in [ceiling/2, ceiling], ceiling growing per attempt."""
        ceiling = min(self.max_s, self.initial_s * self.factor ** self.attempt)
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
