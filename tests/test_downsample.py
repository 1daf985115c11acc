"""Server-side downsampling for /metrics-windows?step=: one point per step, counters monotone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fodc.proxy.downsample import downsample, is_cumulative, step_millis


def test_each_step_becomes_one_point_at_the_time_of_its_last_raw_point():
    points = [[1000, 1.0], [1500, 5.0], [2100, 3.0], [2900, 7.0], [3000, 2.0]]
    assert downsample(points, 1000, "last") == [[1500, 5.0], [2900, 7.0], [3000, 2.0]]
    assert downsample(points, 1000, "min") == [[1500, 1.0], [2900, 3.0], [3000, 2.0]]
    assert downsample(points, 1000, "max") == [[1500, 5.0], [2900, 7.0], [3000, 2.0]]
    assert downsample(points, 1000, "avg") == [[1500, 3.0], [2900, 5.0], [3000, 2.0]]


def test_non_finite_values_are_left_out_of_min_max_avg_and_kept_when_alone():
    points = [[0, "NaN"], [10, 4.0], [20, "+Inf"], [1000, "NaN"]]
    assert downsample(points, 1000, "avg") == [[20, 4.0], [1000, "NaN"]]


def test_cumulative_samples_are_recognised_by_family_type_and_suffix():
    assert is_cumulative("counter", "banyandb_measure_total_written")
    assert is_cumulative("histogram", "x_bucket") and is_cumulative("summary", "x_count")
    assert not is_cumulative("gauge", "x_bucket") and not is_cumulative("summary", "x")


@pytest.mark.parametrize(("text", "ms"), [("60", 60_000), ("1m", 60_000), ("500ms", 500), ("1.5", 1500)])
def test_step_takes_seconds_or_a_duration(text, ms):
    assert step_millis(text) == ms


@pytest.mark.parametrize("text", ["", "x", "0", "-5", "8d", "0.0001"])
def test_a_bad_step_is_refused_with_the_reason(text):
    with pytest.raises(ValueError, match="step"):
        step_millis(text)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=2, max_size=300),
       st.integers(min_value=1, max_value=5000), st.sampled_from(["last", "min", "max", "avg"]))
def test_a_monotone_series_stays_monotone_and_never_grows(increments, step_ms, agg):
    total, points = 0.0, []
    for i, inc in enumerate(increments):
        total += inc
        points.append([i * 137, total])
    out = downsample(points, step_ms, "last")
    assert [v for _, v in out] == sorted(v for _, v in out)
    assert out[-1] == points[-1] and len(out) <= len(points)
    assert len(downsample(points, step_ms, agg)) == len(out)
    assert len({t // step_ms for t, _ in out}) == len(out)  # one point per step
