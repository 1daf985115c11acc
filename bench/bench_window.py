"""Flight-recorder figures on a realistic BanyanDB-like page, against upstream's plain arrays, in one run.

Simulates 24 h of a 5,000-series page scraped every 15 s (no sleeping: timestamps are made up) into a
FlightRecorder with a 30 MiB budget, then prints bytes/sample, window length, ingest rate, the time to query
1 h of every series, the process RSS, and the same figures for the baseline: per-series float64 + int64
arrays (8-16 bytes a sample, what upstream keeps). Run: .venv/bin/python bench/bench_window.py [--hours H]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from array import array

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fodc.window import FlightRecorder, SeriesMeta  # noqa: E402

MIB = 1024 * 1024
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")


class Page:
    """A BanyanDB-like page: histograms, counters with varying integer increments, shard gauges, slowly moving
    float gauges, go_/process_ runtime series, and many series that never change."""

    def __init__(self, target: int = 5000, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.names: list[str] = []
        self.labels: list[tuple[tuple[str, str], ...]] = []
        self.values: list[float] = []
        self.families: dict[str, SeriesMeta] = {}
        self.sample_family: dict[str, str] = {}
        self.updaters: list = []  # callables run once per scrape
        groups = ["sw_metric", "sw_record", "sw_trace", "sw_property", "sw_stream", "sw_topn"]
        rng = self.rng
        # Histograms: liaison/queue latencies, 14 series each (12 buckets, _sum, _count); about half are busy.
        h = 0
        while len(self.names) < target * 0.45:
            family = f"banyandb_queue_pub_total_latency_{h % 7}"
            labels = (("group", groups[h % len(groups)]), ("operation", f"op{h % 5}"), ("remote_node", f"n{h}"))
            self._histogram(family, labels, busy=rng.random() < 0.5)
            h += 1
        # Counters: totals growing by varying integer increments; 40 % idle.
        c = 0
        while len(self.names) < target * 0.72:
            family = f"banyandb_measure_total_written_{c % 40}"
            labels = (("group", groups[c % len(groups)]), ("seg", "20260821"), ("shard", str(c)))
            rate = 0 if rng.random() < 0.4 else rng.choice([1, 5, 40, 300, 20000])
            self._counter(family, labels, rate)
            c += 1
        # Shard gauges (file parts, series counts, bytes): integral, move now and then.
        g = 0
        while len(self.names) < target * 0.86:
            family = f"banyandb_measure_total_file_parts_{g % 20}"
            labels = (("group", groups[g % len(groups)]), ("seg", "20260821"), ("shard", str(g)))
            self._int_gauge(family, labels, rng.choice([0, 0, 0.02, 0.2]), rng.choice([1, 64, 4096 * 1024]))
            g += 1
        # Slowly moving float gauges (cpu/memory ratios, rates): half arbitrary floats, half few-digit decimals.
        f = 0
        while len(self.names) < target * 0.92:
            family = f"banyandb_system_cpu_state_{f % 10}"
            self._float_gauge(family, (("kind", f"k{f}"),), decimals=f % 2 == 0)
            f += 1
        # Runtime: byte gauges and process_cpu_seconds_total-like decimals.
        r = 0
        while len(self.names) < target * 0.95:
            self._int_gauge(f"go_memstats_alloc_bytes_{r}", (), 0.9, 8192)
            self._float_gauge(f"process_cpu_seconds_total_{r}", (), decimals=True, grow=True)
            r += 1
        # Stable series: configuration, limits, info.
        s = 0
        while len(self.names) < target:
            self._add(f"banyandb_memory_protector_limit_{s % 50}", (("path", f"/data/{s}"),), "gauge",
                      float(rng.randrange(1 << 30)))
            s += 1

    def _add(self, family: str, labels, type_: str, value: float, name: str | None = None) -> int:
        self.families.setdefault(family, SeriesMeta(family, type_, family, ""))
        name = name or family
        if name != family:
            self.sample_family[name] = family
        self.names.append(name)
        self.labels.append(labels)
        self.values.append(value)
        return len(self.values) - 1

    def _histogram(self, family, labels, busy: bool) -> None:
        first = len(self.values)
        for le in BUCKETS:
            self._add(family, labels + (("le", le),), "histogram", 0.0, family + "_bucket")
        total_sum = self._add(family, labels, "histogram", 0.0, family + "_sum")
        count = self._add(family, labels, "histogram", 0.0, family + "_count")
        if not busy:
            return
        values, rng = self.values, self.rng

        def update() -> None:
            n = rng.randrange(0, 60)
            cumulative = 0
            for i in range(len(BUCKETS)):  # most requests are fast
                cumulative += int(n * (0.5 ** (i + 1))) if i < 11 else n - cumulative
                values[first + i] += float(min(cumulative, n))
            values[total_sum] += n * rng.uniform(0.001, 0.02)
            values[count] += float(n)
        self.updaters.append(update)

    def _counter(self, family, labels, rate: int) -> None:
        i = self._add(family, labels, "counter", float(self.rng.randrange(10**6)))
        if rate:
            values, rng = self.values, self.rng

            def update() -> None:
                values[i] += float(rng.randrange(rate, 2 * rate + 1))
            self.updaters.append(update)

    def _int_gauge(self, family, labels, change: float, step: int) -> None:
        i = self._add(family, labels, "gauge", float(self.rng.randrange(1000) * step))
        if change:
            values, rng = self.values, self.rng

            def update() -> None:
                if rng.random() < change:
                    values[i] = max(0.0, values[i] + step * rng.randrange(-3, 4))
            self.updaters.append(update)

    def _float_gauge(self, family, labels, decimals: bool, grow: bool = False) -> None:
        i = self._add(family, labels, "gauge", round(self.rng.random(), 3) if decimals else self.rng.random())
        values, rng = self.values, self.rng

        def update() -> None:
            if grow:
                values[i] = round(values[i] + rng.randrange(0, 300) / 100, 2)
            elif decimals:
                values[i] = round(min(1.0, max(0.0, values[i] + rng.randrange(-5, 6) / 1000)), 3)
            else:
                values[i] = min(1.0, max(0.0, values[i] + rng.gauss(0, 0.002)))
        self.updaters.append(update)

    def step(self) -> None:
        for update in self.updaters:
            update()

    def samples(self):
        return zip(self.names, self.labels, self.values, strict=True)


class BaselineRings:
    """Upstream's layout: per series a float64 value ring and an int64 timestamp ring of equal length."""

    def __init__(self, budget: int, series: int) -> None:
        self.capacity = max(1, budget // (series * 16))
        self.rings: dict = {}
        self.pos = 0

    def ingest(self, timestamp_ms: int, samples) -> None:
        cap, slot = self.capacity, self.pos % self.capacity
        for name, labels, value in samples:
            ring = self.rings.get((name, labels))
            if ring is None:
                ring = self.rings[(name, labels)] = (array("d", bytes(8 * cap)), array("q", bytes(8 * cap)))
            ring[0][slot] = value
            ring[1][slot] = timestamp_ms
        self.pos += 1

    def query(self, start_ms: int, end_ms: int) -> int:
        points = 0
        for values, stamps in self.rings.values():
            picked = [(t, v) for t, v in zip(stamps, values, strict=True) if start_ms <= t <= end_ms]
            picked.sort()
            points += len(picked)
        return points


def _rss_after_malloc_trim(process: psutil.Process) -> int | None:
    """RSS once glibc has returned its free heap memory (Linux/glibc only; None elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return None
    return process.memory_info().rss


def sim_page_density(hours: float, series: int) -> None:
    """Cross-check on the project's simulated BanyanDB page (fodc.sim), through the real exposition parser."""
    try:
        from fodc import expfmt
        from fodc.sim.page import NodeModel
    except ImportError as exc:
        print(f"simulated page: skipped ({exc})")
        return
    t0_s = 1_787_300_000
    model = NodeModel("datanode-hot", series, seed=11, start_s=t0_s)
    page_parser = expfmt.Parser()
    recorder = FlightRecorder(budget_bytes=30 * MIB)
    ingest_s = 0.0
    for i in range(int(hours * 240)):
        families = page_parser.parse(model.render(t0_s + 15 * i)).families
        began = time.perf_counter()
        recorder.ingest_families("node", (t0_s + 15 * i) * 1000 + 37, families)
        ingest_s += time.perf_counter() - began
    stats = recorder.stats(15)
    sealed = list(recorder._sealed)
    per_sample = sum(len(r.payload) for r in sealed) / max(1, sum(r.samples for r in sealed))
    print(f"simulated node page (fodc.sim, {stats.series} series, {hours:g} h): sealed {per_sample:.3f} bytes/sample, "
          f"ingest_families {stats.samples / ingest_s:,.0f} samples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--budget-mib", type=float, default=30.0)
    parser.add_argument("--sim-hours", type=float, default=2.0,
                        help="hours of the fodc.sim node page for the cross-check (0 to skip)")
    args = parser.parse_args()
    interval_ms = 15_000
    scrapes = int(args.hours * 3600_000 / interval_ms)
    budget = int(args.budget_mib * MIB)
    page = Page(args.series)
    series = len(page.names)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    recorder = FlightRecorder(budget_bytes=budget)
    jitter = random.Random(1)
    start_ms = 1_787_000_000_000
    timestamps = [start_ms + i * interval_ms + jitter.randrange(-40, 41) for i in range(scrapes)]

    ingest_s = 0.0
    for t in timestamps:
        page.step()
        began = time.perf_counter()
        recorder.ingest("node", t, page.samples(), page.families, page.sample_family)
        ingest_s += time.perf_counter() - began
    stats = recorder.stats(interval_ms / 1000)
    # Keep scraping until the budget starts evicting: the span held then is what 30 MiB really holds.
    t = timestamps[-1]
    full_stats = stats
    while full_stats.evicted_blocks == 0:
        t += interval_ms
        page.step()
        recorder.ingest("node", t, page.samples(), page.families, page.sample_family)
        previous, full_stats = full_stats, recorder.stats(interval_ms / 1000)
    held_h = (previous.newest_ms - previous.oldest_ms) / 3600_000  # just before the first eviction
    gc.collect()
    rss_after = process.memory_info().rss
    rss_trimmed = _rss_after_malloc_trim(process)
    sealed_payload = sum(len(r.payload) for r in recorder._sealed)  # bench-only peek at the sealed records
    sealed_samples = sum(r.samples for r in recorder._sealed)
    covered_h = (stats.newest_ms - stats.oldest_ms) / 3600_000
    began = time.perf_counter()
    newest = full_stats.newest_ms
    points = sum(len(w.timestamps_ms) for w in recorder.query(newest - 3600_000, newest))
    query_s = time.perf_counter() - began

    baseline = BaselineRings(budget, series)
    base_scrapes = min(scrapes, baseline.capacity * 2)
    page_b = Page(args.series)
    began = time.perf_counter()
    for t in timestamps[:base_scrapes]:
        page_b.step()
        baseline.ingest(t, page_b.samples())
    base_ingest_rate = base_scrapes * series / (time.perf_counter() - began)
    last = timestamps[base_scrapes - 1]
    began = time.perf_counter()
    base_points = baseline.query(last - 3600_000, last)
    base_query_s = time.perf_counter() - began
    base_hours = baseline.capacity * interval_ms / 3600_000

    sealed_bps = sealed_payload / sealed_samples if sealed_samples else float("nan")
    overall_bps = stats.used_bytes / stats.samples
    ingest_rate = scrapes * series / ingest_s
    print(f"page: {series} series, {scrapes} scrapes every {interval_ms / 1000:.0f} s ({args.hours:g} h), "
          f"budget {args.budget_mib:g} MiB")
    print(f"window: used {stats.used_bytes / MIB:.2f} MiB, {stats.samples:,} samples, {stats.sealed_blocks} sealed "
          f"blocks, {stats.evicted_blocks} evicted, covers {covered_h:.2f} h "
          f"(estimate {stats.estimated_window_seconds / 3600:.2f} h)")
    print(f"bytes/sample sealed (payload): {sealed_bps:.3f}   overall (accounted/held): {overall_bps:.3f}   "
          f"baseline: 16.000   ratio: {16 / overall_bps:.1f}x")
    print(f"window per MiB: {covered_h * 60 / (stats.used_bytes / MIB):.1f} min   "
          f"baseline: {base_hours * 60 / (budget / MIB):.1f} min")
    print(f"hours of {series} series the budget held before its first eviction: {held_h:.1f} h "
          f"(estimate was {stats.estimated_window_seconds / 3600:.1f} h)   baseline: {base_hours:.2f} h   "
          f"ratio: {held_h / base_hours:.1f}x")
    print(f"ingest: {ingest_rate:,.0f} samples/s   baseline: {base_ingest_rate:,.0f} samples/s   "
          f"ratio: {ingest_rate / base_ingest_rate:.2f}")
    print(f"query 1 h of all series: {query_s * 1000:.0f} ms ({points:,} points)   baseline: "
          f"{base_query_s * 1000:.0f} ms ({base_points:,} points)   ratio: {query_s / base_query_s:.2f}")
    print(f"process RSS with the window full ({full_stats.used_bytes / MIB:.2f} MiB accounted): "
          f"{rss_after / MIB:.1f} MiB "
          f"(before the recorder: {rss_before / MIB:.1f} MiB; goal <= 64 MiB for the whole agent)")
    if rss_trimmed is not None:
        print(f"  after malloc_trim(0): {rss_trimmed / MIB:.1f} MiB (the difference is free heap glibc keeps once its "
              f"mmap threshold has adapted upwards; MALLOC_TRIM_THRESHOLD_=131072 in the agent's environment "
              f"{'is set' if 'MALLOC_TRIM_THRESHOLD_' in os.environ else 'avoids it'})")
    if args.sim_hours > 0:
        sim_page_density(args.sim_hours, args.series)


if __name__ == "__main__":
    main()
