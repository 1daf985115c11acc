"""A whole exposition page -> metric families, one bad line costing only that line.

Grouping follows the format: samples after a HELP/TYPE line belong to that family when their name is the
family's or the family's name plus a suffix its type allows (_bucket/_sum/_count for histograms...); a
family whose samples come back later in the page is merged, never emitted twice; samples nobody declared
become `untyped` (`unknown` in OpenMetrics) families.

Speed: a scraped endpoint serves the same series every time, so `Parser` remembers, per series text
("name{labels}"), the parsed name and labels, and also the last value token with the Sample built from it.
A typical line is then one rpartition, one dict lookup and (if the value moved) one float(); lines that are
not in the cache take lexer.plain_series (string methods), and only unusual lines the character-level lexer.
This module does no I/O and never raises on input text.
"""

from __future__ import annotations

from .lexer import lex_comment, lex_sample, parse_timestamp, parse_value, plain_series
from .model import (
    SET_LABELS,
    SET_NAME,
    SET_TIMESTAMP,
    SET_VALUE,
    Family,
    Labels,
    ParseError,
    ParseResult,
    Sample,
    new_sample,
)

_new = object.__new__  # with the SET_* slot setters: Samples without the frozen __init__ (see new_sample)

# Sample names a family holds besides its own, by type. Prometheus text 0.0.4 writes counters, info and
# _created series under their full names, so only OpenMetrics adds those suffixes.
_TEXT_SUFFIXES: dict[str, tuple[str, ...]] = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
_OPENMETRICS_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}
# A cache entry: [name, labels, last value token, Sample built from it, number of the last scrape seen in].
_NAME, _LABELS, _TOKEN, _SAMPLE, _SEEN = range(5)


def is_openmetrics(content_type: str) -> bool:
    """True for an OpenMetrics Content-Type header (the scraper passes the answer to parse())."""
    return content_type.split(";", 1)[0].strip().lower() == "application/openmetrics-text"


def _ends_with_eof(text: str) -> bool:
    return text.rstrip().rsplit("\n", 1)[-1].strip(" \t") == "# EOF"


class _Page:
    """The families of one page while it is being read."""

    __slots__ = ("openmetrics", "suffixes", "default_type", "families", "typed", "family_of", "current", "errors")

    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.suffixes = _OPENMETRICS_SUFFIXES if openmetrics else _TEXT_SUFFIXES
        self.default_type = "unknown" if openmetrics else "untyped"
        self.families: dict[str, Family] = {}
        self.typed: set[str] = set()
        # sample name -> family; valid while `current` stays the same, so cleared on every HELP/TYPE/UNIT.
        self.family_of: dict[str, Family] = {}
        self.current: Family | None = None
        self.errors: list[ParseError] = []

    def family_for(self, name: str) -> Family:
        current = self.current
        if current is not None and (name == current.name or (
                name.startswith(current.name) and name[len(current.name):] in self.suffixes.get(current.type, ()))):
            family = current
        else:
            found = self.families.get(name) or self._by_suffix(name)
            family = found if found is not None else self.families.setdefault(
                name, Family(name, self.default_type, "", "", []))
        self.family_of[name] = family
        return family

    def _by_suffix(self, name: str) -> Family | None:
        """A declared family this sample name extends (its histogram resumed later in the page, say)."""
        for kind_suffixes in self.suffixes.values():
            for suffix in kind_suffixes:
                if name.endswith(suffix):
                    family = self.families.get(name[: -len(suffix)])
                    if family is not None and suffix in self.suffixes.get(family.type, ()):
                        return family
        return None

    def declare(self, keyword: str, name: str, arg: str) -> None:
        """Applies a HELP/TYPE/UNIT line; raises ValueError (changing nothing) when it contradicts the page."""
        family = self.families.get(name)
        if keyword == "TYPE" and family is not None:
            if name in self.typed and family.type != arg:
                raise ValueError(f"second TYPE for {name} ({family.type} before)")
            if name not in self.typed and family.samples:
                raise ValueError(f"TYPE for {name} after its samples")
        if keyword == "HELP" and family is not None and family.help and family.help != arg:
            raise ValueError(f"second HELP for {name} with a different text")
        if family is None:
            family = self.families[name] = Family(name, self.default_type, "", "", [])
        if keyword == "TYPE":
            family.type = arg
            self.typed.add(name)
        elif keyword == "HELP":
            family.help = arg
        else:
            family.unit = arg
        self.current = family
        self.family_of.clear()

    def add(self, sample: Sample) -> None:
        family = self.family_of.get(sample.name) or self.family_for(sample.name)
        family.samples.append(sample)

    def result(self) -> ParseResult:
        return ParseResult(list(self.families.values()), self.errors)


