"""Fault injection for the simulated node: what a fault request means and how it bends a page.

A fault is a plain frozen value (`Fault`) parsed from the control endpoint's parameters; the page
transformations (`garble`, `garbage_page`, `padding`) are pure string functions. The HTTP adapter owns
the current fault and decides what to do with it (close the listener, sleep, swap the body); nothing here
touches sockets, threads or the clock (`now` is passed in).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass

MODES = ("ok", "down", "slow", "slow-reads", "garbage", "huge", "reset", "crash")
GARBAGE_VARIANTS = ("mixed", "total")
DEFAULT_DOWN_S = 5.0
DEFAULT_SLOW_DELAY_S = 2.0
DEFAULT_SLOW_READ_DELAY_S = 0.05
DEFAULT_HUGE_MB = 16.0
MAX_CRASH_TEXT = 1024 * 1024
CRASH_EXIT_STATUS = 2  # what a Go program exits with after a panic or fatal error
PADDING_FAMILY = "banyandb_sim_padding_series"


@dataclass(frozen=True)
class Fault:
    """The fault in force. `duration_s` None means "until cleared" (a `down` fault always has one,
    because while down the node cannot hear the request that would clear it)."""

    mode: str = "ok"
    started_at: float = 0.0
    duration_s: float | None = None
    delay_s: float = 0.0
    variant: str = "mixed"
    size_mb: float = 0.0
    crash_text: str = ""  # `crash`: what the node prints on stderr before it exits 2, as a Go program would

    def active(self, now: float) -> bool:
        if self.mode == "ok":
            return False
        return self.duration_s is None or now < self.started_at + self.duration_s

    def current(self, now: float) -> Fault:
        """This fault, or the cleared fault once it has expired."""
        return self if self.active(now) else Fault()

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "crash_text": len(self.crash_text)}  # its size; the text itself is the caller's


def _number(params: Mapping[str, object], key: str, default: float | None) -> float | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{key} must not be negative, got {raw!r}")
    return value


def parse_fault(params: Mapping[str, object], now: float) -> Fault:
    """Turn control-endpoint parameters into a `Fault`; raises ValueError on anything unknown.

    Parameters: `mode` (one of MODES); `duration` seconds the fault lasts (down: default 5; others:
    until cleared); `delay` seconds per response for `slow` (default 2), or seconds each of the node's own
    read() syscalls blocks for `slow-reads` (default 0.05; the node must run with `--reads-per-s`);
    `variant` `mixed`|`total` for `garbage`; `mb` page size for `huge` (default 16). `reset` yields a
    `Fault(mode="reset")` that the adapter performs once and does not keep; `crash` (with `text`, the crash
    report to print, at most 1 MiB) makes the node print it on stderr and exit with status 2.
    """
    mode = str(params.get("mode", "")).strip().lower()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode in ("ok", "reset"):
        return Fault(mode=mode, started_at=now)
    if mode == "crash":
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("crash needs the text to print (text=...)")
        if len(text) > MAX_CRASH_TEXT:
            raise ValueError(f"crash text is {len(text)} characters; at most {MAX_CRASH_TEXT}")
        return Fault(mode=mode, started_at=now, crash_text=text)
    duration = _number(params, "duration", DEFAULT_DOWN_S if mode == "down" else None)
    if mode == "down" and not duration:
        raise ValueError("down needs a positive duration")
    if mode == "slow":
        delay = _number(params, "delay", DEFAULT_SLOW_DELAY_S)
        return Fault(mode=mode, started_at=now, duration_s=duration, delay_s=delay or 0.0)
    if mode == "slow-reads":
        delay = _number(params, "delay", DEFAULT_SLOW_READ_DELAY_S)
        if not delay:
            raise ValueError("slow-reads needs a positive delay")
        return Fault(mode=mode, started_at=now, duration_s=duration, delay_s=delay)
    if mode == "garbage":
        variant = str(params.get("variant", "mixed")).strip().lower()
        if variant not in GARBAGE_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(GARBAGE_VARIANTS)}, got {variant!r}")
        return Fault(mode=mode, started_at=now, duration_s=duration, variant=variant)
    if mode == "huge":
        size = _number(params, "mb", DEFAULT_HUGE_MB)
        if not size:
            raise ValueError("huge needs a positive mb")
        return Fault(mode=mode, started_at=now, duration_s=duration, size_mb=size)
    return Fault(mode=mode, started_at=now, duration_s=duration)


# Lines no exposition parser should accept, each broken in a different way.
BAD_LINES = (
    'banyandb_measure_total_written{group="sw_broken" 17',
    'banyandb_measure_total_written{group="sw_broken"} not-a-number',
    "this line is not a metric at all",
    'banyandb_stream_total_file_parts{group="sw_records",seg=20260821} 3',
    "# TYPE banyandb_sim_bad_type flux_capacitor",
    '{group="no_name"} 1',
    "banyandb_liaison_grpc_total_started 1 2 3 4",
)


def garble(page: str, seed: int = 0, every: int = 50) -> str:
    """A valid page with one bad line slipped in roughly every `every` lines (always at least one)."""
    rng = random.Random(seed)
    lines = page.splitlines()
    out: list[str] = []
    for index, line in enumerate(lines):
        if index % every == every // 2:
            out.append(rng.choice(BAD_LINES))
        out.append(line)
    out.insert(min(len(out), 1), BAD_LINES[0])
    return "\n".join(out) + "\n"


def garbage_page(size: int = 64 * 1024, seed: int = 0) -> str:
    """Printable junk of about `size` characters: nothing in it parses as a sample."""
    rng = random.Random(seed)
    alphabet = "{}}\"=,#!@%^&*() \t:;<>?abcdefXYZ0123456789"
    out: list[str] = []
    total = 0
    while total < size:
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 120)))
        line = "}" + line  # a leading brace can never start a valid line
        out.append(line)
        total += len(line) + 1
    return "\n".join(out) + "\n"


def padding(size_bytes: int) -> str:
    """A valid extra family of about `size_bytes` bytes, appended to blow a page up to "huge"."""
    header = f"# HELP {PADDING_FAMILY} {PADDING_FAMILY}\n# TYPE {PADDING_FAMILY} gauge\n"
    line_template = PADDING_FAMILY + '{{group="sim_padding",seg="20260821",shard="{index}"}} 1\n'
    line_size = len(line_template.format(index=0)) + 3
    count = max(1, size_bytes // line_size)
    return header + "".join(line_template.format(index=index) for index in range(count))
