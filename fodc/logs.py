"""Structured logging for both daemons: one JSON object per line (journal-friendly) or readable text.

Call sites pass context as `extra={"fields": {...}}` or through `log_event`, so every line carries the
node id, agent id or request id it concerns instead of burying them in prose.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
