"""Triage of an incident window: counters by rate across resets, gauges by mean, stopped series apart."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from procs import BIN

from fodc.incident.bundle import write_bundle
from fodc.incident.triage import Change, rank, rule_onset

AT = 100_000


def _series(name, metric_type, points, **labels):
    return {"name": name, "type": metric_type, "labels": labels, "points": points}


def _steady_counter(name, per_s_before, per_s_after, **labels):
    points, value = [], 0.0
    for t in range(40_000, 160_001, 10_000):
        points.append([t, value])
        value += (per_s_before if t < AT else per_s_after) * 10
    return _series(name, "counter", points, **labels)


WINDOW = {"series": [
    _steady_counter("errors_total", 0.1, 5.0, kind="write"),  # x50
    _steady_counter("writes_total", 100.0, 120.0),  # x1.2
    _series("queue_depth", "gauge", [[50_000, 2], [90_000, 2], [100_000, 40], [130_000, 40]]),  # x20
    _series("flat", "gauge", [[50_000, 7], [120_000, 7]]),
    _series("gone", "gauge", [[50_000, 1], [90_000, 1]]),
    _series("born", "gauge", [[110_000, 1]]),
    _series("lat_bucket", "histogram", [[50_000, 0], [90_000, 1], [110_000, 90], [150_000, 900]], le="0.1"),
    _series("nan_gauge", "gauge", [[50_000, "NaN"], [120_000, "+Inf"]]),
]}


def test_series_are_ranked_by_how_much_they_changed_at_the_trigger():
    triage = rank(WINDOW, AT)
    assert [c.series for c in triage.changes] == ['errors_total{kind="write"}', "queue_depth", "writes_total"]
    errors = triage.changes[0]
    assert errors.kind == "rate" and math.isclose(errors.before, 0.1) and math.isclose(errors.after, 5.0)
    assert math.isclose(errors.factor, 50.0)
    assert triage.changes[1].kind == "mean" and (triage.changes[1].before, triage.changes[1].after) == (2, 40)
    assert triage.compared == 4  # errors, writes, queue_depth, flat; buckets are left out; NaN has no numbers
    assert triage.stopped == ["gone"] and triage.started == ["born"]


def test_a_counter_reset_is_growth_not_a_fall_and_buckets_come_in_on_request():
    reset = _series("restarts_total", "counter", [[60_000, 50], [90_000, 80], [100_000, 90], [110_000, 5],
                                                   [130_000, 35]])
    triage = rank({"series": [reset, WINDOW["series"][6]]}, AT, include_buckets=True)
    by_name = {c.series: c for c in triage.changes}
    assert math.isclose(by_name["restarts_total"].before, 1.0)  # 30 in 30 s
    assert math.isclose(by_name["restarts_total"].after, (5 + 30) / 30)  # the reset counts its new value
    assert 'lat_bucket{le="0.1"}' in by_name


def test_fodc_triage_reads_a_bundle_offline(tmp_path):
    bundle = tmp_path / "incident.tar.gz"
    write_bundle(bundle, {"id": "x-rule_up", "node_id": "hot-1", "role": "datanode-hot", "trigger": "rule:up",
                          "at": "2026-11-30T10:00:00Z", "at_ms": AT, "detail": {"value": 5},
                          "errors": {"profile.heap": "profiling is off"}},
                 {"window.json": json.dumps(WINDOW).encode(), "node.log": b"one\ntwo\nthree\n"})
    run = subprocess.run([str(BIN / "fodc"), "triage", str(bundle), "--top", "2", "--log-lines", "2"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "incident x-rule_up: rule:up on hot-1 (datanode-hot) at 2026-11-30T10:00:00Z"
    assert "not collected: profile.heap: profiling is off" in lines
    table = [line.split() for line in lines[lines.index(next(ln for ln in lines if ln.startswith("SERIES"))) + 1:]]
    assert [row[0] for row in table[:2]] == ['errors_total{kind="write"}', "queue_depth"] and table[0][-1] == "+50×"
    assert lines[-2:] == ["  two", "  three"]
    as_json = json.loads(subprocess.run([str(BIN / "fodc"), "--json", "triage", str(bundle)], capture_output=True,
                                        text=True, timeout=60).stdout)
    assert as_json["stopped"] == ["gone"] and as_json["changes"][0]["factor"] == 50.0
    assert (as_json["changes"][0]["change"], as_json["changes"][0]["direction"]) == ("+50×", "up")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a bundle")
    bad = subprocess.run([str(BIN / "fodc"), "triage", str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot read the bundle" in bad.stderr


@pytest.mark.parametrize(("before", "after", "said"), [
    (0.058, 0.0, "-100 %"), (0.48, 0.133, "-72 %"), (2.0, 3.0, "+50 %"), (1.0, 3.1, "+3.1×"), (0.0, 4.0, "from 0"),
    (10.0, 10.3, "+3 %"), (-2.0, -1.0, "+50 %"), (5.0, 5.0, "0 %")])
def test_a_change_says_its_direction_and_size(before, after, said):
    assert Change("s", "mean", before, after).change == said


def test_a_series_falling_to_zero_is_a_fall_and_only_a_series_without_points_before_is_new():
    falls = [[90_000, 0.058], [95_000, 0.058], [100_000, 0], [110_000, 0]]
    window = {"series": [_series("errors_rate", "gauge", falls),
                         _series("born", "gauge", [[110_000, 1]]), _series("gone", "gauge", [[90_000, 1]])]}
    triage = rank(window, AT)
    assert [(c.series, c.change) for c in triage.changes] == [("errors_rate", "-100 %")]
    assert (triage.started, triage.stopped) == (["born"], ["gone"])


def test_changes_are_ranked_around_the_onset_and_the_rules_series_comes_first():
    # The node stopped answering at 70 s; the trigger fired at 100 s, 30 s later.
    stops = {"series": [_series("up_gauge", "gauge", [[40_000, 1], [60_000, 1], [70_000, 1]]),
                        _series("jump", "gauge", [[40_000, 1], [60_000, 1], [75_000, 9], [90_000, 9], [110_000, 9]])]}
    at_trigger, at_onset = rank(stops, AT), rank(stops, AT, onset_ms=71_000)
    assert at_onset.split_ms == 71_000 and at_onset.stopped == ["up_gauge"]
    assert (at_trigger.changes[0].change, at_onset.changes[0].change) == ("+80 %", "+9×")
    focus = ("queue_depth", {})
    first = rank(WINDOW, AT, focus=focus).changes[0]
    assert first.series == "queue_depth" and first.focus
    onset = rule_onset(WINDOW, AT, focus, lambda v: v > 10)
    assert onset == 100_000 and rule_onset(WINDOW, 99_000, focus, lambda v: v > 10) is None
