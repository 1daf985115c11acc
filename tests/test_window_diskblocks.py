"""Sealed blocks left on disk (fodc/window/diskblocks.py): once a block is in --window-dir the recorder lets its
bytes go and reads them back when asked. Reads return exactly what a window held in memory returns; a damaged,
truncated or removed file costs only the blocks it damages, and a removed file is still written again."""

from __future__ import annotations

import logging
import math
import os
import random
import struct

from fodc.window import FlightRecorder, SeriesMeta
from fodc.window.diskfiles import ARCHIVE, list_window_files, read_window_file
from fodc.window.diskformat import CHUNK_OVERHEAD
from fodc.window.diskstore import DiskStore
from fodc.window.durable import DurableWindow, recover

T0 = 1_787_400_000_000
KIB = 1024
FAMILIES = {"c": SeriesMeta("c", "counter", "a counter", ""), "g": SeriesMeta("g", "gauge", "a gauge", "bytes")}
BLOCK = 5


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def scrapes(count: int, seed: int = 3):
    """(timestamp, samples) of a node whose series come and go, with odd values."""
    rng = random.Random(seed)
    for i in range(count):
        samples = [("c", (("i", str(k)),), float(i * 10 + k)) for k in range(6)]
        samples.append(("g", (), rng.choice([math.nan, math.inf, -0.0, rng.random(), 1e300])))
        if rng.random() < 0.4:
            samples.append(("g", (("rare", "1"),), 7.0))
        yield T0 + i * 1000, samples


def points(recorder: FlightRecorder, **query) -> dict:
    return {(w.source, w.name, w.labels): [(t, bits(v)) for t, v in zip(w.timestamps_ms, w.values, strict=True)]
            for w in recorder.query(**query)}


def fed(recorder: FlightRecorder, count: int) -> FlightRecorder:
    for ts, samples in scrapes(count):
        recorder.ingest("node", ts, samples, FAMILIES)
    return recorder


def on_disk(directory, budget=1024 * KIB, file_bytes=8 * KIB):
    recorder = FlightRecorder(budget_bytes=budget, block_scrapes=BLOCK)
    store = DiskStore(directory, file_bytes, 1024 * KIB)
    store.open()
    durable = DurableWindow(recorder, store, interim_scrapes=2)
    durable.attach()
    return recorder, store, durable


def chunk_spans(directory) -> list[tuple[str, int, int, int]]:
    """(file name, payload offset, payload length, first_ms) of every sealed block in the archive files."""
    return [(f.path.name, c.offset + CHUNK_OVERHEAD, len(c.payload), c.first_ms)
            for f in list_window_files(directory) if f.kind == ARCHIVE for c in read_window_file(f).chunks]


def test_blocks_on_disk_leave_memory_and_read_back_exactly_as_from_memory(tmp_path):
    recorder, _, _ = on_disk(tmp_path)
    fed(recorder, 43)
    memory = fed(FlightRecorder(budget_bytes=1024 * KIB, block_scrapes=BLOCK), 43)
    stats = recorder.stats()
    assert stats.sealed_blocks == 8 and stats.on_disk_bytes > 0 and stats.unreadable_blocks == 0
    assert stats.used_bytes == memory.stats().used_bytes  # the budget bounds the same window either way
    assert memory.stats().on_disk_bytes == 0
    assert points(recorder) == points(memory)
    window = (T0 + 7_000, T0 + 31_000)
    assert points(recorder, start_ms=window[0], end_ms=window[1], names=["g"]) == points(
        memory, start_ms=window[0], end_ms=window[1], names=["g"])
    assert points(recorder, batch_points=7) == points(memory)  # many batches: each reads the blocks again
    assert {(w.name, w.labels): w.values for w in recorder.latest()} == {
        (w.name, w.labels): w.values for w in memory.latest()}


def test_recovered_blocks_stay_on_disk_and_read_back_exactly(tmp_path):
    writer, _, durable = on_disk(tmp_path)
    fed(writer, 40)
    durable.close()
    restarted = FlightRecorder(budget_bytes=1024 * KIB, block_scrapes=BLOCK)
    report = recover(restarted, tmp_path, 1024 * KIB)
    assert report.blocks == 7 and report.damaged == {}
    stats = restarted.stats()
    assert stats.sealed_blocks == 7 and stats.on_disk_bytes > 0 and stats.unreadable_blocks == 0
    assert points(restarted) == points(writer)


