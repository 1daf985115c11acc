"""Builds the proxy's aggregated Prometheus page from agents' reply chunks, one HELP/TYPE per family.

Sample lines are formatted as chunks arrive and kept as strings grouped by family, which is far smaller
than keeping 100 agents x 5k series as objects until the page is written.
"""

from __future__ import annotations

from fodc import expfmt
from fodc.proxy.enrich import enrich, node_labels
from fodc.proxy.registry import AgentRecord
from fodc.v1 import fodc_pb2 as pb

TEXT_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class PageBuilder:
    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, record: AgentRecord, reply: pb.MetricsReply) -> None:
        reg = record.registration
        added = node_labels(reg.node_id, reg.role, reg.labels)
        added_names = {name for name, _ in added}
        # The node's labels are the same for every series of this agent: format them once.
        suffix = ",".join(f'{k}="{expfmt.escape_label_value(v)}"' for k, v in added)
        for family in reply.families:
            entry = self._families.get(family.name)
            if entry is None:
                kind = family.type if family.type in TEXT_TYPES else "untyped"
                entry = self._families[family.name] = (kind, family.help, [])
            lines = entry[2]
            for series in family.series:
                if not series.values:
                    continue
                name = series.sample_name or family.name
                value = expfmt.format_value(series.values[-1])
                if any(lb.name in added_names for lb in series.labels):  # rare: keep the metric's own label
                    labels = enrich(tuple((lb.name, lb.value) for lb in series.labels), added)
                    lines.append(expfmt.format_sample(name, labels, series.values[-1]))
                elif series.labels:
                    own = ",".join(f'{lb.name}="{expfmt.escape_label_value(lb.value)}"' for lb in series.labels)
                    lines.append(f"{name}{{{own},{suffix}}} {value}\n")
                else:
                    lines.append(f"{name}{{{suffix}}} {value}\n")

    def render(self) -> str:
        out: list[str] = []
        for name in sorted(self._families):
            kind, help_text, lines = self._families[name]
            out.append(f"# HELP {name} {expfmt.escape_help(help_text)}\n# TYPE {name} {kind}\n")
            out.extend(lines)
        return "".join(out)

    @property
    def series(self) -> int:
        return sum(len(lines) for _, _, lines in self._families.values())
