"""`fodc dump DIR`: reads a window directory (--window-dir of an agent, or a copy of it) without any daemon.

Prints one line per point, as JSON lines (default) or CSV, or one JSON line per series with all its points.
Points come out in the order the window was written: chunk after chunk, series after series within a chunk.
A point is printed once even where the interim file repeats scrapes that were sealed into an archive since.
Damaged chunks and unreadable files are skipped with a warning on stderr; everything else is printed.

Exit status: 0 all read; 1 DIR cannot be read or holds no window files; 2 bad usage; 4 printed what was
readable, but some chunks or files were damaged or unreadable (see the warnings).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from fodc.expfmt import format_labels
from fodc.jsonvalue import json_value
from fodc.names import NameSelector, combined, name_arg
from fodc.times import FORMS, rfc3339, time_arg
from fodc.window.codec import Block, CodecError, decode_block
from fodc.window.diskfiles import list_window_files, read_window_file

EXIT_OK, EXIT_NO_DATA, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 4


@dataclass(frozen=True, slots=True)
class Point:
    timestamp_ms: int
    source: str
    family: str
    name: str
    type: str
    labels: tuple[tuple[str, str], ...]
    value: float


def add_parser(sub: argparse._SubParsersAction) -> None:
    dump = sub.add_parser(
        "dump", help="print the points of a window directory (works offline, on a copy)",
        description="Print the points kept in a fodc-agent window directory (--window-dir, by default "
        "/var/lib/fodc/agent/window), or a copy of one, without any daemon.",
        epilog="Exit status: 0 all read; 1 DIR unreadable or without window files; 2 bad usage; 4 some chunks "
        "or files were damaged (skipped with a warning; the rest was printed).")
    dump.add_argument("directory", metavar="DIR", help="the window directory")
    dump.add_argument("--format", choices=["jsonl", "csv", "series"], default="jsonl",
                      help="jsonl: a JSON object per point (default); csv: a row per point; series: a JSON "
                      "object per series with all its points")
    dump.add_argument("--name", action="append", default=[], type=name_arg,
                      help="only series whose family or sample name matches: names or globs, comma-separated, "
                      "or ~REGEX (as fodc window --name; repeat for several)")
    dump.add_argument("--source", action="append", default=[],
                      help="only this source (glob): a scraped URL, or kernel-telemetry (repeat for several)")
    dump.add_argument("--since", type=time_arg, default=None, help=f"only points at or after: {FORMS}")
    dump.add_argument("--until", type=time_arg, default=None, help="only points at or before (same forms)")
    dump.set_defaults(func=cmd_dump)


def cmd_dump(args: argparse.Namespace, _client: object = None) -> int:
    """Reads DIR only: no proxy is involved (the second argument is the CLI's proxy client, unused here)."""
    directory = Path(args.directory)
    try:
        files = list_window_files(directory)
    except OSError as exc:
        _warn(f"cannot read {directory}: {exc.strerror or exc}")
        return EXIT_NO_DATA
    if not files:
        _warn(f"{directory} holds no window files (window-*.archive, window.interim)")
        return EXIT_NO_DATA
    reader = _Reader(args.name, args.source, args.since, args.until)
    out = sys.stdout
    try:
        writer = _WRITERS[args.format](out)
        for point in reader.points(files):
            writer.point(point)
        writer.finish()
        out.flush()
    except BrokenPipeError:  # `fodc dump DIR | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return EXIT_OK
    if not reader.matched and reader.span is not None:
        _warn(f"no points matched; {directory} holds points from {rfc3339(reader.span[0])} to "
              f"{rfc3339(reader.span[1])}")
    return EXIT_DAMAGED if reader.damaged else EXIT_OK


class _Reader:
    def __init__(self, names: Sequence[str], sources: Sequence[str], since: int | None, until: int | None) -> None:
        self.names = NameSelector(combined(list(names)))
        self.selecting = bool(names)
        self.sources = list(sources)
        self.since = -(2**63) if since is None else since
        self.until = 2**63 if until is None else until
        self.damaged = False
        self.matched = False
        self.span: tuple[int, int] | None = None
        self._newest: dict[str, int] = {}  # per source: the newest scrape printed or passed over

    def points(self, files: list) -> Iterator[Point]:
        wanted = self._family_filter()
        for file in files:
            contents = read_window_file(file)
            if contents.error:
                self._damage(f"{file.path.name}: skipped: {contents.error}")
            for damage in contents.damage:
                self._damage(f"{file.path.name}: {damage.length} bytes at byte {damage.offset} skipped "
                             f"({damage.reason})")
            for chunk in contents.chunks:
                self.span = (min(chunk.first_ms, self.span[0]), max(chunk.last_ms, self.span[1])) if self.span \
                    else (chunk.first_ms, chunk.last_ms)
                if chunk.last_ms < self.since or chunk.first_ms > self.until:
                    continue
                try:
                    block = decode_block(chunk.payload, wanted)
                except CodecError as exc:
                    self._damage(f"{file.path.name}: chunk at byte {chunk.offset} skipped: {exc}")
                    continue
                yield from self._block_points(block)

    def _block_points(self, block: Block) -> Iterator[Point]:
        stamps = block.timestamps_ms
        newest = self._newest.get(block.source)
        self._newest[block.source] = max(stamps[-1], newest if newest is not None else stamps[-1])
        if self.sources and not any(fnmatch.fnmatchcase(block.source, g) for g in self.sources):
            return
        first = bisect_left(stamps, self.since)
        if newest is not None:
            first = max(first, bisect_right(stamps, newest))  # scrapes already printed from an earlier chunk
        stop = bisect_right(stamps, self.until)
        types = {meta.name: meta.type for meta in block.families}
        for column in block.columns:
            if self.selecting and not self.names.matches(column.family, column.name):
                continue
            for row in range(first, stop):
                value = column.values[row]
                if value is not None:
                    self.matched = True
                    yield Point(stamps[row], block.source, column.family, column.name,
                                types.get(column.family, "untyped"), column.labels, value)

    def _family_filter(self) -> Callable[[str], bool] | None:
        return self.names.family_may_match if self.selecting else None

    def _damage(self, message: str) -> None:
        self.damaged = True
        _warn(f"warning: {message}")


class _JsonLines:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def point(self, p: Point) -> None:
        self.out.write(json.dumps({"time": rfc3339(p.timestamp_ms), "timestamp_ms": p.timestamp_ms,
                                   "source": p.source, "family": p.family, "name": p.name, "type": p.type,
                                   "labels": dict(p.labels), "value": json_value(p.value)}) + "\n")

    def finish(self) -> None:
        pass


class _Csv:
    def __init__(self, out: TextIO) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(["time", "timestamp_ms", "source", "family", "name", "type", "labels", "value"])

    def point(self, p: Point) -> None:
        self.writer.writerow([rfc3339(p.timestamp_ms), p.timestamp_ms, p.source, p.family, p.name, p.type,
                              format_labels(p.labels),
                              _text_value(p.value)])

    def finish(self) -> None:
        pass


class _Series:
    """Collects every point of a series (bounded by the filters the operator gives), then one line each."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.series: dict[tuple, tuple[Point, list]] = {}

    def point(self, p: Point) -> None:
        entry = self.series.get((p.source, p.name, p.labels))
        if entry is None:
            entry = self.series[(p.source, p.name, p.labels)] = (p, [])
        entry[1].append([p.timestamp_ms, json_value(p.value)])

    def finish(self) -> None:
        for first, points in self.series.values():
            self.out.write(json.dumps({"source": first.source, "family": first.family, "name": first.name,
                                       "type": first.type, "labels": dict(first.labels), "points": points}) + "\n")


class _Writer(Protocol):
    def point(self, p: Point) -> None: ...

    def finish(self) -> None: ...


_WRITERS: dict[str, Callable[[TextIO], _Writer]] = {"jsonl": _JsonLines, "csv": _Csv, "series": _Series}


def _text_value(value: float) -> str:
    return str(json_value(value))


def _warn(message: str) -> None:
    print(f"fodc dump: {message}", file=sys.stderr)
