"""Finds the node's process: by pid file, by systemd unit (MainPID), or by process name.

Each lookup names how it found the process, or says exactly why it could not, so an operator reading a
snapshot knows whether "no environment" means "not permitted" or "looked in the wrong place".
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from fodc.ktm.procfs import parse_pid_stat


@dataclass(frozen=True, slots=True)
class Found:
    pid: int
    how: str


class NotFound(Exception):
    pass


class ProcessByComm:
    """The pid of the oldest process whose comm is `comm`, cached until that process goes away."""

    def __init__(self, comm: str, proc_root: str = "/proc") -> None:
        self.comm = comm
        self.proc_root = proc_root
        self._pid: int | None = None

    def __call__(self) -> int | None:
        if self._pid is not None and os.path.exists(f"{self.proc_root}/{self._pid}"):
            return self._pid
        found: list[tuple[int, int]] = []
        for entry in os.listdir(self.proc_root):
            if not entry.isdigit():
                continue
            try:
                with open(f"{self.proc_root}/{entry}/comm") as f:
                    if f.read().strip() != self.comm:
                        continue
                with open(f"{self.proc_root}/{entry}/stat") as f:
                    start = parse_pid_stat(f.read()).start_time_ticks
                found.append((start, int(entry)))
            except (OSError, ValueError, IndexError):
                continue
        self._pid = min(found)[1] if found else None
        return self._pid


class NodeProcessFinder:
    """Looks the node up the way the operator configured: pid file, else systemd unit, else process name."""

    def __init__(self, *, pid_file: str | None = None, systemd_unit: str | None = None,
                 process_name: str = "banyand", proc_root: str = "/proc") -> None:
        self.pid_file = pid_file
        self.systemd_unit = systemd_unit
        self.process_name = process_name
        self.proc_root = proc_root
        self._by_comm = ProcessByComm(process_name, proc_root)

    def find(self) -> Found:
        if self.pid_file:
            return self._from_pid_file(self.pid_file)
        if self.systemd_unit:
            return self._from_unit(self.systemd_unit)
        pid = self._by_comm()
        if pid is None:
            raise NotFound(f"no process named {self.process_name!r} is running")
        return Found(pid, f"process-name:{self.process_name}")

    def _alive(self, pid: int, how: str) -> Found:
        if not os.path.exists(f"{self.proc_root}/{pid}"):
            raise NotFound(f"{how} names pid {pid}, which is not running")
        return Found(pid, how)

    def _from_pid_file(self, path: str) -> Found:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError as exc:
            raise NotFound(f"cannot read pid file {path}: {exc.strerror or exc}") from None
        if not text.isdigit():
            raise NotFound(f"pid file {path} does not hold a pid: {text[:40]!r}")
        return self._alive(int(text), f"pid-file:{path}")

    def _from_unit(self, unit: str) -> Found:
        try:
            out = subprocess.run(["systemctl", "show", "--property=MainPID", "--value", unit],
                                 capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotFound(f"cannot ask systemd about {unit}: {exc}") from None
        text = out.stdout.strip()
        if out.returncode != 0 or not text.isdigit():
            raise NotFound(f"systemd does not know {unit}: {out.stderr.strip() or text or 'no answer'}")
        if text == "0":
            raise NotFound(f"systemd unit {unit} has no running main process")
        return self._alive(int(text), f"systemd-unit:{unit}")
