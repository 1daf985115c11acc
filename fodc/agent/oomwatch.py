"""The node OOM-killed: its own `node-oom` incident, with the memory series and the last heap profile before it.

Every --incident-check-interval the node's cgroup OOM-kill counter is read (`memory.events` in cgroup v2,
`memory.oom_control` in v1; the cgroup of --node-cgroup-path, else the node process's own, remembered after the
process is gone). A rise is an OOM kill: the kernel log (/dev/kmsg, else `journalctl -k`) is searched for its
account (`Killed process PID (COMM)`), and the incident gets oom.txt (those lines), memory.json (the window's
memory series from --incident-before to the kill) and last-heap.pb.gz (the newest heap profile the agent took
before it: an operator's, a memory-pressure capture, or the profile ring's). Without a counter (no cgroup
found), a node found down or restarted is still checked against the kernel log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fodc.agent.crashes import Evidence
from fodc.agent.incidents import IncidentRecorder
from fodc.diag.ring import ProfileRing
from fodc.incident.oom import OomKill, find_kills, kernel_lines, oom_kill_count
from fodc.jsonvalue import json_value
from fodc.ktm.cgroup import cgroup2_mount
from fodc.nodeconf.finder import NodeProcessFinder, NotFound
from fodc.periodic import Periodic
from fodc.window import FlightRecorder

log = logging.getLogger(__name__)

MEMORY_SERIES = re.compile(r".*(memory|heap|rss|oom|_mem_|gc_).*", re.IGNORECASE)
KMSG_MAX_RECORDS = 20_000
KMSG_MAX_BYTES = 4 * 1024 * 1024
V1_MEMORY_ROOT = "/sys/fs/cgroup/memory"


def read_kmsg(path: str = "/dev/kmsg") -> str:
    """The kernel's log ring as /dev/kmsg gives it (one record per read), bounded."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    records: list[str] = []
    size = 0
    try:
        while len(records) < KMSG_MAX_RECORDS and size < KMSG_MAX_BYTES:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:  # a record overwritten while reading: carry on with the next
                continue
            if not record:
                break
            records.append(record.decode(errors="replace").split("\n", 1)[0])
            size += len(record)
    finally:
        os.close(fd)
    return "\n".join(records)


