"""Reads an agent's list answer (incidents, captures, snapshots, ring profiles) record by record as its chunks
arrive, so a hostile answer costs the proxy a small, bounded amount of memory.

Read whole, an answer of `--diagnostics-max-bytes` (64 MiB) was held three times over (the chunks, their
joined copy, the parsed message) and then materialised at up to ~7x its size (JSON details of tiny keys):
~670 MiB of worker for one /incidents (bench/bench_hostile_incidents.py). Here only one record's bytes are
buffered at a time; a record larger than MAX_RECORD_BYTES is skipped as it streams past; and before a record
is turned into Python objects its cost is estimated from its wire size, its entry counts and its JSON
documents' token counts, and a record that would take the answer past MAX_ANSWER_COST is left out. Both are
counted (kind `answer_budget`). Each kept record gets the same check as a whole answer's records
(fodc.proxy.agent_answers.RECORD_LISTS).
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

from google.protobuf.message import DecodeError, Message

from fodc.proxy.agent_answers import MAX_RECORDS, BadAnswer, BadRecord, checked_record

MAX_RECORD_BYTES = 8 * 1024 * 1024  # a 4 MiB detail and 10,000 file digests fit with room to spare
# Fields besides the records (a newer agent's additions): each is a step of this reader in Python, so 64 MiB of
# 2-byte fields cost the worker ~8 s of CPU where the whole answer's C parse took 0.06 s. Their bytes are
# passed by, never buffered.
MAX_OTHER_FIELDS = 1000
MAX_ANSWER_COST = 16 * 1024 * 1024  # estimated bytes of Python objects the kept records of one answer take
RECORD_COST = 1024  # a record's dict and its small fields
ENTRY_COST = 400  # one entry of a list or map field (a file digest becomes a dict of a dict)
TOKEN_COST = 50  # one `,` `:` `[` or `{` of a JSON document (a dict entry takes ~2, a list item 1)
_LIST_FIELD = 1  # every list answer holds its records in field 1 (proto/fodc/v1/fodc.proto)
_LENGTH_DELIMITED = 2


def estimated_cost(record: Message) -> int:
    """Bytes of Python objects the record will take once converted: an upper estimate, measured against
    tracemalloc for tiny-key JSON, empty file digests and long texts (tests/test_answer_stream.py)."""
    cost = RECORD_COST + 2 * record.ByteSize()
    for field, value in record.ListFields():
        if field.name.endswith("_json"):
            cost += TOKEN_COST * sum(map(value.count, ",:[{"))
        elif isinstance(value, Sized) and not isinstance(value, str | bytes):
            cost += ENTRY_COST * len(value)
    return cost


def _varint(buffer: bytearray, at: int) -> tuple[int, int] | None:
    """(value, index after it), or None when the buffer ends inside it."""
    value = shift = 0
    while at < len(buffer):
        byte = buffer[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise BadAnswer("a varint longer than 10 bytes", unreadable=True)
    return None


_FIXED = {1: 8, 5: 4}  # wire type -> bytes of a fixed-size field


class ListAnswerReader:
    """A writable sink (RunningCommand.collect's `sink`) that checks each record as soon as it is complete."""

    def __init__(self, record_type: type[Message], check: Callable[[Message, int], Any], now_ms: int) -> None:
        self.record_type, self.check, self.now_ms = record_type, check, now_ms
        self.kept: list[Any] = []
        self.refused: list[str] = []  # records whose content failed their check
        self.over_budget: list[str] = []  # records left out unread for their size or the answer's budget
        self.cost = 0
        self.records = 0
        self.other_fields = 0
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized record still to pass by
        self._failure: BadAnswer | None = None

    def write(self, data: bytes) -> int:
        if self._failure is not None:
            return len(data)
        view = memoryview(data)
        if self._skip:
            passed = min(self._skip, len(view))
            self._skip -= passed
            view = view[passed:]
        self._buffer += view
        try:
            self._consume()
        except BadAnswer as exc:
            self._failure, self._buffer = exc, bytearray()
        return len(data)

    def _consume(self) -> None:
        at = 0
        while not self._skip:
            step = self._next_field(at)
            if step is None:
                break
            at = step
        del self._buffer[:at]

    def _next_field(self, at: int) -> int | None:
        """Handles the field starting at `at`; the index after it, or None when it is not all here yet."""
        tag = _varint(self._buffer, at)
        if tag is None:
            return None
        (key, body) = tag
        field, wire_type = key >> 3, key & 7
        end: int | None
        if wire_type == 0:
            value = _varint(self._buffer, body)
            end = None if value is None else value[1]
        elif wire_type in _FIXED:
            end = body + _FIXED[wire_type]
            end = end if end <= len(self._buffer) else None
        elif wire_type != _LENGTH_DELIMITED:
            raise BadAnswer(f"not a list of {self.record_type.DESCRIPTOR.name}: wire type {wire_type}",
                            unreadable=True)
        else:
            return self._length_delimited(field, body)
        if end is not None:
            self._count_other()
        return end

    def _length_delimited(self, field: int, at: int) -> int | None:
        """A record (field 1) or another field of bytes, its length at `at`: a record that fits parsed (in
        place), anything else passed by as it streams, unbuffered; None while it is not all here yet."""
        length = _varint(self._buffer, at)
        if length is None:
            return None
        size, start = length
        if field == _LIST_FIELD and size <= MAX_RECORD_BYTES:
            if start + size > len(self._buffer):
                return None
            with memoryview(self._buffer) as view:  # parsed in place: no copy of the record's bytes
                self._record(view[start:start + size])
            return start + size
        if field == _LIST_FIELD:
            self._count_record()
            self.over_budget.append(f"a record of {size} bytes; at most {MAX_RECORD_BYTES}")
        else:
            self._count_other()
        self._skip = max(0, size - (len(self._buffer) - start))  # passed by as it streams, unbuffered
        return min(start + size, len(self._buffer))

    def _count_other(self) -> None:
        self.other_fields += 1
        if self.other_fields > MAX_OTHER_FIELDS:
            raise BadAnswer(f"more than {MAX_OTHER_FIELDS} fields that are not "
                            f"{self.record_type.DESCRIPTOR.name} records")

    def _count_record(self) -> None:
        self.records += 1
        if self.records > MAX_RECORDS:
            raise BadAnswer(f"more than {MAX_RECORDS} records")

    def _record(self, data: memoryview) -> None:
        self._count_record()
        try:
            record = self.record_type.FromString(data)  # type: ignore[arg-type]  # any buffer; the stubs say bytes
        except (DecodeError, RecursionError) as exc:
            raise BadAnswer(f"not a {self.record_type.DESCRIPTOR.name}: {str(exc)[:100]}", unreadable=True) from None
        cost = estimated_cost(record)
        if self.cost + cost > MAX_ANSWER_COST:
            self.over_budget.append(f"a record of ~{cost} bytes in memory would take the answer past "
                                    f"{MAX_ANSWER_COST}")
            return
        try:
            self.kept.append(checked_record(record, lambda msg: self.check(msg, self.now_ms)))
        except BadRecord as exc:
            self.refused.append(str(exc))
            return
        self.cost += cost

    def finish(self) -> tuple[list[Any], list[str], list[str]]:
        """(kept records, why each checked record was refused, why each was left out unread); BadAnswer when
        the answer as a whole is unusable."""
        if self._failure is not None:
            raise self._failure
        if self._buffer or self._skip:
            raise BadAnswer(f"not a list of {self.record_type.DESCRIPTOR.name}: it ends inside a field",
                            unreadable=True)
        return self.kept, self.refused, self.over_budget
