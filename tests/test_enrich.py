"""Node metadata on metrics leaving the proxy; a metric's own labels are never overwritten."""

from __future__ import annotations

from fodc.proxy.enrich import enrich, node_labels


def test_node_labels_are_namespaced():
    assert node_labels("n1", "datanode-hot", {"zone": "a", "type": "ssd"}) == (
        ("node_id", "n1"), ("node_role", "datanode-hot"), ("node_type", "ssd"), ("node_zone", "a"))


def test_metric_labels_win_and_ours_move_aside():
    own = (("node_id", "from-metric"), ("type", "file"))
    merged = dict(enrich(own, node_labels("n1", "liaison", {"type": "ssd"})))
    assert merged["node_id"] == "from-metric"
    assert merged["fodc_node_id"] == "n1"
    assert merged["type"] == "file"  # the upstream collision: a node label `type` never clobbers it
    assert merged["node_type"] == "ssd"


def test_enriched_labels_are_sorted():
    merged = enrich((("z", "1"), ("a", "2")), node_labels("n", "liaison", {}))
    assert [k for k, _ in merged] == sorted(k for k, _ in merged)
