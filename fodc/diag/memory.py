"""How close the node is to its memory limit: RSS from /proc, the limit from its cgroup or the host.

Pure of threads and clocks; reads files only. The limit is, in order: an explicit --memory-limit, the
node's cgroup v2 `memory.max` (when not "max"), the host's MemTotal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fodc.ktm.procfs import parse_meminfo, parse_pid_status


@dataclass(frozen=True, slots=True)
class MemoryReading:
    rss_bytes: int
    limit_bytes: int
    limit_source: str

    @property
    def percent(self) -> float:
        return 100.0 * self.rss_bytes / self.limit_bytes if self.limit_bytes else 0.0


def read_memory(pid: int, *, explicit_limit: int | None = None, proc_root: str = "/proc",
                cgroup_root: str = "/sys/fs/cgroup") -> MemoryReading:
    """Raises OSError when the process cannot be read (gone, or not permitted)."""
    status = parse_pid_status(Path(f"{proc_root}/{pid}/status").read_text())
    rss = status.get("VmRSS", 0)
    if explicit_limit:
        return MemoryReading(rss, explicit_limit, "--memory-limit")
    limit = _cgroup_limit(pid, proc_root, cgroup_root)
    if limit is not None:
        return MemoryReading(rss, limit[0], limit[1])
    total = parse_meminfo(Path(f"{proc_root}/meminfo").read_text()).get("MemTotal", 0)
    return MemoryReading(rss, total, "host MemTotal")


def _cgroup_limit(pid: int, proc_root: str, cgroup_root: str) -> tuple[int, str] | None:
    try:
        lines = Path(f"{proc_root}/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            path = Path(cgroup_root) / line[3:].lstrip("/") / "memory.max"
            try:
                text = path.read_text().strip()
            except OSError:
                return None
            return (int(text), f"cgroup {path}") if text.isdigit() else None
    return None