def read_kernel_log() -> str:
    """/dev/kmsg, else the journal's copy of the kernel log: the packaged unit's ProtectKernelLogs= and
    PrivateDevices= hide /dev/kmsg, and its systemd-journal group may read the journal."""
    try:
        return read_kmsg()
    except OSError as kmsg_error:
        try:
            out = subprocess.run(["journalctl", "-k", "-o", "short-monotonic", "--no-pager", "-n",
                                  str(KMSG_MAX_RECORDS)], capture_output=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OSError(f"/dev/kmsg: {kmsg_error}; journalctl -k: {exc}") from None
        if out.returncode != 0:
            raise OSError(f"/dev/kmsg: {kmsg_error}; journalctl -k: "
                          f"{out.stderr.decode(errors='replace').strip()[:200]}") from None
        return out.stdout[-KMSG_MAX_BYTES:].decode(errors="replace")


def uptime_s() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def events_file(directory: Path) -> Path | None:
    for name in ("memory.events", "memory.oom_control"):
        if (directory / name).is_file():
            return directory / name
    return None


def node_cgroup(pid: int, proc_root: str = "/proc") -> Path | None:
    """The cgroup directory that counts the process's OOM kills: its v2 cgroup, else its v1 memory cgroup."""
    text = Path(f"{proc_root}/{pid}/cgroup").read_text()
    mount = cgroup2_mount(Path(f"{proc_root}/self/mountinfo").read_text())
    for line in text.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and mount and events_file(Path(mount) / path.lstrip("/")):
            return Path(mount) / path.lstrip("/")
        if "memory" in controllers.split(","):
            return Path(V1_MEMORY_ROOT) / path.lstrip("/")
    return None


class OomWatch(Periodic):
    thread_name = "oom-watch"

    def __init__(self, recorder: IncidentRecorder, finder: NodeProcessFinder, window: FlightRecorder, *,
                 cgroup_path: str | None, comm: str, before_s: float, diagnostics_dir: Path, interval_s: float,
                 ring: ProfileRing | None = None, clock: Callable[[], float] = time.time,
                 kmsg: Callable[[], str] = read_kernel_log,
                 on_progress: Callable[[], None] = lambda: None) -> None:
        self.recorder = recorder
        self.finder = finder
        self.window = window
        self.explicit = Path(cgroup_path) if cgroup_path else None
        self.comm = comm
        self.before_s = before_s
        self.diagnostics_dir = diagnostics_dir
        self.ring = ring
        self.clock = clock
        self.kmsg = kmsg
        self._cgroup: Path | None = self.explicit
        self._pids: set[int] = set()
        self._count: int | None = None
        self._last: tuple[float, Evidence] | None = None  # (wall time, evidence) of the last OOM kill seen
        self.status = "not started"
        super().__init__(interval_s, on_progress)

    def run_round(self) -> None:
        self.check()

    def _find_cgroup(self) -> Path | None:
        try:
            found = self.finder.find()
        except NotFound:
            return self._cgroup  # the node is gone: keep watching where it was
        self._pids = {*list(self._pids)[-15:], found.pid}
        if self.explicit is None:
            with contextlib.suppress(OSError):  # the process went away meanwhile: keep the last known
                self._cgroup = node_cgroup(found.pid) or self._cgroup
        return self._cgroup

    def check(self) -> dict[str, Any] | None:
        """One look at the counter; returns the incident it started, if any."""
        cgroup = self._find_cgroup()
        events = events_file(cgroup) if cgroup else None
        if events is None:
            self.status = f"no OOM-kill counter ({cgroup or 'cgroup unknown'})"
            return None
        try:
            count = oom_kill_count(events.read_text())
        except OSError as exc:
            self.status = f"cannot read {events}: {exc.strerror or exc}"
            return None
        if count is None:
            self.status = f"{events} has no oom_kill counter"
            return None
        previous, self._count = self._count, count
        self.status = f"{events}: oom_kill {count}"
        if previous is None or count <= previous:  # first look, or a new cgroup counting from 0
            return None
        evidence = self._evidence(count - previous, str(events))
        self._last = (self.clock(), evidence)
        return self.recorder.trigger("node-oom", {}, evidence=evidence, node_up=False)

    def recent(self, since_s: float) -> Evidence | None:
        """For a node found down or restarted: the OOM kill that explains it, if one was seen since `since_s`
        (by the counter, or in the kernel log for a node whose cgroup has no counter)."""
        if self._last is not None and self._last[0] >= since_s:
            return self._last[1]
        kills = self._kernel_kills(since_s, by_pid=bool(self._pids))  # the host may run other "banyand"s
        if not kills:
            return None
        return self._evidence(0, "", kills)

    def _kernel_kills(self, since_s: float, by_pid: bool = False) -> list[OomKill]:
        try:
            text = self.kmsg()
        except OSError as exc:
            log.info("cannot read the kernel log for OOM kills", extra={"fields": {"reason": str(exc)}})
            return []
        since_uptime = uptime_s() - max(0.0, self.clock() - since_s)
        return find_kills(kernel_lines(text), comm=None if by_pid else self.comm, pids=set(self._pids) or None,
                          since_uptime_s=since_uptime)

    def _evidence(self, new_kills: int, counter: str, kills: list[OomKill] | None = None) -> Evidence:
        now = self.clock()
        if kills is None:
            kills = self._kernel_kills(now - max(60.0, self.interval_s * 4))
        killed = kills[-1] if kills else None
        detail: dict[str, Any] = {"crash": {
            "kind": "oom-kill", "message": f"Killed process {killed.pid} ({killed.comm})" if killed else
            "OOM kill counted by the node's cgroup", "signature": "oom-kill", "top_frames": [],
            "source": counter or "kernel log"}}
        if new_kills:
            detail.update(oom_kills=new_kills, counter=counter)
        if killed:
            detail["killed"] = {"pid": killed.pid, "comm": killed.comm}
        files = {"oom.txt": ("\n".join(k.line for k in kills) + "\n").encode() if kills else
                 b"no OOM kill of the node found in the kernel log (not readable, or already rotated out)\n",
                 "memory.json": self._memory_series(now)}
        heap = self._last_heap(now)
        if heap is not None:
            taken_s, path = heap
            try:
                files["last-heap.pb.gz"] = path.read_bytes()
                detail["last_heap"] = {"file": path.name, "taken_s_before": round(now - taken_s, 1)}
            except OSError as exc:  # rotated out of the ring or the store meanwhile
                detail["last_heap"] = {"file": path.name, "error": exc.strerror or str(exc)}
        summary = f"oom-kill: {detail['crash']['message']}"
        return Evidence("node-oom", summary, detail, files)

    def _last_heap(self, now: float) -> tuple[float, Path] | None:
        """(taken at, path) of the newest heap profile before `now`: the agent's own (operator jobs, memory
        pressure captures) or the profile ring's periodic one, whichever is newer."""
        found = last_profile(self.diagnostics_dir, "heap", now)
        best = (found.stat().st_mtime, found) if found is not None else None
        if self.ring is not None:
            heaps = [e for e in self.ring.entries() if e.kind == "heap" and e.taken_ms <= now * 1000]
            path = self.ring.path(heaps[-1].name) if heaps else None
            if path is not None and (best is None or heaps[-1].taken_ms / 1000 > best[0]):
                best = (heaps[-1].taken_ms / 1000, path)
        return best

    def _memory_series(self, now: float) -> bytes:
        end_ms = int(now * 1000)
        start_ms = end_ms - int(self.before_s * 1000)
        series = [{"name": s.name, "labels": dict(s.labels), "source": s.source,
                   "points": [[t, json_value(v)] for t, v in zip(s.timestamps_ms, s.values, strict=True)]}
                  for s in self.window.query(start_ms=start_ms, end_ms=end_ms) if MEMORY_SERIES.match(s.name)]
        return json.dumps({"start_ms": start_ms, "end_ms": end_ms, "series": series}).encode()


def last_profile(directory: Path, profile: str, before_s: float) -> Path | None:
    """The newest `<stamp>-<profile>-<label>.pb.gz` the agent wrote at or before `before_s` (unix seconds)."""
    try:
        candidates = [(p.stat().st_mtime, p) for p in directory.glob(f"*-{profile}-*.pb.gz")
                      if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return None
    earlier = [(mtime, p) for mtime, p in candidates if mtime <= before_s]
    return max(earlier)[1] if earlier else None
