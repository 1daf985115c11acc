"""The Go runtime's crash report read as data: what killed the node, and where.

A Go program that dies of a panic, a fatal error or a signal writes one report to stderr (so to the journal,
a log file, or the file named by its crash-output setting): a header (`panic: MSG`, `fatal error: MSG`,
`SIGQUIT: quit`, with `runtime: ...` lines before it and `[signal ...]` after), then one block per goroutine,
`goroutine N [state, wait]:` followed by pairs of lines `pkg.Func(args)` / `\tFILE:LINE +0xOFF`, the failing
goroutine first. This module finds the last such report in a log tail and parses it: plain text in, plain data
out; no files, no clocks. Anything it cannot read stays in `raw` with kind `unknown`, never an exception.
Every size is bounded: the text, the lines, the frames per goroutine, the distinct states.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT_CHARS = 8 * 1024 * 1024
MAX_LINE_CHARS = 4096
MAX_FRAMES = 200  # Go itself prints at most 100 per goroutine, then "...additional frames elided..."
MAX_STATES = 64
MAX_MESSAGE_CHARS = 2000
SIGNATURE_FRAMES = 3

PANIC, FATAL, SIGNAL, OOM_KILL, UNKNOWN = "panic", "fatal-error", "signal", "oom-kill", "unknown"

_HEADER = re.compile(r"^(?:panic: |fatal error: |SIG[A-Z0-9]{2,10}: |unexpected signal)")
_GOROUTINE = re.compile(r"^goroutine (\d{1,12})(?: [^\[\]]{0,200})? ?\[([^\]]{0,200})\]:$")
_REGISTER = re.compile(r"^[a-z0-9]{2,6} +0x[0-9a-f]{1,16}$")
_WAIT = re.compile(r"^\d+ minutes?$")
_OFFSET = re.compile(r" (?:\+0x[0-9a-f]+|fp=0x[0-9a-f]+|sp=0x[0-9a-f]+|pc=0x[0-9a-f]+)")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"\d+")
_RUNTIME_PREFIXES = ("runtime.", "runtime/", "panic(", "internal/runtime", "sync.runtime_", "testing.tRunner")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str = ""
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "file": self.file, "line": self.line}

    def short(self) -> str:
        where = f"{self.file.rsplit('/', 1)[-1]}:{self.line}" if self.file else "?"
        return f"{self.function} ({where})"


@dataclass(frozen=True)
class Goroutine:
    id: int | None  # None: the "runtime stack:" section (the system stack of a runtime throw)
    state: str
    wait: str = ""
    frames: tuple[Frame, ...] = ()
    created_by: Frame | None = None
    elided: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "wait": self.wait,
                "frames": [f.to_json() for f in self.frames],
                "created_by": self.created_by.to_json() if self.created_by else None, "elided": self.elided}


@dataclass(frozen=True)
class CrashReport:
    kind: str
    message: str
    raw: str
    details: tuple[str, ...] = ()
    failing: Goroutine | None = None
    runtime_stack: tuple[Frame, ...] = ()
    goroutines: int = 0
    states: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    @property
    def signature(self) -> str:
        return signature(self.kind, self.message, self.failing.frames if self.failing else ())

    def top_frames(self, count: int = 5) -> list[str]:
        return [f.short() for f in top_frames(self.failing.frames if self.failing else (), count)]

    def stack_lines(self, count: int = 20) -> list[str]:
        """The failing goroutine as the API lists it: every frame (runtime's too), `function (file:line)`."""
        frames = self.failing.frames if self.failing else ()
        more = [f"... {len(frames) - count} more"] if len(frames) > count else []
        return [f.short() for f in frames[:count]] + more

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "signature": self.signature,
                "top_frames": self.top_frames(), "details": list(self.details),
                "goroutine": self.failing.to_json() if self.failing else None,
                "runtime_stack": [f.to_json() for f in self.runtime_stack],
                "goroutines": self.goroutines, "states": dict(self.states), "truncated": self.truncated,
                "raw_chars": len(self.raw)}


def is_runtime(frame: Frame) -> bool:
    return frame.function.startswith(_RUNTIME_PREFIXES)


def top_frames(frames: tuple[Frame, ...] | list[Frame], count: int) -> list[Frame]:
    """The frames that say where the program was: the runtime's own (panic, throw, gopark) skipped, unless
    there is nothing else."""
    own = [f for f in frames if not is_runtime(f)]
    return (own or list(frames))[:count]


def normalized_message(message: str) -> str:
    """The message with addresses and numbers blanked, so `index out of range [5] with length 3` and `[7]
    with length 4` are one bug."""
    return _NUMBER.sub("N", _HEX.sub("0x", message.strip()))


