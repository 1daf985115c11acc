"""Incident triggers as pure state machines: threshold rules, node down, counter resets, latency rise."""

from __future__ import annotations

import math

import pytest

from fodc.agent.incidents import onset_of
from fodc.incident.detect import CounterResets, LatencyRise, NodeAnswer, NodeDown, quantile_from_buckets
from fodc.incident.rules import RuleError, RuleState, evaluate, parse_rule


def test_rule_parses_metric_matchers_operator_value_and_duration():
    rule = parse_rule('disk-full: banyandb_system_disk{kind="used_percent", path!="/tmp"} > 0.9 for 30s')
    assert (rule.name, rule.metric, rule.op, rule.value, rule.for_s) == (
        "disk-full", "banyandb_system_disk", ">", 0.9, 30.0)
    assert rule.matchers == (("kind", "=", "used_percent"), ("path", "!=", "/tmp"))
    assert rule.matches("banyandb_system_disk", {"kind": "used_percent", "path": "/data"})
    assert not rule.matches("banyandb_system_disk", {"kind": "used_percent", "path": "/tmp"})
    assert parse_rule("x: up == 0").for_s == 0


@pytest.mark.parametrize("text", ["no colon up > 1", "r: up >", "r: up ~ 1", 'r: up{kind=unquoted} > 1',
                                  "r: up > 1 for ever"])
def test_bad_rules_are_refused_with_the_text(text):
    with pytest.raises(RuleError, match="invalid"):
        parse_rule(text)


def test_rule_fires_once_after_holding_for_its_duration_and_rearms_after_clearing():
    rule = parse_rule("hot: temp > 50 for 10s")
    state = RuleState()
    hot = [("temp", {"zone": "a"}, 60.0)]
    assert evaluate(rule, hot, 0, state) == []
    assert evaluate(rule, hot, 9, state) == []
    fired = evaluate(rule, hot, 10, state)
    assert [(f["rule"], f["labels"], f["value"], f["held_s"]) for f in fired] == [("hot", {"zone": "a"}, 60.0, 10)]
    assert evaluate(rule, hot, 20, state) == []  # still the same episode
    assert evaluate(rule, [("temp", {"zone": "a"}, 40.0)], 21, state) == []
    assert evaluate(rule, hot, 22, state) == [] and len(evaluate(rule, hot, 32, state)) == 1


def test_node_down_fires_once_per_outage():
    down = NodeDown(for_s=5)
    assert down.observe(None, 0) is None
    assert down.observe(False, 1, "refused") is None
    assert down.observe(False, 6, "refused") == {"failing_for_s": 5, "last_error": "refused"}
    assert down.observe(False, 60) is None
    assert down.observe(True, 61) is None
    assert down.observe(False, 62) is None and down.observe(False, 67) is not None


def test_a_slow_node_is_unresponsive_and_a_refusing_one_down():
    slow = NodeAnswer(False, "timed out", timed_out=True, failing_since_ms=5)
    refused = NodeAnswer(False, "refused", timed_out=False, failing_since_ms=5)
    assert (slow.down(), slow.unresponsive()) == (False, True)
    assert (refused.down(), refused.unresponsive()) == (True, False)
    assert NodeAnswer(None).down() is None and NodeAnswer(True).unresponsive() is False


def test_the_onset_is_the_first_failed_scrape_or_how_long_a_rule_held():
    assert onset_of({"failing_for_s": 30, "first_failed_ms": 61_000}, 100_000) == 61_000
    assert onset_of({"failing_for_s": 30}, 100_000) == 70_000
    assert onset_of({"held_s": 2.5}, 100_000) == 97_500
    assert onset_of({"p99_s": 0.2}, 100_000) == 100_000


def test_counter_resets_need_most_counters_to_go_back():
    resets = CounterResets()
    assert resets.observe({"a": 10, "b": 20, "c": 30}) is None
    assert resets.observe({"a": 11, "b": 19, "c": 31}) is None  # one odd counter is not a restart
    assert resets.observe({"a": 1, "b": 2, "c": 31}) == {"counters_reset": 2, "counters_compared": 3}
    quiet = CounterResets()
    quiet.observe({"a": 10, "idle1": 0, "idle2": 0, "idle3": 0})
    assert quiet.observe({"a": 1, "idle1": 0, "idle2": 0, "idle3": 0}) == {"counters_reset": 1,
                                                                          "counters_compared": 1}


def test_quantile_interpolates_like_histogram_quantile():
    buckets = [(0.1, 50), (0.2, 100), (math.inf, 100)]
    assert quantile_from_buckets(buckets, 0.5) == pytest.approx(0.1)
    assert quantile_from_buckets(buckets, 0.75) == pytest.approx(0.15)
    assert quantile_from_buckets([(0.1, 0), (math.inf, 0)], 0.99) is None


def test_latency_rise_against_the_baseline():
    rise = LatencyRise(factor=4, floor_s=0.001, min_samples=10)
    counts = {0.001: 0.0, 0.002: 0.0, 0.016: 0.0, math.inf: 0.0}

    def add(le_hits):
        for le in counts:
            counts[le] += sum(n for bound, n in le_hits.items() if bound <= le)
        return rise.observe(dict(counts))

    assert add({}) is None  # first look: no baseline
    assert add({0.001: 100}) is None  # sets the baseline near 1 ms
    assert add({0.001: 100}) is None
    fired = add({0.016: 100})
    assert fired is not None and fired["p99_s"] > 4 * fired["baseline_p99_s"]
    assert add({0.016: 100}) is None  # same episode
