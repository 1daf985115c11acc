"""The agent's on-disk window (--window-dir): recovery at start, the listener while running, self-metrics.

Built before the scraper starts, so the recovered window is in place before the first new scrape. Nothing here
can stop the agent: an unreadable or unwritable directory is logged and counted, and the window goes on in
memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fodc.agent.settings import WindowSettings
from fodc.times import now_ms
from fodc.window import FlightRecorder
from fodc.window.diskstore import OP_ARCHIVE, OP_INTERIM, OP_OPEN, OP_REMOVE, DiskStore
from fodc.window.durable import DurableWindow, RecoveryReport, recover

log = logging.getLogger(__name__)


class WindowDisk:
    def __init__(self, window: WindowSettings, recorder: FlightRecorder, registry: CollectorRegistry) -> None:
        self.directory = window.dir
        self.store: DiskStore | None = None
        self.durable: DurableWindow | None = None
        self.report = RecoveryReport()
        if self.directory is None:
            log.info("window kept in memory only (--window-dir is off)")
            return
        directory = Path(self.directory)
        self.store = DiskStore(directory, window.file_bytes, window.dir_bytes)
        if self.store.open():  # not when another agent holds the directory: its window is not ours to read
            try:
                self.report = recover(recorder, directory, window.memory)
            except Exception:  # a bug met on odd files must not keep the agent down; the files stay for `fodc dump`
                log.exception("reading the window back from %s failed; going on with what was read", directory)
        # What was read back is history: the node's current values are those scraped from now on.
        recorder.latest_from_ms = now_ms()
        self.durable = DurableWindow(recorder, self.store, window.interim_scrapes)
        self.durable.attach(self.report.resumed_sources)
        registry.register(_Collector(self))

    def summary(self) -> dict[str, str]:
        """Runtime indicators for the proxy's /cluster view."""
        if self.store is None:
            return {"window_store": "memory"}
        stats = self.store.stats()
        info = {"window_store": "disk", "window_disk_bytes": str(stats.bytes),
                "window_recovered_samples": str(self.report.samples + self.report.interim_scrapes)}
        if stats.last_error:
            info["window_disk_last_error"] = stats.last_error[:300]
        if self.durable is not None and self.durable.pending_blocks:
            info["window_disk_pending_blocks"] = str(self.durable.pending_blocks)
        return info

    def close(self) -> None:
        if self.durable is not None:
            self.durable.close()


class _Collector:
    """Reads the store's and the recovery's figures when the agent's /metrics is scraped."""

    def __init__(self, disk: WindowDisk) -> None:
        self.disk = disk

    def describe(self) -> list[Metric]:
        return []  # collected on demand only; the names are fixed below

    def collect(self) -> Iterator[Metric]:
        store, report = self.disk.store, self.disk.report
        assert store is not None
        stats = store.stats()
        yield GaugeMetricFamily("fodc_agent_window_disk_bytes", "bytes of the window's files in --window-dir",
                                value=stats.bytes)
        yield GaugeMetricFamily("fodc_agent_window_disk_limit_bytes", "cap on the window directory "
                                "(--window-dir-bytes)", value=store.dir_bytes)
        yield GaugeMetricFamily("fodc_agent_window_disk_files", "window files in --window-dir", value=stats.files)
        yield CounterMetricFamily("fodc_agent_window_disk_chunks_written", "sealed blocks appended to archive files",
                                  value=stats.chunks_written)
        yield CounterMetricFamily("fodc_agent_window_disk_written_bytes", "bytes written to the window directory "
                                  "(archives and interim rewrites)", value=stats.bytes_written)
        yield CounterMetricFamily("fodc_agent_window_disk_files_removed", "archive files removed to stay under "
                                  "--window-dir-bytes", value=stats.files_removed)
        errors = CounterMetricFamily("fodc_agent_window_disk_errors", "failed writes to the window directory; the "
                                     "window stays in memory and scraping goes on", labels=["operation"])
        for op in (OP_OPEN, OP_ARCHIVE, OP_INTERIM, OP_REMOVE):
            errors.add_metric([op], stats.errors.get(op, 0))
        yield errors
        yield CounterMetricFamily("fodc_agent_window_disk_vanished", "times the window directory or one of its "
                                  "files was found removed under the agent (made again, memory written again)",
                                  value=stats.vanished)
        durable = self.disk.durable
        assert durable is not None
        yield GaugeMetricFamily("fodc_agent_window_disk_pending_blocks", "sealed blocks held in memory that are not "
                                "on disk yet (a failed write or a vanished file); retried at every flush",
                                value=durable.pending_blocks)
        yield CounterMetricFamily("fodc_agent_window_disk_rewritten_blocks", "sealed blocks written again after a "
                                  "failed write or a vanished file", value=durable.rewritten_blocks)
        yield CounterMetricFamily("fodc_agent_window_disk_lost_blocks", "sealed blocks evicted from memory before "
                                  "they could be written to disk", value=durable.lost_blocks)
        damaged = GaugeMetricFamily("fodc_agent_window_recovery_damaged_chunks", "damaged chunks skipped when the "
                                    "window was read back at start, by reason", labels=["reason"])
        for reason, count in sorted(report.damaged.items()):
            damaged.add_metric([reason], count)
        yield damaged
        yield GaugeMetricFamily("fodc_agent_window_recovery_unreadable_files", "window files skipped whole at "
                                "start (not a window file, other format version, damaged header)",
                                value=len(report.unreadable))
        yield GaugeMetricFamily("fodc_agent_window_recovered_samples", "samples of sealed blocks read back at start",
                                value=report.samples)
        yield GaugeMetricFamily("fodc_agent_window_recovered_scrapes", "unsealed scrapes read back from the interim "
                                "file at start", value=report.interim_scrapes)
        yield GaugeMetricFamily("fodc_agent_window_recovery_seconds", "time taken to read the window back at start",
                                value=report.seconds)
