"""A stand-in for systemd's end of sd_notify: a real SOCK_DGRAM socket a daemon is given as NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from pathlib import Path

from fodc.systemd import Notifier


class NotifyListener:
    """Collects sd_notify datagrams the way systemd would receive them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def env(self, watchdog_usec: int = 1_000_000) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(watchdog_usec), "FODC_TEST_HOOKS": "1"}

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def seen(self, needle: str) -> bool:
        return any(needle in m for m in self.drain())

    def count(self, needle: str) -> int:
        return sum(needle in m for m in self.drain())

    def close(self) -> None:
        self.sock.close()


class RecordingNotifier(Notifier):
    """A systemd socket as far as the daemon's code can tell, asking for a watchdog ping every 2 s; keeps what
    it was sent."""

    def __init__(self) -> None:
        self.enabled = True
        self.watchdog_usec = 2_000_000
        self.sent: list[str] = []

    def send(self, *states: str) -> None:
        self.sent.append("\n".join(states))
