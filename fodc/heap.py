"""Giving freed heap back to the kernel after a burst of allocations (an agent's window read, a proxy page).

A window read allocates and frees some MiB of short-lived objects on a worker thread; glibc keeps freed
chunks in that thread's arena (and below the top of the heap, which MALLOC_TRIM_THRESHOLD_ cannot reach),
so the agent's RSS would stay at its peak. malloc_trim(0) returns every whole free page of every arena.
CPython's own small-object arenas go back only when a whole arena is empty, which is why reads keep their
Python objects few and short-lived (fodc/window/reads.py).
A no-op where the C library has no malloc_trim (musl) or cannot be loaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim():  # noqa: ANN202 - a ctypes function or None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        log.debug("malloc_trim is not available; freed heap stays with the process")
        return None


def release_free_heap(collect: bool = True) -> bool:
    """Collects the cyclic garbage a burst left (generator frames, exceptions with their tracebacks: they
    would wait for the next full collection) and returns free heap pages to the kernel; True when the C
    library did release something. `collect=False` skips the collection where the burst's garbage is freed
    by reference counts alone (the proxy's /metrics page: a full collection there walks every object of the
    worker, ~30% of a 100-agent page's CPU)."""
    if collect:
        gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
