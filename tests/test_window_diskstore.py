"""The window directory writer: rotation and the directory cap within 10 % of their sizes, an interim file that is
always whole, and disk errors that are counted and never raised."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from procs import REPO, wait_for

from fodc.window.diskfiles import ARCHIVE, INTERIM_NAME, list_window_files, read_window_file
from fodc.window.diskformat import HEADER_SIZE, TRUNCATED
from fodc.window.diskstore import OP_ARCHIVE, OP_INTERIM, OP_OPEN, DiskStore

T0 = 1_787_300_000_000
KIB = 1024


def chunk(rng: random.Random, size: int) -> bytes:
    return bytes([1]) + rng.randbytes(size - 1)


def test_archive_files_rotate_at_their_size_and_the_directory_stays_under_its_cap(tmp_path):
    rng = random.Random(5)
    file_bytes, dir_bytes = 64 * KIB, 1024 * KIB
    store = DiskStore(tmp_path, file_bytes, dir_bytes)
    assert store.open()
    totals = []
    written = []
    for i in range(1500):
        payload = chunk(rng, rng.randrange(200, 4000))
        assert store.append(payload, T0 + i, T0 + i)
        written.append(payload)
        if i % 10 == 0:
            assert store.write_interim([(chunk(rng, rng.randrange(100, 3000)), T0 + i, T0 + i)])
        on_disk = sum(f.size for f in list_window_files(tmp_path))
        assert on_disk == store.stats().bytes
        totals.append(on_disk)
    archives = [f for f in list_window_files(tmp_path) if f.kind == ARCHIVE]
    for closed in archives[:-1]:
        assert 0.9 * file_bytes <= closed.size <= file_bytes, closed
    assert max(totals) <= dir_bytes
    first_full = next(i for i, total in enumerate(totals) if total > 0.9 * dir_bytes)
    assert min(totals[first_full:]) >= 0.9 * dir_bytes
    assert store.stats().files_removed > 0
    # what is left is exactly the newest chunks, in order
    kept = [c.payload for f in archives for c in read_window_file(f).chunks]
    assert kept == written[-len(kept):]


def test_each_start_writes_a_new_archive_file_after_the_existing_ones(tmp_path):
    first = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    first.open()
    first.append(b"\x01a", T0, T0)
    first.close()
    second = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    second.open()
    second.append(b"\x01b", T0 + 1, T0 + 1)
    archives = list_window_files(tmp_path)
    assert [[c.payload for c in read_window_file(f).chunks] for f in archives] == [[b"\x01a"], [b"\x01b"]]
    assert archives[0].seq < archives[1].seq


def test_the_interim_file_is_replaced_whole_and_a_stale_temp_file_is_removed(tmp_path):
    (tmp_path / (INTERIM_NAME + ".tmp")).write_bytes(b"left by a crash")  # an older version's temp name
    (tmp_path / f".{INTERIM_NAME}.k3x9q2.tmp").write_bytes(b"left by a crash")  # fodc.durablefile's
    store = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    store.open()
    assert not (tmp_path / (INTERIM_NAME + ".tmp")).exists()
    assert not (tmp_path / f".{INTERIM_NAME}.k3x9q2.tmp").exists()
    store.write_interim([(b"\x01one", T0, T0), (b"\x01two", T0 + 1, T0 + 1)])
    store.write_interim([(b"\x01three", T0 + 2, T0 + 2)])
    (interim,) = [f for f in list_window_files(tmp_path) if f.kind != ARCHIVE]
    assert [c.payload for c in read_window_file(interim).chunks] == [b"\x01three"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [INTERIM_NAME, "window.lock"]


_WRITER = """
import sys, random
from pathlib import Path
from fodc.window.diskstore import DiskStore
store = DiskStore(Path(sys.argv[1]), 1 << 20, 1 << 26)
store.open()
rng = random.Random()
n = 0
while True:
    n += 1
    size = rng.randrange(1, 200_000)
    if n % 4 == 1:  # started anew: a big chunk and a marker naming the generation
        store.write_interim([(bytes([n % 256]) * size, n, n), (b"gen-%d" % n, n, n)])
    else:  # appended: chunks of the same generation
        store.append_interim(bytes([n % 256]) * size, n, n)
    if n == 3:
        print("writing", flush=True)
