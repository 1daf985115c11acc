"""Value shapes of the simulated page: how one series' value moves with time.

Each shape answers `at(t, start)` with t = seconds since the simulated process start (>= 0) and `start` the
start time itself, so a value is a closed-form function of time: counters only grow, gauges drift slowly.
Shapes never read the clock or format text; rows (`fodc.sim.rows`) turn their values into lines.
"""

from __future__ import annotations

import math


class Counter:
    """Monotonic growth with a wobbling rate: rate * (1 + amp * sin(omega t + phase)), amp < 1."""

    __slots__ = ("rate", "amp", "omega", "phase", "cos_phase", "integer")

    def __init__(self, rate: float, amp: float, omega: float, phase: float, integer: bool) -> None:
        self.rate, self.amp, self.omega, self.phase, self.integer = rate, amp, omega, phase, integer
        self.cos_phase = math.cos(phase)

    def at(self, t: float, start: float) -> float:
        if self.rate == 0.0:
            return 0.0
        wobble = self.amp * (self.cos_phase - math.cos(self.omega * t + self.phase)) / self.omega
        value = self.rate * (t + wobble)
        return float(math.floor(value)) if self.integer else value


class Plateau:
    """A counter that grows during warm-up and then stays put (stable series, but not all zero)."""

    __slots__ = ("cap", "ramp_s")

    def __init__(self, cap: float, ramp_s: float) -> None:
        self.cap, self.ramp_s = cap, ramp_s

    def at(self, t: float, start: float) -> float:
        return float(math.floor(self.cap * min(1.0, t / self.ramp_s)))


class Gauge:
    """A slow oscillation around a base value."""

    __slots__ = ("base", "amp", "omega", "phase", "integer")

    def __init__(self, base: float, amp: float, omega: float, phase: float, integer: bool) -> None:
        self.base, self.amp, self.omega, self.phase, self.integer = base, amp, omega, phase, integer

    def at(self, t: float, start: float) -> float:
        value = self.base * (1.0 + self.amp * math.sin(self.omega * t + self.phase))
        return float(round(value)) if self.integer else value


class Const:
    """A value that never changes (limits, build info)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def at(self, t: float, start: float) -> float:
        return self.value


class Elapsed:
    """Seconds since start (uptime), optionally as an absolute time (start + t)."""

    __slots__ = ("absolute", "step")

    def __init__(self, absolute: bool, step: float = 1.0) -> None:
        self.absolute, self.step = absolute, step

    def at(self, t: float, start: float) -> float:
        stepped = math.floor(t / self.step) * self.step
        return start + stepped if self.absolute else stepped


class StartTime:
    """The process start time in whole seconds; it moves only when the node restarts."""

    __slots__ = ()

    def at(self, t: float, start: float) -> float:
        return float(math.floor(start))
