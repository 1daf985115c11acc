"""The KTM loader child: compiles the eBPF programs with BCC, attaches them and hands the agent the fds.

Run by the agent as a child (`python -m fodc.ktm.bccload FD`) over a
Unix SOCK_SEQPACKET socket: one JSON request in (programs, header tree), one JSON answer out with the map
fds and the perf-event fds that hold the tracepoint attachments (SCM_RIGHTS). Then it exits without BCC's
cleanup, which would disable those shared events. BCC and its LLVM (~100 MiB of code and ~40 MiB of heap
while compiling) therefore never enter the long-running agent; a kernel keeps a program attached as long as
any process holds its perf-event fd, and the agent holds them until it closes the session.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import resource
import socket
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fodc.ktm import programs as catalog
from fodc.ktm.status import ProgramState

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024


class CompileError(RuntimeError):
    """BCC could not compile or load the programs; the message carries clang's first errors."""


@dataclass
class Loaded:
    """A compiled BCC module and what happened to each program."""

    bpf: Any  # bcc.BPF: bcc has no type hints
    states: tuple[ProgramState, ...]


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Collect what libbcc/clang print on fd 2 while compiling (they bypass Python's logging), then replay
    it, so the reason for a failure can be quoted and nothing is lost from the journal."""
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
    if kernel_source:
        os.environ["BCC_KERNEL_SOURCE"] = kernel_source  # read by libbcc; this process does nothing else
    with _stderr_captured() as output:
        try:
            return bcc_module.BPF(text=source.encode(), cflags=cflags)
        except Exception as exc:
            failure = exc
    detail = _first_errors(output[0] if output else "")
    raise CompileError(f"{failure}{': ' + detail if detail else ''}") from failure


def compile_and_attach(bcc_module, programs: list[catalog.Program], kernel_source: str) -> Loaded:
    """Compile `programs` together and attach each on its own; raises only if the compile itself fails."""
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
    return Loaded(bpf, tuple(states))


def _answer(loaded: Loaded) -> tuple[dict, list[int]]:
    """The JSON answer and the fds to pass: the agent's maps first (in AGENT_MAPS order), then the events."""
    fds, sizes = [], {}
    for name in catalog.AGENT_MAPS:
        table = loaded.bpf[name.encode()]
        fds.append(table.get_fd())
        sizes[name] = ctypes.sizeof(table.Leaf)
    if sizes["ktm_config"] != struct.calcsize(catalog.CONFIG_FORMAT):
        raise CompileError(f"struct ktm_config is {sizes['ktm_config']} bytes, "
                           f"expected {struct.calcsize(catalog.CONFIG_FORMAT)}")
    events = list(loaded.bpf.tracepoint_fds.values())
    answer = {"states": [[s.name, s.attached, s.reason] for s in loaded.states], "value_sizes": sizes,
              "events": len(events)}
    return answer, fds + events


def serve(sock: socket.socket) -> None:
    request = json.loads(sock.recv(MAX_MESSAGE))
    by_name = {p.name: p for p in catalog.PROGRAMS}
    fds: list[int] = []
    try:
        import bcc  # only ever in this child

        loaded = compile_and_attach(bcc, [by_name[name] for name in request["programs"]],
                                    request["kernel_source"])
        answer, fds = _answer(loaded)
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, CompileError) else str(exc)}
    answer["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    socket.send_fds(sock, [json.dumps(answer).encode()], fds)


def main(argv: list[str]) -> None:
    with socket.socket(fileno=int(argv[0])) as sock:
        try:
            serve(sock)
        finally:
            sys.stderr.flush()
            # No atexit, no BCC cleanup: it would PERF_EVENT_IOC_DISABLE the events the agent now holds.
            os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
