"""The always-on OS telemetry: reads /proc and hands the text to the pure parsers and family builders.

Cheap by design (a handful of small reads per collection, no eBPF, no privileges beyond reading /proc), so
it runs whether or not the eBPF side loaded. A missing or unreadable file costs only its own metrics; this
module never raises out of `collect`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from fodc.expfmt import Family
from fodc.ktm import osmetrics, procfs
from fodc.ktm.threadsum import ThreadSum

log = logging.getLogger(__name__)

PSI_RESOURCES = ("cpu", "memory", "io")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class OsTelemetry:
    """Collects PSI, vmstat, diskstats, meminfo and the target process's stat/io/status/schedstat."""

    def __init__(self, *, target_pid: Callable[[], int | None] = lambda: None, proc_root: str = "/proc") -> None:
        self._proc = Path(proc_root)
        self._target_pid = target_pid
        self._clock_ticks = os.sysconf("SC_CLK_TCK")
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._boot_time = procfs.parse_boot_time(_read(self._proc / "stat") or "")
        self._sched = ThreadSum(3)
        self._sched_owner: tuple[int, int] | None = None  # (pid, start time): a new process restarts the sum

    def collect(self, now_ms: int) -> list[Family]:
        out: list[Family] = []
        for part in (self._psi, self._vmstat, self._diskstats, self._meminfo, self._process):
            try:
                out += part(now_ms)
            except Exception:  # a parser surprise must not cost the other sources
                log.exception("OS telemetry: %s failed", part.__name__)
        return out

    def _psi(self, now_ms: int) -> list[Family]:
        pressure = {}
        for resource in PSI_RESOURCES:
            text = _read(self._proc / "pressure" / resource)
            if text is not None:
                pressure[resource] = procfs.parse_psi(text)
        return osmetrics.psi_families(pressure, now_ms)

    def _vmstat(self, now_ms: int) -> list[Family]:
        text = _read(self._proc / "vmstat")
        return osmetrics.vmstat_families(procfs.parse_vmstat(text), now_ms, self._page_size) if text else []

    def _diskstats(self, now_ms: int) -> list[Family]:
        text = _read(self._proc / "diskstats")
        return osmetrics.disk_families(procfs.parse_diskstats(text), now_ms) if text else []

    def _meminfo(self, now_ms: int) -> list[Family]:
        text = _read(self._proc / "meminfo")
        return osmetrics.meminfo_families(procfs.parse_meminfo(text), now_ms) if text else []

    def _process(self, now_ms: int) -> list[Family]:
        try:
            pid = self._target_pid()
        except Exception:
            log.exception("OS telemetry: target_pid() failed")
            return []
        if pid is None:
            return []
        base = self._proc / str(pid)
        stat_text = _read(base / "stat")
        if stat_text is None:
            return []  # the process is gone; its last values stay in the recorder
        stat = procfs.parse_pid_stat(stat_text)
        io_text = _read(base / "io")
        status_text = _read(base / "status")
        return osmetrics.process_families(
            stat,
            procfs.parse_pid_io(io_text) if io_text else None,
            procfs.parse_pid_status(status_text) if status_text else None,
            self._thread_sched(base, (pid, stat.start_time_ticks)),
            now_ms, clock_ticks=self._clock_ticks, page_size=self._page_size, boot_time_s=self._boot_time)

    def _thread_sched(self, base: Path, owner: tuple[int, int]) -> procfs.SchedStat | None:
        if owner != self._sched_owner:
            self._sched.reset()
            self._sched_owner = owner
        per_thread: dict[int, tuple[int, int, int]] = {}
        try:
            tids = [int(name) for name in os.listdir(base / "task") if name.isdigit()]
        except OSError:
            tids = []
        for tid in tids:
            text = _read(base / "task" / str(tid) / "schedstat")
            parsed = procfs.parse_schedstat(text) if text else None
            if parsed is not None:
                per_thread[tid] = parsed
        if not per_thread:
            text = _read(base / "schedstat")
            single = procfs.parse_schedstat(text) if text else None
            return single
        return procfs.SchedStat(*self._sched.update(per_thread))
