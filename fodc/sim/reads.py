"""Storage reads of the simulated node: read() syscalls a real database makes all the time, so that kernel
telemetry (KTM) has the node's read latency to measure, and the `slow-reads` fault has something to slow.

Every read takes one byte from a pipe the node owns. Without a delay the reader writes the byte itself just
before reading it, so read() finds its data waiting and returns at once. With a delay the reader hands the
write to a feeder thread, which makes it `delay` seconds later: read() then blocks in the kernel that long,
which is exactly what a syscall-latency probe sees. The delay is asked of the owner (the server's current
fault) before every read.

The kernel keeps a name (comm) per thread and KTM filters on it, so both threads rename themselves to the
node's comm: a thread that kept Python's or the parent's name would make reads KTM never counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from fodc.sim.process_name import set_comm

log = logging.getLogger("fodc.sim")

# How long a blocked hand-off waits before looking at the stop flag again.
_POLL_S = 0.5


class StorageReads:
    """At most `per_s` read() calls a second on a pipe, each held for `delay_s()` seconds."""

    def __init__(self, per_s: float, delay_s: Callable[[], float], comm: str | None = None) -> None:
        if per_s <= 0:
            raise ValueError(f"reads per second must be positive, got {per_s!r}")
        self.per_s = per_s
        self.delay_s = delay_s
        self.comm = comm
        self.reads = 0  # written by the reader thread only
        self._stop = threading.Event()
        self._feeds: queue.Queue[float] = queue.Queue(maxsize=1)  # the reader waits for each read: one at most
        self._read_fd, self._write_fd = os.pipe()
        self._threads = (threading.Thread(target=self._read_loop, name="sim-storage-read", daemon=True),
                         threading.Thread(target=self._feed_loop, name="sim-storage-feed", daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop both threads (a read blocked on a pending feed is released at once), then close the pipe."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("storage reads did not stop within %.1fs; leaving the pipe open", timeout)
            return
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _rename(self) -> None:
        if self.comm:
            set_comm(self.comm)

    def _read_loop(self) -> None:
        self._rename()
        gap = 1.0 / self.per_s
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at = time.monotonic() + gap
            delay = max(0.0, self.delay_s())
            if delay:
                if not self._hand_off(delay):
                    return
            else:
                os.write(self._write_fd, b"r")
            os.read(self._read_fd, 1)
            self.reads += 1

    def _hand_off(self, delay: float) -> bool:
        """Ask the feeder for a byte `delay` seconds from now; False when stopping first."""
        while not self._stop.is_set():
            try:
                self._feeds.put(delay, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _feed_loop(self) -> None:
        self._rename()
        while not self._stop.is_set():
            try:
                delay = self._feeds.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            self._stop.wait(delay)  # cut short on close, so the blocked reader is released at once
            os.write(self._write_fd, b"f")
