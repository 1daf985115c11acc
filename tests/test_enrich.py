"""Node metadata on metrics leaving the proxy; a metric's own labels are never overwritten."""

from __future__ import annotations

from fodc.enrich import enrich, node_labels


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


def test_ours_move_aside_past_every_name_the_metric_already_has():
    """A metric carrying both `node_id` and `fodc_node_id` got a second `fodc_node_id`: a line with a label
    name twice, which makes Prometheus refuse the whole page (and a remote-write receiver the whole batch)."""
    own = (("node_id", "a"), ("fodc_node_id", "b"), ("fodc_fodc_node_id", "c"), ("node_role", "d"))
    merged = enrich(own, node_labels("n1", "liaison", {}))
    assert len({name for name, _ in merged}) == len(merged) == 6
    assert dict(merged)["fodc_fodc_fodc_node_id"] == "n1" and dict(merged)["fodc_node_role"] == "liaison"
    assert {name: value for name, value in merged if name in dict(own)} == dict(own)


def test_enriched_labels_are_sorted():
    merged = enrich((("z", "1"), ("a", "2")), node_labels("n", "liaison", {}))
    assert [k for k, _ in merged] == sorted(k for k, _ in merged)


def _record(node_id="n1", role="datanode-hot", labels=None):
    from fodc.model import Address, Registration
    from fodc.proxy.registry import ONLINE, AgentRecord, key_of

    reg = Registration(node_id=node_id, role=role, primary=Address("10.0.0.1", 1), labels=labels or {})
    return AgentRecord(key_of(reg).agent_id, key_of(reg), reg, ONLINE, 0, 0, 1, {}, {})


def test_page_writer_merges_families_across_agents_with_one_header():
    from fodc import expfmt
    from fodc.proxy.exposition import PageWriter
    from fodc.v1 import fodc_pb2 as pb

    def reply(value):
        return pb.MetricsReply(families=[pb.MetricFamily(name="c", type="counter", help="c", series=[
            pb.Series(labels=[pb.Label(name="node_id", value="own"), pb.Label(name="g", value='q"')],
                      timestamps_ms=[1], values=[value], sample_name="c")])])

    writer = PageWriter()
    page = writer.agent_block(_record("a", labels={"zone": "1"}), [reply(1)])
    page += writer.agent_block(_record("b"), [reply(2)])
    assert page.count("# TYPE c counter") == 1
    families = expfmt.parse_strict(page)
    assert [(f.name, f.type) for f in families] == [("c", "counter")]
    by_node = {dict(s.labels)["fodc_node_id"]: dict(s.labels) for s in families[0].samples}
    assert by_node["a"]["node_id"] == "own" and by_node["a"]["node_zone"] == "1" and by_node["a"]["g"] == 'q"'
    assert by_node["b"]["node_role"] == "datanode-hot"
