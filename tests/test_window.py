"""The flight recorder: exact values back out of compressed blocks, per-source times, a hard memory bound."""

from __future__ import annotations

import math
import random
import re
import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fodc.window import CodecError, FlightRecorder, SeriesMeta, decode_block, encode_block
from fodc.window.codec import Block, Column
from fodc.window.recorder import estimate_window_seconds

T0 = 1_787_300_000_000


def bits(values):
    return [struct.pack("<d", v) for v in values]


def page(i: int, series: int = 50):
    """Values that compress poorly (random floats), so budgets fill up quickly."""
    rng = random.Random(i)
    return [(f"m{j % 5}", (("id", str(j)),), rng.random()) for j in range(series)]


def test_points_come_back_exactly_with_millisecond_times_across_sealing():
    rec = FlightRecorder(block_scrapes=4)
    for i in range(10):
        rec.ingest("node", T0 + i * 15_001, [("c", (), float(i) * 1.5), ("g", (("k", "v"),), math.pi * i)])
    series = {w.name: w for w in rec.query()}
    assert series["c"].timestamps_ms == [T0 + i * 15_001 for i in range(10)]
    assert series["c"].values == [i * 1.5 for i in range(10)]
    assert bits(series["g"].values) == bits([math.pi * i for i in range(10)])
    assert rec.stats().sealed_blocks == 2


def test_two_sources_keep_their_own_timestamps():
    rec = FlightRecorder(block_scrapes=3)
    for i in range(7):
        rec.ingest("scrape", T0 + i * 15_000, [("a", (), float(i))])
        if i % 2:
            rec.ingest("os", T0 + i * 15_000 + 777, [("b", (), float(-i))])
    by_name = {w.name: w for w in rec.query()}
    assert by_name["a"].timestamps_ms == [T0 + i * 15_000 for i in range(7)]
    assert by_name["b"].timestamps_ms == [T0 + i * 15_000 + 777 for i in range(7) if i % 2]
    assert by_name["b"].values == [float(-i) for i in range(7) if i % 2]


def test_series_that_skip_scrapes_have_gaps_not_invented_points():
    rec = FlightRecorder(block_scrapes=5)
    for i in range(8):
        samples = [("always", (), float(i))]
        if i in (1, 2, 6):
            samples.append(("sometimes", (), float(i)))
        rec.ingest("s", T0 + i, samples)
    by_name = {w.name: w for w in rec.query()}
    assert by_name["sometimes"].timestamps_ms == [T0 + 1, T0 + 2, T0 + 6]
    assert by_name["sometimes"].values == [1.0, 2.0, 6.0]


def test_query_range_is_inclusive_and_filters_match_the_family():
    rec = FlightRecorder(block_scrapes=3)
    for i in range(6):
        rec.ingest("s", T0 + i * 1000, [("lat_bucket", (("le", "1"),), float(i)), ("lat_count", (), float(i)),
                                        ("other", (), 1.0)],
                   families={"lat": SeriesMeta("lat", "histogram", "latency", "")},
                   sample_family={"lat_bucket": "lat", "lat_count": "lat"})
    got = list(rec.query(T0 + 1000, T0 + 3000, names={"lat"}))
    assert {w.name for w in got} == {"lat_bucket", "lat_count"}
    assert all(w.timestamps_ms == [T0 + 1000, T0 + 2000, T0 + 3000] for w in got)
    assert all(w.type == "histogram" and w.family == "lat" for w in got)
    assert {w.name for w in rec.query(name_pattern=re.compile("oth.*"))} == {"other"}


def test_out_of_order_timestamp_is_refused_and_changes_nothing():
    rec = FlightRecorder()
    rec.ingest("s", T0 + 10, [("a", (), 1.0)])
    with pytest.raises(ValueError, match="not after"):
        rec.ingest("s", T0 + 5, [("a", (), 2.0)])
    assert [w.values for w in rec.query()] == [[1.0]]


def test_latest_has_the_newest_point_of_live_series_only():
    rec = FlightRecorder()
    rec.ingest("s", T0, [("a", (), 1.0), ("gone", (), 5.0)])
    rec.ingest("s", T0 + 1, [("a", (), 2.0)])
    latest = {w.name: (w.timestamps_ms, w.values) for w in rec.latest()}
    assert latest == {"a": ([T0 + 1], [2.0])}