class Parser:
    """Parses pages of one endpoint; remembers the series it has seen (bounded) so a scrape after the first
    mostly skips label parsing and, for values that did not move, float parsing and Sample building too.

    One Parser per endpoint, used by one thread at a time (the scraper's). The cache costs ~0.7 KB per
    series (10k series: ~7 MB, most of it the label tuples the samples share)."""

    def __init__(self, max_cache_entries: int = 50_000) -> None:
        self.max_cache_entries = max_cache_entries
        self._cache: dict[str, list] = {}
        self._scrape = 0

    @property
    def cached_series(self) -> int:
        return len(self._cache)

    def parse(self, text: str, *, openmetrics: bool | None = None) -> ParseResult:
        """Never raises: each rejected line is one ParseError in the result."""
        if openmetrics is None:
            openmetrics = _ends_with_eof(text)
        self._scrape += 1
        scrape = self._scrape
        page = _Page(openmetrics)
        cache, family_of, family_for = self._cache, page.family_of, page.family_for
        new, set_name, set_labels, set_value, set_timestamp = _new, SET_NAME, SET_LABELS, SET_VALUE, SET_TIMESTAMP
        max_entries = self.max_cache_entries
        lines = text.split("\n")
        line_no = 0
        for line in lines:
            line_no += 1
            # The fast path: "name{labels} value" with the series seen before. The cache holds only series
            # texts the full lexer accepted, so any line `key + " " + token` means the same as there.
            head, _, token = line.rpartition(" ")
            entry = cache.get(head)
            if entry is None:  # a series not seen before, most often in the common shape
                parsed = plain_series(head)
                if parsed is not None:
                    entry = [parsed[0], parsed[1], None, None, scrape]
                    if len(cache) < max_entries:
                        cache[head] = entry
                    elif max_entries:
                        entry = self._remember(head, parsed[0], parsed[1], scrape) or entry
            if entry is not None:
                entry[_SEEN] = scrape
                if token == entry[_TOKEN]:
                    sample = entry[_SAMPLE]
                else:
                    try:
                        value = float(token)
                    except ValueError:
                        value = float("nan")
                    if value - value != 0.0 or "_" in token or not token.isascii():
                        self._line(page, line_no, line, scrape)  # let the full lexer decide and explain
                        continue
                    sample = new(Sample)
                    set_name(sample, entry[_NAME])
                    set_labels(sample, entry[_LABELS])
                    set_value(sample, value)
                    set_timestamp(sample, None)
                    entry[_TOKEN] = token
                    entry[_SAMPLE] = sample
                family = family_of.get(entry[_NAME]) or family_for(entry[_NAME])
                family.samples.append(sample)
                continue
            if self._line(page, line_no, line, scrape):
                break  # "# EOF"
        if line_no < len(lines):
            for n in range(line_no, len(lines)):
                if lines[n].strip(" \t\r"):
                    page.errors.append(ParseError(n + 1, lines[n], "content after # EOF"))
        elif openmetrics:
            page.errors.append(ParseError(line_no, lines[-1], "missing # EOF (truncated page?)"))
        return page.result()

    def _line(self, page: _Page, line_no: int, line: str, scrape: int) -> bool:
        """Any line the fast path did not take; True at "# EOF"."""
        stripped = line.strip(" \t")
        if not stripped or stripped == "\r":
            return False
        try:
            if stripped[0] == "#":
                comment = lex_comment(line, page.openmetrics)
                if comment is not None:
                    if comment[0] == "EOF":
                        return True
                    page.declare(*comment)
                return False
            if self._plain(page, stripped, scrape):
                return False
            name, labels, series_end, value, timestamp = lex_sample(stripped, page.openmetrics)
        except ValueError as exc:
            page.errors.append(ParseError(line_no, line, str(exc)))
            return False
        entry = self._cache.get(stripped[:series_end])
        if entry is None:
            self._remember(stripped[:series_end], name, labels, scrape)
        else:
            entry[_SEEN] = scrape
        page.add(new_sample(name, labels, value, timestamp))
        return False

    def _plain(self, page: _Page, line: str, scrape: int) -> bool:
        """`series value` or `series value timestamp` in the common shape; False leaves the line to lex_sample."""
        head, _, last = line.rpartition(" ")
        entry = self._series(head, scrape)
        if entry is not None:
            value_token, timestamp_token = last, None
        else:
            head, _, value_token = head.rpartition(" ")
            entry = self._series(head, scrape)
            if entry is None:
                return False
            timestamp_token = last
        try:
            value = parse_value(value_token)
            timestamp = None if timestamp_token is None else parse_timestamp(timestamp_token, page.openmetrics)
        except ValueError:
            return False
        sample = new_sample(entry[_NAME], entry[_LABELS], value, timestamp)
        if timestamp is None:
            entry[_TOKEN], entry[_SAMPLE] = value_token, sample
        page.add(sample)
        return True

    def _series(self, text: str, scrape: int) -> list | None:
        entry = self._cache.get(text)
        if entry is not None:
            entry[_SEEN] = scrape
            return entry
        parsed = plain_series(text)
        if parsed is None:
            return None
        return self._remember(text, parsed[0], parsed[1], scrape) or [parsed[0], parsed[1], None, None, scrape]

    def _remember(self, key: str, name: str, labels: Labels, scrape: int) -> list | None:
        cache = self._cache
        if len(cache) >= self.max_cache_entries:
            if not self.max_cache_entries:
                return None
            self._make_room(scrape)
        entry = cache[key] = [name, labels, None, None, scrape]
        return entry

    def _make_room(self, scrape: int) -> None:
        """Forgets series gone since the previous scrape, then (if still near full) all not in this one, and
        as a last resort everything: bounded memory beats hit rate for an endpoint with churning series."""
        cache = self._cache
        for keep_since in (scrape - 1, scrape):
            for key in [k for k, entry in cache.items() if entry[_SEEN] < keep_since]:
                del cache[key]
            if len(cache) < self.max_cache_entries * 3 // 4:
                return
        cache.clear()


def parse(text: str, *, openmetrics: bool | None = None) -> ParseResult:
    """Parses one page without a cache; never raises (bad lines are in .errors)."""
    return Parser(max_cache_entries=0).parse(text, openmetrics=openmetrics)


def parse_strict(text: str) -> list[Family]:
    """Like parse(), but raises the first ParseError (for configuration and tests)."""
    result = parse(text)
    if result.errors:
        raise result.errors[0]
    return result.families
