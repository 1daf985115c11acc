"""Bounds on what an agent says about itself (registration, heartbeats): every field and every map.

Each registry entry is kept for minutes and served in every /cluster answer, so a 3.5 MB host name or a map
of thousands of entries would cost memory and bandwidth for as long as the entry lives (150 such
registrations once took the proxy to 1.1 GiB and /cluster to 532 MB). A real agent sends a few dozen short
entries; anything past these bounds is refused whole, with the field named.
"""

from __future__ import annotations

from collections.abc import Mapping

from fodc.model import Registration

MAX_HOSTNAME = 256
MAX_VERSION = 64
MAX_ADDRESSES, MAX_ADDRESS_TEXT = 16, 256
MAX_CAPABILITIES = 64
MAX_RUNTIME = 64
MAX_KEY = 64
MAX_CAPABILITY_VALUE = 1024
MAX_RUNTIME_VALUE = 4096
MAX_TRIGGERS = 256  # incident triggers in one heartbeat's counts (as many as the old 4 KiB text held)
MAX_TRIGGER_NAME = 80  # rule:<name of up to 64>


class LimitExceeded(ValueError):
    """Names the field and its bound; the message goes back to the agent."""


def _check_map(field: str, values: Mapping[str, str], max_entries: int, max_value: int) -> None:
    if len(values) > max_entries:
        raise LimitExceeded(f"{field} has {len(values)} entries (at most {max_entries})")
    for key, value in values.items():
        if len(key) > MAX_KEY or len(value) > max_value:
            raise LimitExceeded(f"{field} entry {key[:40]!r} too long (keys at most {MAX_KEY} characters, "
                                f"values at most {max_value})")


def check_registration(reg: Registration) -> None:
    if len(reg.hostname) > MAX_HOSTNAME:
        raise LimitExceeded(f"hostname of {len(reg.hostname)} characters (at most {MAX_HOSTNAME})")
    if len(reg.agent_version) > MAX_VERSION:
        raise LimitExceeded(f"agent_version of {len(reg.agent_version)} characters (at most {MAX_VERSION})")
    if len(reg.secondary) > MAX_ADDRESSES:
        raise LimitExceeded(f"secondary has {len(reg.secondary)} addresses (at most {MAX_ADDRESSES})")
    for name, address in reg.secondary.items():
        if len(name) > MAX_KEY or len(address.ip) > MAX_ADDRESS_TEXT:
            raise LimitExceeded(f"secondary address {name[:40]!r} too long")
    if len(reg.primary.ip) > MAX_ADDRESS_TEXT:
        raise LimitExceeded(f"primary address of {len(reg.primary.ip)} characters (at most {MAX_ADDRESS_TEXT})")
    _check_map("capabilities", reg.capabilities, MAX_CAPABILITIES, MAX_CAPABILITY_VALUE)


def check_heartbeat(runtime: Mapping[str, str], capabilities: Mapping[str, str],
                    incidents_total: Mapping[str, int] | None = None) -> None:
    _check_map("runtime", runtime, MAX_RUNTIME, MAX_RUNTIME_VALUE)
    counts = incidents_total or {}
    if len(counts) > MAX_TRIGGERS or any(len(trigger) > MAX_TRIGGER_NAME for trigger in counts):
        raise LimitExceeded(f"incidents_total has {len(counts)} triggers (at most {MAX_TRIGGERS}, names of at most "
                            f"{MAX_TRIGGER_NAME} characters)")
    _check_map("capabilities", capabilities, MAX_CAPABILITIES, MAX_CAPABILITY_VALUE)
