"""What keeping the window on disk costs: bytes per sample on disk, write cost per scrape, recovery time.

Feeds the same simulated scrapes (bench_window.Page: a 5,000-series BanyanDB-like page every 15 s, timestamps
made up, no sleeping) to two FlightRecorders in the same run, scrape by scrape: one in memory only (the
baseline) and one with the on-disk window (DiskStore + DurableWindow, fsyncs included, on a real directory).
The directory is given a small cap so it fills and rotates during the run; then a fresh recorder reads it
back, as an agent does at start. Run: .venv/bin/python bench/bench_durable.py [--hours 24] [--series 5000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from bench_window import Page  # noqa: E402

from fodc.window import FlightRecorder  # noqa: E402
from fodc.window.diskfiles import ARCHIVE, list_window_files  # noqa: E402
from fodc.window.diskstore import DiskStore  # noqa: E402
from fodc.window.durable import DurableWindow, recover  # noqa: E402

MIB = 1024 * 1024
T0 = 1_787_300_000_000


class TimedWindow(DurableWindow):
    """Splits the disk work into its two kinds: archive appends (per sealed block) and interim flushes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seal_s: list[float] = []
        self.flush_s: list[float] = []

    def sealed(self, source, first_ms, last_ms, payload):  # noqa: ANN001, ANN201
        started = time.perf_counter()
        super().sealed(source, first_ms, last_ms, payload)
        self.seal_s.append(time.perf_counter() - started)

    def _flush(self, source):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        super()._flush(source)
        self.flush_s.append(time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--budget-mib", type=float, default=30.0, help="memory budget of both recorders")
    parser.add_argument("--file-mib", type=float, default=2.0, help="--window-file-bytes")
    parser.add_argument("--dir-mib", type=float, default=16.0, help="--window-dir-bytes (small, so it fills)")
    parser.add_argument("--interim-scrapes", type=int, default=4)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir under /var/tmp)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-durable-", dir=args.dir or "/var/tmp"))
    try:
        run(args, work / "window")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, directory: Path) -> None:
    budget = int(args.budget_mib * MIB)
    page = Page(args.series)
    memory = FlightRecorder(budget_bytes=budget)
    durable = FlightRecorder(budget_bytes=budget)
    store = DiskStore(directory, int(args.file_mib * MIB), int(args.dir_mib * MIB))
    store.open()
    window = TimedWindow(durable, store, args.interim_scrapes)
    window.attach()
    scrapes = int(args.hours * 3600 / args.interval)
    memory_s, durable_s = [], []
    samples_total = 0
    print(f"{scrapes} scrapes of {len(page.names)} series every {args.interval:g}s into {directory} "
          f"(files {args.file_mib:g} MiB, cap {args.dir_mib:g} MiB, interim every {args.interim_scrapes})")
    for i in range(scrapes):
        page.step()
        samples = list(page.samples())
        ts = T0 + int(i * args.interval * 1000)
        order = ((memory, memory_s), (durable, durable_s)) if i % 2 else ((durable, durable_s), (memory, memory_s))
        for recorder, timings in order:  # alternate who goes first, so neither always meets a warmer cache
            started = time.perf_counter()
            recorder.ingest("node", ts, samples, page.families, page.sample_family)
            timings.append(time.perf_counter() - started)
        samples_total += len(samples)
    window.close()

    stats = store.stats()
    files = list_window_files(directory)
    archive_bytes = sum(f.size for f in files if f.kind == ARCHIVE)
    first_full = stats.files_removed > 0
    mem_us = statistics.mean(memory_s) * 1e6
    dur_us = statistics.mean(durable_s) * 1e6
    per_block = [s * 1e3 for s in window.seal_s]
    per_flush = [s * 1e3 for s in window.flush_s]
    days = args.hours / 24
    written_per_day = stats.bytes_written / days

    # bytes/sample on disk: the payload of every archive chunk still on disk over the samples it holds
    restored = FlightRecorder(budget_bytes=1 << 40)  # unbounded: count every sample on disk
    report_all = recover(restored, directory, 1 << 40)
    disk_samples = report_all.samples
    bytes_per_sample = archive_bytes / disk_samples if disk_samples else float("nan")

    # recovery as the agent does it at start: budget-bounded, into a fresh recorder
    agent = FlightRecorder(budget_bytes=budget)
    started = time.perf_counter()
    report = recover(agent, directory, budget)
    recovery_s = time.perf_counter() - started

    print()
    print("| figure | value |")
    print("|---|---:|")
    print(f"| samples ingested | {samples_total:,} |")
    filled = f"filled, {stats.files_removed} files rotated out" if first_full else "not filled"
    print(f"| directory at the end | {stats.bytes / MIB:.1f} MiB in {len(files)} files "
          f"(cap {args.dir_mib:g} MiB; {filled}) |")
    print(f"| archive bytes/sample on disk (framing included) | {bytes_per_sample:.2f} |")
    print(f"| bytes written per day (archives + interim) | {written_per_day / MIB:.0f} MiB |")
    print(f"| ingest per scrape, memory only (baseline) | {mem_us:,.0f} µs |")
    print(f"| ingest per scrape, with the on-disk window | {dur_us:,.0f} µs |")
    print(f"| write cost per scrape (difference) | {dur_us - mem_us:,.0f} µs ({dur_us / mem_us:.2f}x the baseline) |")
    print(f"| interim flush (every {args.interim_scrapes} scrapes), p50 / p99 | "
          f"{pct(per_flush, 0.5):.1f} / {pct(per_flush, 0.99):.1f} ms |")
    print(f"| archive append of a sealed block (fdatasync), p50 / p99 | "
          f"{pct(per_block, 0.5):.1f} / {pct(per_block, 0.99):.1f} ms |")
    print(f"| recovery at start ({report.blocks} blocks, {report.samples:,} samples, "
          f"{report.files_read} files read) | {recovery_s:.2f} s |")
    print(f"| points identical after recovery (newest hour, spot check) | {same_newest_hour(durable, agent)} |")


def same_newest_hour(live: FlightRecorder, recovered: FlightRecorder) -> str:
    newest = live.stats().newest_ms
    start = newest - 3_600_000
    want = {(w.name, w.labels): w.values for w in live.query(start, newest)}
    got = {(w.name, w.labels): w.values for w in recovered.query(start, newest)}
    same = sum(1 for key, values in want.items() if repr(got.get(key)) == repr(values))
    return f"{same}/{len(want)} series"


if __name__ == "__main__":
    main()
