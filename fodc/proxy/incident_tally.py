"""fodc_incidents_total as a true counter: it only goes up while the proxy runs.

Each agent reports its own per-trigger counts in heartbeats, and those start again from zero whenever the
agent process restarts; summing them as they stand would make the proxy's total drop, and Prometheus'
increase() would read each drop as a reset and report incidents that never happened (or miss real ones).
So the proxy adds only what is new: the growth of a count within one agent process (known by its start
time), all the counts of an agent process started after the proxy, and nothing of the counts an agent
already had when this proxy first saw it (those incidents predate this proxy's counter).

Each (node, trigger) is a series labelled with the node's id and role, so an alert on it names the node that
had the incident (a proxy scraped with honor_labels has no node of its own to lend the series). Trigger names
come from the agents: only the built-in triggers and at most MAX_RULES_PER_AGENT well-formed `rule:<name>`
triggers per agent are counted (the rest are refused), and a node's series go when no registered agent of that
node reports them any more.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from fodc.incident import PULLED, TRIGGERS
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.registry import AgentRecord

KNOWN_TRIGGERS = frozenset(TRIGGERS + PULLED)
RULE_TRIGGER = re.compile(r"rule:[A-Za-z0-9_.-]{1,64}")
MAX_RULES_PER_AGENT = 32
MAX_REMEMBERED = 20_000  # agents whose last counts are kept after they left (so a return is not counted twice)


def accepted_counts(counts: dict[str, int], known_rules: frozenset[str] = frozenset()) -> tuple[dict[str, int], int]:
    """The counts of built-in triggers and of at most MAX_RULES_PER_AGENT rule triggers (those the agent
    reported before first, then new ones by name), and how many triggers were refused."""
    kept = {t: c for t, c in counts.items() if t in KNOWN_TRIGGERS or t in known_rules}
    rules = len(known_rules)
    for trigger in sorted(counts):
        if trigger not in kept and RULE_TRIGGER.fullmatch(trigger) and rules < MAX_RULES_PER_AGENT:
            kept[trigger] = counts[trigger]
            rules += 1
    return kept, len(counts) - len(kept)


class IncidentTally:
    def __init__(self, started_ms: int, refusals: Refusals | None = None) -> None:
        self.started_ms = started_ms
        self.refusals = refusals or Refusals()
        self._lock = threading.Lock()
        # agent id -> (its process start, its counts); kept a while after an agent is removed, so its return is
        # not counted twice; the oldest are forgotten beyond MAX_REMEMBERED
        self._seen: OrderedDict[str, tuple[int, dict[str, int]]] = OrderedDict()
        self._live: dict[str, tuple[str, str, frozenset[str]]] = {}  # agent -> (node id, role, its triggers)
        self._totals: dict[tuple[str, str, str], int] = {}  # (node id, node role, trigger) -> incidents counted

    def observe(self, record: AgentRecord) -> None:
        with self._lock:
            reported = self._live.get(record.agent_id, ("", "", frozenset()))[2]
        known_rules = frozenset(t for t in reported if t not in KNOWN_TRIGGERS)
        counts, refused = accepted_counts(dict(record.incidents_total), known_rules)
        if refused:
            self.refusals.refuse("trigger", "incident trigger neither built in nor a rule (or too many rules)",
                                 refused, node_id=record.registration.node_id)
        started = record.registration.agent_started_ms
        node = (record.registration.node_id, record.registration.role)
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
                key = (*node, trigger)
                if grown > 0:
                    self._totals[key] = self._totals.get(key, 0) + grown
                else:
                    self._totals.setdefault(key, 0)
            self._seen.pop(record.agent_id, None)
            self._seen[record.agent_id] = (started, counts)
            while len(self._seen) > MAX_REMEMBERED:
                self._seen.popitem(last=False)
            # Every trigger it reported while registered: a count that left its heartbeat keeps its series.
            self._live[record.agent_id] = (*node, reported | frozenset(counts))

    def forget(self, record: AgentRecord) -> None:
        """The agent left the registry: the series only it reported go with it."""
        with self._lock:
            if self._live.pop(record.agent_id, None) is None:
                return
            reported = self._reported()
            for key in [key for key in self._totals if key not in reported]:
                del self._totals[key]

    def _reported(self) -> set[tuple[str, str, str]]:
        return {(node_id, role, trigger) for node_id, role, triggers in self._live.values() for trigger in triggers}

    def totals(self) -> dict[tuple[str, str, str], int]:
        """(node id, node role, trigger) -> incidents counted, for the nodes registered now."""
        with self._lock:
            reported = self._reported()
            return {key: count for key, count in self._totals.items() if key in reported}
