"""Remote-write figures for one agent: samples/s it can push, CPU per 1,000 samples, bytes on the wire per sample.

Fills a FlightRecorder with a realistic 5,000-series page (bench_window.Page) scraped every 15 s for --minutes
(timestamps simulated, nothing sleeps), then lets one fodc Receiver push all of it, as an agent catching up
after an outage, to a real Debian victoria-metrics on loopback (default: 2 shards, 2,000 samples per
request), and checks the receiver holds every sample. Printed against floors measured in the same run:
reading the same samples from the window only, and reading + encoding + compressing them without sending.
Then the same page pushed live, scrape by scrape, as a caught-up agent does (each request carries every series'
labels for one sample). CPU is this process's (the agent side), not the receiver's.
Run: .venv/bin/python bench/bench_remote_write.py [--series 5000] [--minutes 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from bench_window import Page  # noqa: E402
from receivers import have_victoria_metrics, start_victoria_metrics  # noqa: E402

from fodc.enrich import node_labels  # noqa: E402
from fodc.remotewrite.encode import compress, encode, split  # noqa: E402
from fodc.remotewrite.plan import Stream, pick  # noqa: E402
from fodc.remotewrite.sender import Receiver, SenderOptions  # noqa: E402
from fodc.remotewrite.state import StateFile  # noqa: E402
from fodc.window import FlightRecorder  # noqa: E402

ADDED = node_labels("bench-node", "datanode-hot", {"zone": "a"})


def fill(series: int, minutes: int) -> tuple[FlightRecorder, int, int]:
    page = Page(series)
    recorder = FlightRecorder(budget_bytes=512 * 1024 * 1024)
    start = int(time.time() * 1000) - minutes * 60_000
    t = start
    for _ in range(minutes * 4):
        page.step()
        recorder.ingest("node", t, page.samples(), page.families, page.sample_family)
        t += 15_000
    return recorder, start, recorder.stats().samples


def timed(work) -> tuple[float, float, object]:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def read_only(recorder: FlightRecorder, start: int) -> int:
    return sum(len(w.timestamps_ms) for w in recorder.query(start - 1, None))


def read_and_encode(recorder: FlightRecorder, start: int, max_samples: int) -> tuple[int, int]:
    picked = pick(recorder.query(start - 1, None), Stream(start - 1), interval_ms=0, backfill_until_ms=None,
                  added=ADDED, read_to_ms=2**62)
    wire = sum(len(compress(encode(request))) for request in split(picked.series, max_samples))
    return picked.samples, wire


def receiver_for(recorder: FlightRecorder, start: int, url: str, shards: int, max_samples: int) -> Receiver:
    options = SenderOptions(shards=shards, max_samples=max_samples, round_samples=max(20 * max_samples, 20_000),
                            timeout_s=60, poll_s=0.05)
    receiver = Receiver(url, recorder, StateFile(None), options, added=ADDED)
    receiver.state.regular.origin_ms = start - 1
    return receiver


def catch_up(recorder: FlightRecorder, start: int, url: str, shards: int, max_samples: int) -> Receiver:
    """The whole window at once, as after an outage: rounds of up to 20 requests' worth of samples."""
    receiver = receiver_for(recorder, start, url, shards, max_samples)
    while receiver.run_round():
        pass
    receiver.stop()
    return receiver


def live(series: int, scrapes: int, url: str, shards: int, max_samples: int) -> tuple[float, float, Receiver]:
    """Scrape by scrape, as a caught-up agent pushes: each round sends the one new scrape. Returns the wall and
    CPU time of the rounds alone (not of making up the page)."""
    page = Page(series, seed=11)
    recorder = FlightRecorder(budget_bytes=512 * 1024 * 1024)
    t = start = int(time.time() * 1000) - scrapes * 15_000 + 7  # never the catch-up run's timestamps
    receiver = receiver_for(recorder, start, url, shards, max_samples)
    wall = cpu = 0.0
    for _ in range(scrapes):
        page.step()
        recorder.ingest("live", t, page.samples(), page.families, page.sample_family)
        t += 15_000
        round_wall, round_cpu, _ = timed(receiver.run_round)
        wall, cpu = wall + round_wall, cpu + round_cpu
    receiver.stop()
    return wall, cpu, receiver


def stored(vm_url: str) -> int:
    """Samples victoria-metrics holds for the bench node (after forcing its in-memory parts to be searchable)."""
    urllib.request.urlopen(f"{vm_url}/internal/force_flush", timeout=30).read()
    query = "sum(count_over_time({node_id=%22bench-node%22}[1d]))"
    body = urllib.request.urlopen(f"{vm_url}/api/v1/query?query={query}", timeout=60).read().decode()
    return int(float(body.split('"value":[')[1].split(",")[1].strip('"]}')))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--max-samples", type=int, default=2000)
    args = parser.parse_args()
    if not have_victoria_metrics():
        sys.exit("needs Debian's victoria-metrics (dev/bootstrap installs it)")
    recorder, start, samples = fill(args.series, args.minutes)
    print(f"window: {samples:,} samples ({args.series:,} series x {args.minutes * 4} scrapes)")
    read_wall, read_cpu, read = timed(lambda: read_only(recorder, start))
    enc_wall, enc_cpu, (encoded, wire) = timed(lambda: read_and_encode(recorder, start, args.max_samples))
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        vm, vm_url = start_victoria_metrics(Path(tmp), "bench-vm")
        try:
            url = f"{vm_url}/api/v1/write"
            push_wall, push_cpu, backlog = timed(lambda: catch_up(recorder, start, url, args.shards, args.max_samples))
            live_wall, live_cpu, scraped = live(args.series, args.minutes * 4, url, args.shards, args.max_samples)
            held = stored(vm_url)
        finally:
            vm.stop()
    c, k = backlog.counters, scraped.counters
    assert read == encoded == c.sent == samples and k.sent == samples, (read, encoded, c.sent, k.sent, samples)
    assert held == 2 * samples, held
    print(f"victoria-metrics holds all {held:,} samples (dropped {sum(c.dropped.values()) + sum(k.dropped.values())}"
          f", retried {c.failed + k.failed})")
    rows = [("read the window only (floor)", read_wall, read_cpu, None),
            ("read + pick + encode + snappy, no network", enc_wall, enc_cpu, wire),
            (f"catch-up push, {args.shards} shards", push_wall, push_cpu, c.bytes_sent),
            ("live push, one scrape per round", live_wall, live_cpu, k.bytes_sent)]
    print(f"{'':42} {'samples/s':>10} {'CPU ms/1k samples':>18} {'x floor':>8} {'bytes/sample':>13}")
    for name, wall, cpu, size in rows:
        per_sample = f"{size / samples:.2f}" if size is not None else "-"
        print(f"{name:42} {samples / wall:>10,.0f} {cpu / samples * 1e6:>18.2f} {wall / read_wall:>8.1f} "
              f"{per_sample:>13}")
    print(f"requests: catch-up {c.requests.get('sent', 0):,}, live {k.requests.get('sent', 0):,} (at most "
          f"{args.max_samples:,} samples each); bytes are snappy bodies, HTTP headers (~250 bytes a request) aside")


if __name__ == "__main__":
    main()
