"""Copies the agents' complete incident bundles into the proxy's archive, in the background.

A pass asks only the agents that may have something new: one the copier has not asked since it (re)connected,
one whose reported incident counts changed, and one that still had an incident collecting at the last look.
A quiet fleet of a thousand agents therefore costs a registry read per pass. A copy that fails (agent gone,
bundle pruned, size mismatch) is retried on the next passes, MAX_TRIES in all; the agent's own copy stays the
source meanwhile. An incident the archive evicted for room is not fetched again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fodc.periodic import Periodic
from fodc.proxy.commands import CommandRunner
from fodc.proxy.incident_archive import IncidentArchive
from fodc.proxy.registry import ONLINE, AgentRecord, AgentRegistry
from fodc.v1 import fodc_pb2 as pb

log = logging.getLogger(__name__)

MAX_TRIES = 3


class IncidentCopier(Periodic):
    thread_name = "incident-copier"

    def __init__(self, registry: AgentRegistry, commands: CommandRunner, archive: IncidentArchive, *,
                 interval_s: float, timeout_s: float, max_bundle_bytes: int,
                 on_progress: Callable[[], None] = lambda: None) -> None:
        self.registry = registry
        self.max_bundle_bytes = max_bundle_bytes  # a bundle bigger than the whole archive could never be kept
        self.commands = commands
        self.archive = archive
        self.timeout_s = timeout_s
        # agent id -> (connection, its heartbeat's incident counts) at the last look
        self._asked: dict[str, tuple[int, tuple[tuple[str, int], ...]]] = {}
        self._unfinished: set[str] = set()  # agents with an incident collecting or a copy that failed
        self._tries: dict[tuple[str, str], int] = {}  # (node id, incident id) -> failed copies so far
        self._list_errors: dict[str, str] = {}  # agent id -> why it did not list its incidents (said once)
        self.copied = 0
        self.failed = 0
        super().__init__(interval_s, on_progress)

    def run_round(self) -> None:
        self.run_once()

    def _worth_asking(self, record: AgentRecord) -> bool:
        state = (record.connection, tuple(sorted(record.incidents_total.items())))
        return record.agent_id in self._unfinished or self._asked.get(record.agent_id) != state

    def run_once(self) -> int:
        """One pass; returns how many bundles were copied."""
        online = self.registry.list(status=ONLINE)
        ids = {r.agent_id for r in online}
        self._asked = {k: v for k, v in self._asked.items() if k in ids}  # a returning agent is asked anew
        self._unfinished &= ids
        self._list_errors = {k: v for k, v in self._list_errors.items() if k in ids}
        targets = [r for r in online if self._worth_asking(r)]
        if not targets:
            return 0
        answered, missing = self.commands.gather(targets, pb.IncidentListRequest(), self.timeout_s)
        for miss in missing:
            if self._list_errors.get(miss["agent_id"]) != miss["reason"]:
                log.warning("an agent did not list its incidents; asking again next pass", extra={"fields": miss})
            self._list_errors[miss["agent_id"]] = miss["reason"]
        self.on_progress()  # each step below is bounded by timeout_s, so the pass as a whole may be long
        copied = 0
        for record, incidents in answered:
            self._list_errors.pop(record.agent_id, None)
            unfinished = False
            for incident in incidents:
                node_id = record.registration.node_id
                if incident.get("state") == "collecting":
                    unfinished = True
                key = (node_id, incident["id"])
                if (incident.get("state") != "complete" or self.archive.known(*key)
                        or self._tries.get(key, 0) >= MAX_TRIES):
                    continue
                if self._copy(record, {**incident, "node_id": node_id, "role": record.registration.role}):
                    copied += 1
                    self._tries.pop(key, None)
                else:
                    self._tries[key] = self._tries.get(key, 0) + 1
                    unfinished = self._tries[key] < MAX_TRIES
                self.on_progress()
            self._asked[record.agent_id] = (record.connection, tuple(sorted(record.incidents_total.items())))
            (self._unfinished.add if unfinished else self._unfinished.discard)(record.agent_id)
        self.copied += copied
        return copied

    def _copy(self, record: AgentRecord, incident: dict) -> bool:
        fetch = self.commands.start(record, pb.IncidentFetchRequest(id=incident["id"]), self.timeout_s,
                                    max_bytes=self.max_bundle_bytes)
        result = fetch.collect(time.monotonic() + self.timeout_s)
        try:
            if not result.ok:
                raise ValueError(f"{result.state}: {result.error}")
            self.archive.put(incident, result.data)
        except (ValueError, OSError) as exc:
            self.failed += 1
            log.warning("cannot copy an incident bundle from its agent", extra={"fields": {
                "node_id": incident["node_id"], "id": incident["id"], "reason": str(exc)}})
            return False
        log.info("incident bundle copied to the proxy", extra={"fields": {
            "node_id": incident["node_id"], "id": incident["id"], "size": len(result.data)}})
        return True


class ArchiveMetrics(Collector):
    """The archive's size and the copier's work, read at scrape time so they are never stale."""

    def __init__(self, archive: IncidentArchive, copier: IncidentCopier | None) -> None:
        self.archive = archive
        self.copier = copier

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        count, size = self.archive.usage()
        yield GaugeMetricFamily("fodc_proxy_incident_archive_incidents", "incident bundles kept by the proxy",
                                value=count)
        yield GaugeMetricFamily("fodc_proxy_incident_archive_bytes", "bytes of incident bundles kept by the proxy",
                                value=size)
        yield GaugeMetricFamily("fodc_proxy_incident_archive_summaries_bytes",
                                "bytes of incident summaries kept by the proxy (their JSON)",
                                value=self.archive.summary_usage())
        yield CounterMetricFamily("fodc_proxy_incident_archive_evicted", "archived incidents evicted by the caps",
                                  value=self.archive.evicted)
        if self.copier is not None:
            yield CounterMetricFamily("fodc_proxy_incident_copies", "incident bundles copied from the agents",
                                      value=self.copier.copied)
            yield CounterMetricFamily("fodc_proxy_incident_copy_failures",
                                      "incident bundle copies that failed (retried later)", value=self.copier.failed)
