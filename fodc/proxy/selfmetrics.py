"""The proxy's own metrics: agents by status, per-agent RPC latency, fan-out duration, bytes, missing agents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fodc.periodic import LoopFailuresCollector
from fodc.proxy.access import REFUSED as HTTP_REFUSED
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.httpworker import CLOSED as HTTP_CLOSED
from fodc.proxy.incident_tally import IncidentTally
from fodc.proxy.profile_summary import RESULTS as PROFILE_SUMMARIES
from fodc.proxy.registry import ONLINE, UNCONNECTED, AgentRecord, AgentRegistry
from fodc.times import now_ms

if TYPE_CHECKING:
    from fodc.proxy.fanout import Missing

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _RegistryCollector(Collector):
    def __init__(self, registry: AgentRegistry, metrics: ProxyMetrics) -> None:
        self._registry = registry
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = self._registry.counts()
        agents = GaugeMetricFamily("fodc_proxy_agents", "registered agents by status", labels=["status"])
        for status in (ONLINE, UNCONNECTED):
            agents.add_metric([status], counts[status])
        yield agents
        missing = GaugeMetricFamily("fodc_proxy_agent_missing",
                                    "1 for each agent that did not answer the last metrics fan-out",
                                    labels=["node_id", "node_role", "endpoint"])
        for (node_id, role, endpoint) in sorted(self._metrics.last_missing):
            missing.add_metric([node_id, role, endpoint], 1)
        yield missing
        total = CounterMetricFamily("fodc_incidents", "incidents the agents recorded (from their heartbeats) "
                                    "since this proxy started", labels=["node_id", "node_role", "trigger"])
        for key, count in sorted(self._metrics.incidents.totals().items()):
            total.add_metric(list(key), count)
        yield total
        yield _counts("fodc_proxy_http_connections_closed", "HTTP connections the proxy closed on a slow, silent "
                      "or oversized client, by reason", "reason", HTTP_CLOSED)
        yield _counts("fodc_proxy_http_refused", "HTTP requests refused for their token, by status (429: refused "
                      "too often, neither audited nor logged)", "status", HTTP_REFUSED)
        yield _counts("fodc_proxy_profile_summaries", "JSON summaries of profiles answered, by result (ok, cached, "
                      "not_a_profile, busy)", "result", PROFILE_SUMMARIES)


def _counts(name: str, documentation: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    """One counter family from a module's tally of events keyed by one label."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


class ProxyMetrics:
    def __init__(self, agent_registry: AgentRegistry, refusals: Refusals | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.agent_rpc = Histogram("fodc_proxy_agent_rpc_duration_seconds",
                                   "time from sending a metrics request to an agent until its last chunk",
                                   ["node_id", "node_role"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.fanout = Histogram("fodc_proxy_fanout_duration_seconds", "duration of a whole metrics fan-out",
                                ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.bytes_received = Counter("fodc_proxy_received_bytes", "metric reply bytes received from agents",
                                      registry=self.registry)
        self.missed = Counter("fodc_proxy_agent_missed", "metrics requests an agent did not answer in time",
                              ["node_id", "node_role"], registry=self.registry)
        self.last_missing: set[tuple[str, str, str]] = set()
        self.incidents = IncidentTally(now_ms(), refusals)
        agent_registry.on_heartbeat = self.incidents.observe
        agent_registry.on_removed = self.incidents.forget
        self.registry.register(_RegistryCollector(agent_registry, self))
        self.registry.register(LoopFailuresCollector("fodc_proxy"))

    def observe_agent(self, record: AgentRecord, seconds: float, received_bytes: int) -> None:
        self.agent_rpc.labels(record.registration.node_id, record.key.role).observe(seconds)
        self.bytes_received.inc(received_bytes)

    def observe_fanout(self, endpoint: str, seconds: float, missing: Iterable[Missing],
                       answered: Iterable[AgentRecord]) -> None:
        self.fanout.labels(endpoint).observe(seconds)
        for record in answered:
            self.last_missing.discard((record.registration.node_id, record.key.role, endpoint))
        for miss in missing:
            if miss.client_slow:  # the agent answered in time; FodcAgentMissingFromFanout is about agents
                continue
            key = (miss.record.registration.node_id, miss.record.key.role, endpoint)
            self.last_missing.add(key)
            self.missed.labels(key[0], key[1]).inc()
