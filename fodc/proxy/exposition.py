"""Writes the proxy's aggregated Prometheus page agent by agent, on fodc.expfmt's rules.

Each agent's complete reply becomes one block, written as soon as the agent has answered, so the page streams
and the proxy never holds more than one agent's lines. Within a block every text family's lines are together;
a family's HELP/TYPE is written the first time the family appears on the page and not again (a second TYPE
line is a parse error for Prometheus's checker; samples of a family already declared are read into it).
Where a sample goes and what type its family has is `expfmt.text_family`, the rule `expfmt.render` writes
by: an OpenMetrics counter `req` becomes `req_total` (counter) and `req_created` (gauge), info `build`
becomes gauge `build_info`.

Names come from agents, so they are checked against the exposition grammar before they reach the page: a
newline in a name would otherwise forge lines (a fake `fodc_proxy_agents{status="online"} 12345`) and an
invalid line makes Prometheus drop the whole scrape. A family or series that fails is left out and counted;
label values and help texts are escaped. Names of the proxy's own families are refused too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fodc import expfmt
from fodc.enrich import enrich, node_labels
from fodc.expfmt.lexer import LABEL_NAME, METRIC_NAME
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.registry import AgentRecord
from fodc.v1 import fodc_pb2 as pb

RESERVED_PREFIXES = ("fodc_proxy_", "fodc_incidents")  # the proxy's own families on the same page
MAX_HELP = 1024
MAX_REMEMBERED_NAMES = 100_000
# Families the page remembers as declared; past this a family new to the page is left out (and counted).
MAX_PAGE_FAMILIES = 200_000


def reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIXES)


class NameCheck:
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

    def bad_family(self, name: str) -> bool:
        return not self.ok(name, METRIC_NAME) or reserved(name)

    def bad_sample(self, family: str, sample: str, label_names: list[str]) -> bool:
        """A sample name outside the family or the grammar (or one of the proxy's own), or a bad or repeated
        label name."""
        if sample != family and (not sample.startswith(family) or not self.ok(sample, METRIC_NAME)
                                 or reserved(sample)):
            return True
        return len(set(label_names)) != len(label_names) or not all(self.ok(n, LABEL_NAME) for n in label_names)


class NodeSuffix:
    """What the proxy adds to every line of one agent: its node labels, formatted once."""

    def __init__(self, record: AgentRecord) -> None:
        reg = record.registration
        self.added = node_labels(reg.node_id, reg.role, reg.labels)
        self.names = frozenset(name for name, _ in self.added)
        self.text = ",".join(f'{k}="{expfmt.escape_label_value(v)}"' for k, v in self.added)

    def series_prefix(self, sample: str, labels: tuple[tuple[str, str], ...]) -> str:
        """`sample{own labels,node labels} `: a line without its value. A metric's own label named like
        one of ours keeps its name and ours moves aside (fodc.enrich)."""
        if not labels:
            return f"{sample}{{{self.text}}} "
        if any(name in self.names for name, _ in labels):
            return f"{sample}{expfmt.format_labels(enrich(labels, self.added))} "
        own = ",".join([f'{k}="{expfmt.escape_label_value(v)}"' for k, v in labels])
        return f"{sample}{{{own},{self.text}}} "


class PageWriter:
    """One /metrics page in the making: which families are declared, and what was refused."""

    def __init__(self, refusals: Refusals | None = None) -> None:
        self.refusals = refusals or Refusals()
        self._declared: set[str] = set()
        self._names = NameCheck()
        self.series = 0

    def declare(self, text_name: str, kind: str, help_text: str) -> str | None:
        """The family's HELP/TYPE if the page has not declared it yet, else ""; None when the page cannot take
        one more family."""
        if text_name in self._declared:
            return ""
        if len(self._declared) >= MAX_PAGE_FAMILIES:
            return None
        self._declared.add(text_name)
        return expfmt.header(text_name, help_text[:MAX_HELP], kind)

    def agent_block(self, record: AgentRecord, replies: Iterable[pb.MetricsReply]) -> str:
        """The page lines of one agent's complete reply: each text family's lines together, headers first
        for families the page has not seen."""
        node = NodeSuffix(record)
        names = self._names
        # text family -> (type, help, lines), in the order the agent sent them
        groups: dict[str, tuple[str, str, list[str]]] = {}
        dropped = 0
        for reply in replies:
            for family in reply.families:
                if names.bad_family(family.name):
                    dropped += max(1, len(family.series))
                    continue
                placed: dict[str, list[str]] = {}  # sample name -> its group's lines
                for series in family.series:
                    if not series.values:
                        continue
                    sample = series.sample_name or family.name
                    own = tuple((lb.name, lb.value) for lb in series.labels)
                    if names.bad_sample(family.name, sample, [name for name, _ in own]):
                        dropped += 1
                        continue
                    lines = placed.get(sample)
                    if lines is None:
                        text_name, kind = expfmt.text_family(family.name, family.type, sample)
                        group = groups.get(text_name)
                        if group is None:
                            group = groups[text_name] = (kind, family.help, [])
                        lines = placed[sample] = group[2]
                    lines.append(node.series_prefix(sample, own) + expfmt.format_value(series.values[-1]) + "\n")
        out: list[str] = []
        for text_name, (kind, help_text, lines) in groups.items():
            head = self.declare(text_name, kind, help_text)
            if head is None:
                dropped += len(lines)
                continue
            out.append(head)
            out.extend(lines)
            self.series += len(lines)
        if dropped:
            self.refusals.refuse("exposition", "metric or label name outside the exposition grammar (or a name "
                                 "of the proxy's own)", dropped, node_id=record.registration.node_id)
        return "".join(out)
