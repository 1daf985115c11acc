"""The BCC adapter: compile the programs once, attach each one on its own, set the filter, read the maps.

Everything that touches `bcc` is here, so the rest of KTM is testable without it. Compiling is the expensive
step (seconds of CPU, ~130 MB transient RSS) and happens once, in `BpfSession.open`; reading the maps is a
fixed, small number of lookups per collection. Nothing here raises to the caller: failures come back as
`ProgramState` reasons.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from fodc.ktm import programs as catalog
from fodc.ktm.status import ProgramState

log = logging.getLogger(__name__)

_ENV_LOCK = threading.Lock()  # BCC reads $BCC_KERNEL_SOURCE from the process environment while compiling


@dataclass(frozen=True, slots=True)
class BpfSnapshot:
    """Raw map contents: counters by `programs.COUNTERS` index, per-histogram slot counts and ns sums."""

    counters: tuple[int, ...]
    histograms: tuple[tuple[int, ...], ...]
    histogram_sums_ns: tuple[int, ...]


class CompileError(RuntimeError):
    """BCC could not compile or load the programs; the message carries clang's first errors."""


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Collect what libbcc/clang print on fd 2 while compiling (they bypass Python's logging), then replay
    it, so the reason for a failure can be quoted and nothing another thread printed is lost."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            captured.append(text)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


def _first_errors(text: str, limit: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if "error" in line.lower()]
    return " | ".join(lines[:limit])


def _compile(bcc_module, source: str, kernel_source: str):
    cflags = ["-w"]  # the header tree is older than the kernel; its harmless warnings would flood stderr
    with _ENV_LOCK, _stderr_captured() as output:
        try:
            return _compile_with_env(bcc_module, source, kernel_source, cflags)
        except Exception as exc:
            failure = exc
    detail = _first_errors(output[0] if output else "")
    raise CompileError(f"{failure}{': ' + detail if detail else ''}") from failure


def _compile_with_env(bcc_module, source: str, kernel_source: str, cflags: list[str]):
    previous = os.environ.get("BCC_KERNEL_SOURCE")
    if kernel_source:
        os.environ["BCC_KERNEL_SOURCE"] = kernel_source
    try:
        return bcc_module.BPF(text=source.encode(), cflags=cflags)
    finally:
        if kernel_source:
            if previous is None:
                os.environ.pop("BCC_KERNEL_SOURCE", None)
            else:
                os.environ["BCC_KERNEL_SOURCE"] = previous


def _read_array(table, size: int) -> list[int]:
    """All values of an array map; one batched syscall where the kernel allows it, else one per key."""
    try:
        values = [0] * size
        for key, value in table.items_lookup_batch():
            values[getattr(key, "value", key)] = getattr(value, "value", value)
        return values
    except Exception:
        return [table[ctypes.c_int(i)].value for i in range(size)]


class BpfSession:
    """One compiled BCC module and the programs attached from it."""

    def __init__(self, bpf, states: tuple[ProgramState, ...]) -> None:
        self._bpf = bpf
        self.states = states

    @classmethod
    def open(cls, bcc_module, programs: list[catalog.Program], kernel_source: str) -> BpfSession:
        """Compile `programs` together and attach each; raises only if the compile itself fails."""
        bpf = _compile(bcc_module, catalog.source_for(programs), kernel_source)
        states = []
        for program in programs:
            done: list[str] = []
            try:
                for tracepoint, function in zip(program.tracepoints, program.functions, strict=True):
                    bpf.attach_tracepoint(tp=tracepoint.encode(), fn_name=function.encode())
                    done.append(tracepoint)
                states.append(ProgramState(program.name, True))
            except Exception as exc:
                for tracepoint in done:  # a half-attached program would count wrongly (enters without exits)
                    try:
                        bpf.detach_tracepoint(tp=tracepoint.encode())
                    except Exception:
                        log.debug("detach %s failed", tracepoint, exc_info=True)
                states.append(ProgramState(program.name, False, f"attach failed: {exc}"))
        return cls(bpf, tuple(states))

    def configure(self, comm: str, cgroup_id: int | None) -> None:
        """Point the in-kernel filter at `comm` (and the cgroup when known); takes effect immediately."""
        table = self._bpf[b"ktm_config"]
        value = table.Leaf()
        value.comm = comm.encode()[:15]  # a char[16] field: assigning bytes copies and NUL-pads
        value.cgroup_id = cgroup_id or 0
        value.use_cgroup = 1 if cgroup_id else 0
        table[ctypes.c_int(0)] = value

    def snapshot(self) -> BpfSnapshot:
        counters = _read_array(self._bpf[b"ktm_counters"], len(catalog.COUNTERS))
        flat = _read_array(self._bpf[b"ktm_hist"], len(catalog.HISTOGRAMS) * catalog.HIST_SLOTS)
        sums = _read_array(self._bpf[b"ktm_hist_sum_ns"], len(catalog.HISTOGRAMS))
        n = catalog.HIST_SLOTS
        histograms = tuple(tuple(flat[i * n:(i + 1) * n]) for i in range(len(catalog.HISTOGRAMS)))
        return BpfSnapshot(tuple(counters), histograms, tuple(sums))

    def close(self) -> None:
        try:
            self._bpf.cleanup()
        except Exception:
            log.debug("BPF cleanup failed", exc_info=True)
