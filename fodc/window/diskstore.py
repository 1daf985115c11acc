"""Writes the window directory: sealed blocks appended to archive files, the open scrapes to the interim file.

Archive files: one per agent start at least (a crash may have left the previous one with a torn tail, which
is never written after); a chunk that would take the current file past `file_bytes` starts a new one. Before
anything is written, the oldest archive files are removed until the directory (archives + interim, the
window's own files only) fits `dir_bytes`. Every append is fsynced, and a new file's directory entry too.

Interim file: started anew through fodc.durablefile (a temporary file beside it, fsync, rename over
window.interim, fsync of the directory), so a crash leaves either the previous interim file or the new one,
never a mix. Between two such
rewrites the caller may append one chunk at a time (fdatasync): rewriting every open scrape at every flush
would write each scrape many times over (measured in bench/bench_durable.py), and a torn append costs only
its own chunk, like a torn archive append.

The store holds an exclusive flock on window.lock while open: a second agent pointed at the same directory
(two nodes on one host, one --window-dir) is refused instead of mixing its window into the first one's. The
kernel drops the lock when the process dies, so a crash never leaves a stale lock behind.

A failed write (disk full, permissions, the lock held) is logged once per distinct error, counted by
operation, and reported to the caller as False; it never raises. A failed append is cut off the file again
(or, if even that fails, the file is abandoned and the next chunk starts a new one).

Before every write the store checks that its directory is still the one it opened and that its archive files
are still there: an `rm -rf` under a running agent would otherwise send every block into a deleted file. A
vanished directory or file is counted, the directory is made again, and the chunk keys that were in the lost
files are handed to the caller (take_lost()), which still holds those blocks in memory and writes them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fodc.durablefile import TEMP_PREFIX, write_atomically
from fodc.durablefile import fsync_directory as _fsync_directory
from fodc.durablefile import write_all as _write_all
from fodc.eviction import beyond_caps
from fodc.window.diskblocks import BlockFile, DiskBlock
from fodc.window.diskfiles import ARCHIVE, INTERIM_NAME, TEMP_SUFFIX, WindowFile, archive_name, list_window_files
from fodc.window.diskformat import HEADER_SIZE, KIND_ARCHIVE, KIND_INTERIM, encode_chunk, encode_header

log = logging.getLogger(__name__)

# Operations whose failures are counted apart.
OP_OPEN, OP_ARCHIVE, OP_INTERIM, OP_REMOVE = "open", "archive", "interim", "remove"
LOCK_NAME = "window.lock"


BlockKey = tuple[str, int, int]  # a sealed block to its owner: (source, first_ms, last_ms)

@dataclass(frozen=True, slots=True)
class StoreStats:
    files: int
    bytes: int  # archives + interim on disk
    chunks_written: int
    bytes_written: int
    files_removed: int
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    vanished: int = 0  # times the directory or one of its files was found gone (and made again)


@dataclass(slots=True)
class LostWrites:
    """What vanished files held: the keys given to append(), and whether the interim file went too."""

    keys: list[BlockKey] = field(default_factory=list)
    interim: bool = False
    directory: bool = False  # the whole directory went: blocks read back at start (no keys here) went too


@dataclass(slots=True)
class _Current:
    fd: int
    file: WindowFile
    size: int
    reader: BlockFile  # read-only, shared by the DiskBlocks appended to this file (diskblocks.py)


class DiskStore:
    """Thread-safe: one lock around every file operation (appends are rare, interim writes every few scrapes)."""

    def __init__(self, directory: Path, file_bytes: int, dir_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        if file_bytes <= HEADER_SIZE or dir_bytes < file_bytes:
            raise ValueError("file_bytes must exceed a header and dir_bytes must be at least file_bytes")
        self.directory = Path(directory)
        self.file_bytes = file_bytes
        self.dir_bytes = dir_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._archives: list[WindowFile] = []  # oldest first, the current one (if any) last
        self._current: _Current | None = None
        self._next_seq = 1
        self._interim_size = 0
        self._chunks_written = 0
        self._bytes_written = 0
        self._removed = 0
        self._errors: dict[str, int] = {}
        self._last_error = ""
        self._failing = ""  # the error being reported, so a failing disk logs once, not every scrape
        self._opened = False
        self._lock_fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the directory opened
        self._keys: dict[Path, list[BlockKey]] = {}  # archive file -> keys of the chunks appended to it
        self._lost = LostWrites()
        self._vanished = 0

    # ------------------------------------------------------------------ setup

    def open(self) -> bool:
        """Creates the directory if needed, removes a stale temp file, and learns what is already there. If
        that fails it is tried again before each write, so a directory fixed later is used from then on."""
        with self._lock:
            return self._open()

    def _open(self) -> bool:
        if self._opened:
            return True
        try:
            self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            self._take_lock()
            for stale in (self.directory / (INTERIM_NAME + TEMP_SUFFIX),  # an older version's temp name
                          *self.directory.glob(f"{TEMP_PREFIX}{INTERIM_NAME}.*{TEMP_SUFFIX}")):
                stale.unlink(missing_ok=True)
            files = list_window_files(self.directory)
            stat = os.stat(self.directory)
        except OSError as exc:
            self._failed(OP_OPEN, exc)
            return False
        self._identity = (stat.st_dev, stat.st_ino)
        self._archives = [f for f in files if f.kind == ARCHIVE]
        self._interim_size = sum(f.size for f in files if f.kind != ARCHIVE)
        self._next_seq = max((f.seq for f in self._archives), default=0) + 1
        self._opened = True
        self._ok(OP_OPEN)
        return True

    def _ready(self, every_file: bool = False) -> bool:
        """Open, and still looking at the directory and files it opened (see the module docstring). The
        directory and the file being written are checked before every write; the older archive files (up to
        dir_bytes / file_bytes of them) only before an archive append, once a sealed block."""
        if self._opened:
            self._check_vanished(every_file)
        return self._open()

    def _check_vanished(self, every_file: bool = True) -> None:
        try:
            stat = os.stat(self.directory)
            same_directory = (stat.st_dev, stat.st_ino) == self._identity
        except FileNotFoundError:
            same_directory = False
        except OSError:
            return  # cannot tell (permissions): the write itself will say what is wrong
        current = self._current
        current_gone = current is not None and _unlinked(current.fd)
        gone = [f for f in self._archives if not same_directory
                or (current is not None and f.path == current.file.path and current_gone)
                or (every_file and not f.path.exists())]
        interim_gone = self._interim_size > 0 and (not same_directory or not (self.directory / INTERIM_NAME).exists())
        if same_directory and not gone and not interim_gone:
            return
        self._vanished += 1
        for file in gone:
            self._lost.keys.extend(self._keys.pop(file.path, []))
        self._lost.interim = self._lost.interim or interim_gone
        self._lost.directory = self._lost.directory or not same_directory
        log.warning("window directory: %s; making it again and writing what memory still holds",
                    "the directory vanished" if not same_directory else f"{len(gone)} archive file(s) vanished"
                    if gone else "the interim file vanished", extra={"fields": {
                        "window_dir": str(self.directory), "files_lost": len(gone)}})
        self._close_current()
        if self._lock_fd is not None and not same_directory:
            os.close(self._lock_fd)  # the lock of a deleted directory protects nothing
            self._lock_fd = None
        self._opened = False

    def take_lost(self) -> LostWrites:
        """The keys of chunks whose files vanished since the last call (see append), for writing again."""
        with self._lock:
            lost, self._lost = self._lost, LostWrites()
            return lost

    def _take_lock(self) -> None:
        if self._lock_fd is not None:
            return
        path = self.directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OSError(f"in use by another process (pid {holder}); each agent needs its own --window-dir") \
                from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        """Closes the archive file and gives up the directory; a later write opens it again."""
        with self._lock:
            self._close_current()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self._opened = False

    # ------------------------------------------------------------------ archive

    def append(self, payload: bytes, first_ms: int, last_ms: int, key: BlockKey | None = None) -> bool:
        """Appends one sealed block to the current archive file (a new one when it would outgrow file_bytes).
        `key` names the block to the caller: it comes back from take_lost() if the file vanishes."""
        return self.append_block(payload, first_ms, last_ms, key) is not None

    def append_block(self, payload: bytes, first_ms: int, last_ms: int,
                     key: BlockKey | None = None) -> DiskBlock | None:
        """append(), returning where the block now lies (for reading it back instead of holding it in memory),
        or None if it could not be written."""
        frame = encode_chunk(payload, first_ms, last_ms)
        with self._lock:
            if not self._ready(every_file=True):
                return None
            current = self._current
            if current is not None and current.size + len(frame) > self.file_bytes and current.size > HEADER_SIZE:
                self._close_current()
            try:
                self._make_room(len(frame) + (HEADER_SIZE if self._current is None else 0))
                current = self._current or self._start_file()
            except OSError as exc:
                self._failed(OP_ARCHIVE, exc)
                return None
            try:
                _write_all(current.fd, frame)
                os.fdatasync(current.fd)
            except OSError as exc:
                self._failed(OP_ARCHIVE, exc)
                self._cut_back(current)
                return None
            current.size += len(frame)
            self._archives[-1] = WindowFile(current.file.path, ARCHIVE, current.file.seq, current.size)
            if key is not None:
                self._keys.setdefault(current.file.path, []).append(key)
            self._chunks_written += 1
            self._bytes_written += len(frame)
            self._ok(OP_ARCHIVE)
            return DiskBlock(current.reader, current.size - len(payload), len(payload), zlib.crc32(payload))

    def _start_file(self) -> _Current:
        created_ms = int(self._clock() * 1000)
        seq = self._next_seq
        path = self.directory / archive_name(seq, created_ms)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._next_seq = seq + 1  # even if the header fails: never reuse a name that may exist
        try:
            _write_all(fd, encode_header(KIND_ARCHIVE, created_ms))
            os.fsync(fd)
            _fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        try:
            reader = BlockFile(path)
        except OSError:
            os.close(fd)
            raise
        self._bytes_written += HEADER_SIZE
        current = self._current = _Current(fd, WindowFile(path, ARCHIVE, seq, HEADER_SIZE), HEADER_SIZE, reader)
        self._archives.append(current.file)
        return current

    def _cut_back(self, current: _Current) -> None:
        """After a failed append: removes the partial chunk, or abandons the file if that fails too."""
        try:
            os.ftruncate(current.fd, current.size)
            os.fdatasync(current.fd)
        except OSError:
            self._close_current()  # recovery skips the torn chunk; the next append starts a new file

    def _close_current(self) -> None:
        if self._current is not None:
            with contextlib.suppress(OSError):
                os.close(self._current.fd)
            self._current = None

    def _make_room(self, incoming: int) -> None:
        """Removes the oldest archive files (never the one being written) until `incoming` more bytes fit."""
        writing = self._current.file.path if self._current is not None else None
        doomed = beyond_caps(self._archives, lambda f: f.size, max_bytes=self.dir_bytes - incoming - self._interim_size,
                             removable=lambda f: f.path != writing)
        gone = {id(f) for f in doomed}  # gone from the count either way: never retried forever
        self._archives = [f for f in self._archives if id(f) not in gone]
        for oldest in doomed:
            self._keys.pop(oldest.path, None)
            try:
                oldest.path.unlink(missing_ok=True)
            except OSError as exc:
                self._failed(OP_REMOVE, exc)
            else:
                self._removed += 1

    # ------------------------------------------------------------------ interim

    def write_interim(self, chunks: Sequence[tuple[bytes, int, int]]) -> bool:
        """Replaces the interim file with these (payload, first_ms, last_ms) chunks, atomically."""
        data = encode_header(KIND_INTERIM, int(self._clock() * 1000)) + b"".join(
            encode_chunk(payload, first_ms, last_ms) for payload, first_ms, last_ms in chunks)
        with self._lock:
            if not self._ready():
                return False
            try:
                self._make_room(len(data) - self._interim_size)
                write_atomically(self.directory / INTERIM_NAME, data)
            except OSError as exc:  # the previous interim file is still whole
                self._failed(OP_INTERIM, exc)
                return False
            self._interim_size = len(data)
            self._bytes_written += len(data)
            self._lost.interim = False  # the whole interim file is written again
            self._ok(OP_INTERIM)
            return True

    def append_interim(self, payload: bytes, first_ms: int, last_ms: int) -> bool:
        """Adds one chunk to the interim file a write_interim() started. False if that fails (no partial chunk
        is left if it can be cut off); the caller then starts the file anew with write_interim()."""
        frame = encode_chunk(payload, first_ms, last_ms)
        with self._lock:
            if not self._ready() or self._lost.interim:
                return False
            try:
                self._make_room(len(frame))
                fd = os.open(self.directory / INTERIM_NAME, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                try:
                    size = os.fstat(fd).st_size
                    try:
                        _write_all(fd, frame)
                        os.fdatasync(fd)
                    except OSError:
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, size)
                        raise
                finally:
                    os.close(fd)
            except OSError as exc:
                self._failed(OP_INTERIM, exc)
                return False
            self._interim_size = size + len(frame)
            self._bytes_written += len(frame)
            self._ok(OP_INTERIM)
            return True

    # ------------------------------------------------------------------ figures and errors

    def stats(self) -> StoreStats:
        with self._lock:
            files = len(self._archives) + (1 if self._interim_size else 0)
            return StoreStats(files, self._interim_size + sum(f.size for f in self._archives), self._chunks_written,
                              self._bytes_written, self._removed, dict(self._errors), self._last_error,
                              self._vanished)

    def _failed(self, op: str, exc: OSError) -> None:
        self._errors[op] = self._errors.get(op, 0) + 1
        message = f"{op}: {exc.strerror or exc} ({getattr(exc, 'filename', None) or self.directory})"
        self._last_error = message
        if message != self._failing:
            self._failing = message
            log.error("window directory: %s; the window stays in memory and scraping goes on", message,
                      extra={"fields": {"window_dir": str(self.directory), "operation": op}})

    def _ok(self, op: str) -> None:
        if self._failing and self._failing.split(":", 1)[0] in (op, OP_OPEN):
            log.info("window directory: %s works again", op, extra={"fields": {"window_dir": str(self.directory)}})
            self._failing = self._last_error = ""


def _unlinked(fd: int) -> bool:
    """True when the open file has no name left (removed while we hold it open)."""
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError:
        return True
