"""The node's last words: when it goes down or restarts, its Go crash report, found and kept.

NodeOutput reads what the node printed last, from every source configured: the file its crash output goes to
(--node-crash-output-file, Go's debug.SetCrashOutput), its journal (--node-systemd-unit) and its log file
(--node-log-file), each cut to --node-crash-max-bytes. CrashProbe looks for the last Go crash report there
(fodc.incident.gocrash) and turns it into evidence for a `node-crash` incident: crash.json (kind, message, the
failing goroutine, goroutine states) and crash.txt (the report as printed). A report is given once: the ones
already reported, and those already in the files when the agent started (the agent cannot tell when they
happened), are remembered by their hash.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import logging
import os
import re
import stat
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from fodc.incident import gocrash

log = logging.getLogger(__name__)

JOURNAL_LINES = 200_000  # a report of 10,000 goroutines is ~60,000 lines
SEEN_KEEP = 512
# The look runs on the thread that noticed the node gone (config or incident watch, 30 s watchdog): with the
# kernel log's look (fodc.agent.oomwatch) it must stay well inside that.
JOURNAL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Evidence:
    """What an incident gets on top of its usual parts: a trigger, a one-line summary, detail and files."""

    trigger: str
    summary: str
    detail: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputSources:
    crash_output_file: str | None
    systemd_unit: str | None
    log_file: str | None
    max_bytes: int


# A header at the start of a line; searched in the raw bytes, backwards, so a log of gigabytes costs one chunk.
_HEADER_BYTES = re.compile(rb"\n(?:panic: |fatal error: |SIG[A-Z0-9]{2,10}: |unexpected signal)")
SCAN_CHUNK = 1024 * 1024
SCAN_FACTOR = 16  # how far back a header is looked for: this many times --node-crash-max-bytes


@dataclass(frozen=True)
class Output:
    source: str
    text: str
    cut: bool = False  # the crash report goes on beyond what was kept (--node-crash-max-bytes)


def last_report_region(f: BinaryIO, size: int, max_bytes: int) -> tuple[bytes, bool]:
    """The node's last output as far as a crash report is concerned: from the last crash header (with the
    `runtime:` lines just before it) onward, at most `max_bytes`, and whether the cap cut it; the last
    `max_bytes` when there is no header within SCAN_FACTOR times that. A report is read from its start, so
    a dump of every goroutine larger than the cap still has its message and the failing goroutine."""
    pos, limit = size, max(0, size - SCAN_FACTOR * max_bytes)
    header = None
    while pos > limit and header is None:
        start = max(limit, pos - SCAN_CHUNK)
        read_from = max(0, start - 1)  # the newline before the chunk's first byte: a header may start there
        f.seek(read_from)
        data = f.read(pos + 64 - read_from)  # and a little past it, for a header's bytes across the edge
        base = read_from
        if read_from == 0:
            data, base = b"\n" + data, -1  # the first line of the file starts a line too
        offsets = [base + m.start() + 1 for m in _HEADER_BYTES.finditer(data) if base + m.start() + 1 < pos]
        header = offsets[-1] if offsets else None
        pos = start
    if header is None:
        f.seek(max(0, size - max_bytes))
        return f.read(max_bytes), False
    f.seek(max(0, header - 4096))
    before = f.read(header - max(0, header - 4096)).removesuffix(b"\n").split(b"\n")
    prefix: list[bytes] = []
    while before and before[-1].startswith(b"runtime: ") and len(prefix) < 20:
        prefix.insert(0, before.pop())
    f.seek(header)
    body = f.read(max_bytes)
    return b"\n".join([*prefix, body]) if prefix else body, header + len(body) < size and len(body) >= max_bytes


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Opens a regular file for reading, without blocking: a FIFO or a device where a log or an artifact
    was expected would hang the reading thread (and its watchdog would restart the agent)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_source(path: str, max_bytes: int) -> tuple[str, bool]:
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        region, cut = last_report_region(f, size, max_bytes)
    return region.decode(errors="replace"), cut


class NodeOutput:
    """What the node printed last, per source; a source that cannot be read is named with its reason."""

    def __init__(self, sources: OutputSources) -> None:
        self.sources = sources

    @property
    def configured(self) -> bool:
        s = self.sources
        return bool(s.crash_output_file or s.systemd_unit or s.log_file)

    def read(self, since_s: float | None, *, journal: bool = True) -> tuple[list[Output], dict[str, str]]:
        """([Output], {source: why it could not be read}): crash output file, journal, log file."""
        s = self.sources
        texts: list[Output] = []
        errors: dict[str, str] = {}
        for name, where in (("crash-output-file", s.crash_output_file),
                            ("journal", s.systemd_unit if journal else None), ("log-file", s.log_file)):
            if not where:
                continue
            source = f"{name}:{where}"
            try:
                if name == "journal":
                    raw = self._journal(where, since_s)
                    region, cut = last_report_region(io.BytesIO(raw), len(raw), s.max_bytes)
                    texts.append(Output(source, region.decode(errors="replace"), cut))
                else:
                    texts.append(Output(source, *read_source(where, s.max_bytes)))
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                errors[source] = getattr(exc, "strerror", None) or str(exc)
        return texts, errors

    def _journal(self, unit: str, since_s: float | None) -> bytes:
        argv = ["journalctl", "-u", unit, "-o", "cat", "--no-pager", "-n", str(JOURNAL_LINES)]
        if since_s is not None:
            argv += ["--since", f"@{int(since_s)}"]
        out = subprocess.run(argv, capture_output=True, timeout=JOURNAL_TIMEOUT_S, check=False)
        if out.returncode != 0:
            raise ValueError(f"journalctl: {out.stderr.decode(errors='replace').strip()[:300] or out.returncode}")
        return out.stdout


class CrashProbe:
    def __init__(self, output: NodeOutput) -> None:
        self.output = output
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.last_errors: dict[str, str] = {}

    def remember(self, digest: str) -> None:
        with self._lock:
            self._seen[digest] = None
            self._seen.move_to_end(digest)
            while len(self._seen) > SEEN_KEEP:
                self._seen.popitem(last=False)

    def baseline(self) -> None:
        """At start: the reports already in the node's files are old news (the journal is read by time)."""
        for output in self.output.read(None, journal=False)[0]:
            if (report := _report_text(output.source, output.text)) is not None:
                self.remember(_digest(report))

    def find(self, since_s: float | None) -> Evidence | None:
        """The newest crash report not reported yet, as `node-crash` evidence; None when there is none."""
        texts, errors = self.output.read(since_s)
        self.last_errors = errors
        for output in texts:
            report_text = _report_text(output.source, output.text)
            if report_text is None:
                continue
            digest = _digest(report_text)
            with self._lock:
                if digest in self._seen:
                    continue
            self.remember(digest)
            report = gocrash.parse_report(report_text)
            if output.cut:
                report = dataclasses.replace(report, truncated=True)
            return crash_evidence(report, output.source, digest, errors, cut_at=self.output.sources.max_bytes
                                  if output.cut else None)
        return None


