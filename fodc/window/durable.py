"""The flight recorder's window on disk, FTDC-style: kept while the agent runs, taken back when it starts.

DurableWindow listens to the recorder (model.WindowListener): each sealed block goes to the archive as it is
(already compressed); every `interim_scrapes` scrapes of a source, that source's scrapes added since its last
flush are copied out of the open block as a raw block (codec.RAW_FORMAT: a copy and a fast zlib pass, no
per-series encoding) and appended to the interim file. The interim file is started anew (atomically, with
every source's open scrapes) at the first flush after a start, after a failed write, and when a flush finds
that the source's block was sealed since, so it never holds much more than the open blocks. A crash loses at
most the last interim_scrapes - 1 scrapes of a source. Series names and labels are encoded once per open
block and reused while its series stay the same.

recover() runs before the first scrape: archive files newest first until the memory budget is covered, their
sealed blocks given back to the recorder oldest first (FlightRecorder.restore, no re-encoding), then the
interim file's scrapes ingested again. A scrape or block the recorder already holds (the interim file still
holding scrapes that were sealed since) is skipped; a damaged chunk or unreadable file is counted, logged
and skipped, and everything else is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fodc.window.codec import CodecError, decode_block, encode_catalog, encode_raw
from fodc.window.diskfiles import ARCHIVE, INTERIM, FileContents, list_window_files, read_window_file
from fodc.window.diskstore import DiskStore
from fodc.window.model import OpenRows
from fodc.window.recorder import FlightRecorder

log = logging.getLogger(__name__)

UNDECODABLE = "undecodable"  # a chunk intact on disk whose block this build cannot decode
_MAX_DAMAGE_LOG_LINES = 20


@dataclass(slots=True)
class _Open:
    """What of one source's open block is in the interim file."""

    mark: tuple[int, int] | None = None  # FlightRecorder.open_rows mark of the last flush
    chunks: list[tuple[bytes, int, int]] = field(default_factory=list)  # (raw block, first_ms, last_ms)
    since_flush: int = 0
    catalog: tuple[list, tuple, bytes] | None = None  # (heads, families, their encoding)


class DurableWindow:
    """The recorder's listener that keeps its window in a DiskStore. Thread-safe (scrapes of different sources
    arrive on different threads)."""

    def __init__(self, recorder: FlightRecorder, store: DiskStore, interim_scrapes: int) -> None:
        if interim_scrapes <= 0:
            raise ValueError("interim_scrapes must be positive")
        self.recorder = recorder
        self.store = store
        self.interim_scrapes = interim_scrapes
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._renew = True  # the next flush starts the interim file anew (first flush, or after a failure)

    def attach(self, resumed_sources: Iterable[str] = ()) -> None:
        """Starts listening; the open scrapes recovery put back go straight into a fresh interim file."""
        self.recorder.listener = self
        with self._lock:
            for source in resumed_sources:
                self._flush(source)

    def close(self) -> None:
        """On a clean stop: writes every source's latest scrapes to the interim file and stops listening."""
        with self._lock:
            for source in list(self._open):
                self._flush(source)
            self.recorder.listener = None
        self.store.close()

    # ------------------------------------------------------------------ WindowListener

    def sealed(self, source: str, first_ms: int, last_ms: int, payload: bytes) -> None:
        self.store.append(payload, first_ms, last_ms)

    def scraped(self, source: str, rows: int) -> None:
        with self._lock:
            state = self._open.setdefault(source, _Open())
            state.since_flush += 1
            if state.since_flush >= self.interim_scrapes:
                self._flush(source)

    def _flush(self, source: str) -> None:
        state = self._open.setdefault(source, _Open())
        state.since_flush = 0
        rows = self.recorder.open_rows(source, state.mark)
        if rows is None:
            return
        renew = self._renew or state.mark is None or state.mark[0] != rows.generation
        if state.mark is None or state.mark[0] != rows.generation:
            state.chunks = []  # that block was sealed: its scrapes are in the archive now
        chunk = (self._encode(state, rows), rows.timestamps_ms[0], rows.timestamps_ms[-1])
        state.chunks.append(chunk)
        state.mark = (rows.generation, rows.end_row)
        if renew:  # the file on disk must lose a sealed block's scrapes (or is from before this start)
            written = self.store.write_interim([c for pending in self._open.values() for c in pending.chunks])
        else:
            written = self.store.append_interim(*chunk)
        self._renew = not written

    @staticmethod
    def _encode(state: _Open, rows: OpenRows) -> bytes:
        cached = state.catalog
        if cached is None or cached[0] != rows.heads or cached[1] != rows.families:
            cached = state.catalog = (rows.heads, rows.families, encode_catalog(rows.families, rows.heads))
        return encode_raw(rows.source, rows.timestamps_ms, cached[2], len(rows.heads), rows.cells)


