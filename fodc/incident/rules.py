"""Threshold rules an operator writes in the agent config: `name: metric{label="v"} > 0.9 for 30s`.

Pure: parsing and evaluation over plain (name, labels, value) samples with the time passed in. A rule fires
once when its condition has held for the whole `for` duration on some series, and again only after the
condition cleared (the incident cooldown is the caller's business).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from fodc.config import duration

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_RULE = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9_.-]+)\s*:\s*(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?P<labels>[^}]*)\})?\s*"
    r"(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
    r"(?:for\s+(?P<for>\S+))?\s*$")
RULE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=|!=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class ThresholdRule:
    name: str
    metric: str
    matchers: tuple[tuple[str, str, str], ...]
    op: str
    value: float
    for_s: float
    text: str = ""

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if name != self.metric:
            return False
        for label, kind, expected in self.matchers:
            actual = labels.get(label, "")
            if (actual == expected) != (kind == "="):
                return False
        return True

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.value)


def parse_rule(text: str) -> ThresholdRule:
    match = _RULE.match(text)
    if not match:
        raise RuleError(f"invalid rule {text!r} (expected 'name: metric{{label=\"v\"}} > 0.9 for 30s')")
    matchers = []
    labels = match["labels"] or ""
    pos = 0
    while pos < len(labels.strip()):
        found = _MATCHER.match(labels, pos)
        if not found:
            raise RuleError(f"invalid label matcher in {text!r} near {labels[pos:]!r}")
        matchers.append((found[1], found[2], found[3].replace('\\"', '"').replace("\\\\", "\\")))
        pos = found.end()
    try:
        for_s = duration(match["for"]) if match["for"] else 0.0
    except Exception as exc:
        raise RuleError(f"invalid duration in {text!r}: {exc}") from None
    return ThresholdRule(match["name"], match["metric"], tuple(matchers), match["op"], float(match["value"]),
                         for_s, text.strip())


@dataclass
class RuleState:
    """Per series: since when the condition holds, and whether it already fired in this episode."""

    since: dict[tuple, float] = field(default_factory=dict)
    fired: set[tuple] = field(default_factory=set)


def evaluate(rule: ThresholdRule, samples: Iterable[tuple[str, Mapping[str, str], float]], now_s: float,
             state: RuleState) -> list[dict[str, object]]:
    """Firings (one dict per series that just crossed its `for`) for this round of samples."""
    firings = []
    seen = set()
    for name, labels, value in samples:
        if not rule.matches(name, labels):
            continue
        key = (name, tuple(sorted(labels.items())))
        seen.add(key)
        if not rule.holds(value):
            state.since.pop(key, None)
            state.fired.discard(key)
            continue
        since = state.since.setdefault(key, now_s)
        if now_s - since >= rule.for_s and key not in state.fired:
            state.fired.add(key)
            firings.append({"rule": rule.name, "expr": rule.text, "series": name, "labels": dict(labels),
                            "value": value, "held_s": round(now_s - since, 3)})
    for key in list(state.since):  # a series that vanished no longer holds the condition
        if key not in seen:
            state.since.pop(key, None)
            state.fired.discard(key)
    return firings
