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

from collections.abc import Iterable

from fodc import expfmt
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.page_names import PARSED_INTO, NameCheck, NodeSuffix, bad_bound, stray_sample
from fodc.proxy.registry import AgentRecord
from fodc.proxy.series_table import AgentSeriesTable, TableMismatch
from fodc.v1 import fodc_pb2 as pb

MAX_HELP = 1024
# Families the page remembers as declared; past this a family new to the page is left out (and counted).
MAX_PAGE_FAMILIES = 200_000


class PageWriter:
    """One /metrics page in the making: which families are declared, and what was refused."""

    def __init__(self, refusals: Refusals | None = None) -> None:
        self.refusals = refusals or Refusals()
        self._declared: dict[str, str] = {}  # text family -> its type
        self._names = NameCheck()
        self.series = 0

    def declare(self, text_name: str, kind: str, help_text: str) -> str | None:
        """The family's HELP/TYPE if the page has not declared it yet, else ""; None when the page cannot take
        one more family, or a histogram or summary declared on it owns the name, or the page declared the name
        with another type and one of the two is a histogram or summary (their samples would be read into the
        wrong family, or as families of their own)."""
        declared = self._declared.get(text_name)
        if declared is not None:
            return "" if declared == kind or (declared not in PARSED_INTO and kind not in PARSED_INTO) else None
        if len(self._declared) >= MAX_PAGE_FAMILIES or self._owned(text_name):
            return None
        self._declared[text_name] = kind
        return expfmt.header(text_name, help_text[:MAX_HELP], kind)

    def _owned(self, text_name: str) -> bool:
        """A name the parser reads into a histogram or summary declared before it (gauge `x_count` after
        histogram `x`): its TYPE line would read as a second one of `x`, and the whole page be refused."""
        for suffix in ("_bucket", "_count", "_sum"):
            if text_name.endswith(suffix):
                kind = self._declared.get(text_name[:-len(suffix)])
                if kind is not None and suffix in PARSED_INTO.get(kind, ()):
                    return True
        return False

    def agent_block(self, record: AgentRecord, replies: Iterable[pb.MetricsReply],
                    table: AgentSeriesTable | None = None) -> str:
        """The page lines of one agent's complete reply: each text family's lines together, headers first
        for families the page has not seen. Raises TableMismatch for a series-table answer that does not fit
        `table` (or came unasked)."""
        node = NodeSuffix(record)
        chunks = list(replies)
        latest = [chunk for chunk in chunks if chunk.HasField("latest")]
        out: list[str] = []
        refused = 0
        if latest:
            if table is None:
                raise TableMismatch("a series-table answer to a request that did not ask for one")
            lines = table.lines(latest, node, self._names)
            refused += lines.refused
            heads = [self.declare(*family) for family, _, _ in lines.groups]
            if all(head == "" for head in heads):  # every family already declared: the lines as they are
                out.append("".join(lines.parts))
                self.series += len(lines.parts) // 3
            else:
                for head, (_, start, end) in zip(heads, lines.groups, strict=True):
                    refused += self._add(out, head, lines.text(start, end), end - start)
        if len(latest) < len(chunks):
            by_family, dropped = self._family_lines(chunks, node)
            for name, (kind, help_text, family_lines) in by_family.items():
                refused += self._add(out, self.declare(name, kind, help_text), "".join(family_lines),
                                     len(family_lines))
            refused += dropped
        if refused:
            self.refusals.refuse("exposition", "metric or label name outside the exposition grammar (or a name "
                                 "of the proxy's own, or one a histogram or summary on the page owns)", refused,
                                 node_id=record.registration.node_id)
        return "".join(out)

    def _add(self, out: list[str], head: str | None, text: str, count: int) -> int:
        """Appends one family's lines under its header (if any); the series refused (the page is full)."""
        if head is None:
            return count
        out.append(head)
        out.append(text)
        self.series += count
        return 0

    def _family_lines(self, replies: Iterable[pb.MetricsReply], node: NodeSuffix
                      ) -> tuple[dict[str, tuple[str, str, list[str]]], int]:
        """Lines of an answer as families (agents before the series table, or one that ignores it), grouped by
        text family in the order sent; and how many series were refused."""
        names = self._names
        groups: dict[str, tuple[str, str, list[str]]] = {}
        dropped = 0
        for reply in replies:
            for family in reply.families:
                if names.bad_family(family.name):
                    dropped += max(1, len(family.series))
                    continue
                placed: dict[str, tuple[tuple[str, str, list[str]], bool]] = {}  # sample -> its group, stray
                for series in family.series:
                    if not series.values:
                        continue
                    sample = series.sample_name or family.name
                    own = tuple((lb.name, lb.value) for lb in series.labels)
                    if names.bad_sample(family.name, sample, [name for name, _ in own]):
                        dropped += 1
                        continue
                    entry = placed.get(sample)
                    if entry is None:
                        text_name, kind = expfmt.text_family(family.name, family.type, sample)
                        group = groups.get(text_name)
                        if group is None:
                            group = groups[text_name] = (kind, family.help[:MAX_HELP], [])
                        entry = placed[sample] = (group, stray_sample(text_name, group[0], sample))
                    group, stray = entry
                    if stray or bad_bound(group[0], own):  # by the type its lines are written under
                        dropped += 1
                        continue
                    group[2].append(node.series_prefix(sample, own) + expfmt.format_value(series.values[-1]) + "\n")
        return groups, dropped
