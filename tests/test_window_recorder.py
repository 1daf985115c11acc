"""The flight recorder's behaviour: exact points across sealing, per-source times, ranges, filters, refusals."""

from __future__ import annotations

import math
import re
import struct
import threading
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fodc.window import FlightRecorder, SeriesMeta
from fodc.window import recorder as recorder_module

T0 = 1_787_300_000_000


def bits(values):
    return [struct.pack("<d", v) for v in values]


def by_name(windows):
    return {w.name: w for w in windows}


def test_points_come_back_exactly_with_millisecond_times_across_sealing():
    rec = FlightRecorder(block_scrapes=4)
    specials = [0.1, -0.0, math.inf, -math.inf, 1e-310, 2.0**60, 3.0, math.pi, 12.25, -7.0]
    for i in range(10):
        rec.ingest("node", T0 + i * 15_001, [("c", (), float(i * i)), ("g", (("k", "v"),), specials[i])])
    series = by_name(rec.query())
    assert rec.stats().sealed_blocks == 2
    assert series["c"].timestamps_ms == [T0 + i * 15_001 for i in range(10)]
    assert series["c"].values == [float(i * i) for i in range(10)]
    assert bits(series["g"].values) == bits(specials)


def test_nan_values_are_kept_as_points():
    rec = FlightRecorder(block_scrapes=2)
    for i in range(3):
        rec.ingest("node", T0 + i, [("g", (), math.nan if i == 1 else 1.0)])
    values = next(iter(rec.query())).values
    assert len(values) == 3 and math.isnan(values[1])


def test_two_sources_with_different_intervals_never_mix_timestamps():
    rec = FlightRecorder(block_scrapes=3)
    for i in range(12):
        rec.ingest("scrape", T0 + i * 15_000, [("a", (), float(i))])
        if i % 3 == 0:
            rec.ingest("os", T0 + i * 15_000 + 777, [("b", (), float(-i))])
    series = by_name(rec.query())
    assert series["a"].source == "scrape" and series["b"].source == "os"
    assert series["a"].timestamps_ms == [T0 + i * 15_000 for i in range(12)]
    assert series["a"].values == [float(i) for i in range(12)]
    assert series["b"].timestamps_ms == [T0 + i * 15_000 + 777 for i in range(0, 12, 3)]
    assert series["b"].values == [float(-i) for i in range(0, 12, 3)]


def test_same_series_from_two_sources_stays_two_series():
    rec = FlightRecorder()
    rec.ingest("a", T0, [("up", (), 1.0)])
    rec.ingest("b", T0 + 5, [("up", (), 0.0)])
    assert sorted((w.source, w.timestamps_ms[0], w.values[0]) for w in rec.query()) == [("a", T0, 1.0),
                                                                                       ("b", T0 + 5, 0.0)]


def test_series_that_skip_scrapes_have_gaps_not_invented_points():
    rec = FlightRecorder(block_scrapes=5)
    for i in range(12):
        samples = [("always", (), float(i))]
        if i in (1, 2, 6, 11):
            samples.append(("sometimes", (), float(i)))
        rec.ingest("s", T0 + i, samples)
    series = by_name(rec.query())
    assert series["sometimes"].timestamps_ms == [T0 + 1, T0 + 2, T0 + 6, T0 + 11]
    assert series["sometimes"].values == [1.0, 2.0, 6.0, 11.0]
    assert len(series["always"].values) == 12


def test_points_are_oldest_first_and_series_in_first_seen_order():
    rec = FlightRecorder(block_scrapes=3)
    for i in range(8):
        rec.ingest("s", T0 + i * 10, [("first", (), float(i)), ("second", (), float(-i))])
    windows = list(rec.query())
    assert [w.name for w in windows] == ["first", "second"]
    assert all(w.timestamps_ms == sorted(w.timestamps_ms) for w in windows)


@pytest.mark.parametrize("start,end,expected", [
    (T0 + 1000, T0 + 3000, [1, 2, 3]),  # both edges inclusive, across a block boundary
    (T0 + 2000, T0 + 2000, [2]),
    (T0 + 1001, T0 + 2999, [2]),
    (None, T0 + 1000, [0, 1]),
    (T0 + 4000, None, [4, 5]),
    (T0 + 6000, None, []),
])
def test_query_range_edges_are_inclusive(start, end, expected):
    rec = FlightRecorder(block_scrapes=2)
    for i in range(6):
        rec.ingest("s", T0 + i * 1000, [("x", (), float(i))])
    got = list(rec.query(start, end))
    assert [v for w in got for v in w.values] == [float(i) for i in expected]
    assert [t for w in got for t in w.timestamps_ms] == [T0 + i * 1000 for i in expected]


