"""The agent registry: who is registered, with which key, and whether they are online.

Plain data and one lock; no sockets, threads or clocks (callers pass `now_ms`). The key is the proxy
design's primary IP + port + role + labels, plus the host's identity (/etc/machine-id), so two hosts with
the same address (127.0.0.1, a cloned configuration) never share a key. A re-registration with the same key
replaces the old entry (same agent id), so reconnects never leave duplicates behind; but while the entry is
online, only the same agent installation (its instance id: a restart of it) may take it over. Another agent
claiming a live key is refused with both agents named, instead of the two replacing each other for ever.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from fodc.config import ROLES
from fodc.model import Registration
from fodc.proxy.registration_limits import LimitExceeded, check_registration

ONLINE = "online"
UNCONNECTED = "unconnected"


@dataclass(frozen=True, slots=True)
class AgentKey:
    ip: str
    port: int
    role: str
    labels: tuple[tuple[str, str], ...]
    host_id: str = ""

    @property
    def agent_id(self) -> str:
        """Stable for the key, so a reconnecting agent keeps its id."""
        text = "\x00".join([self.ip, str(self.port), self.role] + [f"{k}={v}" for k, v in self.labels]
                           + ([f"host={self.host_id}"] if self.host_id else []))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """A registry entry as handed out to readers (an immutable copy)."""

    agent_id: str
    key: AgentKey
    registration: Registration
    status: str
    registered_at_ms: int
    last_heartbeat_ms: int
    connection: int
    capabilities: Mapping[str, str]
    runtime: Mapping[str, str]
    unconnected_since_ms: int | None = None
    conflict: str = ""  # the latest refused claim on this key, for the holder to hear about
    conflict_ms: int = 0
    # A registration that never streamed (no heartbeat, no request stream): removed after this instead of the
    # cleanup timeout, and first to make room when the registry is full, so a flood of them holds no slots.
    expire_after_ms: int | None = None
    incidents_total: Mapping[str, int] = field(default_factory=dict)  # the heartbeat's counts, by trigger


def key_of(reg: Registration) -> AgentKey:
    return AgentKey(reg.primary.ip, reg.primary.port, reg.role, reg.sorted_labels, reg.host_id)


class RegistrationError(Exception):
    """A registration the proxy refuses; the message goes back to the agent verbatim."""


class RegistryFull(RegistrationError):
    pass


class KeyInUse(RegistrationError):
    """Another live agent holds this key: a second agent with the same identity, not a restart."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    marked_unconnected: list[AgentRecord]
    removed: list[AgentRecord]


