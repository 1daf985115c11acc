"""Plain-text tables for the terminal (JSON output is the API's own, printed as is).

Tables fit `WIDTH` columns unless `--wide`: the widest columns give way first and a cut cell ends in `…`;
ids, job ids and node names are never cut (they are what the next command needs).
Times print as RFC 3339 UTC by default (`--local-time`, `--epoch-ms`), sizes in binary units.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from fodc import times

WIDTH = 100
MIN_COLUMN = 6
_settings = {"wide": False, "local": False, "epoch_ms": False}


def configure(*, wide: bool = False, local: bool = False, epoch_ms: bool = False) -> None:
    """The CLI's global output options, set once from the command line."""
    _settings.update(wide=wide, local=local, epoch_ms=epoch_ms)


# Columns an operator copies into the next command: never cut, even if the table then runs wider.
WHOLE = frozenset({"id", "job", "node"})


def fit_widths(natural: list[int], limit: int, gap: int = 2, whole: frozenset[int] = frozenset()) -> list[int]:
    """Column widths within `limit` (gaps included): the widest column is narrowed first, down to MIN_COLUMN;
    the columns in `whole` keep their width."""
    widths = list(natural)
    while sum(widths) + gap * (len(widths) - 1) > limit:
        narrowable = [i for i in range(len(widths)) if i not in whole]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        if widths[widest] <= MIN_COLUMN:
            break
        excess = sum(widths) + gap * (len(widths) - 1) - limit
        others = sorted((widths[i] for i in narrowable if i != widest), reverse=True)
        floor = max(MIN_COLUMN, others[0] if others else MIN_COLUMN, widths[widest] - excess)
        widths[widest] = floor if floor < widths[widest] else widths[widest] - 1
    return widths


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def fit_line(text: str) -> str:
    """One line of prose cut to the terminal width (whole with --wide)."""
    return text if _settings["wide"] else cut(text, WIDTH)


def table(rows: list[list[Any]], headers: list[str], *, wide: bool | None = None) -> str:
    cells = [[h.upper() for h in headers]] + [[str(c) for c in row] for row in rows]
    natural = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    whole = frozenset(i for i, h in enumerate(headers) if h.lower() in WHOLE)
    widths = natural if (_settings["wide"] if wide is None else wide) else fit_widths(natural, WIDTH, whole=whole)
    return "\n".join("  ".join(cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def when(value: int | str | None, *, precise: bool = False) -> str:
    """A time as the operator asked for it (RFC 3339 UTC, local zone, or unix ms)."""
    return times.show_time(value, local=_settings["local"], epoch_ms=_settings["epoch_ms"], precise=precise)


def ago(value: int | str | None) -> str:
    """`3m ago`, or the time itself with --epoch-ms; "-" for none."""
    if value is None or value == "":
        return "-"
    if _settings["epoch_ms"]:
        return when(value)
    ms = value if isinstance(value, int) else times.parse_time_ms(value) if _is_time(value) else None
    return times.age(ms) if ms is not None else str(value)


def _is_time(text: str) -> bool:
    try:
        times.parse_time_ms(text)
        return True
    except times.BadTime:
        return False


def human_size(count: int | float | None) -> str:
    """Bytes in binary units: `812 B`, `12 MiB`, `1.5 GiB`."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value} B"  # unreachable


def print_json(body: Any) -> None:
    print(json.dumps(body, indent=2))


def print_task_warnings(tasks: list[dict[str, Any]]) -> None:
    """Each node whose result came with a warning (an empty block profile and why) or a note (it waited for
    the agent's periodic capture), wrapped to WIDTH."""
    for task in tasks:
        for kind in ("warning", "note"):
            if task.get(kind):
                print(textwrap.fill(f"{kind}: {task['node_id']}: {task[kind]}", WIDTH, subsequent_indent="  "))
