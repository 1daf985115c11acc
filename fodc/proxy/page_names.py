"""What the proxy checks and adds on every line of its /metrics page: names against the exposition grammar and
the proxy's own families, and the node's labels.

Names come from agents, so they are checked before they reach the page: a newline in a name would otherwise
forge lines (a fake `fodc_proxy_agents{status="online"} 12345`) and an invalid line makes Prometheus drop the
whole scrape. Label values and help texts are escaped where they are written.
"""

from __future__ import annotations

import math
import re

from fodc import expfmt
from fodc.enrich import enrich, node_labels
from fodc.expfmt.lexer import LABEL_NAME, METRIC_NAME
from fodc.proxy.registry import AgentRecord

RESERVED_PREFIXES = ("fodc_proxy_", "fodc_incidents")  # the proxy's own families on the same page
MAX_REMEMBERED_NAMES = 100_000


def reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIXES)


# The label Prometheus's text parser reads as a float on every sample of a histogram or a summary: one it
# cannot read (`le="abc"`) makes it refuse the whole page. Go's float syntax, without hex and `_` (which its
# parser refuses) and within a length; a value that overflows is refused too.
_FLOAT_LABEL = {"histogram": "le", "summary": "quantile"}
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                       r"|[+-]?[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]")
MAX_FLOAT_LABEL = 64


# The samples Prometheus's text parser reads into a histogram or summary `x` seen before them (by name).
PARSED_INTO = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def stray_sample(text_name: str, kind: str, sample: str) -> bool:
    """A sample written under text family `text_name` (of 0.0.4 type `kind`) that Prometheus's parser reads as
    a family of its own (`x_bucket` under an untyped `x`): a later TYPE of that name would be refused with the
    whole page. No sample of a page an agent parsed or rendered is one."""
    if sample == text_name:
        return False
    return not (sample.startswith(text_name) and sample[len(text_name):] in PARSED_INTO.get(kind, ()))


def bad_bound(kind: str, labels: tuple[tuple[str, str], ...]) -> bool:
    """A series of a text family of type `kind` whose `le` (histogram) or `quantile` (summary) is not a float
    Prometheus reads."""
    name = _FLOAT_LABEL.get(kind)
    if name is None:
        return False
    value = next((value for key, value in labels if key == name), None)
    if value is None:
        return False
    if len(value) > MAX_FLOAT_LABEL or not _GO_FLOAT.fullmatch(value):
        return True
    return math.isinf(float(value)) and "n" not in value.lower()  # 1e999: beyond the largest float


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
        """A sample name outside the family or the grammar (or one of the proxy's own), or a bad, repeated or
        reserved label name (`__name__`: Prometheus's parser refuses the page)."""
        if sample != family and (not sample.startswith(family) or not self.ok(sample, METRIC_NAME)
                                 or reserved(sample)):
            return True
        return (len(set(label_names)) != len(label_names) or "__name__" in label_names
                or not all(self.ok(n, LABEL_NAME) for n in label_names))


class NodeSuffix:
    """What the proxy adds to every line of one agent: its node labels, formatted once. A line is
    `opening(sample, labels) + closing + value`, except for a series whose own labels clash with ours."""

    def __init__(self, record: AgentRecord) -> None:
        reg = record.registration
        self.added = node_labels(reg.node_id, reg.role, reg.labels)
        self.names = frozenset(name for name, _ in self.added)
        self.text = ",".join(f'{k}="{expfmt.escape_label_value(v)}"' for k, v in self.added)
        self.closing = self.text + "} "

    def clashes(self, labels: tuple[tuple[str, str], ...]) -> bool:
        """A metric's own label named like one of ours: it keeps its name and ours moves aside (fodc.enrich)."""
        return any(name in self.names for name, _ in labels)

    @staticmethod
    def opening(sample: str, labels: tuple[tuple[str, str], ...]) -> str:
        """`sample{own labels,` (or `sample{`): the line up to the node's labels, for a series that does not
        clash."""
        if not labels:
            return sample + "{"
        return sample + "{" + ",".join([f'{k}="{expfmt.escape_label_value(v)}"' for k, v in labels]) + ","

    def whole(self, sample: str, labels: tuple[tuple[str, str], ...]) -> str:
        """A clashing series' line up to its value, labels merged by fodc.enrich."""
        return f"{sample}{expfmt.format_labels(enrich(labels, self.added))} "

    def series_prefix(self, sample: str, labels: tuple[tuple[str, str], ...]) -> str:
        """`sample{own labels,node labels} `: a line without its value."""
        if self.clashes(labels):
            return self.whole(sample, labels)
        return self.opening(sample, labels) + self.closing