"""


def test_an_interim_file_killed_mid_write_holds_a_whole_generation_and_at_most_a_torn_last_append(tmp_path):
    """SIGKILL at random moments of a writer starting the interim file anew and appending to it."""
    rng = random.Random(11)
    seen = set()
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert proc.stdout.readline() == b"writing\n"
            time.sleep(rng.uniform(0, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        (interim,) = [f for f in list_window_files(tmp_path) if f.kind != ARCHIVE]
        contents = read_window_file(interim)
        assert contents.error is None
        assert [d.reason for d in contents.damage] in ([], [TRUNCATED])  # only a torn append at the very end
        body, marker, *appended = contents.chunks
        n = body.first_ms
        assert marker.payload == b"gen-%d" % n and body.payload == bytes([n % 256]) * len(body.payload)
        assert [c.first_ms for c in appended] == list(range(n + 1, n + 1 + len(appended)))
        assert all(c.payload == bytes([c.first_ms % 256]) * len(c.payload) for c in appended)
        seen.add(n)
    assert len(seen) > 1


def test_appending_to_the_interim_file_needs_one_started_first(tmp_path):
    store = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    store.open()
    assert store.append_interim(b"\x01x", T0, T0) is False
    assert store.stats().errors[OP_INTERIM] == 1
    assert store.write_interim([(b"\x01a", T0, T0)])
    assert store.append_interim(b"\x01b", T0 + 1, T0 + 1)
    (interim,) = list_window_files(tmp_path)
    assert [c.payload for c in read_window_file(interim).chunks] == [b"\x01a", b"\x01b"]
    assert store.stats().bytes == interim.size


def test_a_directory_that_cannot_be_created_is_counted_and_retried(tmp_path):
    blocker = tmp_path / "window"
    blocker.write_text("a file where the directory should be")
    store = DiskStore(blocker, 64 * KIB, 256 * KIB)
    assert store.open() is False
    assert store.append(b"\x01x", T0, T0) is False
    assert store.write_interim([(b"\x01y", T0, T0)]) is False
    assert store.stats().errors[OP_OPEN] == 3
    assert "window" in store.stats().last_error
    blocker.unlink()  # the operator fixes it: the next write works without a restart
    assert store.append(b"\x01x", T0, T0) is True
    assert [c.payload for f in list_window_files(blocker) for c in read_window_file(f).chunks] == [b"\x01x"]


def test_a_full_disk_is_counted_leaves_no_torn_chunk_and_writes_resume_when_space_returns(small_disk):
    small_disk = small_disk("small", "192k")
    rng = random.Random(3)
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (150 * KIB))
    store = DiskStore(small_disk / "window", 1024 * KIB, 4096 * KIB)
    assert store.open()
    results = [store.append(chunk(rng, 8 * KIB), T0 + i, T0 + i) for i in range(12)]
    assert results[0] is True and results[-1] is False
    assert store.write_interim([(chunk(rng, 64 * KIB), T0, T0)]) is False
    stats = store.stats()
    assert stats.errors[OP_ARCHIVE] == results.count(False) and stats.errors[OP_INTERIM] == 1
    assert "No space left" in stats.last_error
    files = list_window_files(small_disk / "window")
    assert [f.kind for f in files] == [ARCHIVE]  # no interim file, no temp file left behind
    contents = read_window_file(files[0])
    assert contents.damage == [] and len(contents.chunks) == results.count(True)
    ballast.unlink()
    wait_for(lambda: store.append(chunk(rng, 8 * KIB), T0 + 99, T0 + 99), timeout=5, what="space back")
    assert store.write_interim([(chunk(rng, 4 * KIB), T0, T0)])


def test_sizes_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(ValueError):
        DiskStore(tmp_path, HEADER_SIZE, 1 << 20)
    with pytest.raises(ValueError):
        DiskStore(tmp_path, 1 << 20, 1 << 19)


def test_a_second_store_on_the_same_directory_is_refused_until_the_first_lets_go(tmp_path):
    first = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    assert first.open()
    second = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    assert second.open() is False
    assert f"in use by another process (pid {os.getpid()})" in second.stats().last_error
    assert second.append(b"\x01x", T0, T0) is False
    first.close()
    assert second.append(b"\x01x", T0, T0) is True
    assert [f.kind for f in list_window_files(tmp_path)] == [ARCHIVE]  # the lock file is not a window file


_HOLDER = """
import sys, time
from pathlib import Path
from fodc.window.diskstore import DiskStore
store = DiskStore(Path(sys.argv[1]), 1 << 20, 1 << 24)
assert store.open()
print("holding", flush=True)
time.sleep(60)
"""


def test_the_lock_of_a_killed_agent_goes_with_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline() == b"holding\n"
        assert DiskStore(tmp_path, 64 * KIB, 256 * KIB).open() is False
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert DiskStore(tmp_path, 64 * KIB, 256 * KIB).open() is True


def test_a_removed_directory_is_made_again_and_the_lost_chunks_handed_back(tmp_path):
    window = tmp_path / "window"
    store = DiskStore(window, 64 * KIB, 1024 * KIB)
    assert store.open()
    assert store.append(b"\x01a", T0, T0, key="a") and store.append(b"\x01b", T0 + 1, T0 + 1, key="b")
    assert store.write_interim([(b"\x01i", T0 + 2, T0 + 2)])
    assert store.take_lost().keys == []
    shutil.rmtree(window)
    assert store.append(b"\x01c", T0 + 3, T0 + 3, key="c")  # never into the deleted file
    lost = store.take_lost()
    assert lost.keys == ["a", "b"] and lost.interim and store.stats().vanished == 1
    assert [c.payload for f in list_window_files(window) for c in read_window_file(f).chunks] == [b"\x01c"]
    assert (window / "window.lock").exists()
    assert store.append_interim(b"\x01j", T0 + 4, T0 + 4) is False  # the interim file must be started anew


def test_a_removed_archive_file_hands_back_only_its_own_chunks(tmp_path):
    store = DiskStore(tmp_path, 64 * KIB, 1024 * KIB)
    assert store.open()
    assert store.append(b"\x01a", T0, T0, key="a")
    store.close()
    assert store.open()  # a new archive file, as after a restart
    assert store.append(b"\x01b", T0 + 1, T0 + 1, key="b")
    newest = list_window_files(tmp_path)[-1].path
    newest.unlink()
    assert store.append(b"\x01c", T0 + 2, T0 + 2, key="c")
    assert store.take_lost().keys == ["b"] and store.stats().vanished == 1
    kept = [c.payload for f in list_window_files(tmp_path) for c in read_window_file(f).chunks]
    assert kept == [b"\x01a", b"\x01c"]
