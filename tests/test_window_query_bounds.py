"""Window queries hold one batch of points at a time, and refuse before reading when they would be too large."""

from __future__ import annotations

import tracemalloc

import pytest

from fodc.window import FlightRecorder
from fodc.window.reads import TooManyPoints, batch_families, rows_in_range

SERIES_PER_FAMILY, FAMILIES, SCRAPES = 10, 40, 600  # 400 series x 600 scrapes = 240,000 points


def busy_recorder(block_scrapes: int = 120) -> FlightRecorder:
    rec = FlightRecorder(budget_bytes=64 * 1024 * 1024, block_scrapes=block_scrapes)
    for i in range(SCRAPES):
        samples = [(f"family_{f}", (("shard", str(s)),), float(i * s + f + 0.25 * (i % 7)))
                   for f in range(FAMILIES) for s in range(SERIES_PER_FAMILY)]
        rec.ingest("node", 1_000_000 + 15_000 * i, samples)
    return rec


@pytest.fixture(scope="module")
def rec() -> FlightRecorder:
    return busy_recorder()


def points_of(windows) -> dict:
    return {(w.name, w.labels): (list(w.timestamps_ms), list(w.values)) for w in windows}


def test_a_query_read_in_small_batches_returns_exactly_what_one_batch_returns(rec) -> None:
    whole = points_of(rec.query(batch_points=10**9))
    batched = points_of(rec.query(batch_points=5_000))
    assert len(whole) == SERIES_PER_FAMILY * FAMILIES and batched == whole
    ranged = points_of(rec.query(start_ms=1_000_000 + 15_000 * 100, end_ms=1_000_000 + 15_000 * 299,
                                 batch_points=3_000))
    assert {len(times) for times, _ in ranged.values()} == {200}


def test_a_batched_query_holds_a_fraction_of_what_one_batch_holds(rec) -> None:
    def peak(batch_points: int) -> int:
        tracemalloc.start()
        try:
            for window in rec.query(batch_points=batch_points):
                del window
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole, batched = peak(10**9), peak(12_000)
    assert batched < whole / 4, (batched, whole)


def test_a_query_over_the_limit_is_refused_before_reading_with_an_estimate(rec) -> None:
    with pytest.raises(TooManyPoints) as refused:
        next(rec.query(max_points=100_000))
    actual = SERIES_PER_FAMILY * FAMILIES * SCRAPES
    assert actual <= refused.value.points <= actual * 1.1
    assert refused.value.series == SERIES_PER_FAMILY * FAMILIES
    assert "start/end" in str(refused.value) and "step" in str(refused.value)
    assert sum(len(w.values) for w in rec.query(names=["family_3"], max_points=100_000)) == 10 * SCRAPES


def test_a_step_lowers_the_estimate_to_one_point_per_step(rec) -> None:
    span_ms = 15_000 * (SCRAPES - 1)
    step_ms = span_ms // 9  # 10 points per series
    limit = 11 * SERIES_PER_FAMILY * FAMILIES
    with pytest.raises(TooManyPoints):
        next(rec.query(max_points=limit))
    assert len(list(rec.query(max_points=limit, step_ms=step_ms))) == SERIES_PER_FAMILY * FAMILIES


def test_rows_in_range_counts_a_partly_covered_block_by_its_share() -> None:
    assert rows_in_range(0, 1190, 120, -5, 5000) == 120
    assert 59 <= rows_in_range(0, 1190, 120, 600, 5000) <= 61
    assert rows_in_range(0, 1190, 120, 1190, 1190) >= 1


def test_families_are_batched_by_their_points_and_a_big_one_stands_alone() -> None:
    assert batch_families({"a": 40, "b": 40, "c": 40, "huge": 500, "z": 10}, 100) == [
        ["a", "b"], ["c"], ["huge"], ["z"]]


def test_scrapes_and_seals_during_a_batched_query_change_nothing_it_returns() -> None:
    rec = busy_recorder()
    end = 1_000_000 + 15_000 * (SCRAPES - 1)
    expected = points_of(rec.query(end_ms=end))
    query = rec.query(end_ms=end, batch_points=5_000)
    got = [next(query)]  # planned and the first batch read; the open block's cells are still to be copied
    for i in range(SCRAPES, SCRAPES + 250):  # seals the open block twice over
        rec.ingest("node", 1_000_000 + 15_000 * i, [(f"family_{f}", (("shard", str(s)),), -1.0)
                                                    for f in range(FAMILIES) for s in range(SERIES_PER_FAMILY)])
    got += list(query)
    assert points_of(got) == expected
