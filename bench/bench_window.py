"""Flight recorder density and cost on the simulated BanyanDB page, against plain per-series arrays.

Run: .venv/bin/python bench/bench_window.py [--series 5000] [--hours 6] [--fill]
Scrapes of a 5k-series data-node page every 15 s (simulated time, no sleeping) go into the recorder. Prints
bytes/sample (sealed and overall), hours of 5k series that fit in 30 MiB, ingest samples/s, the time to
query one hour of every series, and the same density for the baseline (upstream's plain float64 values +
int64 timestamps per series). --fill keeps going until the 30 MiB budget evicts, then prints process RSS.
"""

from __future__ import annotations

import argparse
import os
import time

import psutil

from fodc import expfmt
from fodc.sim.page import NodeModel
from fodc.window import FlightRecorder

T0 = 1_787_300_000
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--hours", type=float, default=6)
    parser.add_argument("--fill", action="store_true", help="fill the 30 MiB budget and report RSS")
    args = parser.parse_args()

    model = NodeModel("datanode-hot", args.series, seed=11, start_s=T0)
    page_parser = expfmt.Parser()
    page_parser.parse(model.render(T0))
    rss_before = psutil.Process(os.getpid()).memory_info().rss
    recorder = FlightRecorder(budget_bytes=30 * MIB)
    scrapes = int(args.hours * 3600 / 15)
    ingest_time = 0.0
    samples_in = 0
    i = 0

    def scrape(step: int) -> None:
        nonlocal ingest_time, samples_in
        families = page_parser.parse(model.render(T0 + 15 * step)).families
        start = time.perf_counter()
        recorder.ingest_families("node", (T0 + 15 * step) * 1000 + 37, families)
        ingest_time += time.perf_counter() - start
        samples_in += sum(len(f.samples) for f in families)

    for i in range(scrapes):
        scrape(i)
    stats = recorder.stats(15)
    sealed_bytes = sum(len(b.payload) for b in recorder._sealed)
    sealed_samples = recorder._sealed_samples
    per_sample_sealed = sealed_bytes / max(1, sealed_samples)
    per_sample_all = stats.used_bytes / max(1, stats.samples)
    baseline = 16.0  # float64 value + int64 timestamp per sample, per series (upstream's rings)
    hours_fit = stats.estimated_window_seconds / 3600

    start = time.perf_counter()
    points = sum(len(w.values) for w in recorder.query(start_ms=(T0 + 15 * scrapes - 3600) * 1000))
    query_s = time.perf_counter() - start

    print(f"series: {stats.series}, scrapes: {scrapes} ({args.hours:g} h at 15 s), samples held: {stats.samples}")
    print(f"sealed bytes/sample:         {per_sample_sealed:8.3f}   "
          f"(baseline {baseline:.0f}: x{baseline / per_sample_sealed:.1f} denser)")
    print(f"overall bytes/sample:        {per_sample_all:8.3f}   (includes raw open blocks and per-series overhead)")
    print(f"window per MiB (5k series):  {hours_fit * 3600 / 30 / 60:8.1f} min/MiB")
    print(f"30 MiB holds:                {hours_fit:8.1f} h of {stats.series} series "
          f"(baseline: {30 * MIB / (stats.series * baseline) * 15 / 3600:.1f} h)")
    print(f"ingest:                      {samples_in / ingest_time:10,.0f} samples/s")
    print(f"query 1 h of all series:     {query_s * 1000:8.0f} ms for {points:,} points")

    if args.fill:
        while recorder.stats().evicted_blocks == 0:
            i += 1
            scrape(i)
        rss = psutil.Process(os.getpid()).memory_info().rss
        stats = recorder.stats(15)
        print(f"full window: {stats.used_bytes / MIB:.1f} MiB accounted, covers "
              f"{(stats.newest_ms - stats.oldest_ms) / 3.6e6:.1f} h; process RSS {rss / MIB:.0f} MiB, of which "
              f"the window added {(rss - rss_before) / MIB:.0f} MiB (the rest is the page simulator and parser)")


if __name__ == "__main__":
    main()