def signature(kind: str, message: str, frames: tuple[Frame, ...] | list[Frame]) -> str:
    """What makes two crashes the same crash: kind, message (numbers blanked) and the top frames' functions."""
    functions = [f.function for f in top_frames(frames, SIGNATURE_FRAMES)]
    text = "\n".join([kind, normalized_message(message), *functions])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _lines(text: str) -> list[str]:
    return [line[:MAX_LINE_CHARS].rstrip("\r") for line in text[-MAX_TEXT_CHARS:].split("\n")]


def find_report(text: str) -> str | None:
    """The last crash report in a log tail (from the `runtime:` lines before its header to its last
    goroutine), or None when the tail has no crash header at all."""
    lines = _lines(text)
    start = next((i for i in range(len(lines) - 1, -1, -1) if _HEADER.match(lines[i])), None)
    if start is None:
        return None
    while start > 0 and (lines[start - 1].startswith("runtime: ") or _HEADER.match(lines[start - 1])):
        start -= 1
    end = _report_end(lines, start)
    return "\n".join(lines[start:end]).rstrip("\n") + "\n"


def _report_end(lines: list[str], start: int) -> int:
    """Index just past the report: the first line after it that is no part of the grammar (the next log
    line of the restarted node, say) ends it."""
    i = start + 1
    while i < len(lines) and lines[i].strip() and not _GOROUTINE.match(lines[i]) and lines[i] != "runtime stack:":
        i += 1  # header block: [signal ...], PC=..., "\tpanic: ..." of a nested panic
    in_section = False
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            in_section = False
        elif _GOROUTINE.match(line) or line == "runtime stack:":
            in_section = True
        elif _REGISTER.match(line) or line.startswith("exit status "):
            pass
        elif not in_section:
            return i
        elif line.startswith("\t") or line.startswith("...additional frames elided") or line.startswith("created by "):
            pass
        elif i + 1 < len(lines) and lines[i + 1].startswith("\t"):
            i += 1  # a frame: function line, then its file line
        elif i + 1 == len(lines):
            pass  # the last line, cut off before its file line
        else:
            return i
        i += 1
    return len(lines)


def _function(line: str) -> str:
    """`pkg.(*T).M(0xc0, {0x1, 0x2})` -> `pkg.(*T).M`: the argument list is the parenthesis group at the end."""
    line = line.strip()
    if not line.endswith(")"):
        return line
    depth = 0
    for index in range(len(line) - 1, -1, -1):
        if line[index] == ")":
            depth += 1
        elif line[index] == "(":
            depth -= 1
            if depth == 0:
                return line[:index] or line
    return line


def _location(line: str) -> tuple[str, int | None]:
    """`\t/src/x.go:12 +0x1f fp=0x.. sp=0x.. pc=0x..` -> ("/src/x.go", 12)."""
    text = line.strip()
    cut = _OFFSET.search(text)
    if cut:
        text = text[:cut.start()]
    path, _, number = text.rpartition(":")
    if path and number.isdigit():
        return path, int(number)
    return text, None


def _goroutine_header(line: str) -> tuple[int, str, str] | None:
    match = _GOROUTINE.match(line)
    if not match:
        return None
    parts = [p.strip() for p in match[2].split(",")]
    state = parts[0] or "unknown"
    wait = next((p for p in parts[1:] if _WAIT.match(p)), "")
    return int(match[1]), state, wait


class _Section:
    def __init__(self, gid: int | None, state: str, wait: str) -> None:
        self.gid, self.state, self.wait = gid, state, wait
        self.frames: list[Frame] = []
        self.created_by: Frame | None = None
        self.elided = False
        self.cut = False  # a function line without its file line (the text ended there)

    def done(self) -> Goroutine:
        return Goroutine(self.gid, self.state, self.wait, tuple(self.frames), self.created_by, self.elided)


def _headline(first: str) -> tuple[str, str]:
    """(kind, message) of a crash header line."""
    if first.startswith("panic: "):
        message = first[len("panic: "):]
        return PANIC, message.removesuffix(" [recovered]").removesuffix(" [recovered, repanicked]")
    if first.startswith("fatal error: "):
        return FATAL, first[len("fatal error: "):]
    return SIGNAL, first


def _starts_section(line: str) -> bool:
    return _goroutine_header(line) is not None or line == "runtime stack:"


