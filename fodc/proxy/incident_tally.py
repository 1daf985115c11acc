"""fodc_incidents_total as a true counter: it only goes up while the proxy runs.

Each agent reports its own per-trigger counts in heartbeats, and those start again from zero whenever the
agent process restarts; summing them as they stand would make the proxy's total drop, and Prometheus'
increase() would read each drop as a reset and report incidents that never happened (or miss real ones).
So the proxy adds only what is new: the growth of a count within one agent process (known by its start
time), all the counts of an agent process started after the proxy, and nothing of the counts an agent
already had when this proxy first saw it (those incidents predate this proxy's counter).
"""

from __future__ import annotations

import threading

from fodc.proxy.registry import AgentRecord


def parse_counts(text: str) -> dict[str, int]:
    """'node-down=2,rule:disk=1' -> {'node-down': 2, 'rule:disk': 1}; malformed parts are ignored."""
    counts = {}
    for part in text.split(","):
        trigger, _, count = part.rpartition("=")
        if trigger and count.isascii() and count.isdigit() and len(count) <= 18:
            counts[trigger] = int(count)
    return counts


class IncidentTally:
    def __init__(self, started_ms: int) -> None:
        self.started_ms = started_ms
        self._lock = threading.Lock()
        # agent id -> (its process start, its counts); kept after an agent is removed, so its return is not
        # counted twice (ids are derived from the agent's key, so this is bounded by the cluster's size)
        self._seen: dict[str, tuple[int, dict[str, int]]] = {}
        self._totals: dict[tuple[str, str], int] = {}  # (node role, trigger) -> incidents counted

    def observe(self, record: AgentRecord) -> None:
        counts = parse_counts(record.runtime.get("incidents_total", ""))
        started = record.registration.agent_started_ms
        role = record.registration.role
        with self._lock:
            previous = self._seen.get(record.agent_id)
            if previous is not None and previous[0] == started:
                base = previous[1]
            elif previous is None and started < self.started_ms:
                base = counts  # already counted by the agent before this proxy was there to see it
            else:
                base = {}  # a new agent process: everything it counted is new
            for trigger, count in counts.items():
                grown = count - base.get(trigger, 0)
                key = (role, trigger)
                if grown > 0:
                    self._totals[key] = self._totals.get(key, 0) + grown
                else:
                    self._totals.setdefault(key, 0)
            self._seen[record.agent_id] = (started, counts)

    def totals(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._totals)
