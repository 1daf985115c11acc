"""Sample values as people read them: 1.20s / 230ms for time, 12.5MiB for bytes, plain counts otherwise."""

from __future__ import annotations

_TIME_NS = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000, "seconds": 1_000_000_000}
_TIME_STEPS: tuple[tuple[int, str], ...] = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us"), (1, "ns"))
_BYTE_STEPS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B"))


def _number(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    text = f"{x:.1f}" if x >= 10 else f"{x:.2f}"
    return text.rstrip("0").rstrip(".")


def humanise(value: float, unit: str) -> str:
    """`value` in `unit` (a pprof unit name) with the largest scale that keeps it at least 1."""
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if unit in _TIME_NS:
        ns = magnitude * _TIME_NS[unit]
        steps = _TIME_STEPS
        magnitude = ns
    elif unit == "bytes":
        steps = _BYTE_STEPS
    else:
        return f"{sign}{magnitude:.0f}" if float(magnitude).is_integer() else f"{sign}{_number(magnitude)}"
    if magnitude == 0:
        return "0"
    for scale, suffix in steps:
        if magnitude >= scale:
            return f"{sign}{_number(magnitude / scale)}{suffix}"
    return f"{sign}{_number(magnitude / steps[-1][0])}{steps[-1][1]}"


def percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "0%"
