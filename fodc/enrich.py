"""Node metadata on metrics leaving FODC (the proxy's pages, an agent's remote-write): node_id, node_role and
node labels as node_<key>.

A metric's own labels are never overwritten: when a metric already carries a label we would add, ours is
written as fodc_<name> instead (upstream learned this when a node label `type` collided with a metric's
own `type="file"`), or fodc_fodc_<name> when it carries that too, and so on: a label name twice on one line
makes Prometheus refuse the whole page.
"""

from __future__ import annotations

from collections.abc import Mapping

Labels = tuple[tuple[str, str], ...]


def node_labels(node_id: str, role: str, labels: Mapping[str, str]) -> Labels:
    """The labels the proxy adds for one node, in a stable order."""
    extra = [("node_id", node_id), ("node_role", role)]
    extra += [(f"node_{key}", value) for key, value in sorted(labels.items())]
    return tuple(extra)


def enrich(own: Labels, added: Labels) -> Labels:
    """Merges the node's labels into a metric's own labels; the metric's own always win."""
    taken = {name for name, _ in own}
    merged = list(own)
    for name, value in added:
        while name in taken:  # ends: each step is a longer name, and `taken` is finite
            name = f"fodc_{name}"
        taken.add(name)
        merged.append((name, value))
    return tuple(sorted(merged))
