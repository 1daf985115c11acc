"""Families -> Prometheus text format 0.0.4, the format every Prometheus (and promtool) reads.

One HELP and one TYPE per family. Types 0.0.4 lacks are written as their nearest kin (info and stateset as
gauge, gaugehistogram as histogram, unknown as untyped), and OpenMetrics-only samples (`_created`,
`_gsum`, `_gcount`) move to their own gauge families after the family, as 0.0.4 parsers expect.
Values are written as Go writes them for the special cases (NaN, +Inf, -Inf) and otherwise as short as
exact: integral values without an exponent below 1e16, everything else as Python's shortest round-trip repr.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Family, Labels

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

_TEXT_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary",
              "untyped": "untyped", "unknown": "untyped", "info": "gauge", "stateset": "gauge",
              "gaugehistogram": "histogram"}
_SPLIT_OFF = {"counter": ("_created",), "histogram": ("_created",), "summary": ("_created",),
              "gaugehistogram": ("_gsum", "_gcount")}
_RENAMED = {"counter": "_total", "info": "_info"}  # OpenMetrics family name -> 0.0.4 sample family name


def escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def escape_help(text: str) -> str:
    if "\\" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n")
    return text


def format_value(value: float) -> str:
    if type(value) is not float:
        value = float(value)
    if value.is_integer():
        if -1e16 < value < 1e16:
            return "-0" if value == 0 and str(value)[0] == "-" else str(int(value))
        return repr(value)
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "+Inf"
    if value == float("-inf"):
        return "-Inf"
    return repr(value)


def format_labels(labels: Labels) -> str:
    """`{a="x",b="y"}`, or "" for no labels."""
    if not labels:
        return ""
    return "{" + ",".join([f'{name}="{escape_label_value(value)}"' for name, value in labels]) + "}"


def format_sample(name: str, labels: Labels, value: float, timestamp_ms: int | None = None) -> str:
    """One sample line, newline included."""
    if timestamp_ms is None:
        return f"{name}{format_labels(labels)} {format_value(value)}\n"
    return f"{name}{format_labels(labels)} {format_value(value)} {int(timestamp_ms)}\n"


def header(name: str, help_text: str, kind: str) -> str:
    """The HELP and TYPE lines of one text-format family."""
    return f"# HELP {name} {escape_help(help_text)}\n# TYPE {name} {kind}\n"


def text_family(family: str, kind: str, sample: str) -> tuple[str, str]:
    """The text 0.0.4 family a sample of `family` (of OpenMetrics or text type `kind`) is written under, and
    that family's 0.0.4 type: `req_total` of counter `req` goes under `req_total` (counter), `req_created`
    under its own gauge `req_created`, `build_info` of info `build` under gauge `build_info`. The proxy's
    page and render() both place samples by this one rule."""
    suffixes = _SPLIT_OFF.get(kind)
    if suffixes and sample.startswith(family) and sample[len(family):] in suffixes:
        return sample, "gauge"
    renamed = _RENAMED.get(kind)
    if renamed and sample == family + renamed:
        return sample, _TEXT_TYPE[kind]
    return family, _TEXT_TYPE.get(kind, "untyped")


def render(families: Iterable[Family]) -> str:
    """Prometheus text format 0.0.4; a family's type travels (a counter stays a counter)."""
    out: list[str] = []
    append = out.append
    for family in families:
        # text family -> (type, its lines); the family's own samples first, then what splits off
        groups: dict[str, tuple[str, list[str]]] = {}
        placed: dict[str, tuple[str, list[str]]] = {}  # sample name -> its group (names repeat per series)
        for sample in family.samples:
            group = placed.get(sample.name)
            if group is None:
                text_name, kind = text_family(family.name, family.type, sample.name)
                group = groups.get(text_name)
                if group is None:
                    group = groups[text_name] = (kind, [])
                placed[sample.name] = group
            if sample.timestamp_ms is None:
                group[1].append(f"{sample.name}{format_labels(sample.labels)} {format_value(sample.value)}\n")
            else:
                group[1].append(format_sample(sample.name, sample.labels, sample.value, sample.timestamp_ms))
        if not groups:  # a declared family without samples still has its header
            groups[family.name] = (_TEXT_TYPE.get(family.type, "untyped"), [])
        for text_name, (kind, lines) in groups.items():
            append(header(text_name, family.help, kind))
            out.extend(lines)
    return "".join(out)
