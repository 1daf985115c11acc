"""Builds the proxy's aggregated Prometheus page from agents' reply chunks, one HELP/TYPE per family.

Sample lines are formatted as chunks arrive and kept as strings grouped by family, which is far smaller
than keeping 100 agents x 5k series as objects until the page is written.

Names come from agents, so they are checked against the exposition grammar before they reach the page: a
newline in a name would otherwise forge lines (a fake `fodc_proxy_agents{status="online"} 12345`) and an
invalid line makes Prometheus drop the whole scrape. A family or series that fails is left out and counted;
label values and help texts are escaped. Families named like the proxy's own are refused too.
"""

from __future__ import annotations

import re

from fodc import expfmt
from fodc.expfmt.lexer import LABEL_NAME, METRIC_NAME
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.enrich import enrich, node_labels
from fodc.proxy.registry import AgentRecord
from fodc.v1 import fodc_pb2 as pb

TEXT_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
RESERVED_PREFIXES = ("fodc_proxy_", "fodc_incidents")  # the proxy's own families on the same page
MAX_HELP = 1024


MAX_REMEMBERED_NAMES = 100_000


def _bad_family_name(name: str) -> bool:
    return not METRIC_NAME.fullmatch(name) or name.startswith(RESERVED_PREFIXES)


class _NameCheck:
    """Label and sample names repeat across series and agents: each distinct valid name is matched once."""

    def __init__(self) -> None:
        self._valid: set[str] = set()

    def ok(self, name: str, grammar: re.Pattern[str]) -> bool:
        if name in self._valid:
            return True
        if not grammar.fullmatch(name):
            return False
        if len(self._valid) < MAX_REMEMBERED_NAMES:
            self._valid.add(name)
        return True

    def bad_series(self, family: str, series: pb.Series) -> bool:
        sample = series.sample_name
        if sample and (not sample.startswith(family) or not self.ok(sample, METRIC_NAME)):
            return True
        names = [label.name for label in series.labels]
        return len(set(names)) != len(names) or not all(self.ok(name, LABEL_NAME) for name in names)


class PageBuilder:
    def __init__(self, refusals: Refusals | None = None) -> None:
        # family -> (type, help, agent id -> its sample lines): an agent's lines can be dropped again
        self._families: dict[str, tuple[str, str, dict[str, list[str]]]] = {}
        self.refusals = refusals or Refusals()
        self._names = _NameCheck()

    def add(self, record: AgentRecord, reply: pb.MetricsReply) -> None:
        reg = record.registration
        added = node_labels(reg.node_id, reg.role, reg.labels)
        added_names = {name for name, _ in added}
        # The node's labels are the same for every series of this agent: format them once.
        suffix = ",".join(f'{k}="{expfmt.escape_label_value(v)}"' for k, v in added)
        dropped = 0
        for family in reply.families:
            if _bad_family_name(family.name):
                dropped += max(1, len(family.series))
                continue
            entry = self._families.get(family.name)
            created = entry is None
            if entry is None:
                kind = family.type if family.type in TEXT_TYPES else "untyped"
                entry = self._families[family.name] = (kind, family.help[:MAX_HELP], {})
            lines = entry[2].setdefault(record.agent_id, [])
            for series in family.series:
                if not series.values:
                    continue
                if self._names.bad_series(family.name, series):
                    dropped += 1
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
            if not lines:
                del entry[2][record.agent_id]
                if created:  # nothing of it was valid: no HELP/TYPE without samples
                    del self._families[family.name]
        if dropped:
            self.refusals.refuse("exposition", "metric or label name outside the exposition grammar (or a name "
                                 "of the proxy's own)", dropped, node_id=reg.node_id)

    def drop(self, agent_id: str) -> None:
        """Leaves out everything an agent sent: one that did not answer completely (cut off at a cap, timed out,
        disconnected) contributes no series rather than an arbitrary part of them."""
        for name in list(self._families):
            by_agent = self._families[name][2]
            by_agent.pop(agent_id, None)
            if not by_agent:
                del self._families[name]

    def render(self) -> str:
        out: list[str] = []
        for name in sorted(self._families):
            kind, help_text, by_agent = self._families[name]
            out.append(f"# HELP {name} {expfmt.escape_help(help_text)}\n# TYPE {name} {kind}\n")
            for lines in by_agent.values():
                out.extend(lines)
        return "".join(out)

    @property
    def series(self) -> int:
        return sum(len(lines) for _, _, by_agent in self._families.values() for lines in by_agent.values())
