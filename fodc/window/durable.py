"""The flight recorder's window on disk, FTDC-style: kept while the agent runs, taken back when it starts.

DurableWindow listens to the recorder (model.WindowListener): each sealed block goes to the archive as it is
(already compressed); every `interim_scrapes` scrapes of a source, that source's scrapes added since its last
flush are copied out of the open block as a raw block (codec.RAW_FORMAT: a copy and a fast zlib pass, no
per-series encoding) and appended to the interim file. The interim file is started anew (atomically, with
every source's open scrapes) at the first flush after a start, after a failed write, and when a flush finds
that the source's block was sealed since, so it never holds much more than the open blocks. A crash loses at
most the last interim_scrapes - 1 scrapes of a source. Series names and labels are encoded once per open
block and reused while its series stay the same.

A sealed block that could not be written (a full disk) or whose archive file vanished (an `rm -rf` of the
directory, see DiskStore) stays pending while the recorder still holds it in memory, and is written again at
the next seal or interim flush; a vanished interim file is started anew at once. Blocks evicted from memory
before they could be written are counted as lost.

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
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fodc import times
from fodc.window.codec import CodecError, decode_block, encode_catalog, encode_raw
from fodc.window.diskblocks import BlockFile, BlockUnreadable, DiskBlock, block_bytes
from fodc.window.diskfiles import ARCHIVE, INTERIM, FileContents, list_window_files, read_window_file
from fodc.window.diskformat import CHUNK_OVERHEAD, Chunk
from fodc.window.diskstore import DiskStore
from fodc.window.model import OpenRows
from fodc.window.recorder import FlightRecorder

log = logging.getLogger(__name__)

UNDECODABLE = "undecodable"  # a chunk intact on disk whose block this build cannot decode
FUTURE = "future"  # a chunk newer than now: written under a clock that was ahead, or this clock is behind
FUTURE_SLACK_MS = 5 * 60 * 1000
MAX_HELD_FILES = 64  # archive files recovery keeps open for reading blocks back (10 MiB files: 640 MiB)
_MAX_DAMAGE_LOG_LINES = 20


@dataclass(slots=True)
class _Open:
    """Where one source's open block stands in the interim file."""

    mark: tuple[int, int] | None = None  # FlightRecorder.open_rows mark of the last flush; None: not in the file
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
        self._pending: dict[tuple[str, int, int], None] = {}  # sealed blocks not on disk, oldest first
        self.rewritten_blocks = 0  # written again after a failed write or a vanished file
        self.lost_blocks = 0  # evicted from memory before they could be written again
        # Nothing of the interim file is kept in memory: starting it anew copies the open blocks again.

    def attach(self, resumed_sources: Iterable[str] = ()) -> None:
        """Starts listening; the open scrapes recovery put back go straight into a fresh interim file."""
        self.recorder.listener = self
        with self._lock:
            for source in resumed_sources:
                self._flush(source)

    @property
    def pending_blocks(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """On a clean stop: writes every source's latest scrapes to the interim file and stops listening."""
        with self._lock:
            self._catch_up()
            for source in list(self._open):
                self._flush(source)
            self.recorder.listener = None
        self.store.close()

    # ------------------------------------------------------------------ WindowListener

    def sealed(self, source: str, first_ms: int, last_ms: int, payload: bytes) -> None:
        key = (source, first_ms, last_ms)
        with self._lock:
            self._catch_up()
            if self._pending or not self._write(key, payload):
                self._pending[key] = None  # behind others still pending: archive order stays oldest first
                self._catch_up()

    def scraped(self, source: str, rows: int) -> None:
        with self._lock:
            state = self._open.setdefault(source, _Open())
            state.since_flush += 1
            if state.since_flush >= self.interim_scrapes:
                self._catch_up()
                self._flush(source)

    def _catch_up(self) -> None:
        """Writes again what a vanished file or a failed write lost, while memory still holds it."""
        lost = self.store.take_lost()
        if lost.directory:  # everything memory holds, also the blocks read back at start
            self._pending.update(dict.fromkeys(key for key, _ in self.recorder.sealed_payloads(None)))
        self._pending.update(dict.fromkeys(lost.keys))
        if lost.interim:
            self._renew = True
        if not self._pending:
            return
        held = self.recorder.sealed_payloads(self._pending)
        self.lost_blocks += len(self._pending) - len(held)
        self._pending = {key: None for key, _ in held}
        for key, held_block in held:
            try:
                payload = block_bytes(held_block)  # one at a time: a vanished directory rewrites every block
            except BlockUnreadable as exc:
                log.error("window directory: a sealed block to write again cannot be read back: %s", exc)
                del self._pending[key]
                self.lost_blocks += 1
                continue
            if not self._write(key, payload):
                return
            del self._pending[key]
            self.rewritten_blocks += 1

    def _write(self, key: tuple[str, int, int], payload: bytes) -> bool:
        """Appends a sealed block; once it is on disk the recorder reads it from there instead of holding it."""
        block = self.store.append_block(payload, key[1], key[2], key)
        if block is None:
            return False
        self.recorder.stored(key, block)
        return True

    def _flush(self, source: str) -> None:
        state = self._open.setdefault(source, _Open())
        state.since_flush = 0
        rows = self.recorder.open_rows(source, state.mark)
        if rows is None:
            return
        if not self._renew and state.mark is not None and state.mark[0] == rows.generation:
            state.mark = (rows.generation, rows.end_row)
            if self.store.append_interim(self._encode(state, rows), rows.timestamps_ms[0], rows.timestamps_ms[-1]):
                return
        # Start the file anew: this source's block was sealed since (its old scrapes must go), or this is the
        # first flush since the start, or a write failed (this one too: its scrapes must not wait for the next
        # flush). Every source's whole open block goes in.
        chunks = []
        for name, other in self._open.items():
            whole = rows if name == source and rows.first_row == 0 else self.recorder.open_rows(name)
            other.mark = None if whole is None else (whole.generation, whole.end_row)
            if whole is not None:
                chunks.append((self._encode(other, whole), whole.timestamps_ms[0], whole.timestamps_ms[-1]))
        self._renew = not self.store.write_interim(chunks)

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


def recover(recorder: FlightRecorder, directory: Path, budget_bytes: int,
            now_ms: int | None = None, held_files: int = MAX_HELD_FILES) -> RecoveryReport:
    """Gives the recorder back what `directory` holds, newest first up to about `budget_bytes` of blocks.
    The sealed blocks stay on disk: the recorder keeps where each lies and reads it when asked (diskblocks.py),
    those of the newest `held_files` files; older files' blocks are held in memory.

    Chunks more than FUTURE_SLACK_MS ahead of now are left on disk: taken back, they would make the recorder
    refuse every scrape until the clock caught up with them."""
    started = time.monotonic()
    horizon = (times.now_ms() if now_ms is None else now_ms) + FUTURE_SLACK_MS
    try:
        files = list_window_files(Path(directory))
    except FileNotFoundError:
        return RecoveryReport()
    except OSError as exc:
        log.error("window directory cannot be read; starting with an empty window: %s", exc)
        return RecoveryReport(unreadable=((str(directory), exc.strerror or str(exc)),))
    tally = _Tally(horizon)
    archives = [f for f in files if f.kind == ARCHIVE]
    chunks: list[tuple[Chunk, BlockFile | None]] = []
    payload_bytes = 0
    read = 0
    held = 0
    for file in reversed(archives):
        if payload_bytes >= budget_bytes:
            break
        present = tally.present(tally.read(file).chunks)
        read += 1
        # One descriptor per file: a crash loop leaves many small files, and their blocks stay in memory
        # rather than use up the agent's descriptors.
        reader = _block_file(file.path) if present and held < held_files else None
        held += reader is not None
        chunks.extend((chunk, reader) for chunk in present)
        payload_bytes += sum(len(c.payload) for c in present)
    chunks.sort(key=lambda pair: (pair[0].first_ms, pair[0].last_ms))
    for chunk, reader in chunks:
        stored = None if reader is None else DiskBlock(reader, chunk.offset + CHUNK_OVERHEAD, len(chunk.payload),
                                                       zlib.crc32(chunk.payload))
        try:
            tally.samples += recorder.restore(chunk.payload, tally.catalogs, stored)
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


def _block_file(path: Path) -> BlockFile | None:
    """A read-only descriptor for the blocks recovered from `path`; None (they stay in memory) if it fails."""
    try:
        return BlockFile(path)
    except OSError as exc:
        log.warning("window file cannot be held open; its blocks stay in memory: %s", exc)
        return None


class _Tally:
    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
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

    def present(self, chunks: list) -> list:
        """The chunks not from the future; the others are counted and logged."""
        kept = [c for c in chunks if c.last_ms <= self.horizon_ms]
        for chunk in chunks:
            if chunk.last_ms > self.horizon_ms:
                self._count(FUTURE, f"chunk ending at {chunk.last_ms} ms is ahead of this host's clock; left on disk")
        return kept

    def undecodable(self, why: str) -> None:
        self._count(UNDECODABLE, why)

    def _count(self, reason: str, detail: str) -> None:
        self.damaged[reason] = self.damaged.get(reason, 0) + 1
        self._logged += 1
        if self._logged <= _MAX_DAMAGE_LOG_LINES:
            log.warning("window chunk skipped (%s): %s", reason, detail)

    def ingest_interim(self, recorder: FlightRecorder, contents: FileContents) -> None:
        blocks = []
        for chunk in self.present(contents.chunks):
            try:
                blocks.append(decode_block(chunk.payload, catalogs=self.catalogs))
            except CodecError as exc:
                self.undecodable(str(exc))
        blocks.sort(key=lambda b: b.timestamps_ms[0])
        for block in blocks:
            metas = {meta.name: meta for meta in block.families}
            sample_family = {column.name: column.family for column in block.columns}
            for row, timestamp in enumerate(block.timestamps_ms):
                samples = [(c.name, c.labels, value) for c in block.columns if (value := c.values[row]) is not None]
                try:
                    recorder.ingest(block.source, timestamp, samples, metas, sample_family)
                except ValueError:
                    self.already_held += 1
                    continue
                self.interim_scrapes += 1
                self.resumed.add(block.source)
