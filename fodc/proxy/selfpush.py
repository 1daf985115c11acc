"""The proxy's own metrics (fodc_proxy_*, fodc_incidents_total) pushed by remote-write, for TSDBs nobody scrapes
the proxy for: a snapshot every --remote-write-interval.

The proxy keeps no window, so a receiver that is away gets the snapshots of the last few minutes (a bounded
backlog per receiver, oldest sent first, oldest dropped and counted when full), not everything. The series carry
job="fodc-proxy" and instance=<host>:<HTTP port>, the labels Prometheus would give the proxy as a target; a
metric's own labels (fodc_incidents_total's node_id, node_role) are never overwritten.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fodc.periodic import Periodic
from fodc.remotewrite.client import DROP, SENT, Client, endpoint_name
from fodc.remotewrite.encode import Labels, Series, compress, encode, series_labels, split
from fodc.remotewrite.options import Access
from fodc.times import now_ms

log = logging.getLogger(__name__)

BACKLOG = 20  # snapshots kept per receiver while it does not take them (5 minutes at 15 s)
MAX_SAMPLES_PER_SEND = 5000


@dataclass
class Pending:
    """One receiver: its connection, the snapshots it has not taken, and what became of the others."""

    client: Client
    name: str
    backlog: deque[tuple[bytes, int]] = field(default_factory=lambda: deque())
    sent: int = 0
    failed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    failing: bool = False

    def drop(self, reason: str, samples: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + samples


def snapshot(registry: CollectorRegistry, added: Labels, now_ms: int) -> list[Series]:
    """Every sample of the registry now, labelled as sent."""
    return [Series(series_labels(sample.name, tuple(sorted(sample.labels.items())), added), [now_ms], [sample.value])
            for family in registry.collect() for sample in family.samples]


class SelfMetricsPush(Periodic):
    thread_name = "remote-write-self"
    fixed_rate = True

    def __init__(self, access: Access, registry: CollectorRegistry, *, interval_s: float, instance: str,
                 backlog: int = BACKLOG) -> None:
        super().__init__(interval_s)
        self.registry = registry
        self.added: Labels = (("instance", instance), ("job", "fodc-proxy"))
        tls = access.tls_context()
        self.receivers = [Pending(access.client(url, tls), endpoint_name(url), deque(maxlen=backlog))
                          for url in access.urls]
        registry.register(_Collector(self))

    def first_delay_s(self) -> float:
        return 0.0

    def run_round(self) -> None:
        series = snapshot(self.registry, self.added, now_ms())
        bodies = [(compress(encode(request)), sum(len(s) for s in request))
                  for request in split(series, MAX_SAMPLES_PER_SEND)]
        for receiver in self.receivers:
            for body in bodies:
                if len(receiver.backlog) == receiver.backlog.maxlen:
                    receiver.drop("backlog_full", receiver.backlog[0][1])
                receiver.backlog.append(body)
            self._deliver(receiver)

    def _deliver(self, receiver: Pending) -> None:
        """Oldest first, until the receiver fails (the next round tries again) or the backlog is empty."""
        while receiver.backlog and not self._stop.is_set():
            body, samples = receiver.backlog[0]
            outcome = receiver.client.post(body)
            if outcome.kind == SENT:
                receiver.sent += samples
                if receiver.failing:
                    receiver.failing = False
                    log.info("remote-write receiver takes the proxy's metrics again", extra={"fields": {
                        "receiver": receiver.name}})
            elif outcome.kind == DROP:
                receiver.drop(f"http_{outcome.status}", samples)
                log.warning("remote-write receiver refused the proxy's metrics; dropped", extra={"fields": {
                    "receiver": receiver.name, "reason": outcome.message}})
            else:
                receiver.failed += samples
                if not receiver.failing:
                    receiver.failing = True
                    log.warning("remote-write of the proxy's metrics failed; kept for the next round",
                                extra={"fields": {"receiver": receiver.name, "reason": outcome.message}})
                return
            receiver.backlog.popleft()

    def stop(self, timeout_s: float = 2.0) -> None:
        super().stop()
        self.join(timeout_s)
        for receiver in self.receivers:
            receiver.client.close()


class _Collector:
    def __init__(self, push: SelfMetricsPush) -> None:
        self.push = push

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        sent = CounterMetricFamily("fodc_proxy_remote_write_samples_sent", "samples of the proxy's own metrics "
                                   "the receiver took", labels=["receiver"])
        failed = CounterMetricFamily("fodc_proxy_remote_write_samples_failed", "samples in sends that failed "
                                     "(5xx, 429, network, timeout) and were kept for the next round",
                                     labels=["receiver"])
        dropped = CounterMetricFamily("fodc_proxy_remote_write_samples_dropped", "samples given up: refused for "
                                      "good (4xx) or pushed out of the backlog", labels=["receiver", "reason"])
        queued = GaugeMetricFamily("fodc_proxy_remote_write_queue_samples", "samples waiting for the receiver",
                                   labels=["receiver"])
        for r in self.push.receivers:
            sent.add_metric([r.name], r.sent)
            failed.add_metric([r.name], r.failed)
            for reason, count in sorted(r.dropped.items()):
                dropped.add_metric([r.name, reason], count)
            queued.add_metric([r.name], sum(samples for _, samples in list(r.backlog)))
        yield from (sent, failed, dropped, queued)
