"""Writes an agent's on-disk window as if it had scraped a simulated node for hours, in seconds.

The same page the live node serves (fodc.sim.NodeModel, same role, series count and seed), rendered at made-up
timestamps that end before the agent starts, parsed by fodc.expfmt and ingested into a FlightRecorder with an
on-disk window (DurableWindow). An agent started with that --window-dir reads it back at start. Used by the
tests of window reads and by bench/bench_agent_rss.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from fodc import expfmt
from fodc.sim.page import NodeModel
from fodc.window import FlightRecorder
from fodc.window.diskstore import DiskStore
from fodc.window.durable import DurableWindow

MIB = 1024 * 1024


def prefill_window(directory: Path, source: str, role: str, series: int, *, budget_bytes: int = 30 * MIB,
                   block_scrapes: int = 120, interval_ms: int = 15_000, scrapes: int | None = None,
                   until_full: bool = False) -> int:
    """Writes `scrapes` scrapes of the node page (or, with `until_full`, until the budget first evicts) into
    `directory`; returns the number written. The last one is stamped a minute ago."""
    recorder = FlightRecorder(budget_bytes=budget_bytes, block_scrapes=block_scrapes)
    store = DiskStore(directory, 10 * MIB, 200 * MIB)  # the agent's default file and directory caps
    if not store.open():
        raise RuntimeError(f"{directory} is locked by another process")
    durable = DurableWindow(recorder, store, 4)
    durable.attach()
    # Started now like the live node, so that the labels derived from the start day (segments) are the same
    # and the window holds the node's series, not a second set; the pages are stamped in the past.
    model = NodeModel(role, series, seed=0, start_s=time.time())
    parser = expfmt.Parser()
    count = scrapes if scrapes is not None else 48 * 3600 * 1000 // interval_ms
    end_ms = int(time.time() * 1000) - 60_000
    first_ms = end_ms - count * interval_ms
    written = 0
    for timestamp_ms in range(first_ms, end_ms, interval_ms):
        page = parser.parse(model.render(model.start_s + (timestamp_ms - first_ms) / 1000))
        recorder.ingest_families(source, timestamp_ms, page.families)
        written += 1
        if until_full and recorder.stats().evicted_blocks > 0:
            break
    else:
        if until_full:
            raise RuntimeError(f"{count} scrapes did not fill the window: use fewer series or more scrapes")
    durable.close()
    return written
