"""SIGHUP for both daemons: the settings re-read as at start, what may change applied, the rest named.

The signal handler only sets a flag; the reload runs in this loop's own thread. A config that no longer
validates changes nothing (each problem logged, the daemon runs on as it was). Every reload logs two lines:
what changed now, and what waits for a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fodc.options import Settings, changes, read_settings
from fodc.periodic import Periodic

log = logging.getLogger(__name__)
S = TypeVar("S", bound=Settings)


@dataclass
class Applied:
    """What a daemon's apply step did: notes for the "changed" line, option names it could not apply."""

    notes: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "''"
    return "''" if value in (None, "") else str(value)


def describe(diff: dict[str, tuple[Any, Any]]) -> list[str]:
    return [f"{name} {_shown(old)} -> {_shown(new)}" for name, (old, new) in diff.items()]


class SettingsReload(Periodic, Generic[S]):
    """Reloads on hangup(); `apply(old, new, changed)` puts the reloadable values in force."""

    thread_name = "settings-reload"

    def __init__(self, kind: type[S], argv: Sequence[str], started: S,
                 apply: Callable[[S, S, dict[str, tuple[Any, Any]]], Applied], interval_s: float = 0.2) -> None:
        super().__init__(interval_s)
        self.kind = kind
        self.argv = list(argv)
        self.started = started  # what the restart-only options still hold
        self.current = started  # what the reloadable options hold now
        self.apply = apply
        self.reloads = 0
        self.refused = 0
        self._hup = threading.Event()

    def hangup(self) -> None:
        """From the SIGHUP handler: reload at the next round (only sets a flag)."""
        self._hup.set()

    def run_round(self) -> None:
        if self._hup.is_set():
            self._hup.clear()
            self.reload()

    def reload(self) -> bool:
        new, errors = read_settings(self.kind, self.argv)
        if new is None:
            self.refused += 1
            log.error("SIGHUP: settings not reloaded, running on with those in force: %s", "; ".join(errors),
                      extra={"fields": {"problems": len(errors)}})
            return False
        applied, _ = changes(self.current, new)  # reloadable options changed since the last reload
        _, waiting = changes(self.started, new)  # restart-only options that differ from what runs
        done = self.apply(self.current, new, applied)
        for name in done.restart:  # reloadable in general, not this change (e.g. TLS turned on or off)
            if name in applied:
                waiting[name] = applied.pop(name)
        self.current = new
        self.reloads += 1
        changed = [*describe(applied), *done.notes]
        log.info("SIGHUP: reloaded: %s", "; ".join(changed) if changed else "no setting changed",
                 extra={"fields": {"applied": sorted(applied)}})
        if waiting:
            log.warning("SIGHUP: needs a restart to take effect: %s", "; ".join(describe(waiting)),
                        extra={"fields": {"restart": sorted(waiting)}})
        else:
            log.info("SIGHUP: nothing waits for a restart")
        return True


def set_log_level(level: str) -> None:
    """The root logger's level (and gunicorn's, which has its own) at once."""
    for name in ("", "gunicorn.error"):
        logging.getLogger(name).setLevel(level.upper())
