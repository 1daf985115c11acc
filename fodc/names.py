"""Which metrics a query means: one grammar for `fodc window --name`, `fodc dump --name` and
/metrics-windows `name=`, turned into one RE2 pattern (fodc.saferegex) that agents and the CLI match alike.

A selection is either `~REGEX` (RE2 syntax, the whole text after `~`, commas included) or a comma-separated
list of terms, each an exact name or a glob (`*`, `?`, `[abc]`). A series is selected when its family name
or its sample name matches in full: `banyandb_write_latency` brings the histogram's buckets, sums and counts;
`banyandb_*_latency_bucket` or `~banyandb_.*_latency_bucket` brings only the bucket series.
"""

from __future__ import annotations

import argparse
import re

from fodc.saferegex import FullMatcher, PatternError, compile_pattern

# The sample names a family's series may have, so a family can be picked before its samples are decoded.
SAMPLE_SUFFIXES = ("", "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum")
_GLOB = frozenset("*?[")


def glob_pattern(glob: str) -> str:
    """A shell glob as an RE2 pattern: `*` any run, `?` one character, `[...]`/`[!...]` a class."""
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def selection_pattern(text: str) -> str | None:
    """The RE2 pattern for a selection (None: everything); PatternError names what is wrong."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("~"):
        pattern = text[1:]
        if not pattern:
            raise PatternError("~ needs a regular expression after it")
    else:
        terms = [term.strip() for term in text.split(",") if term.strip()]
        pattern = "|".join(f"(?:{glob_pattern(t) if _GLOB & set(t) else re.escape(t)})" for t in terms)
    compile_pattern(pattern)  # refused here, with the reason, rather than on every agent
    return pattern


class NameSelector:
    """A compiled selection: which families may hold wanted series, and which series are wanted."""

    def __init__(self, pattern: str | None) -> None:
        self.matcher: FullMatcher | None = compile_pattern(pattern) if pattern else None

    def family_may_match(self, family: str) -> bool:
        if self.matcher is None:
            return True
        return any(self.matcher.fullmatch(family + suffix) is not None for suffix in SAMPLE_SUFFIXES)

    def matches(self, family: str, name: str) -> bool:
        if self.matcher is None:
            return True
        return self.matcher.fullmatch(family) is not None or self.matcher.fullmatch(name) is not None


def name_arg(text: str) -> str:
    """argparse type: a selection checked here, so a bad one is a usage error before anything is asked."""
    try:
        selection_pattern(text)
    except PatternError as exc:
        raise argparse.ArgumentTypeError(f"invalid name selection {text!r}: {exc}") from None
    return text


def combined(selections: list[str]) -> str | None:
    """Several selections (repeated --name) as one pattern: a series is wanted when any of them wants it."""
    patterns = [p for p in (selection_pattern(s) for s in selections) if p]
    return "|".join(f"(?:{p})" for p in patterns) or None