class _StackReader:
    """The goroutine blocks after a crash header, read line by line. Its state is the section being read
    (None between sections); each kind of line has its own handler, so each rule of the grammar is in one
    place and the bounds (frames, states, the two sections kept) are applied as the lines arrive."""

    def __init__(self, lines: list[str], start: int) -> None:
        self.lines, self.next = lines, start
        self.sections: list[_Section] = []
        self.current: _Section | None = None
        self.states: dict[str, int] = {}
        self.count = 0

    def read(self) -> _StackReader:
        while self.next < len(self.lines):
            line = self.lines[self.next]
            self.next += 1
            self._handle(line)
        return self

    def _handle(self, line: str) -> None:
        if not line.strip():
            self.current = None  # a blank line ends a section
            return
        found = _goroutine_header(line)
        if found is not None:
            self._goroutine(*found)
        elif line == "runtime stack:":
            self.current = _Section(None, "runtime stack", "")
            self.sections.append(self.current)
        elif self.current is None or line.startswith("\t") or _REGISTER.match(line):
            return  # outside a section, a stray file line, or a register dump
        elif line.startswith("...additional frames elided"):
            self.current.elided = True
        else:
            self._frame(self.current, line)

    def _goroutine(self, gid: int, state: str, wait: str) -> None:
        """A goroutine header: counted by state (MAX_STATES distinct, then "other"); only the first (the
        failing one) is kept, beside a runtime stack before it."""
        self.count += 1
        key = state if state in self.states or len(self.states) < MAX_STATES else "other"
        self.states[key] = self.states.get(key, 0) + 1
        self.current = _Section(gid, state, wait)
        if len(self.sections) < 2:
            self.sections.append(self.current)

    def _frame(self, section: _Section, line: str) -> None:
        """A function line and, when it follows, its file line; without one the text ended in this frame."""
        following = self._take_file_line()
        file, number = _location(following) if following is not None else ("", None)
        if number is None:
            section.cut = True
        if line.startswith("created by "):
            name = line[len("created by "):].split(" in goroutine ", 1)[0]
            section.created_by = Frame(_function(name), file, number)
        elif len(section.frames) < MAX_FRAMES:
            section.frames.append(Frame(_function(line), file, number))
        else:
            section.elided = True

    def _take_file_line(self) -> str | None:
        if self.next < len(self.lines) and self.lines[self.next].startswith("\t"):
            self.next += 1
            return self.lines[self.next - 1]
        return None

    def report(self, kind: str, message: str, raw: str, details: list[str]) -> CrashReport:
        runtime_stack = next((s.frames for s in self.sections if s.gid is None), [])
        failing = next((s for s in self.sections if s.gid is not None), None)
        return CrashReport(kind, message[:MAX_MESSAGE_CHARS], raw, tuple(d[:MAX_LINE_CHARS] for d in details[:20]),
                           failing.done() if failing else None, tuple(runtime_stack), self.count, self.states,
                           self._truncated(failing))

    def _truncated(self, failing: _Section | None) -> bool:
        """No failing goroutine, or one without frames, or a frame cut off where the text ended."""
        return failing is None or not failing.frames or any(s.cut for s in self.sections)


def parse_report(text: str) -> CrashReport:
    """A crash report (as `find_report` cuts it, or a crash-output file's whole text) as data. Text without a
    crash header is kept as raw with kind `unknown`."""
    raw = text[-MAX_TEXT_CHARS:]
    lines = _lines(raw)
    while lines and not lines[-1].strip():
        lines.pop()
    header = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if header is None:
        return CrashReport(UNKNOWN, "", raw, truncated=True)
    kind, message = _headline(lines[header])
    details, stacks = _details(lines, header)
    return _StackReader(lines, stacks).read().report(kind, message, raw, details)


def _details(lines: list[str], header: int) -> tuple[list[str], int]:
    """The lines around the header (`runtime: ...` before it; `[signal ...]`, `PC=...`, a nested panic's
    lines after it), and the index where the goroutine blocks start."""
    details = [line.strip() for line in lines[:header] if line.strip()]
    i = header + 1
    while i < len(lines) and lines[i].strip() and not _starts_section(lines[i]):
        details.append(lines[i].strip())
        i += 1
    return details, i


def parse_stack(text: str) -> tuple[Frame, ...]:
    """Frames of a stack as `debug.Stack()` or a crash artifact's `stack` field gives it (with or without
    its `goroutine N [running]:` line)."""
    lines = _lines(text)
    if not any(_goroutine_header(line) for line in lines[:3]):
        lines = ["goroutine 0 [running]:", *lines]
    report = parse_report("panic: stack\n\n" + "\n".join(lines))
    return report.failing.frames if report.failing else ()
