"""The agent's remote-write: one sender per --remote-write-url over the window, incident backfills, self-metrics.

Nothing here can stop or slow the agent: the senders only read the window, on their own threads, and a
receiver that fails or hangs shows as lag and counts on the agent's /metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fodc.enrich import node_labels
from fodc.remotewrite.client import Client
from fodc.remotewrite.options import RemoteWriteSettings
from fodc.remotewrite.sender import Receiver
from fodc.remotewrite.state import StateFile
from fodc.window import FlightRecorder

log = logging.getLogger(__name__)


class RemoteWrite:
    def __init__(self, settings: RemoteWriteSettings, recorder: FlightRecorder, registry: CollectorRegistry, *,
                 node_id: str, role: str, labels: Mapping[str, str], clock: Callable[[], float]) -> None:
        self.settings = settings
        self.state = StateFile(settings.state_file)
        tls = settings.access.tls_context()

        def client(url: str) -> Client:
            return settings.access.client(url, tls)

        added = node_labels(node_id, role, labels)
        self.receivers = [Receiver(url, recorder, self.state, settings.sender, added=added, clock=clock,
                                   client=client) for url in settings.urls]
        self.state.save(keep=set(settings.urls))  # receivers no longer configured are forgotten
        registry.register(_Collector(self))
        log.info("remote-write on", extra={"fields": {"receivers": [r.name for r in self.receivers],
                                                      "interval_s": settings.sender.interval_ms / 1000}})

    def start(self) -> None:
        for receiver in self.receivers:
            receiver.start()

    def stop(self, timeout_s: float) -> None:
        for receiver in self.receivers:
            receiver.stop(timeout_s / max(1, len(self.receivers)))

    def incident(self, incident: Mapping[str, Any], before_s: float, after_s: float) -> None:
        """An incident fired: its window goes to every receiver at full resolution."""
        at_ms = int(incident["at_ms"])
        for receiver in self.receivers:
            receiver.backfill(str(incident.get("id", "")), at_ms - int(before_s * 1000), at_ms + int(after_s * 1000))

    def summary(self) -> dict[str, str]:
        """Runtime indicators for the proxy's /cluster view."""
        lag = max((r.lag_seconds() for r in self.receivers), default=0.0)
        info = {"remote_write_receivers": str(len(self.receivers)), "remote_write_lag_s": f"{lag:.0f}"}
        errors = [f"{r.name}: {r.counters.last_error}" for r in self.receivers if r.counters.last_error]
        if errors:
            info["remote_write_last_error"] = "; ".join(errors)[:300]
        return info


class _Collector:
    """Reads the senders' counters when the agent's /metrics is scraped."""

    def __init__(self, remote: RemoteWrite) -> None:
        self.remote = remote

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        def family(kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, doc: str,
                   extra: tuple[str, ...] = ()) -> CounterMetricFamily | GaugeMetricFamily:
            return kind(f"fodc_agent_remote_write_{name}", doc, labels=["receiver", *extra])

        sent = family(CounterMetricFamily, "samples_sent", "samples the receiver took")
        backfill = family(CounterMetricFamily, "backfill_samples_sent", "of those, samples sent for an incident's "
                          "window (the scrapes the regular push skipped, or older than its start)")
        failed = family(CounterMetricFamily, "samples_failed", "samples in sends that failed (5xx, 429, network, "
                        "timeout) and were retried")
        dropped = family(CounterMetricFamily, "samples_dropped", "samples the receiver refused for good (4xx other "
                         "than 429), by status", ("reason",))
        requests = family(CounterMetricFamily, "requests", "send attempts by outcome: sent, retry, drop", ("outcome",))
        sent_bytes = family(CounterMetricFamily, "sent_bytes", "compressed request bytes the receiver took")
        queued = family(GaugeMetricFamily, "queue_samples", "samples read from the window and not yet delivered or "
                        "dropped")
        lag = family(GaugeMetricFamily, "lag_seconds", "how far the regular push is behind the window's newest scrape")
        pending = family(GaugeMetricFamily, "backfills_pending", "incident windows waiting to be sent")
        backfills = family(CounterMetricFamily, "backfills", "incident windows finished (done) or pushed out of the "
                           "queue by newer ones (dropped)", ("outcome",))
        for r in self.remote.receivers:
            c = r.counters
            sent.add_metric([r.name], c.sent)
            backfill.add_metric([r.name], c.backfill_sent)
            failed.add_metric([r.name], c.failed)
            for reason, count in sorted(c.dropped.items()):
                dropped.add_metric([r.name, reason], count)
            for outcome, count in sorted(c.requests.items()):
                requests.add_metric([r.name, outcome], count)
            sent_bytes.add_metric([r.name], c.bytes_sent)
            queued.add_metric([r.name], max(0, c.queued))
            lag.add_metric([r.name], r.lag_seconds())
            pending.add_metric([r.name], r.pending_backfills())
            backfills.add_metric([r.name, "done"], c.backfills_done)
            backfills.add_metric([r.name, "dropped"], c.backfills_dropped)
        yield from (sent, backfill, failed, dropped, requests, sent_bytes, queued, lag, pending, backfills)
        yield GaugeMetricFamily("fodc_agent_remote_write_state_ok", "0 while the last write of "
                                "--remote-write-state-file failed", value=0 if self.remote.state.last_error else 1)
