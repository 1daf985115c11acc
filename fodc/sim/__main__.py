"""`python -m fodc.sim`: run one simulated BanyanDB node until SIGTERM/SIGINT.

Options this program does not know (`--measure-root-path=/x`, `--grpc-port 17912`, ...) are accepted and
ignored, so a test can start it with a realistic banyand argv; `/debug/pprof/cmdline` reports the argv
as given. SIGHUP resets the counters, as a node restart would. `--reads-per-s N` makes the node issue read()
syscalls of its own (fast ones, until a `slow-reads` fault holds each for its delay), for kernel telemetry.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fodc.sim.page import DEFAULT_SERIES, ROLES, NodeModel
from fodc.sim.process_name import set_comm
from fodc.sim.server import SimNodeServer


@dataclass(frozen=True)
class SimSettings:
    role: str
    host: str
    port: int
    series: int | None
    seed: int
    comm: str | None
    reads_per_s: float
    pid_file: Path | None
    ignored_args: tuple[str, ...]


def parse_settings(argv: Sequence[str]) -> SimSettings:
    parser = argparse.ArgumentParser(
        prog="python -m fodc.sim", allow_abbrev=False,
        description="Serve a simulated BanyanDB node's /metrics; unknown --flags are accepted and ignored.",
    )
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--listen", default="127.0.0.1:2121", help="host:port for /metrics (default %(default)s)")
    parser.add_argument("--series", type=int, default=None,
                        help="approximate number of series (default: " +
                             ", ".join(f"{role} {n}" for role, n in DEFAULT_SERIES.items()) + ")")
    parser.add_argument("--seed", type=int, default=0, help="seed for the page's shapes (default 0)")
    parser.add_argument("--comm", default=None, help="process name to show in /proc/<pid>/comm, e.g. banyand")
    parser.add_argument("--reads-per-s", type=float, default=0.0,
                        help="read() syscalls a second the node makes on a pipe of its own, fast until a "
                             "slow-reads fault (default 0: none)")
    parser.add_argument("--pid-file", type=Path, default=None, help="write the pid here; removed on exit")
    parser.add_argument("--log-level", default="INFO", help=argparse.SUPPRESS)
    known, unknown = parser.parse_known_args(list(argv))
    host, sep, port = known.listen.rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"--listen must be host:port, got {known.listen!r}")
    if known.series is not None and known.series <= 0:
        parser.error("--series must be positive")
    if known.reads_per_s < 0:
        parser.error("--reads-per-s must not be negative")
    logging.basicConfig(level=known.log_level.upper(), format="fodc-sim %(levelname)s %(message)s")
    return SimSettings(
        role=known.role, host=host.strip("[]") or "127.0.0.1", port=int(port), series=known.series,
        seed=known.seed, comm=known.comm, reads_per_s=known.reads_per_s, pid_file=known.pid_file,
        ignored_args=tuple(unknown),
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    if settings.comm:
        set_comm(settings.comm)  # before any thread starts, so every thread inherits the name
    model = NodeModel(settings.role, settings.series, settings.seed, start_s=time.time())
    server = SimNodeServer(model, settings.host, settings.port, cmdline=sys.orig_argv,
                           reads_per_s=settings.reads_per_s, comm=settings.comm)
    stop_requested = []

    def _on_stop(signum: int, _frame: object) -> None:
        stop_requested.append(signum)
        server.close()

    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, _on_stop)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: server.reset())
    server.start()
    if settings.pid_file:
        settings.pid_file.write_text(f"{os.getpid()}\n")
    logging.getLogger("fodc.sim").info(
        "%s node serving %d series on http://%s:%d/metrics", settings.role, model.series_count,
        settings.host, server.port)
    try:
        while not server.wait(1.0):
            pass
    finally:
        server.close()
        if settings.pid_file:
            settings.pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
