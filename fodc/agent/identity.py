"""Who this agent is, beyond its flags: the host it runs on, the host's own address, and its installation.

- host id: /etc/machine-id (systemd's per-host identity; cloned hosts must regenerate it), part of the agent
  key at the proxy, so two hosts never share a key even with the same node-address.
- primary address: the source address of this host's default route, the default node-address (a packaged
  agent must not announce 127.0.0.1, which every host has).
- instance id: a random id kept in --instance-file and locked while the agent runs. A restarted agent reads
  the same id and may take over its own entry at the proxy at once; a second agent with the same key (same
  host id and address) has another id and is refused while the first is alive.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")  # machine-id(5); "uninitialized" or empty is no identity
# Documentation addresses: only a default route reaches them; connect() on a UDP socket sends nothing.
_ROUTE_PROBES = ((socket.AF_INET, ("192.0.2.1", 9)), (socket.AF_INET6, ("2001:db8::1", 9)))


def host_id(files: tuple[Path, ...] = MACHINE_ID_FILES) -> str:
    """The host's machine id, or "" when the host has none readable."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if _MACHINE_ID.fullmatch(text):
            return text
    return ""


def primary_ip() -> str | None:
    """The address this host reaches the rest of the network from (its default route's source), else the
    first non-loopback address its name resolves to; None when it has neither."""
    for family, target in _ROUTE_PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect(target)
                address = probe.getsockname()[0]
        except OSError:
            continue
        if address and not address.startswith("127.") and address != "::1":
            return address
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return None
    return next((str(info[4][0]) for info in infos if not str(info[4][0]).startswith("127.")), None)


class Instance:
    """This agent installation's id, from --instance-file (made on first start), held under a lock."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.note = ""  # why the id is not the file's (shown in the log)
        self._fd: int | None = None
        self.id = self._load() if path else ""
        if not self.id:
            self.id = uuid.uuid4().hex
            self.note = self.note or "no --instance-file: a restart waits until its old entry is seen gone"

    def _load(self) -> str:
        assert self.path is not None
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            self.note = f"cannot open {self.path}: {exc.strerror or exc}"
            return ""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self.note = f"{self.path} is held by another running agent; this one is a different instance"
            return ""
        self._fd = fd
        text = os.pread(fd, 128, 0).decode(errors="replace").strip()
        if _ID.fullmatch(text):
            return text
        made = uuid.uuid4().hex
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{made}\n".encode(), 0)
            os.fsync(fd)
        except OSError as exc:
            self.note = f"cannot write {self.path}: {exc.strerror or exc}"
        return made

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
