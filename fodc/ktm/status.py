"""What state KTM is in, and why: plain data plus the one rule that turns program states into a mode.

Pure. `ktm_status` (0 disabled / 1 degraded / 2 full) and the `ktm_mode`/`ktm_reason` capabilities shown
by the proxy's /cluster are both derived from `KtmStatus`, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Mode(IntEnum):
    DISABLED = 0
    DEGRADED = 1
    FULL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ProgramState:
    """One eBPF program: attached or not, and if not, the reason (missing tracepoint, attach error…)."""

    name: str
    attached: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class KtmStatus:
    mode: Mode
    reason: str  # empty when full
    programs: tuple[ProgramState, ...]
    filter: str  # "comm+cgroup", "comm" or "none"
    target_comm: str
    cgroup_id: int | None = None


def decide(programs: tuple[ProgramState, ...], *, cgroup_filter: bool, blocker: str = "") -> tuple[Mode, str]:
    """Full needs every program attached and the cgroup filter on; none attached is disabled.

    `blocker` is the reason nothing could be tried (off by configuration, no bcc, no capability…).
    """
    if blocker:
        return Mode.DISABLED, blocker
    attached = [p for p in programs if p.attached]
    failed = [p for p in programs if not p.attached]
    if not attached:
        reasons = sorted({p.reason for p in failed if p.reason})
        return Mode.DISABLED, "; ".join(reasons) or "no eBPF program attached"
    problems = [f"{p.name}: {p.reason}" for p in failed]
    if not cgroup_filter:
        problems.append("comm-only filter (the target's cgroup v2 id is not known)")
    if problems:
        return Mode.DEGRADED, "; ".join(problems)
    return Mode.FULL, ""


def disabled(reason: str, target_comm: str, program_names: tuple[str, ...]) -> KtmStatus:
    return KtmStatus(Mode.DISABLED, reason, tuple(ProgramState(n, False, reason) for n in program_names),
                     "none", target_comm)
