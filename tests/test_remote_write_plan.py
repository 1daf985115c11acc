"""What a receiver is sent (fodc/remotewrite/plan.py): the regular push and an incident's backfill together send
every scrape of the incident window exactly once, whatever the interval, the read slices or the sources' clocks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fodc.remotewrite.plan import Stream, advance, lag_ms, on_grid, pick
from fodc.window.model import SeriesWindow

ADDED = (("node_id", "n1"), ("node_role", "liaison"))


def windows(rows: dict[str, list[int]], lo: int, hi: int) -> list[SeriesWindow]:
    """Two series per source: `a` in every scrape, `b` in every other one (a series may be absent)."""
    out = []
    for source, stamps in rows.items():
        inside = [t for t in stamps if lo <= t <= hi]
        for name, kept in (("a", inside), ("b", [t for t in inside if stamps.index(t) % 2 == 0])):
            if kept:
                out.append(SeriesWindow(name, (("src", source),), "gauge", "", "", source, kept,
                                        [t / 1000 for t in kept]))
    return out


def run(stream: Stream, rows: dict[str, list[int]], cuts: list[int], interval_ms: int,
        backfill_until_ms: int | None = None) -> set[tuple[str, str, int]]:
    """Runs rounds reading up to each cut in turn; returns every (source, series, timestamp) sent."""
    sent: set[tuple[str, str, int]] = set()
    for hi in cuts:
        lo = stream.read_from(rows, interval_ms)
        picked = pick(windows(rows, lo, hi), stream, interval_ms=interval_ms, backfill_until_ms=backfill_until_ms,
                      added=ADDED, read_to_ms=hi)
        for series in picked.series:
            labels = dict(series.labels)
            for t in series.timestamps_ms:
                key = (labels["src"], labels["__name__"], t)
                assert key not in sent, f"{key} sent twice"
                sent.add(key)
        assert picked.samples == sum(len(s) for s in picked.series)
        advance(stream, picked, {s: max(t for t in stamps if t <= hi) for s, stamps in rows.items()
                                 if any(t <= hi for t in stamps)}, hi)
    return sent


def all_samples(rows: dict[str, list[int]], lo: int, hi: int) -> set[tuple[str, str, int]]:
    return {(w.source, w.name, t) for w in windows(rows, lo, hi) for t in w.timestamps_ms}


sources = st.dictionaries(st.sampled_from(["node", "ktm", "os"]),
                          st.lists(st.integers(1, 400), min_size=1, max_size=60, unique=True).map(sorted),
                          min_size=1)


@given(rows=sources, interval=st.sampled_from([0, 7, 20, 50]), origin=st.integers(0, 200),
       window=st.tuples(st.integers(0, 400), st.integers(0, 400)).map(sorted),
       cuts=st.lists(st.integers(0, 400), max_size=6).map(sorted))
def test_regular_and_backfill_send_each_scrape_of_the_incident_window_once(rows, interval, origin, window, cuts):
    start, end = window
    regular = run(Stream(origin), rows, [*cuts, 400], interval)
    backfill = run(Stream(start - 1, end_ms=end), rows, [*cuts, 400], interval, backfill_until_ms=origin)
    incident = all_samples(rows, start, end)
    assert backfill <= incident  # nothing outside the incident window
    assert not regular & backfill  # each once
    assert incident <= regular | backfill  # every scrape of the window
    assert all(t > origin for _, _, t in regular)  # the regular push starts at its origin


@given(rows=sources, interval=st.sampled_from([0, 7, 20, 50]),
       cuts=st.lists(st.integers(0, 400), max_size=6).map(sorted))
def test_the_regular_push_sends_the_first_scrape_of_each_slot(rows, interval, cuts):
    sent = run(Stream(0), rows, [*cuts, 400], interval)
    expected = set()
    for source, stamps in rows.items():
        prev = None
        for t in stamps:
            if on_grid(prev, t, interval):
                expected |= {(source, "a", t)} | ({(source, "b", t)} if stamps.index(t) % 2 == 0 else set())
            prev = t
    assert sent == expected


def test_labels_carry_the_sample_name_and_the_node_labels_sorted():
    stream = Stream(0)
    window = SeriesWindow("up_total", (("node_id", "own"), ("zone", "")), "counter", "", "", "s", [5], [1.0])
    picked = pick([window], stream, interval_ms=0, backfill_until_ms=None, added=ADDED, read_to_ms=10)
    assert picked.series[0].labels == (("__name__", "up_total"), ("fodc_node_id", "n1"), ("node_id", "own"),
                                       ("node_role", "liaison"))  # own label kept, ours renamed, empty one gone


def test_a_source_whose_scrape_lands_late_is_not_skipped():
    """Source b's scrape stamped 100 lands after source a's at 150 was sent: b has its own cursor."""
    stream = Stream(0)
    rows = {"a": [50, 150], "b": [50]}
    run(stream, rows, [150], 0)
    assert stream.cursors == {"a": 150, "b": 50}
    rows["b"].append(100)
    assert run(stream, rows, [150], 0) == {("b", "a", 100)}


def test_lag_is_how_far_the_slowest_source_is_behind():
    assert lag_ms(Stream(10, {"a": 100, "b": 40}), {"a": 120, "b": 90, "c": 30}) == 50
    assert lag_ms(Stream(10, {"a": 100}), {"a": 100}) == 0
