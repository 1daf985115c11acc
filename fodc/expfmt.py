"""The Prometheus text exposition format (and OpenMetrics text), parsed whole and written back.

Upstream's regex parser broke on `}` or escaped quotes inside label values, dropped empty label values and
failed the whole scrape on a sample with a timestamp. This parser handles the full format; a bad line costs
that line (recorded as a ParseError), never the page, and parse() never raises.

Speed comes from `Parser`: a scraped endpoint repeats the same series every time, so the text before the
value ("name{labels}") is looked up in a bounded cache and labels are parsed once per series, not per scrape.
Pure functions over strings: no I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped", "info", "stateset", "gaugehistogram", "unknown"}
_SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "counter": ("_total", "_created"),
    "info": ("_info",),
}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}

Labels = tuple[tuple[str, str], ...]


class ParseError(ValueError):
    """One rejected line: where and why."""

    def __init__(self, line_no: int, line: str, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}: {line[:120]!r}")
        self.line_no = line_no
        self.line = line
        self.reason = reason


class Sample(NamedTuple):
    """One sample; a NamedTuple because a page holds thousands and they are built per scrape."""

    name: str
    labels: Labels
    value: float
    timestamp_ms: int | None = None


@dataclass(slots=True)
class Family:
    name: str
    type: str
    help: str
    unit: str
    samples: list[Sample] = field(default_factory=list)


@dataclass(slots=True)
class ParseResult:
    families: list[Family]
    errors: list[ParseError]

    @property
    def samples(self) -> int:
        return sum(len(f.samples) for f in self.families)


def is_openmetrics(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/openmetrics-text"


# ------------------------------------------------------------------------------------------------ parsing


def _parse_labels(text: str) -> Labels:
    """Parses the inside of {...}; raises ValueError with a reason."""
    labels: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        match = _LABEL_NAME.match(text, i)
        if not match:
            raise ValueError("invalid label name")
        name = match.group()
        i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            raise ValueError(f"expected '=' after label {name}")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != '"':
            raise ValueError(f"expected '\"' to open the value of label {name}")
        i += 1
        chars: list[str] = []
        while True:
            if i >= n:
                raise ValueError(f"unterminated value of label {name}")
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                if i + 1 >= n or text[i + 1] not in _ESCAPES:
                    raise ValueError(f"invalid escape in the value of label {name}")
                chars.append(_ESCAPES[text[i + 1]])
                i += 2
                continue
            chars.append(c)
            i += 1
        if name in labels:
            raise ValueError(f"duplicate label {name}")
        labels[name] = "".join(chars)
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] != ",":
            raise ValueError(f"expected ',' after the value of label {name}")
        i += 1
    return tuple(sorted(labels.items()))


def _split_series(line: str, openmetrics: bool) -> tuple[str, str]:
    """Splits a sample line into the series part (name + labels) and the rest (value, timestamp)."""
    if not openmetrics:
        # Only a value and a timestamp follow the label set, and neither contains '}', so the last '}' closes
        # it even when label values contain '}' (the label parser validates the set on a cache miss).
        close = line.rfind("}")
        if close != -1:
            return line[: close + 1], line[close + 1:]
        name, _, rest = line.partition(" ")
        if not rest:
            raise ValueError("missing value")
        return name, rest
    brace = line.find("{")
    space = line.find(" ")
    if brace == -1 or (space != -1 and space < brace):
        if space == -1:
            raise ValueError("missing value")
        return line[:space], line[space + 1:]
    # The label set ends at the first '}' that is not inside a quoted value.
    i, n, quoted = brace + 1, len(line), False
    while i < n:
        c = line[i]
        if quoted:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "}":
            return line[: i + 1], line[i + 1:]
        i += 1
    raise ValueError("unterminated label set")


def _parse_value(text: str) -> float:
    # Python's float() also takes "1_000"; the exposition format (Go's ParseFloat) does not.
    if "_" in text:
        raise ValueError(f"invalid value {text!r}")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"invalid value {text!r}") from None


class Parser:
    """Parses pages of one endpoint; remembers series it has seen (bounded) to skip re-parsing labels."""

    def __init__(self, max_cache_entries: int = 50_000) -> None:
        self._cache: dict[str, tuple[str, Labels]] = {}
        self.max_cache_entries = max_cache_entries

    def _series(self, series_text: str) -> tuple[str, Labels]:
        cached = self._cache.get(series_text)
        if cached is not None:
            return cached
        brace = series_text.find("{")
        if brace == -1:
            name, labels = series_text, ()
        else:
            name = series_text[:brace].rstrip()
            labels = _parse_labels(series_text[brace + 1: -1])
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        if len(self._cache) >= self.max_cache_entries:
            self._cache.clear()  # a churning endpoint: start over rather than grow without bound
        self._cache[series_text] = (name, labels)
        return name, labels

    def parse(self, text: str, *, openmetrics: bool | None = None) -> ParseResult:
        if openmetrics is None:
            openmetrics = text.rstrip().endswith("# EOF")
        families: dict[str, Family] = {}
        declared: dict[str, Family] = {}
        errors: list[ParseError] = []
        current: Family | None = None
        family_of: dict[str, Family] = {}  # sample name -> family, valid until the next TYPE/HELP line
        for line_no, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line:
                continue
            if line[0] == "#":
                try:
                    current = self._comment(line, raw, families, declared, current)
                    family_of.clear()
                except ValueError as exc:
                    errors.append(ParseError(line_no, raw, str(exc)))
                continue
            try:
                series_text, rest = _split_series(line, openmetrics)
                name, labels = self._series(series_text)
                if openmetrics and " # " in rest:
                    rest = rest.split(" # ", 1)[0]  # an exemplar: accepted and ignored
                parts = rest.split()
                if not parts or len(parts) > 2:
                    raise ValueError("expected a value and an optional timestamp")
                value = _parse_value(parts[0])
                timestamp = None
                if len(parts) == 2:
                    timestamp = (int(round(float(parts[1]) * 1000)) if openmetrics else int(parts[1]))
            except ValueError as exc:
                errors.append(ParseError(line_no, raw, str(exc)))
                continue
            family = family_of.get(name)
            if family is None:
                family = _family_for(name, current, declared)
                if family is None:
                    family = families.get(name)
                    if family is None:
                        family = families[name] = Family(name, "untyped" if not openmetrics else "unknown", "", "")
                elif family.name not in families:
                    families[family.name] = family
                family_of[name] = family
            family.samples.append(Sample(name, labels, value, timestamp))
        return ParseResult([f for f in families.values() if f.samples or f.name in declared], errors)

    @staticmethod
    def _comment(line: str, raw: str, families: dict[str, Family], declared: dict[str, Family],
                 current: Family | None) -> Family | None:
        parts = line[1:].strip().split(None, 2)
        if not parts or parts[0] not in ("HELP", "TYPE", "UNIT"):
            return current  # a plain comment (or # EOF)
        if len(parts) < 2:
            raise ValueError(f"{parts[0]} line without a metric name")
        keyword, name = parts[0], parts[1]
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r} in {keyword}")
        arg = parts[2] if len(parts) > 2 else ""
        family = declared.get(name) or families.get(name)
        if family is None:
            family = Family(name, "untyped", "", "")
        declared[name] = family
        families.setdefault(name, family)
        if keyword == "HELP":
            # From the raw line: help text keeps its inner and trailing spacing (only a CR is dropped).
            after_keyword = raw.index("HELP") + 4
            rest = raw[raw.index(name, after_keyword) + len(name):]
            family.help = _unescape_help(rest.lstrip(" \t").rstrip("\r"))
        elif keyword == "TYPE":
            kind = arg.strip().lower()
            if kind not in _TYPES:
                raise ValueError(f"unknown metric type {arg!r}")
            family.type = kind
        else:
            family.unit = arg.strip()
        return family


def _family_for(name: str, current: Family | None, declared: dict[str, Family]) -> Family | None:
    if current is not None and (name == current.name or
                                any(name == current.name + s for s in _SUFFIXES.get(current.type, ()))):
        return current
    family = declared.get(name)
    if family is not None:
        return family
    for suffix in ("_bucket", "_sum", "_count", "_created", "_total", "_gsum", "_gcount", "_info"):
        if name.endswith(suffix):
            family = declared.get(name[: -len(suffix)])
            if family is not None and suffix in _SUFFIXES.get(family.type, ()):
                return family
    return None


def _unescape_help(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse(text: str, *, openmetrics: bool | None = None) -> ParseResult:
    """Parses one page without a cache; never raises (bad lines are in .errors)."""
    return Parser(max_cache_entries=1 << 30).parse(text, openmetrics=openmetrics)


def parse_strict(text: str) -> list[Family]:
    """Like parse(), but raises the first ParseError (for configuration and tests)."""
    result = parse(text)
    if result.errors:
        raise result.errors[0]
    return result.families


# ------------------------------------------------------------------------------------------------ writing


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_sample(name: str, labels: Labels, value: float, timestamp_ms: int | None = None) -> str:
    """One sample line, newline included."""
    if labels:
        text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
        line = f"{name}{{{text}}} {format_value(value)}"
    else:
        line = f"{name} {format_value(value)}"
    return f"{line} {timestamp_ms}\n" if timestamp_ms is not None else line + "\n"


_TEXT_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def render(families: Iterable[Family]) -> str:
    """Prometheus text format 0.0.4: one HELP/TYPE per family, samples escaped."""
    out: list[str] = []
    for family in families:
        kind = family.type if family.type in _TEXT_TYPES else "untyped"
        out.append(f"# HELP {family.name} {escape_help(family.help)}\n# TYPE {family.name} {kind}\n")
        out.extend(format_sample(s.name, s.labels, s.value, s.timestamp_ms) for s in family.samples)
    return "".join(out)
