"""The agent's series table for /metrics answers: each series' name and labels go to the proxy once, then only
its id and newest value (proto/fodc/v1/series_table.proto).

A /metrics answer repeated every label of every series, and the proxy spent most of its page time reading and
formatting them again (issue 22). Now the agent numbers its series in one table (shared by every request on
every stream) and defines to the proxy only the ids the proxy does not say it holds. A table that has grown
well past the series the node still reports (series churn) is dropped and numbered afresh under a new id,
which makes the proxy ask for every definition again.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator

from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import series_table_pb2 as st
from fodc.window import SeriesWindow

# Room for the reply envelope (request id, seq, table id) on top of the ids, values and definitions.
_ENVELOPE = 1024
_PER_SAMPLE = 16  # a varint id (up to 5 bytes) and a double, packed


class SeriesTable:
    """Series identity -> id, under one random table id; thread-safe (requests are answered on a pool)."""

    def __init__(self, max_ids: int = 1_000_000) -> None:
        self.max_ids = max_ids
        self._lock = threading.Lock()
        self._ids: dict[tuple, int] = {}
        self.table_id = self._new_id()

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

    def replies(self, request_id: str, series: Iterable[SeriesWindow], held: st.SeriesTableState,
                max_bytes: int) -> Iterator[pb.MetricsReply]:
        """The answer to a latest_only request as LatestSamples chunks below max_bytes; the last has done=True.
        Definitions go with every id at or above what the proxy holds (`held`, if it is this table)."""
        listed = list(series)
        table_id, ids = self.number(listed)
        known = held.known if held.table_id == table_id else 0
        budget = max(4096, max_bytes - _ENVELOPE)
        seq, size = 0, 0
        chunk_ids: list[int] = []
        chunk_values: list[float] = []
        defined: list[st.SeriesDefinition] = []

        def reply(done: bool) -> pb.MetricsReply:
            return pb.MetricsReply(request_id=request_id, seq=seq, done=done, latest=st.LatestSamples(
                table_id=table_id, defined=defined, ids=chunk_ids, values=chunk_values))

        for item, number in zip(listed, ids, strict=True):
            cost = _PER_SAMPLE
            definition = None
            if number >= known:
                definition = st.SeriesDefinition(id=number, family=item.family or item.name, type=item.type,
                                                 help=item.help, sample_name=item.name,
                                                 labels=[text for pair in item.labels for text in pair])
                cost += definition.ByteSize() + 4
            if size and size + cost > budget:
                yield reply(False)
                seq, size, chunk_ids, chunk_values, defined = seq + 1, 0, [], [], []
            if definition is not None:
                defined.append(definition)
            chunk_ids.append(number)
            chunk_values.append(item.values[-1])
            size += cost
        yield reply(True)