class AgentRegistry:
    def __init__(self, heartbeat_timeout_s: float, cleanup_timeout_s: float, max_agents: int) -> None:
        if cleanup_timeout_s <= heartbeat_timeout_s:
            raise ValueError("agent cleanup timeout must be greater than the heartbeat timeout")
        self.heartbeat_timeout_ms = int(heartbeat_timeout_s * 1000)
        self.cleanup_timeout_ms = int(cleanup_timeout_s * 1000)
        self.max_agents = max_agents
        self._agents: dict[str, AgentRecord] = {}
        self._next_connection = 1
        self._lock = threading.Lock()
        self.on_heartbeat: Callable[[AgentRecord], None] = lambda _record: None  # called outside the lock
        self.on_removed: Callable[[AgentRecord], None] = lambda _record: None  # likewise

    def register(self, reg: Registration, now_ms: int) -> tuple[AgentRecord, AgentRecord | None]:
        """Adds or replaces the entry for reg.key; returns (new record, replaced record or None)."""
        _validate(reg)
        key = key_of(reg)
        dropped = None
        with self._lock:
            previous = self._agents.get(key.agent_id)
            if previous is not None and _claimed_by_another(previous, reg):
                self._agents[key.agent_id] = replace(previous, conflict=_claimed_message(reg), conflict_ms=now_ms)
                raise KeyInUse(_key_in_use_message(previous, reg))
            if previous is None and len(self._agents) >= self.max_agents:
                dropped = self._drop_one_unstreamed()
            if previous is None and len(self._agents) >= self.max_agents:
                raise RegistryFull(
                    f"registry full: {len(self._agents)} of max {self.max_agents} agents registered "
                    f"(raise --max-agents on the proxy)")
            connection = self._next_connection
            self._next_connection += 1
            record = AgentRecord(
                agent_id=key.agent_id, key=key, registration=reg, status=ONLINE,
                registered_at_ms=now_ms, last_heartbeat_ms=now_ms, connection=connection,
                capabilities=dict(reg.capabilities), runtime={},
            )
            self._agents[key.agent_id] = record
        if dropped is not None:
            self.on_removed(dropped)
        return record, previous

    def _drop_one_unstreamed(self) -> AgentRecord | None:
        """Under the lock: removes the oldest unconnected entry that never streamed, if any."""
        candidates = [r for r in self._agents.values() if r.status == UNCONNECTED and r.expire_after_ms is not None]
        if not candidates:
            return None
        oldest = min(candidates, key=lambda r: r.registered_at_ms)
        return self._agents.pop(oldest.agent_id)

    def heartbeat(self, agent_id: str, connection: int, now_ms: int,
                  runtime: Mapping[str, str] | None = None,
                  capabilities: Mapping[str, str] | None = None,
                  incidents_total: Mapping[str, int] | None = None) -> bool:
        """Refreshes an entry; False when the agent (on this connection) is no longer registered."""
        with self._lock:
            record = self._agents.get(agent_id)
            if record is None or record.connection != connection:
                return False
            record = self._agents[agent_id] = replace(
                record, status=ONLINE, last_heartbeat_ms=now_ms, unconnected_since_ms=None,
                runtime=dict(runtime) if runtime is not None else record.runtime,
                capabilities=dict(capabilities) if capabilities else record.capabilities,
                incidents_total=dict(incidents_total) if incidents_total is not None else record.incidents_total,
            )
        self.on_heartbeat(record)
        return True

    def unregister(self, agent_id: str, connection: int | None = None) -> AgentRecord | None:
        """Removes an entry (graceful goodbye, manual removal); only if `connection` still owns it."""
        with self._lock:
            record = self._agents.get(agent_id)
            if record is None or (connection is not None and record.connection != connection):
                return None
            removed = self._agents.pop(agent_id)
        self.on_removed(removed)
        return removed

    def connection_lost(self, agent_id: str, connection: int, now_ms: int,
                        expire_after_ms: int | None = None) -> AgentRecord | None:
        """An ungraceful stream loss: the entry stays, marked unconnected, until the cleanup timeout (or
        `expire_after_ms`, for a registration that never streamed)."""
        with self._lock:
            record = self._agents.get(agent_id)
            if record is None or record.connection != connection or record.status == UNCONNECTED:
                return None
            record = replace(record, status=UNCONNECTED, unconnected_since_ms=now_ms,
                             expire_after_ms=expire_after_ms)
            self._agents[agent_id] = record
            return record

    def get(self, ip: str, port: int, role: str, labels: Mapping[str, str]) -> AgentRecord | None:
        return self.get_by_id(AgentKey(ip, port, role, tuple(sorted(labels.items()))).agent_id)

    def conflict(self, agent_id: str, since_ms: int) -> str:
        """The latest refused claim on this agent's key at or after `since_ms` ("" if none)."""
        with self._lock:
            record = self._agents.get(agent_id)
        return record.conflict if record is not None and record.conflict_ms >= since_ms else ""

    def get_by_id(self, agent_id: str) -> AgentRecord | None:
        with self._lock:
            return self._agents.get(agent_id)

    def list(self, role: str | None = None, node_id: str | None = None,
             status: str | None = None) -> list[AgentRecord]:
        with self._lock:
            records = list(self._agents.values())
        return sorted(
            (r for r in records
             if (role is None or r.key.role == role)
             and (node_id is None or r.registration.node_id == node_id)
             and (status is None or r.status == status)),
            key=lambda r: (r.key.role, r.registration.node_id, r.agent_id),
        )

    def list_by_role(self, role: str) -> builtins.list[AgentRecord]:  # `list` here is the method above
        return self.list(role=role)

    def check_health(self, now_ms: int) -> HealthReport:
        """Marks agents silent past the heartbeat timeout unconnected; removes those past the cleanup timeout."""
        marked, removed = [], []
        with self._lock:
            for agent_id, record in list(self._agents.items()):
                silent_ms = now_ms - record.last_heartbeat_ms
                cleanup_ms = min(self.cleanup_timeout_ms, record.expire_after_ms or self.cleanup_timeout_ms)
                if silent_ms > cleanup_ms and record.status == UNCONNECTED:
                    removed.append(self._agents.pop(agent_id))
                elif silent_ms > self.heartbeat_timeout_ms and record.status == ONLINE:
                    record = replace(record, status=UNCONNECTED, unconnected_since_ms=now_ms)
                    self._agents[agent_id] = record
                    marked.append(record)
        for record in removed:
            self.on_removed(record)
        return HealthReport(marked, removed)

    def counts(self) -> dict[str, int]:
        with self._lock:
            records = list(self._agents.values())
        return {
            ONLINE: sum(r.status == ONLINE for r in records),
            UNCONNECTED: sum(r.status == UNCONNECTED for r in records),
        }


