"""The kernel's OOM kills, read as data: the cgroup's counter and the kernel log's account of the kill.

An OOM kill leaves no Go text: the kernel SIGKILLs the process and logs `Memory cgroup out of memory: Killed
process PID (COMM) total-vm:…` (or `Out of memory: Killed process …` for the whole host) after an `oom-kill:`
line naming the cgroup; the cgroup counts kills in `memory.events` (v2) or `memory.oom_control` (v1) as
`oom_kill N`. Pure: text in, plain data out (the caller reads the files and /dev/kmsg).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KILLED = re.compile(r"(?:Memory cgroup out of memory|Out of memory)(?: \([^)]{0,80}\))?: Killed process "
                     r"(\d{1,10}) \(([^)]{1,64})\)")
_KMSG = re.compile(r"^\d{1,3},\d{1,20},(\d{1,20}),[^;]{0,40};(.*)$")  # /dev/kmsg: prio,seq,usec,flags;message
_DMESG = re.compile(r"^\[\s*(\d{1,10})\.(\d{1,6})\] (.*)$")  # dmesg: [  seconds.micros] message
MAX_LINE = 2048


@dataclass(frozen=True)
class OomKill:
    pid: int
    comm: str
    line: str
    uptime_s: float | None  # seconds since boot, as the kernel stamped it (None when the text had no stamp)


def oom_kill_count(text: str) -> int | None:
    """`oom_kill N` from memory.events / memory.oom_control text; None when the file has no such counter."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value.strip())
    return None


def kernel_lines(text: str) -> list[tuple[float | None, str]]:
    """(seconds since boot, message) of kernel log text in /dev/kmsg or dmesg form (plain lines: no time)."""
    out: list[tuple[float | None, str]] = []
    for raw in text.splitlines():
        line = raw[:MAX_LINE]
        if m := _KMSG.match(line):
            out.append((int(m[1]) / 1e6, m[2]))
        elif m := _DMESG.match(line):
            out.append((int(m[1]) + int(m[2].ljust(6, "0")) / 1e6, m[3]))
        elif line.strip():
            out.append((None, line))
    return out


def find_kills(lines: list[tuple[float | None, str]], *, comm: str | None = None, pids: set[int] | None = None,
               since_uptime_s: float | None = None) -> list[OomKill]:
    """OOM kills in kernel log lines, oldest first; of the node only (its comm, or one of its pids) when given.
    The comm is compared as the kernel keeps it: at most 15 characters."""
    kills = []
    for stamp, message in lines:
        if since_uptime_s is not None and stamp is not None and stamp < since_uptime_s:
            continue
        m = _KILLED.search(message)
        if not m:
            continue
        pid, killed = int(m[1]), m[2]
        ours = (comm is None and pids is None) or (comm is not None and killed == comm[:15]) or (
            pids is not None and pid in pids)
        if ours:
            kills.append(OomKill(pid, killed, message.strip(), stamp))
    return kills
