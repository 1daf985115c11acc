"""The proxy's copy of one agent stream's series table, and the page lines of a LatestSamples answer.

An agent defines each series once (fodc/agent/series_table.py); the proxy checks its names then and keeps,
per id, the line's opening (`name{own labels,`) and its text family. A /metrics answer is then ids and
values: the lines are the stored openings, the node's labels and the formatted values, joined by C-level
list slicing and str.join, with no per-label work. The order that keeps each text family's lines together
is worked out once per distinct sequence of ids and reused while the node reports the same series.

The proxy asks for the values as text (`LatestSamples.value_text`): the agent formats each scrape's values
once, and the proxy checks the whole text against the value grammar in one RE2 pass (C speed, no per-value
Python call) and splits it into the lines' last parts. Formatting every value here was most of
the page's remaining cost (0.65 ms of ~1 ms per 5,000-series agent).

A reply that uses an id the proxy does not hold, repeats an id, or whose values do not match its ids (or are
not values as the exposition writes them) is refused whole (the agent is listed missing, the refusal counted)
and the table starts over, so the next request asks for every definition again.
"""

from __future__ import annotations

import math
import sys
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fodc import expfmt
from fodc.proxy.page_names import NameCheck, NodeSuffix, bad_bound, stray_sample
from fodc.saferegex import compile_pattern
from fodc.series_digest import ids_digest
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import series_table_pb2 as st

MAX_TABLE_IDS = 262_144  # ids one agent's table may use; a definition above is refused
# Text one agent's table may keep (5,000 series of a data node take ~0.5 MiB): the table outlives the answer
# that filled it, so an agent defining ever more or ever longer series must hit a bound.
MAX_TABLE_BYTES = 32 * 1024 * 1024
MAX_HELP = 1024
# Values as fodc.expfmt.format_value writes them, each with its "\n": integers, decimals, scientific notation
# with a 2-3 digit exponent (at most e+309: a larger one overflows, and one such value makes Prometheus refuse
# the whole page), NaN, +Inf, -Inf. Each is a float Prometheus reads, except the e+30x ones that
# overflow (checked apart: rare). RE2: linear in the text with no state per line (Python's re keeps
# ~500 bytes per repeated line until the match ends); ~0.03 ms for 5,000 values.
_VALUE_TEXT: Any = compile_pattern(  # an RE2 object: it matches bytes as well as text
    r"(?:-?[0-9]{1,17}(?:\.[0-9]{1,24})?\n|-?[0-9](?:\.[0-9]{1,17})?e(?:-[0-9]{2,3}|\+(?:[0-2]?[0-9]{2}|30[0-9]))\n"
    r"|NaN\n|[+-]Inf\n)*")
_REFUSED = 0xFFFFFFFF  # family slot of an id whose names failed the checks
_UNDEFINED = 0xFFFFFFFE


class TableMismatch(ValueError):
    """The reply does not fit the table the proxy holds; the message names why."""


@dataclass(slots=True)
class _Layout:
    """How one sequence of ids becomes page lines: kept positions grouped by text family."""

    ids: array
    closing: str
    order: list[int] | None  # positions of kept values in page order; None: all, as sent
    groups: list[tuple[int, int, int]]  # (family slot, start, end) over the kept values
    openings: list[str]
    closings: list[str]
    refused: int  # values left out because their series' names were refused


@dataclass(slots=True)
class TableLines:
    """One answer's page lines: three parts per line (opening, closing, value with its newline) in `parts`,
    grouped by text family as (family (text name, type, help), first line, end line)."""

    groups: list[tuple[tuple[str, str, str], int, int]]
    parts: list[str]
    refused: int  # series left out because their names were refused

    def text(self, start: int, end: int) -> str:
        return "".join(self.parts[3 * start:3 * end])


def chunk_series(latest: st.LatestSamples) -> int:
    """The series one LatestSamples chunk carries, for the link's cap on series per reply: its ids, values or
    value lines, whichever are most (an answer that leaves its ids out still counts every value), and its
    definitions."""
    return max(len(latest.ids), len(latest.values), latest.value_text.count(b"\n")) + len(latest.defined)


def _value_lines(data: bytes) -> list[str]:
    """The values of a `value_text`, each with its newline; TableMismatch unless all are values Prometheus
    reads."""
    if not _VALUE_TEXT.fullmatch(data):
        raise TableMismatch("value_text holds something that is not a value as the exposition writes it")
    # Only digits, signs, points, e, NaN, Inf and newlines are left: ASCII, and no other line breaks.
    lines = data.decode("ascii").splitlines(keepends=True)
    if b"e+3" in data and not all(math.isfinite(float(line)) for line in lines if "e+3" in line):
        raise TableMismatch("value_text holds a value beyond the largest float")
    return lines


