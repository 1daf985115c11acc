"""Parsers for the /proc text files the OS fallback reads: PSI, vmstat, diskstats, meminfo and a process's
stat/io/status/schedstat.

Pure functions over strings (no file access here), so they are tested against captured fixtures. They are
lenient the way the kernel's formats require: unknown keys are kept or ignored, short lines from older
kernels are accepted, and a malformed line costs that line only; nothing here raises on odd input except
`parse_pid_stat`, whose single line has no partial meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# ------------------------------------------------------------------------------------------------ PSI


class PsiLine(NamedTuple):
    """One `some`/`full` line of /proc/pressure/<resource>: averages in percent, total stall in µs."""

    kind: str
    avg10: float
    avg60: float
    avg300: float
    total_us: int


def parse_psi(text: str) -> list[PsiLine]:
    """`some avg10=0.22 avg60=9.94 avg300=10.88 total=116479049` lines; cpu has no `full` line before 5.13."""
    out: list[PsiLine] = []
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind not in ("some", "full"):
            continue
        fields = dict(part.split("=", 1) for part in rest.split() if "=" in part)
        try:
            out.append(PsiLine(kind, float(fields["avg10"]), float(fields["avg60"]), float(fields["avg300"]),
                               int(fields["total"])))
        except (KeyError, ValueError):
            continue
    return out


# ------------------------------------------------------------------------------------------------ key/value


def parse_vmstat(text: str) -> dict[str, int]:
    """`/proc/vmstat`: one `name value` pair per line."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def _parse_kib_fields(text: str) -> dict[str, int]:
    """`Key: value [kB]` lines as integers, kB converted to bytes; non-numeric fields are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        out[key.strip()] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    """`/proc/meminfo` in bytes (the file says kB and means KiB); `HugePages_*` counts stay counts."""
    return _parse_kib_fields(text)


# ------------------------------------------------------------------------------------------------ diskstats


@dataclass(frozen=True, slots=True)
class DiskStat:
    """One /proc/diskstats row (Documentation/admin-guide/iostats.rst). Times are milliseconds, sectors
    are always 512 bytes. Discard fields arrived in 4.18 and flush fields in 5.5; None when absent."""

    major: int
    minor: int
    device: str
    reads_completed: int
    reads_merged: int
    sectors_read: int
    read_time_ms: int
    writes_completed: int
    writes_merged: int
    sectors_written: int
    write_time_ms: int
    ios_in_progress: int
    io_time_ms: int
    weighted_io_time_ms: int
    discards_completed: int | None = None
    discards_merged: int | None = None
    sectors_discarded: int | None = None
    discard_time_ms: int | None = None
    flushes_completed: int | None = None
    flush_time_ms: int | None = None


def parse_diskstats(text: str) -> list[DiskStat]:
    out: list[DiskStat] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 14:
            continue
        try:
            numbers = [int(p) for p in parts[3:]]
            major, minor = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        extra: list[int | None] = list(numbers[11:17]) + [None] * (6 - len(numbers[11:17]))
        out.append(DiskStat(major, minor, parts[2], *numbers[:11], *extra))
    return out


# ------------------------------------------------------------------------------------------------ one process


@dataclass(frozen=True, slots=True)
class PidStat:
    """The fields of /proc/<pid>/stat that FODC reports (see proc(5)); CPU times are in clock ticks."""

    pid: int
    comm: str
    state: str
    minor_faults: int
    major_faults: int
    utime_ticks: int
    stime_ticks: int
    num_threads: int
    start_time_ticks: int
    vsize_bytes: int
    rss_pages: int


def parse_pid_stat(text: str) -> PidStat:
    """The comm sits in parentheses and may itself hold spaces and ')': split at the last ')'."""
    head, sep, tail = text.rpartition(")")
    if not sep or "(" not in head:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    pid_text, _, comm = head.partition(" (")
    f = tail.split()
    # f[0] is field 3 (state); field n of proc(5) is f[n - 3].
    return PidStat(pid=int(pid_text), comm=comm, state=f[0], minor_faults=int(f[7]), major_faults=int(f[9]),
                   utime_ticks=int(f[11]), stime_ticks=int(f[12]), num_threads=int(f[17]),
                   start_time_ticks=int(f[19]), vsize_bytes=int(f[20]), rss_pages=int(f[21]))


def parse_boot_time(text: str) -> float | None:
    """The `btime` of /proc/stat: when the machine booted, unix seconds (None when the line is missing)."""
    for line in text.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def started_at_s(stat: PidStat, boot_time_s: float, clock_ticks: int) -> float:
    """When the process started, unix seconds. It changes when a pid is reused, so (pid, start) names one
    process: the node's configuration history and the thread sums rely on that."""
    return boot_time_s + stat.start_time_ticks / clock_ticks


def parse_pid_io(text: str) -> dict[str, int]:
    """/proc/<pid>/io: rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            try:
                out[key.strip()] = int(value)
            except ValueError:
                continue
    return out


def parse_pid_status(text: str) -> dict[str, int]:
    """Numeric fields of /proc/<pid>/status; `kB` values become bytes. Non-numeric fields are skipped."""
    return _parse_kib_fields(text)


class SchedStat(NamedTuple):
    """/proc/<pid>[/task/<tid>]/schedstat: time on CPU (ns), time waiting on a run queue (ns), timeslices."""

    run_ns: int
    run_delay_ns: int
    timeslices: int


def parse_schedstat(text: str) -> SchedStat | None:
    parts = text.split()
    if len(parts) < 3:
        return None
    try:
        return SchedStat(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None
