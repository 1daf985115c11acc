"""What a profile says, computed from plain data: per-function flat/cum, folded stacks, a bounded flame tree,
the difference between two profiles, and the JSON summary a browser draws from.

Pure: no files, no clocks. Flat is the value of the samples a function is the leaf of; cum counts every
sample a function appears in, once per sample even when it recurses (as `go tool pprof` does).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from fodc.pprof.reader import PprofError, Profile
from fodc.saferegex import PatternError, compile_pattern

MAX_FOCUS_CHARS = 256
SUMMARY_TOP = 50
SUMMARY_MAX_NODES = 2000
SUMMARY_MIN_FRACTION = 0.001  # flame nodes below this share of the total are left out of summaries
MAX_DEPTH = 256  # deeper stacks are cut (and the tree says truncated)


@dataclass(frozen=True, slots=True)
class FunctionCost:
    function: str
    flat: int
    cum: int


@dataclass(frozen=True, slots=True)
class Top:
    sample_type: str
    unit: str
    total: int  # every sample of the type
    shown: int  # the samples kept by --focus (equal to total without one)
    rows: tuple[FunctionCost, ...]


@dataclass(frozen=True, slots=True)
class ShareChange:
    function: str
    base_share: float  # fraction of the base profile's total
    new_share: float

    @property
    def delta(self) -> float:
        return self.new_share - self.base_share


class Searcher(Protocol):
    def search(self, text: str) -> object | None: ...


def compile_focus(pattern: str | None) -> Searcher | None:
    """A --focus regex compiled by RE2 (linear time: a profile's function names are input too), bounded in
    length; PprofError (one line) when it does not compile."""
    if not pattern:
        return None
    if len(pattern) > MAX_FOCUS_CHARS:
        raise PprofError(f"--focus is longer than {MAX_FOCUS_CHARS} characters")
    try:
        return compile_pattern(pattern)  # type: ignore[return-value]  # RE2's objects search as well
    except PatternError as exc:
        raise PprofError(f"--focus {pattern!r} is not a valid regex: {exc}") from None


def weighted_stacks(profile: Profile, sample_type: str | None = None,
                    focus: Searcher | None = None) -> Iterator[tuple[tuple[str, ...], int]]:
    """(stack leaf first, value) of every non-zero sample of the type; with focus, only stacks it matches."""
    index = profile.type_index(sample_type)
    matched: dict[str, bool] = {}
    for sample in profile.samples:
        value = sample.values[index]
        if not value:
            continue
        if focus is not None:
            hit = False
            for name in sample.stack:
                seen = matched.get(name)
                if seen is None:
                    seen = matched[name] = focus.search(name) is not None
                if seen:
                    hit = True
                    break
            if not hit:
                continue
        yield sample.stack, value


def total(profile: Profile, sample_type: str | None = None) -> int:
    index = profile.type_index(sample_type)
    return sum(s.values[index] for s in profile.samples)


def top(profile: Profile, sample_type: str | None = None, focus: Searcher | None = None,
        by_cum: bool = False) -> Top:
    """Every function's flat and cum, largest first (by flat, or by cum), ties by name."""
    flat: dict[str, int] = {}
    cum: dict[str, int] = {}
    shown = 0
    for stack, value in weighted_stacks(profile, sample_type, focus):
        shown += value
        if stack:
            flat[stack[0]] = flat.get(stack[0], 0) + value
        for name in set(stack):
            cum[name] = cum.get(name, 0) + value
    key = (lambda n: (-cum[n], -flat.get(n, 0), n)) if by_cum else (lambda n: (-flat.get(n, 0), -cum[n], n))
    rows = tuple(FunctionCost(n, flat.get(n, 0), cum[n]) for n in sorted(cum, key=key))
    chosen = profile.sample_types[profile.type_index(sample_type)]
    return Top(chosen.type, chosen.unit, total(profile, sample_type), shown, rows)


_FOLD_UNSAFE = re.compile(r"[;\s]")


def folded(profile: Profile, sample_type: str | None = None,
           focus: Searcher | None = None) -> list[tuple[str, int]]:
    """Folded stacks, root first and `;`-joined (a `;` or blank in a name becomes `_`), summed, sorted."""
    sums: dict[str, int] = {}
    for stack, value in weighted_stacks(profile, sample_type, focus):
        line = ";".join(_FOLD_UNSAFE.sub("_", name) for name in reversed(stack))
        sums[line] = sums.get(line, 0) + value
    return sorted(sums.items())


class _Node:
    __slots__ = ("children", "name", "value")

    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0
        self.children: dict[str, _Node] = {}


def flame_tree(profile: Profile, sample_type: str | None = None, focus: Searcher | None = None, *,
               max_nodes: int = SUMMARY_MAX_NODES,
               min_fraction: float = SUMMARY_MIN_FRACTION) -> tuple[dict[str, Any], bool]:
    """The call tree root first as {name, value, children}, at most `max_nodes` nodes (the largest kept) and
    none below `min_fraction` of the total; returns (tree, truncated)."""
    root = _Node("root")
    truncated = False
    for stack, value in weighted_stacks(profile, sample_type, focus):
        root.value += value
        node = root
        frames = stack[::-1]
        if len(frames) > MAX_DEPTH:
            frames, truncated = frames[:MAX_DEPTH], True
        for name in frames:
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name)
            child.value += value
            node = child
    floor = abs(root.value) * min_fraction
    out: dict[int, dict[str, Any]] = {id(root): {"name": "root", "value": root.value, "children": []}}
    heap: list[tuple[int, int, _Node, _Node]] = []
    order = 0
    for child in root.children.values():
        heap.append((-abs(child.value), order := order + 1, child, root))
    heapq.heapify(heap)
    kept = 1
    while heap:
        negative, _, node, parent = heapq.heappop(heap)
        if kept >= max_nodes or -negative < floor or -negative == 0:
            truncated = True
            break
        entry: dict[str, Any] = {"name": node.name, "value": node.value, "children": []}
        out[id(parent)]["children"].append(entry)
        out[id(node)] = entry
        kept += 1
        for child in node.children.values():
            heapq.heappush(heap, (-abs(child.value), order := order + 1, child, node))
    for entry in out.values():
        entry["children"].sort(key=lambda c: (-c["value"], c["name"]))
    return out[id(root)], truncated


