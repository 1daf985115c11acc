"""Time as operators read and write it: the one grammar for every time the CLI and the API accept, and the
one way times are printed. Inside, time is unix milliseconds everywhere.

Accepted forms, told apart by their shape alone (no guessing from the value's size within a form):
- a duration with a unit (`90s`, `15m`, `2h`, `7d`, `1h30m`, `250ms`): that long **ago**;
- `now`;
- RFC 3339 with a zone (`2026-11-23T10:00:00Z`, `...+01:00`): a date, so it has `-` and `T`;
- a bare number: unix **seconds** when below 100 000 000 000, unix **milliseconds** from there on.
  The cut is year 5138 in seconds and March 1973 in milliseconds, so no time anyone asks about is ambiguous.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import time

MS_FROM = 100_000_000_000  # a bare number at least this big is unix milliseconds
MAX_MS = 32503680000_000  # year 3000: beyond it a time is a mistake, not a query
FORMS = "a duration ago (90s, 15m, 2h, 7d), RFC 3339 (2026-11-23T10:00:00Z), unix seconds or unix ms"
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+")


def now_ms() -> int:
    """The wall clock in unix milliseconds (the unit of every time inside fodc)."""
    return int(time.time() * 1000)


_clock_ms = now_ms  # for the functions whose `now_ms` parameter hides the function


def compact_utc(ms: int) -> str:
    """`20261204T211500Z`: a UTC second that sorts as text and fits a file name or an id."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ms / 1000))


class BadTime(ValueError):
    """A time that is none of the accepted forms; the message names the parameter and the forms."""


def parse_time_ms(text: str, name: str = "time", now_ms: int | None = None) -> int:
    """Unix milliseconds from any accepted form (see the module docstring); `now_ms` anchors durations."""
    text = text.strip()
    now = _clock_ms() if now_ms is None else now_ms
    if len(text) > 64:
        raise BadTime(f"invalid {name}: longer than 64 characters")
    if text == "now":
        return now
    if _NUMBER.fullmatch(text):
        number = float(text)
        ms = number if number >= MS_FROM else number * 1000
        if not ms < MAX_MS:
            raise BadTime(f"invalid {name} {text!r}: after the year 3000")
        return int(round(ms))
    if _DURATION.fullmatch(text):
        # Here, not at the top: fodc.logs needs this module, and fodc.config needs configargparse, which a
        # bare system Python (the journal test's, a crash helper's) does not have.
        from fodc.config import duration

        ms = now - int(round(duration(text) * 1000))
        if ms < 0:
            raise BadTime(f"invalid {name} {text!r}: before 1970")
        return ms
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadTime(f"invalid {name} {text!r}: use {FORMS}") from None
    if parsed.tzinfo is None:
        raise BadTime(f"invalid {name} {text!r}: RFC 3339 times need a zone (Z or +hh:mm)")
    ms_float = parsed.timestamp() * 1000
    if not 0 <= ms_float < MAX_MS or not math.isfinite(ms_float):
        raise BadTime(f"invalid {name} {text!r}: from 1970 to the year 3000")
    return int(ms_float)


def time_arg(text: str) -> int:
    """argparse type: a time in any accepted form -> unix milliseconds (a bad one is a usage error)."""
    try:
        return parse_time_ms(text)
    except BadTime as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def show_time(value: int | str | None, *, local: bool = False, epoch_ms: bool = False, precise: bool = False) -> str:
    """A time for a table: RFC 3339 UTC (or the local zone), or raw unix ms; `value` is ms or RFC 3339 text.
    Seconds are enough to read; `precise` keeps the milliseconds (data meant for other programs)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            ms = parse_time_ms(value)
        except BadTime:
            return value
    else:
        ms = int(value)
    if epoch_ms:
        return str(ms)
    spec = "milliseconds" if precise else "seconds"
    if local:
        return dt.datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec=spec)
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def age(ms: int, now_ms: int | None = None) -> str:
    """How long ago, as people say it: `40s ago`, `3m ago`, `2h ago`, `5d ago` (`in 2m` for the future)."""
    now = _clock_ms() if now_ms is None else now_ms
    seconds = (now - ms) / 1000
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{int(span // size)}{unit}"
            break
    else:
        text = f"{int(span)}s"
    return f"{text} ago" if seconds >= 0 else f"in {text}"