def test_budget_is_a_hard_bound_oldest_blocks_go_first():
    rec = FlightRecorder(budget_bytes=400_000, block_scrapes=10)
    for i in range(400):
        rec.ingest("s", T0 + i * 15_000, page(i, 200))
        assert rec.stats().used_bytes <= 400_000
    stats = rec.stats()
    assert stats.evicted_blocks > 0
    times = next(iter(rec.query())).timestamps_ms
    assert times[-1] == T0 + 399 * 15_000  # the newest data survives
    assert times[0] == stats.oldest_ms > T0  # the oldest went


def test_measured_memory_stays_within_the_budget():
    budget = 2 * 1024 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rec = FlightRecorder(budget_bytes=budget, block_scrapes=30)
        for i in range(600):
            rec.ingest("s", T0 + i * 15_000, page(i, 1000))
        measured = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert rec.stats().evicted_blocks > 0
    assert measured <= budget * 1.10, f"measured {measured} bytes for a {budget} byte budget"


def test_churned_series_are_forgotten_once_their_data_is_evicted():
    rec = FlightRecorder(budget_bytes=60_000, block_scrapes=5)
    for i in range(50):
        rec.ingest("s", T0 + i, [(f"short_lived_{i}", (), 1.0)] + page(i, 20))
    for i in range(50, 400):
        rec.ingest("s", T0 + i, page(i, 20))
    assert rec.stats().series == 20
    assert not any(w.name.startswith("short_lived") for w in rec.query())


def test_drop_source_forgets_everything_of_it():
    rec = FlightRecorder(block_scrapes=2)
    for i in range(5):
        rec.ingest("a", T0 + i, [("x", (), 1.0)])
        rec.ingest("b", T0 + i, [("y", (), 1.0)])
    rec.drop_source("a")
    assert {w.name for w in rec.query()} == {"y"}
    assert rec.stats().series == 1


def test_window_length_is_reported():
    rec = FlightRecorder(block_scrapes=4)
    for i in range(9):
        rec.ingest("s", T0 + i * 15_000, page(i, 10))
    stats = rec.stats(interval_s=15)
    assert (stats.oldest_ms, stats.newest_ms) == (T0, T0 + 8 * 15_000)
    assert stats.samples == 90
    assert stats.estimated_window_seconds > 8 * 15


def test_estimated_window_grows_with_budget_and_shrinks_with_series():
    small = estimate_window_seconds(30 << 20, 5000, 15, 1.0)
    assert estimate_window_seconds(60 << 20, 5000, 15, 1.0) > small > estimate_window_seconds(30 << 20, 10000, 15, 1.0)
    # The goal: a day of 5k series at 15 s in 30 MiB; bench/bench_window.py measures ~0.75 byte/sample sealed.
    assert estimate_window_seconds(30 << 20, 5000, 15, 0.75) > 24 * 3600


def test_codec_rejects_unknown_versions_and_corrupt_bytes():
    data = encode_block(Block([1, 2], [Column(1, 0, __import__("array").array("d", [1.0, 2.0]))]))
    with pytest.raises(CodecError, match="version"):
        decode_block(bytes([99]) + data[1:])
    with pytest.raises(CodecError):
        decode_block(data[:-5])
    with pytest.raises(CodecError):
        decode_block(b"")


floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 0.0, 2.0**53, -(2.0**60)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=40, unique=True),
       st.lists(st.tuples(st.lists(floats, min_size=1, max_size=40), st.integers(0, 5), st.sets(st.integers(0, 39))),
                max_size=6))
def test_codec_round_trips_any_block_bit_exactly(deltas, raw_columns):
    from array import array

    timestamps = []
    t = T0
    for d in sorted(deltas):
        t += d + 1
        timestamps.append(t)
    columns = []
    for key_id, (values, start, gaps) in enumerate(raw_columns, 1):
        start = min(start, len(timestamps) - 1)
        values = values[: len(timestamps) - start]
        gaps = {g for g in gaps if g < len(values)}
        filled = [math.nan if i in gaps else v for i, v in enumerate(values)]
        columns.append(Column(key_id, start, array("d", filled), gaps))
    decoded = decode_block(encode_block(Block(timestamps, columns)))
    assert decoded.timestamps_ms == timestamps
    for want, got in zip(columns, decoded.columns, strict=True):
        assert (got.key_id, got.start, got.gaps) == (want.key_id, want.start, want.gaps)
        kept = [i for i in range(len(want.values)) if i not in want.gaps]
        assert bits([got.values[i] for i in kept]) == bits([want.values[i] for i in kept])
