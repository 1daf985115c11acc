"""The memory budget is a hard bound on what the recorder holds, and it matches what Python really allocates."""

from __future__ import annotations

import gc
import random
import tracemalloc

from fodc.window import FlightRecorder, SeriesMeta, estimate_window_seconds

T0 = 1_787_300_000_000
FAMILIES = {f"fam{k}": SeriesMeta(f"fam{k}", "histogram", f"fam{k}", "") for k in range(40)}
SAMPLE_FAMILY = {f"fam{k}_bucket": f"fam{k}" for k in range(40)}


def pages(scrapes: int, series: int, seed: int = 1, float_every: int = 7):
    """A page like a parser returns it: fresh tuples every scrape; counters, floats and stable series."""
    rng = random.Random(seed)
    values = [float(rng.randrange(1000)) for _ in range(series)]
    for _ in range(scrapes):
        for j in range(0, series, 3):
            values[j] += rng.randrange(1, 50)
        for j in range(1, series, float_every):
            values[j] = rng.random()
        yield [(f"fam{j % 40}_bucket", (("group", f"g{j % 6}"), ("le", str(j % 12)), ("shard", str(j))), values[j])
               for j in range(series)]


def noisy_page(i: int, series: int, prefix: str = "m"):
    """Random floats compress poorly, so a small budget fills fast."""
    rng = random.Random(i)
    return [(f"{prefix}{j % 5}", (("id", str(j)),), rng.random()) for j in range(series)]


def test_accounted_memory_never_exceeds_the_budget():
    budget = 300_000
    rec = FlightRecorder(budget_bytes=budget, block_scrapes=10)
    for i in range(300):
        rec.ingest("s", T0 + i * 15_000, noisy_page(i, 200))
        assert rec.stats().used_bytes <= budget
    assert rec.stats().evicted_blocks > 0


def test_measured_memory_matches_the_accounted_figure_within_ten_percent():
    budget = 1536 * 1024
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rec = FlightRecorder(budget_bytes=budget, block_scrapes=30)
        for i, page in enumerate(pages(400, 1000, float_every=2)):
            rec.ingest("s", T0 + i * 15_000, page, FAMILIES, SAMPLE_FAMILY)
        del page
        gc.collect()
        measured = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    stats = rec.stats()
    assert stats.evicted_blocks > 0, "the window must be full for the figure to mean anything"
    assert stats.used_bytes <= budget
    assert abs(measured - stats.used_bytes) <= 0.10 * stats.used_bytes, (measured, stats.used_bytes)
    assert measured <= budget * 1.10


def test_eviction_takes_the_oldest_block_first_and_keeps_the_newest_data():
    rec = FlightRecorder(budget_bytes=200_000, block_scrapes=10)
    for i in range(300):
        rec.ingest("s", T0 + i * 1000, noisy_page(i, 100))
    stats = rec.stats()
    assert stats.evicted_blocks > 0
    times = next(iter(rec.query())).timestamps_ms
    assert times[-1] == T0 + 299 * 1000
    assert times[0] == stats.oldest_ms > T0
    assert (times[0] - T0) // 1000 % 10 == 0  # whole blocks went
    assert times == list(range(times[0], times[-1] + 1, 1000))  # nothing missing in what remains


def test_eviction_is_oldest_first_across_sources():
    rec = FlightRecorder(budget_bytes=250_000, block_scrapes=5)
    for i in range(200):
        rec.ingest("a", T0 + i * 1000, noisy_page(i, 60, "a"))
        rec.ingest("b", T0 + i * 1000 + 500, noisy_page(i, 60, "b"))
    firsts = {w.source: w.timestamps_ms[0] for w in rec.query()}
    assert abs(firsts["a"] - firsts["b"]) <= 5 * 1000  # neither source was starved for the other


def test_churned_series_are_forgotten_and_memory_returns_once_their_data_is_evicted():
    rec = FlightRecorder(budget_bytes=80_000, block_scrapes=5)
    for i in range(500):
        rec.ingest("s", T0 + i, noisy_page(i, 20))
    steady = rec.stats()
    assert steady.evicted_blocks > 0
    steady_atoms = len(rec._catalog.atoms)
    for i in range(500, 510):  # a burst of short-lived series with long labels
        rec.ingest("s", T0 + i, noisy_page(i, 20) + [(f"short_lived_{i}_{k}", (("pod", "x" * 50 + str(k)),), 1.0)
                                                   for k in range(5)])
    assert rec.stats().series == 20 + 10 * 5
    for i in range(510, 1000):  # same phase (i % 5 == 0) as the steady snapshot
        rec.ingest("s", T0 + i, noisy_page(i, 20))
    after = rec.stats()
    assert after.series == steady.series == 20
    assert not any(w.name.startswith("short_lived") for w in rec.query())
    assert len(rec._catalog.atoms) == steady_atoms
    assert abs(after.used_bytes - steady.used_bytes) < 0.05 * steady.used_bytes


def test_family_metadata_goes_with_its_last_series():
    rec = FlightRecorder(budget_bytes=100_000, block_scrapes=5)
    rec.ingest("s", T0, [("old_family_sample", (), 1.0)],
               families={"old_family": SeriesMeta("old_family", "gauge", "h" * 1000, "")},
               sample_family={"old_family_sample": "old_family"})
    for i in range(1, 400):
        rec.ingest("s", T0 + i, noisy_page(i, 20))
    assert "old_family" not in rec._catalog.families


def test_a_budget_smaller_than_one_block_still_holds_the_bound():
    rec = FlightRecorder(budget_bytes=40_000, block_scrapes=120)
    for i in range(50):
        rec.ingest("s", T0 + i, noisy_page(i, 50))
        assert rec.stats().used_bytes <= 40_000
    assert rec.stats().newest_ms == T0 + 49


def test_estimated_window_grows_with_budget_and_shrinks_with_series():
    small = estimate_window_seconds(30 << 20, 5000, 15, 1.0)
    assert estimate_window_seconds(60 << 20, 5000, 15, 1.0) > small > estimate_window_seconds(30 << 20, 10000, 15, 1.0)
    assert estimate_window_seconds(30 << 20, 5000, 30, 1.0) == 2 * small
    assert estimate_window_seconds(30 << 20, 0, 15, 1.0) == 0.0


def test_estimate_matches_the_window_a_full_recorder_actually_covers():
    rec = FlightRecorder(budget_bytes=150_000, block_scrapes=10)
    for i in range(600):
        rec.ingest("s", T0 + i * 15_000, noisy_page(i, 50))
    stats = rec.stats()
    covered_s = (stats.newest_ms - stats.oldest_ms) / 1000
    assert stats.evicted_blocks > 0
    # Eviction goes a whole block at a time, so the window breathes by about one block (10 scrapes).
    assert abs(stats.estimated_window_seconds - covered_s) <= 0.15 * covered_s + 10 * 15
