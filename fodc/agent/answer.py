"""Turns flight-recorder series into MetricsReply chunks that each stay under the proxy's message limit.

Upstream sent a whole snapshot as one message (and raised the limit to 32 MB to make it fit). Here series
are packed into chunks of at most `max_bytes`; a single series too long for one chunk is split by points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from fodc.proxy.downsample import AGGREGATIONS, downsample, is_cumulative
from fodc.saferegex import compile_pattern
from fodc.v1 import fodc_pb2 as pb
from fodc.window import FlightRecorder, SeriesWindow

# Points one window read may return when the proxy names no limit (MetricsRequest.max_points).
DEFAULT_MAX_POINTS = 4_000_000

# Room for the reply envelope (request id, seq, family headers) on top of the series themselves.
_ENVELOPE = 1024


def select_series(recorder: FlightRecorder, request: pb.MetricsRequest) -> Iterable[SeriesWindow]:
    """The series a request asks for; a pattern RE2 refuses raises saferegex.PatternError."""
    names = set(request.names) or None
    pattern = compile_pattern(request.name_regex) if request.name_regex else None
    if request.latest_only:
        return (s for s in recorder.latest()
                if (names is None or s.name in names or _family_of(s) in names)
                and (pattern is None or pattern.fullmatch(_family_of(s)) or pattern.fullmatch(s.name)))
    step_ms = max(0, request.step_ms)
    series = recorder.query(start_ms=request.start_unix_ms or None, end_ms=request.end_unix_ms or None,
                            names=names, name_pattern=pattern, max_points=request.max_points or DEFAULT_MAX_POINTS,
                            step_ms=step_ms)
    if not step_ms:
        return series
    agg = request.agg if request.agg in AGGREGATIONS else "last"
    return (_downsampled(s, step_ms, agg) for s in series)


def _downsampled(series: SeriesWindow, step_ms: int, agg: str) -> SeriesWindow:
    """One point per step (fodc.proxy.downsample's rules), so a coarse read sends and holds few points."""
    kept = downsample([[t, v] for t, v in zip(series.timestamps_ms, series.values, strict=True)], step_ms,
                      "last" if is_cumulative(series.type, series.name) else agg)
    return dataclasses.replace(series, timestamps_ms=[t for t, _ in kept], values=[v for _, v in kept])


def _family_of(series: SeriesWindow) -> str:
    return getattr(series, "family", "") or series.name


def _series_pb(series: SeriesWindow, start: int, end: int) -> pb.Series:
    return pb.Series(labels=[pb.Label(name=k, value=v) for k, v in series.labels],
                     timestamps_ms=series.timestamps_ms[start:end], values=series.values[start:end],
                     sample_name=series.name)


def chunk_replies(request_id: str, series: Iterable[SeriesWindow], max_bytes: int) -> Iterator[pb.MetricsReply]:
    """Packs series into replies below max_bytes; the last reply has done=True."""
    budget = max(4096, max_bytes - _ENVELOPE)
    seq = 0
    reply = pb.MetricsReply(request_id=request_id, seq=seq)
    families: dict[str, pb.MetricFamily] = {}
    size = 0
    for item in series:
        family_name = _family_of(item)
        pieces = _split(item, budget)
        for piece in pieces:
            piece_size = piece.ByteSize() + len(family_name) + len(item.help) + 16
            if size and size + piece_size > budget:
                yield reply
                seq += 1
                reply, families, size = pb.MetricsReply(request_id=request_id, seq=seq), {}, 0
            family = families.get(family_name)
            if family is None:
                family = reply.families.add(name=family_name, type=item.type, help=item.help, unit=item.unit)
                families[family_name] = family
                size += len(family_name) + len(item.help) + 16
            family.series.append(piece)
            size += piece_size
    reply.done = True
    yield reply


def _split(series: SeriesWindow, budget: int) -> list[pb.Series]:
    whole = _series_pb(series, 0, len(series.timestamps_ms))
    if whole.ByteSize() <= budget:
        return [whole]
    # ~20 bytes per point (varint timestamp + double + tags); leave room for the labels.
    label_bytes = sum(len(k) + len(v) + 6 for k, v in series.labels) + len(series.name)
    per_chunk = max(1, (budget - label_bytes) // 24)
    return [_series_pb(series, i, i + per_chunk) for i in range(0, len(series.timestamps_ms), per_chunk)]