def diff(base: Profile, new: Profile, sample_type: str | None = None, by_cum: bool = False) -> list[ShareChange]:
    """Each function's share of its profile's total in BASE and NEW, largest change first."""
    name = sample_type or new.default_type
    base_top, new_top = top(base, name, by_cum=by_cum), top(new, name, by_cum=by_cum)

    def shares(t: Top) -> dict[str, float]:
        return {r.function: (r.cum if by_cum else r.flat) / t.total for r in t.rows} if t.total else {}

    before, after = shares(base_top), shares(new_top)
    changes = [ShareChange(f, before.get(f, 0.0), after.get(f, 0.0)) for f in before.keys() | after.keys()]
    changes.sort(key=lambda c: (-abs(c.delta), c.function))
    return [c for c in changes if c.delta]


def summary(profile: Profile, sample_type: str | None = None, top_n: int = SUMMARY_TOP,
            max_nodes: int = SUMMARY_MAX_NODES) -> dict[str, Any]:
    """The JSON a page draws from: top functions and a bounded flame tree of one sample type."""
    table = top(profile, sample_type)
    tree, truncated = flame_tree(profile, sample_type, max_nodes=max_nodes)
    return {
        "sample_types": [{"type": st.type, "unit": st.unit} for st in profile.sample_types],
        "sample_type": table.sample_type, "unit": table.unit, "total": table.total,
        "samples": len(profile.samples), "duration_ns": profile.duration_ns,
        "top": [{"function": r.function, "flat": r.flat, "cum": r.cum} for r in table.rows[:top_n]],
        "flame": tree, "truncated": truncated or len(table.rows) > top_n,
    }