class AgentSeriesTable:
    """Definitions of one agent stream's series: what to ask for (`state`) and how to write an answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset(0)

    def _reset(self, table_id: int) -> None:
        self.table_id = table_id
        self._openings: list[str | tuple[str, tuple[tuple[str, str], ...]] | None] = []
        self._family_of = array("I")
        self._families: list[tuple[str, str, str]] = []  # slot -> (text family, type, help)
        self._family_slots: dict[tuple[str, str, str], int] = {}
        self._known = 0
        self._bytes = 0
        self._layout: _Layout | None = None
        self._held_ids = array("I")  # the order of ids of the last answer, and its digest (0: none yet)
        self._held_digest = 0

    def state(self) -> st.SeriesTableState:
        with self._lock:
            return st.SeriesTableState(wanted=True, table_id=self.table_id, known=self._known, value_text=True,
                                       ids_digest=self._held_digest)

    @property
    def size(self) -> int:
        return len(self._openings)

    def lines(self, chunks: Iterable[pb.MetricsReply], node: NodeSuffix, names: NameCheck) -> TableLines:
        """The page lines of one complete answer, with series refused for their names; raises TableMismatch
        (and forgets the table) when the answer does not fit."""
        with self._lock:
            try:
                return self._lines(chunks, node, names)
            except TableMismatch:
                self._reset(0)
                raise

    def _lines(self, chunks: Iterable[pb.MetricsReply], node: NodeSuffix, names: NameCheck) -> TableLines:
        ids = array("I")
        values: list[float] = []
        texts: list[bytes] = []
        digests: set[int] = set()
        for chunk in chunks:
            latest = chunk.latest
            if latest.table_id != self.table_id:
                if ids:
                    raise TableMismatch("a reply's chunks name different series tables")
                self._reset(latest.table_id)
            self._define(latest.defined, node, names)
            ids.extend(latest.ids)
            if latest.ids_digest:
                digests.add(latest.ids_digest)
            if latest.value_text:
                texts.append(latest.value_text)
            values.extend(latest.values)
        if texts:
            if values:
                raise TableMismatch("a reply sends values both as numbers and as text")
            formatted = _value_lines(b"".join(texts))
        else:
            formatted = [expfmt.format_value(value) + "\n" for value in values]
        if digests:  # the ids left out: the order this table holds, or the answer is of no use
            if ids or len(digests) > 1 or digests.pop() != self._held_digest:
                raise TableMismatch("a reply leaves out its ids but not in an order the proxy holds")
            ids = self._held_ids
        elif ids != self._held_ids or not self._held_digest:
            self._held_ids, self._held_digest = ids, ids_digest(ids)
        if len(ids) != len(formatted):
            raise TableMismatch(f"{len(ids)} series ids but {len(formatted)} values")
        layout = self._layout
        if layout is None or layout.closing != node.closing or (layout.ids is not ids and layout.ids != ids):
            layout = self._layout = self._arrange(ids, node)
        if layout.order is not None:
            formatted = [formatted[i] for i in layout.order]
        count = len(formatted)
        parts: list[str] = [""] * (3 * count)
        parts[0::3] = layout.openings
        parts[1::3] = layout.closings
        parts[2::3] = formatted
        return TableLines([(self._families[slot], start, end) for slot, start, end in layout.groups], parts,
                          layout.refused)

    def _define(self, definitions: Iterable[st.SeriesDefinition], node: NodeSuffix, names: NameCheck) -> None:
        """Takes new definitions; a series whose names fail the checks is kept as refused (left out of pages)."""
        openings, family_of = self._openings, self._family_of
        for d in definitions:
            number = d.id
            if number >= MAX_TABLE_IDS:
                raise TableMismatch(f"series id {number} above the table's cap of {MAX_TABLE_IDS}")
            self._bytes += len(d.family) + len(d.sample_name) + len(d.help) + sum(len(text) for text in d.labels)
            if self._bytes > MAX_TABLE_BYTES:
                raise TableMismatch(f"series definitions beyond the table's cap of {MAX_TABLE_BYTES} bytes")
            if number >= len(openings):
                grow = number + 1 - len(openings)
                openings.extend([None] * grow)
                family_of.extend([_UNDEFINED] * grow)
            self._layout = None
            flat = list(d.labels)
            sample = d.sample_name or d.family
            labels = tuple(zip(flat[0::2], flat[1::2], strict=False))
            text_name, kind = expfmt.text_family(d.family, d.type, sample)
            if (len(flat) % 2 or names.bad_family(d.family)
                    or names.bad_sample(d.family, sample, [name for name, _ in labels]) or bad_bound(kind, labels)
                    or stray_sample(text_name, kind, sample)):
                openings[number] = ""
                family_of[number] = _REFUSED
                continue
            key = (text_name, kind, d.help[:MAX_HELP])
            slot = self._family_slots.get(key)
            if slot is None:
                slot = self._family_slots[key] = len(self._families)
                self._families.append((sys.intern(text_name), kind, key[2]))
            family_of[number] = slot
            # Nodes of one role mostly report the same series: their openings are shared, not copied.
            openings[number] = (sample, labels) if node.clashes(labels) else sys.intern(node.opening(sample, labels))
        known = self._known
        while known < len(openings) and openings[known] is not None:
            known += 1
        self._known = known

    def _arrange(self, ids: array, node: NodeSuffix) -> _Layout:
        if len(set(ids)) != len(ids):
            raise TableMismatch("a series id repeated in one reply")
        family_of, openings = self._family_of, self._openings
        size = len(openings)
        by_family: dict[int, list[int]] = {}
        refused = 0
        for position, number in enumerate(ids):
            slot = family_of[number] if number < size else _UNDEFINED
            if slot == _UNDEFINED:
                raise TableMismatch(f"series id {number} was never defined")
            if slot == _REFUSED:
                refused += 1
                continue
            group = by_family.get(slot)
            if group is None:
                group = by_family[slot] = []
            group.append(position)
        order = [position for group in by_family.values() for position in group]
        groups, start = [], 0
        for slot, group in by_family.items():
            groups.append((slot, start, start + len(group)))
            start += len(group)
        page_openings, closings = [], []
        for position in order:
            opening = openings[ids[position]]
            if isinstance(opening, tuple):  # its own labels clash with ours: written whole, merged
                page_openings.append(node.whole(*opening))
                closings.append("")
            else:
                page_openings.append(opening)
                closings.append(node.closing)
        in_order = order == list(range(len(ids)))
        return _Layout(ids, node.closing, None if in_order else order, groups, page_openings, closings, refused)