def test_a_damaged_block_on_disk_costs_that_block_only_and_is_logged_once(tmp_path, caplog):
    recorder, _, _ = on_disk(tmp_path)
    fed(recorder, 30)  # six sealed blocks on disk
    memory = fed(FlightRecorder(budget_bytes=1024 * KIB, block_scrapes=BLOCK), 30)
    name, offset, length, first_ms = chunk_spans(tmp_path)[2]
    with open(tmp_path / name, "r+b") as file:  # another process scribbles over the block's middle
        file.seek(offset + length // 2)
        file.write(b"\xff" * 8)
    lost = range(first_ms, first_ms + BLOCK * 1000)
    want = {key: [(t, v) for t, v in pts if t not in lost] for key, pts in points(memory).items()}
    with caplog.at_level(logging.ERROR):
        assert points(recorder, batch_points=7) == want
        assert points(recorder) == want
    assert caplog.text.count("unreadable, skipped from now on") == 1
    assert "checksum mismatch" in caplog.text and name in caplog.text
    assert recorder.stats().unreadable_blocks == 1


def test_a_truncated_archive_costs_only_the_blocks_past_the_cut(tmp_path):
    recorder, _, _ = on_disk(tmp_path, file_bytes=64 * KIB)  # every block in one file
    fed(recorder, 30)
    memory = fed(FlightRecorder(budget_bytes=1024 * KIB, block_scrapes=BLOCK), 30)
    spans = chunk_spans(tmp_path)
    assert len({span[0] for span in spans}) == 1
    assert len(spans) == 5  # the sixth block is still open, in memory
    name, offset, length, first_ms = spans[3]
    os.truncate(tmp_path / name, offset + length // 2)  # blocks 3 and 4 cut away
    lost = range(first_ms, spans[4][3] + BLOCK * 1000)
    want = {key: [(t, v) for t, v in pts if t not in lost] for key, pts in points(memory).items()}
    assert points(recorder) == {key: pts for key, pts in want.items() if pts}
    assert recorder.stats().unreadable_blocks == 2


def test_a_removed_archive_still_reads_back_and_is_written_again(tmp_path):
    recorder, store, durable = on_disk(tmp_path)
    fed(recorder, 30)
    before = points(recorder)
    for file in list_window_files(tmp_path):
        if file.kind == ARCHIVE:
            file.path.unlink()
    assert points(recorder) == before  # the blocks' files are held open until they leave the window
    for ts, samples in scrapes(3, seed=9):  # the next writes notice the files are gone and write them again
        recorder.ingest("node", ts + 30_000, samples, FAMILIES)
    assert durable.rewritten_blocks == 5 and durable.lost_blocks == 0
    durable.close()
    restarted = FlightRecorder(budget_bytes=1024 * KIB, block_scrapes=BLOCK)
    recover(restarted, tmp_path, 1024 * KIB)
    got = points(restarted)
    assert {key: pts[:len(before[key])] for key, pts in got.items() if key in before} == before


def test_evicted_blocks_let_go_of_their_files(tmp_path):
    recorder, _, _ = on_disk(tmp_path, budget=12 * KIB, file_bytes=KIB)
    held_before = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    fed(recorder, 700)
    stats = recorder.stats()
    assert stats.evicted_blocks > 20 and stats.on_disk_bytes > 0
    archives = sum(1 for f in list_window_files(tmp_path) if f.kind == ARCHIVE)
    open_now = len(os.listdir(f"/proc/{os.getpid()}/fd")) - held_before
    assert archives > 20 and open_now <= stats.sealed_blocks + 3  # never one descriptor per file ever written


def test_recovery_holds_at_most_so_many_files_open_and_keeps_older_blocks_in_memory(tmp_path):
    writer, _, durable = on_disk(tmp_path, file_bytes=1 * KIB)  # a crash loop's many small files, in effect
    fed(writer, 60)
    durable.close()
    files = sum(1 for f in list_window_files(tmp_path) if f.kind == ARCHIVE)
    assert files >= 3
    held_before = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    restarted = FlightRecorder(budget_bytes=1024 * KIB, block_scrapes=BLOCK)
    recover(restarted, tmp_path, 1024 * KIB, held_files=1)
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) - held_before == 1
    stats = restarted.stats()
    assert 0 < stats.on_disk_bytes < stats.used_bytes and stats.sealed_blocks == 11
    assert points(restarted) == points(writer)
