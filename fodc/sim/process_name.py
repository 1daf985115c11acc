"""Rename the running process (its kernel `comm`), so it looks like `banyand` to process finders.

Only the calling thread is renamed; threads started afterwards inherit the name, so call this before
starting any thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_PR_SET_NAME = 15
COMM_MAX = 15  # the kernel keeps 16 bytes including the terminating NUL


def set_comm(name: str) -> None:
    """Set /proc/self/comm to `name` (truncated to 15 bytes) via prctl(PR_SET_NAME)."""
    raw = name.encode()[:COMM_MAX]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_NAME, {name!r}) failed")
