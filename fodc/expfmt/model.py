"""The plain data the exposition parser hands out and the renderer takes in.

Frozen where it crosses module boundaries (a Sample is shared between scrapes by the parser's cache, so it
must never change); a Family is a mutable bag because the parser fills it line by line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


class ParseError(ValueError):
    """One rejected line: where and why. str() is one line fit for a log."""

    def __init__(self, line_no: int, line: str, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}: {line[:120]!r}")
        self.line_no = line_no
        self.line = line
        self.reason = reason

    def __reduce__(self):  # keeps the three-argument constructor picklable
        return (type(self), (self.line_no, self.line, self.reason))


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample as written: `name` includes any _bucket/_sum/_count suffix; labels sorted by name."""

    name: str
    labels: Labels
    value: float
    timestamp_ms: int | None = None


@dataclass(slots=True)
class Family:
    """A metric family: its declared (or defaulted) type, help and unit, and its samples in page order."""

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
        """Accepted samples on the page."""
        return sum(len(f.samples) for f in self.families)


# The fast path builds Samples through their slot descriptors, skipping the frozen dataclass __init__.
_new = object.__new__
_slots = vars(Sample)
SET_NAME = _slots["name"].__set__
SET_LABELS = _slots["labels"].__set__
SET_VALUE = _slots["value"].__set__
SET_TIMESTAMP = _slots["timestamp_ms"].__set__


def new_sample(name: str, labels: Labels, value: float, timestamp_ms: int | None) -> Sample:
    """Builds a Sample without the frozen dataclass __init__ (which costs ~2x): the parser makes
    thousands per scrape. Only for callers that have already validated their arguments."""
    sample = _new(Sample)
    SET_NAME(sample, name)
    SET_LABELS(sample, labels)
    SET_VALUE(sample, value)
    SET_TIMESTAMP(sample, timestamp_ms)
    return sample