def histogram_page(i):
    return [("lat_bucket", (("le", "0.5"),), float(i)), ("lat_bucket", (("le", "+Inf"),), float(2 * i)),
            ("lat_count", (), float(2 * i)), ("lat_sum", (), 0.25 * i), ("other", (), 1.0)]


def ingest_histograms(rec, scrapes, help_text="latency"):
    for i in range(scrapes):
        rec.ingest("s", T0 + i * 1000, histogram_page(i),
                   families={"lat": SeriesMeta("lat", "histogram", help_text, "seconds"),
                             "other": SeriesMeta("other", "gauge", "something else", "")},
                   sample_family={"lat_bucket": "lat", "lat_count": "lat", "lat_sum": "lat"})


def test_name_filter_matches_the_family_and_brings_its_samples():
    rec = FlightRecorder(block_scrapes=3)
    ingest_histograms(rec, 5)
    got = list(rec.query(names={"lat"}))
    assert sorted((w.name, w.labels) for w in got) == [("lat_bucket", (("le", "+Inf"),)),
                                                      ("lat_bucket", (("le", "0.5"),)),
                                                      ("lat_count", ()), ("lat_sum", ())]
    assert all((w.family, w.type, w.help, w.unit) == ("lat", "histogram", "latency", "seconds") for w in got)
    assert all(len(w.values) == 5 for w in got)


def test_name_pattern_fullmatches_the_family_or_the_sample_name():
    rec = FlightRecorder(block_scrapes=3)
    ingest_histograms(rec, 4)
    assert {w.name for w in rec.query(name_pattern=re.compile("oth.*"))} == {"other"}
    assert {w.name for w in rec.query(name_pattern=re.compile("lat_b.*"))} == {"lat_bucket"}  # its buckets only
    assert {w.name for w in rec.query(name_pattern=re.compile("lat"))} == {"lat_bucket", "lat_sum", "lat_count"}
    assert {w.family for w in rec.query(names={"lat", "other"}, name_pattern=re.compile("o.*"))} == {"other"}


def test_family_metadata_is_the_latest_seen():
    rec = FlightRecorder(block_scrapes=2)
    ingest_histograms(rec, 3, help_text="old help")
    rec.ingest("s", T0 + 10_000, histogram_page(9), families={"lat": SeriesMeta("lat", "histogram", "new help", "")},
               sample_family={"lat_bucket": "lat", "lat_count": "lat", "lat_sum": "lat"})
    assert {w.help for w in rec.query(names={"lat"})} == {"new help"}


def test_a_series_without_metadata_is_its_own_untyped_family():
    rec = FlightRecorder()
    rec.ingest("s", T0, [("plain", (), 1.0)])
    window = next(iter(rec.query()))
    assert (window.family, window.type, window.help) == ("plain", "untyped", "")


def test_out_of_order_timestamp_is_refused_and_leaves_the_data_intact():
    rec = FlightRecorder(block_scrapes=2)
    for i in range(3):
        rec.ingest("s", T0 + i * 10, [("a", (), float(i))])
    before = rec.stats()
    for bad in (T0 + 5, T0 + 20):  # older, and equal to the newest
        with pytest.raises(ValueError, match="not after"):
            rec.ingest("s", bad, [("a", (), 99.0), ("new", (), 1.0)])
    assert [(w.timestamps_ms, w.values) for w in rec.query()] == [([T0, T0 + 10, T0 + 20], [0.0, 1.0, 2.0])]
    assert rec.stats() == before
    rec.ingest("s", T0 + 30, [("a", (), 3.0)])  # and the source carries on
    assert next(iter(rec.query())).values == [0.0, 1.0, 2.0, 3.0]


