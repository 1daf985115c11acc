"""Reads what the kernel knows about a process: argv, environment, binary, start time; and config files.

The only module of the package that does I/O. Every read can fail on its own (a node running as another
user hides its environment and binary unless the agent has CAP_SYS_PTRACE); a failure becomes a reason
string in the result, never an exception, so one unreadable part does not cost the others.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

from fodc.ktm.procfs import parse_boot_time, parse_pid_stat, started_at_s


@dataclass(frozen=True, slots=True)
class ProcessView:
    pid: int
    argv: tuple[str, ...] | None
    environ: dict[str, str] | None
    binary: str | None
    start_time_ms: int | None
    errors: dict[str, str] = field(default_factory=dict)


def _why(exc: OSError, what: str) -> str:
    if isinstance(exc, PermissionError):
        return (f"permission denied reading {what} (the agent needs to run as the node's user or have "
                "CAP_SYS_PTRACE)")
    if isinstance(exc, (FileNotFoundError, ProcessLookupError)):
        return f"process went away while reading {what}"
    return f"cannot read {what}: {exc.strerror or exc}"


def process_start_ms(pid: int, proc_root: str = "/proc") -> int:
    """Unix ms when the process started; changes when a pid is reused, so (pid, start) names one process."""
    with open(f"{proc_root}/{pid}/stat") as f:
        stat = parse_pid_stat(f.read())
    with open(f"{proc_root}/stat") as f:
        boot_time_s = parse_boot_time(f.read())
    if boot_time_s is None:
        raise OSError("no btime in /proc/stat")
    return int(started_at_s(stat, boot_time_s, os.sysconf("SC_CLK_TCK")) * 1000)


def _read_settled(path: str, attempts: int = 10) -> bytes:
    """A /proc file that may read empty for a moment right after the process exec'd (its new memory map is
    not in place yet); a process that stays empty is a kernel thread or a zombie."""
    for attempt in range(attempts):
        with open(path, "rb") as f:
            raw = f.read()
        if raw or attempt == attempts - 1:
            return raw
        time.sleep(0.02)
    return b""


def read_process(pid: int, proc_root: str = "/proc") -> ProcessView:
    base = f"{proc_root}/{pid}"
    errors: dict[str, str] = {}
    if not os.path.exists(base):
        return ProcessView(pid, None, None, None, None, {"process": f"process {pid} is not running"})
    argv = environ = binary = start = None
    try:
        raw = _read_settled(f"{base}/cmdline")
        argv = tuple(part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")) if raw else ()
        if not raw:
            errors["argv"] = "empty command line (a kernel thread or a zombie)"
    except OSError as exc:
        errors["argv"] = _why(exc, "the command line")
    try:
        raw = _read_settled(f"{base}/environ")
        environ = {}
        for entry in raw.split(b"\0"):
            name, sep, value = entry.decode(errors="replace").partition("=")
            if sep and name:
                environ[name] = value
    except OSError as exc:
        errors["env"] = _why(exc, "the environment")
    try:
        binary = os.readlink(f"{base}/exe")
    except OSError as exc:
        errors["binary"] = _why(exc, "the binary path")
    try:
        start = process_start_ms(pid, proc_root)
    except (OSError, ValueError, IndexError) as exc:
        errors["start_time"] = _why(exc, "the start time") if isinstance(exc, OSError) else f"bad stat: {exc}"
    return ProcessView(pid, argv, environ, binary, start, errors)


@dataclass(frozen=True, slots=True)
class FileCapture:
    path: str
    size: int | None = None
    sha256: str | None = None
    content: str | None = None
    truncated: bool = False
    note: str = ""
    error: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"size": self.size, "sha256": self.sha256}
        if self.content is not None:
            out["content"] = self.content
        if self.truncated:
            out["truncated"] = True
        if self.note:
            out["note"] = self.note
        if self.error:
            out["error"] = self.error
        return out


def read_config_file(path: str, max_bytes: int, *, keep_content: bool = True, root: str = "") -> FileCapture:
    """Size and sha256 of the whole file; its text up to max_bytes (unless keep_content is False).

    `root` prefixes the path when the node runs in another mount namespace (/proc/<pid>/root)."""
    real = f"{root}{path}" if root else path
    try:
        digest = hashlib.sha256()
        head = bytearray()
        size = 0
        with open(real, "rb") as f:
            while chunk := f.read(64 * 1024):
                digest.update(chunk)
                size += len(chunk)
                if keep_content and len(head) < max_bytes:
                    head += chunk[: max_bytes - len(head)]
    except OSError as exc:
        return FileCapture(path, error=_why(exc, path))
    if not keep_content:
        return FileCapture(path, size, digest.hexdigest(), note="content not captured: the flag names a secret")
    text = _utf8(bytes(head), cut=size > max_bytes)
    if text is None:
        return FileCapture(path, size, digest.hexdigest(), note="binary file: content not captured")
    return FileCapture(path, size, digest.hexdigest(), text, truncated=size > max_bytes)


def _utf8(data: bytes, cut: bool) -> str | None:
    """Text, or None for binary; a cap may split a multi-byte character, which is dropped, not fatal."""
    for trim in range(4 if cut else 1):
        try:
            return data[: len(data) - trim].decode()
        except UnicodeDecodeError:
            continue
    return None
