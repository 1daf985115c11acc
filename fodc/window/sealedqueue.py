"""The recorder's eviction queue: every sealed block of every source, oldest first, with its accounting.

Eviction takes the head of the queue whatever its source, so no source starves the others. The queue keeps the
running totals the budget and the stats need (bytes, samples, and the measured bytes per sample of encoded
payloads) so they are never recomputed by walking it.

Owned by the recorder and touched only under its lock; no locking or clocks here.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator

from fodc.window.records import SealedRecord


class SealedQueue:
    __slots__ = ("records", "nbytes", "samples", "evicted", "_payload_bytes", "_payload_samples")

    def __init__(self) -> None:
        self.records: deque[SealedRecord] = deque()
        self.nbytes = 0  # accounted bytes of the records, payloads or raw blocks included
        self.samples = 0
        self.evicted = 0
        self._payload_bytes = 0  # encoded blocks only: the measured bytes/sample
        self._payload_samples = 0

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[SealedRecord]:
        return iter(self.records)

    def __reversed__(self) -> Iterator[SealedRecord]:
        return reversed(self.records)

    def bytes_per_sample(self, default: float) -> float:
        """Payload bytes per sample measured on the encoded blocks held; `default` before there are any."""
        return self._payload_bytes / self._payload_samples if self._payload_samples else default

    def push(self, record: SealedRecord) -> None:
        """Appends the newest block, raw (being encoded) or already encoded."""
        self.records.append(record)
        self.nbytes += record.nbytes
        self.samples += record.samples
        if record.size:
            self._count_payload(record.size, record.samples, 1)

    def encoded(self, record: SealedRecord, payload: bytes, samples: int, nbytes: int) -> None:
        """Swaps a queued raw block for its encoding."""
        self.nbytes += nbytes - record.nbytes
        self.samples += samples - record.samples
        self._count_payload(len(payload), samples, 1)
        record.payload, record.raw, record.samples, record.nbytes = payload, None, samples, nbytes
        record.size = len(payload)

    def reprice(self, record: SealedRecord, nbytes: int) -> None:
        """Changes what a queued block is accounted at (a block that stays raw costs its raw size)."""
        self.nbytes += nbytes - record.nbytes
        record.nbytes = nbytes

    def pop_oldest(self) -> SealedRecord:
        """Evicts the oldest block of any source."""
        record = self.records.popleft()
        self._unaccount(record)
        self.evicted += 1
        return record

    def drop_source(self, source: str) -> None:
        """Removes every block of `source` (not counted as evictions)."""
        kept: deque[SealedRecord] = deque()
        for record in self.records:
            if record.source != source:
                kept.append(record)
                continue
            self._unaccount(record)
        self.records = kept

    def container_bytes(self) -> int:
        return sys.getsizeof(self.records)

    def _unaccount(self, record: SealedRecord) -> None:
        record.gone = True  # an encoding under way for it is thrown away when it finishes
        self.nbytes -= record.nbytes
        self.samples -= record.samples
        if record.size:
            self._count_payload(record.size, record.samples, -1)

    def _count_payload(self, size: int, samples: int, sign: int) -> None:
        self._payload_bytes += sign * size
        self._payload_samples += sign * samples
