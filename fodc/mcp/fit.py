"""Results sized for a model's context: every list is cut to a limit and every result to a character budget,
and whatever was cut is said in the result (`left_out`), so an assistant knows to ask more narrowly."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

# One tool result, as JSON text, is at most this long (about 6k tokens): a model reads it whole.
MAX_RESULT_CHARS = 24_000


def head(items: list[Any], limit: int, what: str, left_out: dict[str, str]) -> list[Any]:
    """The first `limit` items; notes in `left_out` how many of `what` were dropped."""
    if len(items) > limit:
        left_out[what] = f"{len(items) - limit} of {len(items)} not shown (raise the limit or narrow the query)"
    return items[:limit]


def finish(result: dict[str, Any], left_out: dict[str, str], max_chars: int = MAX_RESULT_CHARS) -> str:
    """The result as JSON text within `max_chars`: when still too long, its longest list is halved until it fits
    (each cut noted), and as a last resort the text itself is cut."""
    if left_out:
        result = {**result, "left_out": left_out}
    text = json.dumps(result, separators=(",", ":"), default=str)
    while len(text) > max_chars:
        path, items = _longest_list(result)
        if items is None or len(items) <= 1:
            break
        keep = len(items) // 2
        _set(result, path, items[:keep])
        notes = result.setdefault("left_out", {})
        notes[".".join(map(str, path))] = f"cut to {keep} items to fit {max_chars} characters"
        text = json.dumps(result, separators=(",", ":"), default=str)
    if len(text) > max_chars:
        text = text[:max_chars - 80] + f'… [cut: the result was {len(text)} characters, over {max_chars}]'
    return text


def _longest_list(value: Any, path: tuple = ()) -> tuple[tuple, list | None]:
    best: tuple[tuple, list | None] = ((), None)
    best_size = -1
    if isinstance(value, list):
        best, best_size = (path, value), len(json.dumps(value, default=str))
        children: Iterable[tuple[Any, Any]] = enumerate(value)
    elif isinstance(value, dict):
        children = ((k, v) for k, v in value.items() if k != "left_out")
    else:
        return best
    for key, child in children:
        if isinstance(child, list | dict):
            found = _longest_list(child, (*path, key))
            if found[1] is not None:
                size = len(json.dumps(found[1], default=str))
                if size > best_size and len(found[1]) > 1:
                    best, best_size = found, size
    return best


def _set(root: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        root = root[key]
    root[path[-1]] = value


def stats(values: list[float]) -> dict[str, float | int | None]:
    """min/max/mean/first/last of a series' finite values, and how many points were not finite."""
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return {"points": len(values), "non_finite": len(values)}
    return {"points": len(values), "first": finite[0], "last": finite[-1], "min": min(finite),
            "max": max(finite), "mean": round(sum(finite) / len(finite), 6),
            "non_finite": len(values) - len(finite)}


def thin(points: list[list[Any]], limit: int) -> list[list[Any]]:
    """At most `limit` points, evenly spaced, always keeping the last one."""
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    picked = [points[int(i * stride)] for i in range(limit - 1)]
    return [*picked, points[-1]]
