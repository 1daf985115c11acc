"""Checks made before BCC is asked to compile anything, each answering with a reason an operator can act on.

Compiling costs seconds and ~130 MB, and a failing compile only prints clang errors to stderr; checking the
cheap things first (bcc importable, capabilities, tracefs, kernel headers, each tracepoint) turns most
failures into one clear sentence. The parsers are pure; the probing functions only read files.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
# Where dev/ktm-headers (and the packaging) put a merged header tree when no package matches the kernel.
FODC_HEADERS_DIR = "/var/lib/fodc/ktm/kernel-headers"


def effective_caps(status_text: str) -> int:
    """CapEff from /proc/self/status, as a bit mask."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def missing_caps(cap_eff: int) -> str:
    """'' when eBPF tracing is allowed: CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN (kernels before 5.8)."""
    has = lambda cap: bool(cap_eff >> cap & 1)  # noqa: E731
    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return ""
    return "missing capabilities: need CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN)"


def bcc_missing() -> str:
    """'' when python3-bpfcc can be imported. Only looked up: importing it would map BCC's LLVM into the
    agent, and only the loader child (bccload.py) imports it."""
    try:
        found = importlib.util.find_spec("bcc") is not None
    except (ImportError, ValueError) as exc:
        return f"python3-bpfcc (bcc) not importable: {exc}"
    return "" if found else "python3-bpfcc (bcc) not importable: no module named 'bcc'"


def check_caps(proc_root: str = "/proc") -> str:
    try:
        return missing_caps(effective_caps(Path(proc_root, "self", "status").read_text()))
    except OSError as exc:
        return f"cannot read capabilities: {exc}"


def find_tracefs() -> str | None:
    for path in TRACEFS_CANDIDATES:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    return None


def tracepoint_exists(tracefs: str, tracepoint: str) -> bool:
    category, _, event = tracepoint.partition(":")
    return os.path.isfile(os.path.join(tracefs, "events", category, event, "format"))


def find_kernel_headers(explicit: str | None = None, release: str | None = None) -> str | None:
    """The header tree BCC should compile against; None when nothing usable exists.

    Order: the explicit setting, $BCC_KERNEL_SOURCE, the running kernel's own build tree, FODC's merged
    tree, then BCC's built-in fallback (CONFIG_IKHEADERS), signalled by returning "" (nothing to set).
    """
    release = release or os.uname().release
    candidates = [explicit, os.environ.get("BCC_KERNEL_SOURCE"),
                  f"/lib/modules/{release}/build", f"/lib/modules/{release}/source", FODC_HEADERS_DIR]
    for path in candidates:
        if path and os.path.isfile(os.path.join(path, "include", "linux", "kconfig.h")):
            return path
    if os.path.exists("/sys/kernel/kheaders.tar.xz"):
        return ""  # BCC unpacks the kernel's own headers itself
    return None
