"""One line of the exposition format, taken apart: a sample line into name, labels, value and timestamp; a
comment into HELP/TYPE/UNIT/EOF. It knows nothing of families or pages (that is parser.py).

Two ways in for a sample: `plain_series`, string methods for the shape nearly every real line has (no
escapes, single spaces), and `lex_sample`, a character-level reader for everything the format allows
(escapes, `}` or `#` inside quoted values, blanks around tokens, exemplars). plain_series only ever accepts
a subset of what lex_sample accepts, with the same meaning; it exists for speed.

Value syntax follows the Prometheus server: what Go's ParseFloat accepts, minus hexadecimal floats and
underscores (the server refuses those too), and an overflow such as `1e999` is an error rather than +Inf.
Errors are ValueError with a reason; the page parser turns them into ParseError with the line number.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from sys import intern
from typing import Any

from .model import Labels

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped",
                   "info", "stateset", "gaugehistogram", "unknown"})

_BLANKS = " \t"
_VALUE_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_HELP_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def plain_series(text: str) -> tuple[str, Labels] | None:
    """The series text `name{a="x",b="y"}` in the common shape (no blanks outside values, no backslash) ->
    (name, labels); None when the text needs lex_sample (which may still accept it) or is invalid.

    Without backslashes, quotes only delimit values, so the text with its values emptied (the "shape",
    e.g. `name{a="",b=""}`) is shared by every series of a metric: it is validated once and remembered with
    the order that sorts its label names."""
    if "\\" in text:
        return None
    pieces = text.split('"')
    if len(pieces) == 1:  # no quotes: `name` or `name{}`
        name = text[:-2] if text.endswith("{}") else text
        if not (name.isascii() and (name.isidentifier() or METRIC_NAME.fullmatch(name))):
            return None
        return name, ()
    if not len(pieces) % 2 or text[-1] != "}":
        return None
    shape = '""'.join(pieces[0::2])
    known = _SHAPES.get(shape)
    if known is None:
        known = _SHAPES[shape] = _learn_shape(shape)
        if len(_SHAPES) > _MAX_SHAPES:
            _SHAPES.clear()
    if not known:
        return None
    name, names, pick = known
    # Values are interned: a node repeats each group, shard and node name across hundreds of series.
    if pick is None:
        return name, ((names[0], intern(pieces[1])),)
    return name, tuple(zip(names, map(intern, pick(pieces[1::2])), strict=False))  # the shape fixes the count


_SHAPE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="",)*[a-zA-Z_][a-zA-Z0-9_]*="",?)\}')
_SHAPE_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)=""')
# (metric name, label names sorted, a picker putting the values in that order; None for one label)
_Shape = tuple[str, tuple[str, ...], Callable[[list[str]], Any] | None]
_SHAPES: dict[str, _Shape | None] = {}
_MAX_SHAPES = 20_000


def _learn_shape(shape: str) -> _Shape | None:
    """A series shape (`name{a="",b=""}`) learnt once; None when it is not a valid one."""
    match = _SHAPE.fullmatch(shape)
    if match is None:
        return None
    names = _SHAPE_LABEL.findall(match.group(2))
    if len(set(names)) != len(names):
        return None  # a duplicate label: lex_sample names it
    order = sorted(range(len(names)), key=names.__getitem__)
    pick = operator.itemgetter(*order) if len(order) > 1 else None
    return match.group(1), tuple(names[i] for i in order), pick


def parse_value(token: str) -> float:
    if not token.isascii() or "_" in token:  # Python's float() takes "1_0" and non-ASCII digits; Go does not
        raise ValueError(f"invalid value {token!r}")
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"invalid value {token!r}") from None
    if value - value != 0.0:  # NaN or an infinity: only when spelled out, never from an overflow
        word = token.strip().lower()
        if word not in ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"):
            raise ValueError(f"value out of range {token!r}")
    return value


def parse_timestamp(token: str, openmetrics: bool) -> int:
    """Milliseconds: Prometheus text writes integer ms, OpenMetrics float seconds."""
    if not token.isascii() or "_" in token:
        raise ValueError(f"invalid timestamp {token!r}")
    if openmetrics:
        try:
            seconds = parse_value(token)
        except ValueError:
            seconds = float("nan")
        if seconds - seconds != 0.0:
            raise ValueError(f"invalid timestamp {token!r}")
        return int((Decimal(token.strip()) * 1000).to_integral_value())  # exact: no binary rounding of ms
    try:
        timestamp = int(token)
    except ValueError:
        raise ValueError(f"invalid timestamp {token!r}") from None
    if not -(1 << 63) <= timestamp < (1 << 63):
        raise ValueError(f"timestamp out of range {token!r}")
    return timestamp


def _skip_blanks(line: str, i: int) -> int:
    n = len(line)
    while i < n and line[i] in _BLANKS:
        i += 1
    return i


def _lex_labels(line: str, i: int) -> tuple[Labels, int]:
    """Reads a label set whose '{' is at line[i - 1]; returns the labels and the index after '}'."""
    labels: dict[str, str] = {}
    n = len(line)
    while True:
        i = _skip_blanks(line, i)
        if i < n and line[i] == "}":
            return tuple(sorted(labels.items())), i + 1
        match = LABEL_NAME.match(line, i)
        if not match:
            raise ValueError("invalid label name" if i < n else "unterminated label set")
        name = match.group()
        i = _skip_blanks(line, match.end())
        if i >= n or line[i] != "=":
            raise ValueError(f"expected '=' after label {name}")
        i = _skip_blanks(line, i + 1)
        if i >= n or line[i] != '"':
            raise ValueError(f"expected '\"' to open the value of label {name}")
        i += 1
        chunks: list[str] = []
        while True:
            end = line.find('"', i)
            slash = line.find("\\", i, end if end != -1 else n)
            if slash == -1:
                if end == -1:
                    raise ValueError(f"unterminated value of label {name}")
                chunks.append(line[i:end])
                i = end + 1
                break
            chunks.append(line[i:slash])
            escaped = _VALUE_ESCAPES.get(line[slash + 1: slash + 2])
            if escaped is None:
                raise ValueError(f"invalid escape in the value of label {name}")
            chunks.append(escaped)
            i = slash + 2
        if name in labels:
            raise ValueError(f"duplicate label {name}")
        labels[name] = "".join(chunks)
        i = _skip_blanks(line, i)
        if i >= n:
            raise ValueError("unterminated label set")
        if line[i] == ",":
            i += 1
        elif line[i] != "}":
            raise ValueError(f"expected ',' or '}}' after the value of label {name}")


def lex_sample(line: str, openmetrics: bool) -> tuple[str, Labels, int, float, int | None]:
    """A sample line without surrounding blanks -> (name, labels, end of the series text, value, timestamp)."""
    match = METRIC_NAME.match(line)
    if not match:
        raise ValueError("invalid metric name")
    name = match.group()
    i = series_end = match.end()
    j = _skip_blanks(line, i)
    labels: Labels = ()
    if j < len(line) and line[j] == "{":
        labels, i = _lex_labels(line, j + 1)
        series_end = i
    elif j == i and j < len(line):
        raise ValueError("invalid metric name")  # e.g. "foo-bar 1": the name ran into something else
    rest = line[i:]
    if openmetrics:
        rest = rest.split(" # ", 1)[0]  # an exemplar: accepted and ignored
    tokens = rest.replace("\t", " ").split(" ")
    tokens = [t for t in tokens if t]
    if not tokens:
        raise ValueError("missing value")
    if len(tokens) > 2:
        raise ValueError("expected a value and an optional timestamp")
    value = parse_value(tokens[0])
    timestamp = parse_timestamp(tokens[1], openmetrics) if len(tokens) == 2 else None
    return name, labels, series_end, value, timestamp


def unescape_help(text: str, openmetrics: bool) -> str:
    r"""HELP escapes are \\ and \n (and \" in OpenMetrics); any other backslash is kept as written."""
    if "\\" not in text:
        return text
    known = '\\n"' if openmetrics else "\\n"

    def replace(match: re.Match[str]) -> str:
        char = match.group(1)
        if char not in known:
            return match.group()
        return "\n" if char == "n" else char

    return _HELP_ESCAPE.sub(replace, text)


def _token(text: str) -> tuple[str, str]:
    """Splits off the first blank-separated token; the rest keeps its trailing blanks."""
    text = text.lstrip(_BLANKS)
    for i, char in enumerate(text):
        if char in _BLANKS:
            return text[:i], text[i:].lstrip(_BLANKS)
    return text, ""


def lex_comment(line: str, openmetrics: bool) -> tuple[str, str, str] | None:
    """A line starting with '#' (after blanks) -> (keyword, metric name, argument), None for a plain comment.

    keyword is HELP (argument: the unescaped help text), TYPE (a lower-case type), UNIT, or EOF in
    OpenMetrics. HELP keeps trailing blanks: they are part of the text.
    """
    if line.endswith("\r"):
        line = line[:-1]  # CRLF line ends are tolerated
    keyword, rest = _token(line.lstrip(_BLANKS)[1:])
    if keyword not in ("HELP", "TYPE", "UNIT"):
        if openmetrics and line.strip(_BLANKS) == "# EOF":
            return "EOF", "", ""
        return None
    name, arg = _token(rest)
    if not name:
        raise ValueError(f"{keyword} line without a metric name")
    if not METRIC_NAME.fullmatch(name):
        raise ValueError(f"invalid metric name {name!r} in {keyword}")
    if keyword == "HELP":
        return keyword, name, unescape_help(arg, openmetrics)
    arg = arg.strip(_BLANKS)
    if keyword == "TYPE":
        kind = arg.lower()
        if kind not in TYPES:
            raise ValueError(f"unknown metric type {arg!r}")
        return keyword, name, kind
    if any(c in _BLANKS for c in arg):
        raise ValueError(f"invalid unit {arg!r}")
    return keyword, name, arg