def test_a_scrape_failing_half_way_changes_nothing():
    rec = FlightRecorder(block_scrapes=4)
    rec.ingest("s", T0, [("a", (), 1.0), ("b", (), 2.0)])
    before = rec.stats()
    with pytest.raises(TypeError):
        rec.ingest("s", T0 + 1, [("a", (), 5.0), ("brand_new", (), 3.0), ("b", (), "not a number")])
    assert {w.name: w.values for w in rec.query()} == {"a": [1.0], "b": [2.0]}
    after = rec.stats()
    assert (after.series, after.samples, after.newest_ms) == (before.series, before.samples, before.newest_ms)
    rec.ingest("s", T0 + 2, [("a", (), 6.0)])
    assert {w.name: w.values for w in rec.latest()} == {"a": [6.0]}


def test_latest_has_the_newest_point_of_live_series_only():
    rec = FlightRecorder(block_scrapes=2)
    rec.ingest("s", T0, [("a", (), 1.0), ("gone", (), 5.0)])
    rec.ingest("s", T0 + 1, [("a", (), 2.0)])
    rec.ingest("os", T0 + 7, [("b", (), 3.0)])
    latest = {(w.source, w.name): (w.timestamps_ms, w.values) for w in rec.latest()}
    assert latest == {("s", "a"): ([T0 + 1], [2.0]), ("os", "b"): ([T0 + 7], [3.0])}


def test_latest_right_after_a_block_is_sealed():
    rec = FlightRecorder(block_scrapes=2)
    for i in range(3):
        rec.ingest("s", T0 + i, [("a", (), float(i))])
    assert [(w.timestamps_ms, w.values) for w in rec.latest()] == [([T0 + 2], [2.0])]


def test_drop_source_forgets_everything_of_it():
    rec = FlightRecorder(block_scrapes=2)
    for i in range(5):
        rec.ingest("a", T0 + i, [("x", (), 1.0)])
        rec.ingest("b", T0 + i, [("y", (), 1.0)])
    rec.drop_source("a")
    assert {w.name for w in rec.query()} == {"y"}
    assert {w.name for w in rec.latest()} == {"y"}
    assert rec.stats().series == 1
    rec.ingest("a", T0, [("x", (), 2.0)])  # a dropped source starts afresh
    assert {w.name for w in rec.query()} == {"x", "y"}


def test_window_length_is_reported():
    rec = FlightRecorder(block_scrapes=4)
    for i in range(9):
        rec.ingest("s", T0 + i * 15_000 + i, [(f"m{j}", (), float(j * i)) for j in range(10)])
    stats = rec.stats(interval_s=15)
    assert (stats.oldest_ms, stats.newest_ms) == (T0, T0 + 8 * 15_000 + 8)
    assert (stats.samples, stats.series, stats.sealed_blocks) == (90, 10, 2)
    assert stats.estimated_window_seconds > 8 * 15


def test_empty_recorder_reports_no_window():
    stats = FlightRecorder().stats()
    assert (stats.oldest_ms, stats.newest_ms, stats.samples, stats.series) == (None, None, 0, 0)
    assert list(FlightRecorder().query()) == [] and FlightRecorder().latest() == []


def test_a_corrupt_sealed_block_is_skipped_not_fatal():
    rec = FlightRecorder(block_scrapes=2)
    for i in range(5):
        rec.ingest("s", T0 + i, [("a", (), float(i))])
    rec._sealed.records[0].payload = b"\x01garbage"  # as if memory or a later on-disk copy got damaged
    assert next(iter(rec.query())).values == [2.0, 3.0, 4.0]


@dataclass
class Sample:
    name: str
    labels: tuple
    value: float
    timestamp_ms: int | None = None


@dataclass
class Family:
    name: str
    type: str
    help: str
    unit: str
    samples: list


def test_ingest_families_takes_parsed_pages():
    rec = FlightRecorder()
    page = [Family("lat", "histogram", "latency", "seconds",
                   [Sample("lat_bucket", (("le", "1"),), 3.0), Sample("lat_count", (), 3.0)]),
            Family("up", "gauge", "is it up", "", [Sample("up", (), 1.0)])]
    rec.ingest_families("node", T0, page)
    got = {w.name: (w.family, w.type, w.help, w.unit, w.values) for w in rec.query()}
    assert got == {"lat_bucket": ("lat", "histogram", "latency", "seconds", [3.0]),
                   "lat_count": ("lat", "histogram", "latency", "seconds", [3.0]),
                   "up": ("up", "gauge", "is it up", "", [1.0])}


