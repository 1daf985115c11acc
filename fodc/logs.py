"""Structured logging for both daemons: one JSON object per line (journal-friendly) or readable text.

Call sites pass context as `extra={"fields": {...}}` or through `log_event`, so every line carries the
node id, agent id or request id it concerns instead of burying them in prose.

Under systemd, stderr is a journal stream that reads a `<N>` syslog priority at the start of each line
(SyslogLevelPrefix=, on by default): the formatters put one there, so `journalctl -p warning -u fodc-agent`
shows the warnings and errors instead of every line filed at the unit's default priority.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from fodc.times import rfc3339

_RESERVED = set(vars(logging.makeLogRecord({})))

# syslog(3) priorities of the logging levels; anything in between takes the next more severe one.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
DEBUG_PRIORITY = 7


def syslog_priority(levelno: int) -> int:
    return next((priority for level, priority in _PRIORITIES if levelno >= level), DEBUG_PRIORITY)


def stderr_is_journal(environ: dict[str, str] | None = None) -> bool:
    """True when stderr is the journal stream systemd connected (JOURNAL_STREAM names its device:inode);
    a redirect to a file or pipe by a child or a wrapper is not, and keeps plain lines."""
    device, _, inode = (environ if environ is not None else os.environ).get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


class _Formatter(logging.Formatter):
    """Adds the journal's priority prefix to every line of a formatted record when stderr is the journal."""

    def __init__(self, journal: bool | None = None) -> None:
        super().__init__()
        self.journal = stderr_is_journal() if journal is None else journal

    def format(self, record: logging.LogRecord) -> str:
        text = self.render(record)
        if not self.journal:
            return text
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))

    def render(self, record: logging.LogRecord) -> str:
        raise NotImplementedError


class JsonFormatter(_Formatter):
    def render(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": rfc3339(int(record.created * 1000)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(_Formatter):
    def render(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record)} {record.levelname:<7} {record.name} [{record.threadName}] " \
               f"{record.getMessage()}"
        fields = _fields(record)
        if fields:
            base += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "fields", {}) or {})
    for key, value in vars(record).items():
        if key not in _RESERVED and key != "fields":
            fields[key] = value
    return fields


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configures the root logger once per process; `fmt` auto picks text on a tty, json otherwise."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # grpc and werkzeug are chatty at info level; their warnings still come through.
    for noisy in ("werkzeug", "grpc", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Logs `msg` with structured fields (shown as JSON keys or key=value pairs)."""
    logger.log(level, msg, extra={"fields": fields})
