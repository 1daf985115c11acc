"""Time as operators read it: RFC 3339 UTC with milliseconds, from the unix ms used everywhere inside."""

from __future__ import annotations

import datetime as dt


def rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