def _claimed_by_another(holder: AgentRecord, reg: Registration) -> bool:
    """A live entry may only be taken over by the agent installation that holds it (its restart); agents that
    do not say which installation they are (older versions) keep the old replace-on-register behaviour."""
    theirs, ours = holder.registration.instance_id, reg.instance_id
    return holder.status == ONLINE and bool(theirs) and bool(ours) and theirs != ours


def _claimed_message(reg: Registration) -> str:
    return (f"another agent, node {reg.node_id[:64]!r} on host {reg.hostname[:64]!r} (instance "
            f"{reg.instance_id[:12]}), claims this agent's key (same host id, node-address, role and labels) and "
            f"was refused; give each node its own node-address or labels, and cloned hosts their own "
            f"/etc/machine-id")


def _key_in_use_message(holder: AgentRecord, reg: Registration) -> str:
    held = holder.registration
    return (f"agent key {holder.agent_id} ({holder.key.role} at {held.primary}) is held by a live agent, node "
            f"{held.node_id[:64]!r} on host {held.hostname[:64]!r} (instance {held.instance_id[:12]}); this agent, "
            f"node {reg.node_id[:64]!r} on host {reg.hostname[:64]!r} (instance {reg.instance_id[:12]}), has the "
            f"same host id, node-address, role and labels: give each node its own node-address or labels, and "
            f"cloned hosts their own /etc/machine-id")


_IDENTITY = re.compile(r"[A-Za-z0-9_-]{0,64}")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # fullmatch: `$` would let a final newline through
RESERVED_NODE_LABELS = frozenset({"id", "role"})  # the proxy writes node_id and node_role itself
MAX_LABELS, MAX_TEXT = 32, 256


def _validate(reg: Registration) -> None:
    """Refuses what no agent of ours would send: the registration comes from the network."""
    if not reg.node_id:
        raise RegistrationError("registration has no node id")
    if len(reg.node_id) > MAX_TEXT or not reg.node_id.isprintable() or any(c.isspace() for c in reg.node_id):
        raise RegistrationError(f"invalid node id {reg.node_id[:64]!r} (printable, no spaces, at most {MAX_TEXT})")
    if not reg.role:
        raise RegistrationError("registration has no role")
    if reg.role not in ROLES:
        raise RegistrationError(f"unknown role {reg.role[:64]!r} (this proxy knows {', '.join(ROLES)})")
    if len(reg.labels) > MAX_LABELS:
        raise RegistrationError(f"too many labels ({len(reg.labels)}; at most {MAX_LABELS})")
    for name, value in reg.labels.items():
        if len(name) > MAX_TEXT or not _LABEL_NAME.fullmatch(name) or len(value) > MAX_TEXT:
            raise RegistrationError(f"invalid label {name[:64]!r} (a Prometheus label name; value at most "
                                    f"{MAX_TEXT} characters)")
        if name in RESERVED_NODE_LABELS:
            # node_<name> would repeat node_id/node_role on every series: Prometheus drops such a scrape whole.
            raise RegistrationError(f"label {name!r} is reserved: node_{name} is already on every series")
    for name, value in (("host id", reg.host_id), ("instance id", reg.instance_id)):
        if not _IDENTITY.fullmatch(value):
            raise RegistrationError(f"invalid {name} {value[:64]!r} (letters, digits, '-' and '_', at most 64)")
    if not reg.primary.ip or not 0 < reg.primary.port < 65536:
        raise RegistrationError(f"registration has an invalid primary address {str(reg.primary)[:300]}")
    try:
        check_registration(reg)
    except LimitExceeded as exc:
        raise RegistrationError(f"registration refused: {exc}") from None
