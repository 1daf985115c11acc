"""The agent's side of eBPF loading: a short-lived child compiles and attaches, the agent keeps the fds.

Compiling is the expensive step (seconds of CPU, ~130 MB of RSS, BCC's LLVM mapped); it runs in
`python -m fodc.ktm.bccload`, which sends back the map fds and the perf-event fds holding the attachments
over a Unix socket (SCM_RIGHTS) and exits. The agent then reads the maps with bpf(2) (bpfmaps.py) and never
imports bcc. Closing the session closes the event fds, which detaches the programs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

from fodc.ktm import programs as catalog
from fodc.ktm.bpfmaps import ArrayMap
from fodc.ktm.status import ProgramState

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 300.0  # a compile takes 0.5-5 s; a wedged child must not hold KTM's start forever
MAX_MESSAGE = 64 * 1024
MAX_FDS = 64


@dataclass(frozen=True, slots=True)
class BpfSnapshot:
    """Raw map contents: counters by `programs.COUNTERS` index, per-histogram slot counts and ns sums."""

    counters: tuple[int, ...]
    histograms: tuple[tuple[int, ...], ...]
    histogram_sums_ns: tuple[int, ...]


class LoadError(RuntimeError):
    """The loader child failed (compile error, no bcc, timeout); the message says why."""


class BpfSession:
    """The attached programs as fds: the agent's maps and the perf events that keep them attached."""

    def __init__(self, maps: dict[str, ArrayMap], events: list[int], states: tuple[ProgramState, ...],
                 loader_peak_rss: int = 0) -> None:
        self._maps = maps
        self._events = events
        self.states = states
        self.loader_peak_rss = loader_peak_rss

    @classmethod
    def open(cls, programs: list[catalog.Program], kernel_source: str,
             timeout_s: float = LOAD_TIMEOUT_S) -> BpfSession:
        """Compile and attach `programs` in a child; raises LoadError if the child cannot deliver."""
        answer, fds = _run_loader([p.name for p in programs], kernel_source, timeout_s)
        try:
            if "error" in answer:
                raise LoadError(answer["error"])
            sizes = answer["value_sizes"]
            count = len(catalog.AGENT_MAPS)
            if len(fds) != count + answer["events"]:
                raise LoadError(f"loader sent {len(fds)} fds, expected {count + answer['events']}")
            maps = {name: ArrayMap(fd, sizes[name]) for name, fd in zip(catalog.AGENT_MAPS, fds, strict=False)}
            states = tuple(ProgramState(name, attached, reason) for name, attached, reason in answer["states"])
        except Exception:
            for fd in fds:
                os.close(fd)
            raise
        return cls(maps, fds[count:], states, answer.get("peak_rss_bytes", 0))

    def configure(self, comm: str, cgroup_id: int | None) -> None:
        """Point the in-kernel filter at `comm` (and the cgroup when known); takes effect immediately."""
        value = struct.pack(catalog.CONFIG_FORMAT, comm.encode()[:15], cgroup_id or 0, 1 if cgroup_id else 0)
        self._maps["ktm_config"].write(0, value)

    def read_filter(self) -> tuple[str, int, bool]:
        """(comm, cgroup id, cgroup used) as the kernel side sees them."""
        comm, cgroup_id, use = struct.unpack(catalog.CONFIG_FORMAT, self._maps["ktm_config"].read(0))
        return comm.rstrip(b"\0").decode(errors="replace"), cgroup_id, bool(use)

    def snapshot(self) -> BpfSnapshot:
        counters = self._maps["ktm_counters"].read_u64s(len(catalog.COUNTERS))
        flat = self._maps["ktm_hist"].read_u64s(len(catalog.HISTOGRAMS) * catalog.HIST_SLOTS)
        sums = self._maps["ktm_hist_sum_ns"].read_u64s(len(catalog.HISTOGRAMS))
        n = catalog.HIST_SLOTS
        histograms = tuple(tuple(flat[i * n:(i + 1) * n]) for i in range(len(catalog.HISTOGRAMS)))
        return BpfSnapshot(tuple(counters), histograms, tuple(sums))

    def close(self) -> None:
        """Detach (closing the last fd of a perf event detaches its program) and release the maps."""
        for fd in self._events:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._events = []
        for table in self._maps.values():
            with contextlib.suppress(OSError):
                table.close()


def _run_loader(programs: list[str], kernel_source: str, timeout_s: float) -> tuple[dict, list[int]]:
    """Starts the loader child, sends the request, returns its answer and the fds it passed."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    started = time.monotonic()
    with ours:
        try:
            child = subprocess.Popen([sys.executable, "-m", "fodc.ktm.bccload", str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL)
        finally:
            theirs.close()
        try:
            ours.settimeout(timeout_s)
            ours.send(json.dumps({"programs": programs, "kernel_source": kernel_source}).encode())
            try:
                data, fds, _, _ = socket.recv_fds(ours, MAX_MESSAGE, MAX_FDS)
            except TimeoutError:
                raise LoadError(f"the BPF loader did not answer within {timeout_s:g} s") from None
            if not data:
                raise LoadError(f"the BPF loader exited without an answer (status {child.wait(timeout_s)})")
            answer = json.loads(data)
        finally:
            if child.poll() is None:
                try:
                    child.wait(max(1.0, timeout_s - (time.monotonic() - started)))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    log.info("KTM programs compiled in a child process", extra={"fields": {
        "seconds": round(time.monotonic() - started, 2),
        "child_peak_rss_mib": round(answer.get("peak_rss_bytes", 0) / 2**20, 1)}})
    return answer, fds
