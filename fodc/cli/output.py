"""Plain-text tables for the terminal (JSON output is the API's own, printed as is)."""

from __future__ import annotations

import json
from typing import Any


def table(rows: list[list[Any]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def print_json(body: Any) -> None:
    print(json.dumps(body, indent=2))