# ---------------------------------------------------------------------- recovery


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    blocks: int = 0  # sealed blocks given back to the recorder
    samples: int = 0  # values in them
    interim_scrapes: int = 0  # open scrapes ingested again from the interim file
    already_held: int = 0  # blocks and scrapes skipped because the recorder held them already
    files_read: int = 0
    files_left: int = 0  # older archive files not read: the memory budget was covered without them
    damaged: dict[str, int] = field(default_factory=dict)  # reason -> chunks (or stretches) skipped
    unreadable: tuple[tuple[str, str], ...] = ()  # (file name, why) of files skipped whole
    resumed_sources: tuple[str, ...] = ()  # sources with scrapes back in their open block
    seconds: float = 0.0


def recover(recorder: FlightRecorder, directory: Path, budget_bytes: int) -> RecoveryReport:
    """Gives the recorder back what `directory` holds, newest first up to about `budget_bytes` of blocks."""
    started = time.monotonic()
    try:
        files = list_window_files(Path(directory))
    except FileNotFoundError:
        return RecoveryReport()
    except OSError as exc:
        log.error("window directory cannot be read; starting with an empty window: %s", exc)
        return RecoveryReport(unreadable=((str(directory), exc.strerror or str(exc)),))
    tally = _Tally()
    archives = [f for f in files if f.kind == ARCHIVE]
    chunks = []
    payload_bytes = 0
    read = 0
    for file in reversed(archives):
        if payload_bytes >= budget_bytes:
            break
        contents = tally.read(file)
        read += 1
        chunks.extend(contents.chunks)
        payload_bytes += sum(len(c.payload) for c in contents.chunks)
    chunks.sort(key=lambda c: (c.first_ms, c.last_ms))
    for chunk in chunks:
        try:
            tally.samples += recorder.restore(chunk.payload, tally.catalogs)
            tally.blocks += 1
        except CodecError as exc:
            tally.undecodable(str(exc))
        except ValueError:
            tally.already_held += 1
    for file in (f for f in files if f.kind == INTERIM):
        tally.ingest_interim(recorder, tally.read(file))
    report = RecoveryReport(tally.blocks, tally.samples, tally.interim_scrapes, tally.already_held,
                            read + (len(files) - len(archives)), len(archives) - read, dict(tally.damaged),
                            tuple(tally.unreadable), tuple(sorted(tally.resumed)), time.monotonic() - started)
    if files:
        log.info("window recovered from disk", extra={"fields": {
            "window_dir": str(directory), "blocks": report.blocks, "samples": report.samples,
            "interim_scrapes": report.interim_scrapes, "damaged": report.damaged,
            "unreadable_files": len(report.unreadable), "files_not_needed": report.files_left,
            "seconds": round(report.seconds, 3)}})
    return report


class _Tally:
    def __init__(self) -> None:
        self.blocks = self.samples = self.interim_scrapes = self.already_held = 0
        self.damaged: dict[str, int] = {}
        self.unreadable: list[tuple[str, str]] = []
        self.resumed: set[str] = set()
        self.catalogs: dict = {}  # codec catalog cache: blocks of one source mostly share their series
        self._logged = 0

    def read(self, file) -> FileContents:  # noqa: ANN001 (WindowFile)
        contents = read_window_file(file)
        if contents.error:
            self.unreadable.append((file.path.name, contents.error))
            log.warning("window file skipped: %s", contents.error, extra={"fields": {"file": str(file.path)}})
        for damage in contents.damage:
            self._count(damage.reason, f"{file.path.name} at byte {damage.offset}: {damage.length} bytes skipped")
        return contents

    def undecodable(self, why: str) -> None:
        self._count(UNDECODABLE, why)

    def _count(self, reason: str, detail: str) -> None:
        self.damaged[reason] = self.damaged.get(reason, 0) + 1
        self._logged += 1
        if self._logged <= _MAX_DAMAGE_LOG_LINES:
            log.warning("window chunk skipped (%s): %s", reason, detail)

    def ingest_interim(self, recorder: FlightRecorder, contents: FileContents) -> None:
        blocks = []
        for chunk in contents.chunks:
            try:
                blocks.append(decode_block(chunk.payload, catalogs=self.catalogs))
            except CodecError as exc:
                self.undecodable(str(exc))
        blocks.sort(key=lambda b: b.timestamps_ms[0])
        for block in blocks:
            metas = {meta.name: meta for meta in block.families}
            sample_family = {column.name: column.family for column in block.columns}
            for row, timestamp in enumerate(block.timestamps_ms):
                samples = [(c.name, c.labels, c.values[row]) for c in block.columns if c.values[row] is not None]
                try:
                    recorder.ingest(block.source, timestamp, samples, metas, sample_family)
                except ValueError:
                    self.already_held += 1
                    continue
                self.interim_scrapes += 1
                self.resumed.add(block.source)
