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
                   block_scrapes: int = 120, interval_ms: int = 15_000, scrapes: int | None = None) -> int:
    """Writes `scrapes` scrapes of the node page into `directory`, the last one stamped a minute ago, and returns
    how many. Without `scrapes`, enough to fill the budget and evict for a while (a long-running agent's
    window, up to the present); RuntimeError if that estimate fell short."""
    # Started now like the live node, so that the labels derived from the start day (segments) are the same
    # and the window holds the node's series, not a second set; the pages are stamped in the past.
    model = NodeModel(role, series, seed=0, start_s=time.time())
    parser = expfmt.Parser()
    fill = scrapes is None
    if fill:
        scrapes = _scrapes_to_fill(model, parser, source, budget_bytes, block_scrapes, interval_ms)
    recorder = FlightRecorder(budget_bytes=budget_bytes, block_scrapes=block_scrapes)
    store = DiskStore(directory, 10 * MIB, 200 * MIB)  # the agent's default file and directory caps
    if not store.open():
        raise RuntimeError(f"{directory} is locked by another process")
    durable = DurableWindow(recorder, store, block_scrapes)  # interim flushes (fsyncs) only slow a prefill
    durable.attach()
    end_ms = int(time.time() * 1000) - 60_000
    first_ms = end_ms - scrapes * interval_ms
    for timestamp_ms in range(first_ms, end_ms, interval_ms):
        page = parser.parse(model.render(model.start_s + (timestamp_ms - first_ms) / 1000))
        recorder.ingest_families(source, timestamp_ms, page.families)
    durable.close()
    if fill and recorder.stats().evicted_blocks == 0:
        raise RuntimeError(f"{scrapes} scrapes did not fill {budget_bytes} bytes")
    return scrapes


def _scrapes_to_fill(model: NodeModel, parser: expfmt.Parser, source: str, budget_bytes: int, block_scrapes: int,
                     interval_ms: int) -> int:
    """Scrapes that fill the budget, from the window's own estimate after two blocks, plus a margin."""
    probe = FlightRecorder(budget_bytes=budget_bytes, block_scrapes=block_scrapes)
    for i in range(2 * block_scrapes + 1):
        page = parser.parse(model.render(model.start_s + i * interval_ms / 1000))
        probe.ingest_families(source, i * interval_ms, page.families)
    seconds = probe.stats(interval_ms / 1000).estimated_window_seconds
    return int(seconds * 1000 / interval_ms * 1.15) + 2 * block_scrapes
