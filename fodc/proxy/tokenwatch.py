"""The tokens file re-read while the proxy runs: on SIGHUP, and within a few seconds of any change, so a
token added with `fodc token add` or revoked with `fodc token revoke` takes effect without a restart.

A file that no longer parses keeps the tokens already loaded (and says so in the log); a file that is gone
means no tokens. Every reload is logged with the number of tokens and why it happened.
"""

from __future__ import annotations

import logging
import os
import threading

from fodc.periodic import Periodic
from fodc.proxy.auth import Authorizer, TokenFileError, load_tokens

log = logging.getLogger(__name__)


def _signature(path: str) -> tuple[int, int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    # Mode and owner too: a chmod o+w after start is refused (and said) at once, not at the next edit.
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid


class TokenWatch(Periodic):
    thread_name = "tokens-watch"

    def __init__(self, path: str, authorizer: Authorizer, interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self.path = path
        self.authorizer = authorizer
        self.reloads = 0
        self._seen = _signature(path)
        self._hup = threading.Event()

    def hangup(self) -> None:
        """From the SIGHUP handler: reload at the next round, changed or not (only sets a flag)."""
        self._hup.set()

    def reread(self, why: str) -> int:
        """Re-read the file now (from the settings reload, which may also have changed `path`); the number
        of tokens in force afterwards."""
        self.reload(why, _signature(self.path))
        return len(self.authorizer.tokens)

    def run_round(self) -> None:
        signature = _signature(self.path)
        if self._hup.is_set():
            self._hup.clear()
            self.reload("SIGHUP", signature)
        elif signature != self._seen:
            self.reload("file changed", signature)

    def reload(self, why: str, signature: tuple[int, int, int, int, int] | None) -> None:
        self._seen = signature
        fields: dict[str, object] = {"path": self.path, "why": why}
        if signature is None:
            self.authorizer.tokens = {}
            log.warning("tokens file gone: no API tokens now", extra={"fields": fields})
            return
        try:
            tokens = load_tokens(self.path)
        except TokenFileError as exc:
            log.error("tokens file not reloaded: the tokens loaded before stay in force",
                      extra={"fields": {**fields, "reason": str(exc)}})
            return
        self.authorizer.tokens = tokens  # one reference swap: a request sees the old set or the new one
        self.reloads += 1
        log.info("tokens file reloaded", extra={"fields": {**fields, "tokens": len(tokens)}})
