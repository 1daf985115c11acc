"""The agent's series table for /metrics answers: each series' name and labels go to the proxy once, then only
its id and newest value (proto/fodc/v1/series_table.proto).

A /metrics answer repeated every label of every series, and the proxy spent most of its page time reading and
formatting them again (issue 22). Now the agent numbers its series in one table (shared by every request on
every stream) and defines to the proxy only the ids the proxy does not say it holds. A table that has grown
well past the series the node still reports (series churn) is dropped and numbered afresh under a new id,
which makes the proxy ask for every definition again.

What an answer holds changes once per scrape, not per request: the ids and the values' text
(`LatestSamples.value_text`, formatted here so that the proxy only copies it) are worked out once per scrape
(`answer`'s `scrape` key) and every later request of that scrape copies the chunks built then.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field

from fodc.expfmt import format_value
from fodc.series_digest import ids_digest
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import series_table_pb2 as st
from fodc.window import SeriesWindow

# Room for the reply envelope (request id, seq, table id) on top of the ids, values and definitions.
_ENVELOPE = 1024
_PER_SAMPLE = 16  # a varint id (up to 5 bytes) and a double, packed
_PER_ID = 6  # a varint id, packed; the value's text is counted by its length


@dataclass(slots=True)
class _Scrape:
    """One scrape's answer, numbered and formatted: reused by every request until the next scrape. Kept
    between requests are only the chunks built (no series: a request that needs definitions lists them anew)."""

    key: Hashable
    table_id: int
    series: list[SeriesWindow]
    ids: list[int]
    top: int  # one past the largest id: a proxy that holds every id below it needs no definitions
    digest: int = 0  # of the order of ids (fodc.series_digest), once asked for
    texts: list[str] = field(default_factory=list)  # each value's text with its "\n" (value_text answers)
    # (max_bytes, values as text, ids left out) -> the chunks for a proxy holding every definition
    chunks: dict[tuple[int, bool, bool], list[pb.MetricsReply]] = field(default_factory=dict)

    def ids_digest(self) -> int:
        if not self.digest:
            self.digest = ids_digest(self.ids)
        return self.digest

    def shape(self, max_bytes: int, held: st.SeriesTableState) -> tuple[int, bool, bool]:
        return max_bytes, held.value_text, held.value_text and held.ids_digest == self.ids_digest()

    def lean(self) -> _Scrape:
        """What is kept for later requests of the scrape: its key, table, top id, digest and chunks."""
        return _Scrape(self.key, self.table_id, [], [], self.top, self.ids_digest(), chunks=self.chunks)


class SeriesTable:
    """Series identity -> id, under one random table id; thread-safe (requests are answered on a pool)."""

    def __init__(self, max_ids: int = 1_000_000) -> None:
        self.max_ids = max_ids
        self._lock = threading.Lock()
        self._ids: dict[tuple, int] = {}
        self.table_id = self._new_id()
        self._scrape: _Scrape | None = None

    @staticmethod
    def _new_id() -> int:
        return secrets.randbits(63) or 1

    def number(self, series: list[SeriesWindow]) -> tuple[int, list[int]]:
        """(table id, the id of each series); renumbers from scratch when the table outgrew the node's series."""
        keys = [(s.family or s.name, s.name, s.labels, s.type, s.help) for s in series]
        with self._lock:
            ids = self._ids
            if len(ids) > min(self.max_ids, 2 * len(keys) + 10_000):
                ids.clear()
                self.table_id = self._new_id()
            numbered = []
            for key in keys:
                number = ids.get(key)
                if number is None:
                    number = ids[key] = len(ids)
                numbered.append(number)
            return self.table_id, numbered

    def answer(self, request: pb.MetricsRequest, select: Callable[[], Iterable[SeriesWindow]],
               scrape: Hashable | None, max_bytes: int) -> Iterator[pb.MetricsReply]:
        """The answer to a latest_only request. `select` lists the series (called at most once per scrape when
        `scrape`, a key that changes with every scrape, is given and the request names no series): a later
        request of the same scrape, from a proxy that holds every definition, copies the chunks built once."""
        held = request.series_table
        key = scrape if scrape is not None and not request.names and not request.name_regex else None
        with self._lock:
            kept = self._scrape if key is not None else None
            if kept is not None and (kept.key != key or kept.table_id != self.table_id):
                kept = None
            templates = kept.chunks.get(kept.shape(max_bytes, held)) if kept is not None else None
        if kept is not None and templates is not None and held.table_id == kept.table_id and held.known >= kept.top:
            return _copies(templates, request.request_id)
        listed = list(select())
        table_id, ids = self.number(listed)
        built = _Scrape(key, table_id, listed, ids, max(ids, default=-1) + 1)
        full = st.SeriesTableState(  # a proxy holding every definition and this order of ids: later requests
            wanted=True, table_id=table_id, known=built.top, value_text=held.value_text,
            ids_digest=built.ids_digest() if held.value_text else 0)
        shape = built.shape(max_bytes, full)
        answer = None
        if built.shape(max_bytes, held) != shape or held.table_id != table_id or held.known < built.top:
            answer = list(self._replies(request.request_id, built, held, max_bytes))  # this request's own
            if key is None:
                return iter(answer)
        # The chunks for the scrape's later requests (the one asking now holds all of it after this answer).
        templates = list(self._replies("", built, full, max_bytes))
        if key is not None:
            with self._lock:
                if kept is None or self._scrape is not kept:
                    kept = self._scrape = built.lean()
                if len(kept.chunks) < 8:  # proxies asking with different chunk limits: a few shapes
                    kept.chunks[shape] = templates
        return iter(answer) if answer is not None else _copies(templates, request.request_id)

    def replies(self, request_id: str, series: Iterable[SeriesWindow], held: st.SeriesTableState,
                max_bytes: int) -> Iterator[pb.MetricsReply]:
        """The answer to a latest_only request as LatestSamples chunks below max_bytes; the last has done=True.
        Definitions go with every id at or above what the proxy holds (`held`, if it is this table)."""
        listed = list(series)
        table_id, ids = self.number(listed)
        return self._replies(request_id, _Scrape(None, table_id, listed, ids, max(ids, default=-1) + 1), held,
                             max_bytes)

    def _replies(self, request_id: str, scrape: _Scrape, held: st.SeriesTableState, max_bytes: int
                 ) -> Iterator[pb.MetricsReply]:
        table_id, listed, ids = scrape.table_id, scrape.series, scrape.ids
        known = held.known if held.table_id == table_id else 0
        as_text = held.value_text
        # The proxy holds these ids in this order: the values alone (no definitions can be due then).
        same_ids = as_text and held.table_id == table_id and known >= scrape.top and \
            held.ids_digest == scrape.ids_digest()
        if as_text and not scrape.texts:
            scrape.texts = [format_value(item.values[-1]) + "\n" for item in listed]
        texts = scrape.texts
        budget = max(4096, max_bytes - _ENVELOPE)
        seq, size = 0, 0
        chunk_ids: list[int] = []
        chunk_values: list[float] = []
        chunk_texts: list[str] = []
        defined: list[st.SeriesDefinition] = []

        def reply(done: bool) -> pb.MetricsReply:
            latest = st.LatestSamples(table_id=table_id, defined=defined)
            if same_ids:
                latest.ids_digest = scrape.ids_digest()
            else:
                latest.ids.extend(chunk_ids)
            if as_text:
                latest.value_text = "".join(chunk_texts).encode("ascii")
            else:
                latest.values.extend(chunk_values)
            return pb.MetricsReply(request_id=request_id, seq=seq, done=done, latest=latest)

        for index, (item, number) in enumerate(zip(listed, ids, strict=True)):
            cost = (0 if same_ids else _PER_ID) + len(texts[index]) if as_text else _PER_SAMPLE
            definition = None
            if number >= known:
                definition = st.SeriesDefinition(id=number, family=item.family or item.name, type=item.type,
                                                 help=item.help, sample_name=item.name,
                                                 labels=[text for pair in item.labels for text in pair])
                cost += definition.ByteSize() + 4
            if size and size + cost > budget:
                yield reply(False)
                seq, size, chunk_ids, chunk_values, chunk_texts, defined = seq + 1, 0, [], [], [], []
            if definition is not None:
                defined.append(definition)
            chunk_ids.append(number)
            if as_text:
                chunk_texts.append(texts[index])
            else:
                chunk_values.append(item.values[-1])
            size += cost
        yield reply(True)


def _copies(templates: list[pb.MetricsReply], request_id: str) -> Iterator[pb.MetricsReply]:
    for template in templates:
        reply = pb.MetricsReply()
        reply.CopyFrom(template)
        reply.request_id = request_id
        yield reply
