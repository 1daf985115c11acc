"""The remote-write request body: series with their samples as a snappy-compressed WriteRequest.

Pure: plain data in, bytes out. Label rules the receivers enforce are kept here, once: `__name__` carries the
sample name, labels are sorted by name, empty values are left out (Prometheus reads an empty label as no label,
as it does when it scrapes), and the node labels the proxy adds (fodc.enrich) never overwrite a metric's own.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from fodc.enrich import enrich
from fodc.remotewrite import remote_pb2 as pb
from fodc.window.columns import put_varint

Labels = tuple[tuple[str, str], ...]

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


@dataclass(frozen=True, slots=True)
class Series:
    """One series' samples to send, oldest first; `labels` already sorted and holding __name__, and
    `label_bytes` their encoding (label_bytes()) when the caller keeps it from round to round."""

    labels: Labels
    timestamps_ms: Sequence[int]
    values: Sequence[float]
    label_bytes: bytes = b""

    def __len__(self) -> int:
        return len(self.timestamps_ms)


def series_labels(name: str, own: Labels, added: Labels) -> Labels:
    """The labels a sample is sent with: its own, the node's (renamed fodc_<k> where they collide), __name__."""
    merged = enrich(tuple((k, v) for k, v in own if v), tuple((k, v) for k, v in added if v))
    return tuple(sorted((("__name__", name), *((k, v) for k, v in merged if k != "__name__"))))


def split(series: Iterable[Series], max_samples: int) -> Iterator[list[Series]]:
    """Groups series into requests of at most `max_samples` samples; a longer series is cut into pieces (each
    piece still in time order, and the pieces in order, so a receiver sees one series' samples ascending)."""
    if max_samples <= 0:
        raise ValueError("max_samples must be positive")
    batch: list[Series] = []
    size = 0
    for one in series:
        start = 0
        while start < len(one):
            room = max_samples - size
            take = min(room, len(one) - start)
            piece = one if (start == 0 and take == len(one)) else Series(
                one.labels, one.timestamps_ms[start:start + take], one.values[start:start + take], one.label_bytes)
            batch.append(piece)
            size += take
            start += take
            if size >= max_samples:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def label_bytes(labels: Labels) -> bytes:
    """A series' labels as the TimeSeries fields they are on the wire (field 1, repeated Label)."""
    return pb.TimeSeries(labels=[pb.Label(name=name, value=value) for name, value in labels]).SerializeToString()


_double = struct.Struct("<d").pack


def _sample(timestamp_ms: int, value: float) -> bytes:
    """TimeSeries field 2: a Sample {1: double value, 2: int64 timestamp}. A negative timestamp is a ten-byte
    varint (two's complement), as protobuf writes int64."""
    body = bytearray(b"\x09")
    body += _double(value)
    body.append(0x10)
    put_varint(body, timestamp_ms & 0xFFFFFFFFFFFFFFFF)
    return b"\x12" + bytes((len(body),)) + body


def encode(series: Iterable[Series]) -> bytes:
    """The uncompressed WriteRequest. Each series' labels are encoded by the generated messages (or taken from
    `label_bytes`); its samples, fixed three-field messages, are framed here: protobuf concatenates repeated
    fields, so a TimeSeries is its label fields followed by its sample fields (2.7x faster than building a
    message per sample, which matters live, where each request carries one sample per series)."""
    parts: list[bytes | bytearray] = []
    for one in series:
        body = (one.label_bytes or label_bytes(one.labels)) + b"".join(
            [_sample(t, v) for t, v in zip(one.timestamps_ms, one.values, strict=True)])
        frame = bytearray(b"\x0a")
        put_varint(frame, len(body))
        parts += (frame, body)
    return b"".join(parts)


def compress(body: bytes) -> bytes:
    """Snappy's block format (not the framed one), as remote-write 1.0 asks."""
    import cramjam  # only once something is pushed: ~2 MiB an agent without receivers need not carry

    return bytes(cramjam.snappy.compress_raw(body))


def decompress(body: bytes, max_bytes: int) -> bytes:
    """The inverse of compress(), refusing a body that claims to expand beyond `max_bytes` (tests, tools)."""
    if _declared_length(body) > max_bytes:
        raise ValueError(f"snappy body expands beyond {max_bytes} bytes")
    import cramjam

    return bytes(cramjam.snappy.decompress_raw(body))


def _declared_length(body: bytes) -> int:
    """Snappy's block format starts with the uncompressed length as a varint."""
    length = shift = 0
    for byte in body[:10]:
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
    raise ValueError("not a snappy block: no length prefix")


def decode(body: bytes, max_bytes: int = 64 * 1024 * 1024) -> list[Series]:
    """A compressed WriteRequest back into series (the tests' and the bench's receivers use it)."""
    request = pb.WriteRequest.FromString(decompress(body, max_bytes))
    return [Series(tuple((label.name, label.value) for label in ts.labels),
                   [s.timestamp for s in ts.samples], [s.value for s in ts.samples]) for ts in request.timeseries]