def _report_text(source: str, text: str) -> str | None:
    """The last crash report of a source. The crash output file holds nothing else, so there any text is
    a crash, even one without a header the parser knows (kept raw, kind unknown)."""
    found = gocrash.find_report(text)
    if found is None and source.startswith("crash-output-file:") and text.strip():
        return text
    return found


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode(errors="replace")).hexdigest()


def headline(kind: str, message: str) -> str:
    """A crash in one line, as the Go runtime headed it: `panic: ...`, `fatal error: ...`, `SIGQUIT: quit`."""
    if not message:
        return f"{kind} crash output"
    if kind == gocrash.FATAL:
        return f"fatal error: {message}"
    return f"{kind}: {message}" if kind in (gocrash.PANIC, gocrash.OOM_KILL) else message


def crash_detail(report: gocrash.CrashReport, source: str, digest: str) -> dict[str, Any]:
    """What an incident's detail (so its listing, the API and /crashes) says of its crash."""
    return {"kind": report.kind, "message": report.message, "signature": report.signature,
            "top_frames": report.top_frames(), "stack": report.stack_lines(), "goroutines": report.goroutines,
            "source": source, "sha256": digest}


def crash_evidence(report: gocrash.CrashReport, source: str, digest: str,
                   errors: dict[str, str] | None = None, cut_at: int | None = None) -> Evidence:
    """A parsed report as incident evidence: the summary is its message, the detail its essentials."""
    crash = crash_detail(report, source, digest)
    summary = headline(report.kind, report.message)
    files = {"crash.json": json.dumps({**report.to_json(), "source": source, "sha256": digest,
                                       "unreadable_sources": errors or {},
                                       **({"cut_at_bytes": cut_at} if cut_at else {})}, indent=2).encode(),
             "crash.txt": report.raw.encode(errors="replace")}
    return Evidence("node-crash", summary[:300], {"crash": crash}, files)