any_value = (st.floats(allow_nan=False) | st.sampled_from([-0.0, math.inf, -math.inf])
             | st.integers(-(2**53), 2**53).map(float))
scrape = st.tuples(st.sampled_from(["scrape", "os"]), st.integers(1, 10**6),
                   st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), any_value, max_size=4))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), st.lists(scrape, max_size=40))
def test_any_ingest_sequence_reads_back_exactly(block_scrapes, scrapes):
    rec = FlightRecorder(block_scrapes=block_scrapes)
    now = {"scrape": T0, "os": T0 + 3}
    expected: dict[tuple[str, str], tuple[list[int], list[bytes]]] = {}
    newest: dict[str, tuple[int, dict]] = {}
    for source, step, samples in scrapes:
        now[source] += step
        rec.ingest(source, now[source], [(name, (("src", source),), v) for name, v in samples.items()])
        newest[source] = (now[source], samples)
        for name, v in samples.items():
            times, values = expected.setdefault((source, name), ([], []))
            times.append(now[source])
            values.append(struct.pack("<d", v))
    got = {(w.source, w.name): (w.timestamps_ms, bits(w.values)) for w in rec.query()}
    assert got == expected
    latest = {(w.source, w.name): (w.timestamps_ms, bits(w.values)) for w in rec.latest()}
    assert latest == {(source, name): ([t], bits([v])) for source, (t, samples) in newest.items()
                      for name, v in samples.items()}


def test_queries_from_other_threads_see_consistent_points_while_ingest_runs():
    rec = FlightRecorder(budget_bytes=2_000_000, block_scrapes=5)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                for window in rec.query():
                    # every point was written as value == its scrape index
                    assert window.values == [float((t - T0) // 1000) for t in window.timestamps_ms]
                    assert window.timestamps_ms == sorted(window.timestamps_ms)
                rec.latest()
                rec.stats()
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, name=f"window-reader-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(400):
            rec.ingest("s", T0 + i * 1000, [(f"m{j}", (), float(i)) for j in range(30)])
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors[0]
    assert next(iter(rec.query())).values[-1] == 399.0


def test_a_block_being_sealed_stays_readable_from_other_threads(monkeypatch):
    rec = FlightRecorder(block_scrapes=3)
    seen = []
    encode = recorder_module._encode

    def observing_encode(record):  # runs after ingest released the lock, before the block is compressed
        seen.append(([(w.timestamps_ms, w.values) for w in rec.query()], [w.values for w in rec.latest()]))
        return encode(record)

    monkeypatch.setattr(recorder_module, "_encode", observing_encode)
    for i in range(4):
        rec.ingest("s", T0 + i, [("a", (), float(i))])
    assert seen == [([([T0, T0 + 1, T0 + 2, T0 + 3], [0.0, 1.0, 2.0, 3.0])], [[3.0]])]
    assert [(w.timestamps_ms, w.values) for w in rec.query()] == [([T0, T0 + 1, T0 + 2, T0 + 3],
                                                                    [0.0, 1.0, 2.0, 3.0])]
    assert rec.stats().sealed_blocks == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.lists(scrape, min_size=20, max_size=120))
def test_under_a_small_budget_every_series_keeps_an_exact_suffix_of_its_points(block_scrapes, scrapes):
    rec = FlightRecorder(budget_bytes=8_000, block_scrapes=block_scrapes)
    now = {"scrape": T0, "os": T0 + 3}
    expected: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
    for source, step, samples in scrapes:
        now[source] += step
        rec.ingest(source, now[source], [(name, (), v) for name, v in samples.items()])
        for name, v in samples.items():
            expected.setdefault((source, name), []).append((now[source], struct.pack("<d", v)))
        assert rec.stats().used_bytes <= 8_000
    got = {(w.source, w.name): list(zip(w.timestamps_ms, bits(w.values), strict=True)) for w in rec.query()}
    for source in now:
        kept = [t for (s, _), points in got.items() if s == source for t, _ in points]
        if not kept:
            continue
        cutoff = min(kept)  # eviction removes whole oldest blocks, so what is left is everything after a cut
        for (s, name), points in expected.items():
            if s == source and any(t >= cutoff for t, _ in points):
                assert got[(s, name)] == [p for p in points if p[0] >= cutoff]
