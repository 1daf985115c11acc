"""/metrics-windows: the flight-recorder windows of many agents as one streamed JSON document.

A window holds many points per series, which Prometheus text cannot carry, so this is JSON:
{"series": [{"name", "family", "type", "help", "unit", "labels", "node_id", "node_role", "points": [[ms, v]...]}],
 "missing_agents": [{"node_id", "node_role", "status", "reason"}], "agents_answered": n}
Registered agents that are unconnected are named in missing_agents too (status "unconnected").
Non-finite values are the strings "NaN", "+Inf" and "-Inf" (JSON has no such numbers). The document is
written as agents' chunks arrive, so a large window never sits whole in the proxy's memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from fodc.enrich import enrich, node_labels
from fodc.jsonvalue import json_value
from fodc.proxy.downsample import downsample, is_cumulative
from fodc.proxy.fanout import Collection
from fodc.proxy.registry import AgentRecord
from fodc.times import rfc3339
from fodc.v1 import fodc_pb2 as pb


class _Series:
    __slots__ = ("record", "family", "series_pb", "labels", "points")

    def __init__(self, record: AgentRecord, family: pb.MetricFamily, series: pb.Series) -> None:
        self.record = record
        self.family = family
        self.series_pb = series
        self.labels = tuple((lb.name, lb.value) for lb in series.labels)
        self.points = [[t, json_value(v)] for t, v in zip(series.timestamps_ms, series.values, strict=False)]

    def same_series(self, record: AgentRecord, family: pb.MetricFamily, series: pb.Series) -> bool:
        return (record.agent_id == self.record.agent_id and family.name == self.family.name
                and series.sample_name == self.series_pb.sample_name
                and tuple((lb.name, lb.value) for lb in series.labels) == self.labels)

    def extend(self, series: pb.Series) -> None:
        self.points.extend([t, json_value(v)] for t, v in zip(series.timestamps_ms, series.values, strict=False))

    def to_json(self, step_ms: int = 0, agg: str = "last") -> str:
        reg = self.record.registration
        name = self.series_pb.sample_name or self.family.name
        points = self.points
        if step_ms:
            points = downsample(points, step_ms, "last" if is_cumulative(self.family.type, name) else agg)
        return json.dumps({
            "name": name,
            "family": self.family.name,
            "type": self.family.type,
            "help": self.family.help,
            "unit": self.family.unit,
            "labels": dict(enrich(self.labels, node_labels(reg.node_id, reg.role, reg.labels))),
            "node_id": reg.node_id,
            "node_role": reg.role,
            "points": points,
        }, separators=(",", ":"))


def stream_windows(collection: Collection, step_ms: int = 0, agg: str = "last",
                   unconnected: Sequence[AgentRecord] = ()) -> Iterator[str]:
    """Yields the JSON document piece by piece; pieces of one split series are joined back together.
    With `step_ms`, each series is downsampled to one point per step (fodc.proxy.downsample).
    `unconnected` agents were not asked (no stream to ask on) but are named in `missing_agents` all the same."""
    yield '{"series":['
    first = True
    current: _Series | None = None
    for record, reply in collection.replies():
        for family in reply.families:
            for series in family.series:
                if current is not None and current.same_series(record, family, series):
                    current.extend(series)
                    continue
                if current is not None:
                    yield ("" if first else ",") + current.to_json(step_ms, agg)
                    first = False
                current = _Series(record, family, series)
    if current is not None:
        yield ("" if first else ",") + current.to_json(step_ms, agg)
    missing = [{"node_id": m.record.registration.node_id, "node_role": m.record.key.role, "status": m.record.status,
                "reason": m.reason} for m in collection.missing]
    missing += [{"node_id": r.registration.node_id, "node_role": r.key.role, "status": r.status,
                 "reason": f"agent unconnected since {rfc3339(r.unconnected_since_ms)}"} for r in unconnected]
    yield '],"missing_agents":' + json.dumps(missing) + f',"agents_answered":{len(collection.answered)}}}'
