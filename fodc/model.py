"""Plain data shared by agent and proxy: what identifies a node and how an agent describes itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Address:
    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class Registration:
    """What an agent says about itself when it registers."""

    node_id: str
    role: str
    primary: Address
    secondary: Mapping[str, Address] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    agent_version: str = ""
    capabilities: Mapping[str, str] = field(default_factory=dict)
    hostname: str = ""
    agent_started_ms: int = 0
    host_id: str = ""  # /etc/machine-id: two hosts never share an agent key
    instance_id: str = ""  # the agent's installation: tells its own restart from a second agent on its key
    typed_commands: bool = True  # False: an agent of the previous release, which runs no command this proxy sends

    @property
    def sorted_labels(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))


@dataclass(frozen=True, slots=True)
class HeartbeatInfo:
    """What an agent says in each heartbeat."""

    runtime: Mapping[str, str]  # key runtime indicators, shown as they are
    capabilities: Mapping[str, str]
    incidents_total: Mapping[str, int] = field(default_factory=dict)  # incidents since the agent started, by trigger
