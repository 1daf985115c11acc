"""Finding the database's cgroup v2 id, which `bpf_get_current_cgroup_id()` compares against in the kernel.

The id of a cgroup v2 directory is its inode number on the cgroup2 mount. The mount may be at
/sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid); /proc/self/mountinfo says which. The parsers
are pure; `resolve_cgroup_id` is the thin I/O around them and returns None rather than raising.
"""

from __future__ import annotations

import os
from pathlib import Path


def cgroup2_mount(mountinfo: str) -> str | None:
    """The first cgroup2 mount point in /proc/self/mountinfo text."""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if sep and right.split(" ", 1)[0] == "cgroup2":
            fields = left.split()
            if len(fields) >= 5:
                return fields[4].replace("\\040", " ")
    return None


def cgroup2_path(proc_cgroup: str) -> str | None:
    """The unified-hierarchy path (`0::/path`) from /proc/<pid>/cgroup text."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def resolve_cgroup_id(*, cgroup_path: str | None = None, pid: int | None = None,
                      proc_root: str = "/proc") -> tuple[int | None, str]:
    """(cgroup id, explanation). `cgroup_path` may be absolute on disk or relative to the cgroup2 mount."""
    proc = Path(proc_root)
    try:
        mount = cgroup2_mount((proc / "self" / "mountinfo").read_text())
    except OSError as exc:
        return None, f"cannot read mountinfo: {exc}"
    if mount is None:
        return None, "no cgroup v2 hierarchy mounted"
    if cgroup_path is None:
        if pid is None:
            return None, "target pid not known yet"
        try:
            relative = cgroup2_path((proc / str(pid) / "cgroup").read_text())
        except OSError as exc:
            return None, f"cannot read /proc/{pid}/cgroup: {exc}"
        if relative is None:
            return None, f"pid {pid} has no cgroup v2 membership"
    else:
        relative = cgroup_path
    directory = Path(relative) if relative.startswith(mount) else Path(mount) / relative.lstrip("/")
    try:
        return os.stat(directory).st_ino, str(directory)
    except OSError as exc:
        return None, f"cannot stat cgroup {directory}: {exc}"
