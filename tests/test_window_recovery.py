"""The window written through DurableWindow comes back exactly after a restart: sealed blocks, the interim tail,
within the memory budget, past damage, and without duplicates."""

from __future__ import annotations

import math
import random
import struct

import pytest

from fodc.window import FlightRecorder, SeriesMeta
from fodc.window.diskfiles import ARCHIVE, INTERIM, list_window_files, read_window_file
from fodc.window.diskformat import CHECKSUM
from fodc.window.diskstore import DiskStore
from fodc.window.durable import FUTURE, UNDECODABLE, DurableWindow, recover

T0 = 1_787_300_000_000
KIB = 1024
FAMILIES = {"c": SeriesMeta("c", "counter", "a counter", ""), "g": SeriesMeta("g", "gauge", "a gauge", "bytes")}


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


class Writer:
    """A recorder with its on-disk window, fed scrapes whose series come and go."""

    def __init__(self, directory, block=6, interim=3, file_bytes=64 * KIB, dir_bytes=1024 * KIB, seed=1):
        self.recorder = FlightRecorder(block_scrapes=block)
        self.store = DiskStore(directory, file_bytes, dir_bytes)
        self.store.open()
        self.durable = DurableWindow(self.recorder, self.store, interim)
        self.durable.attach()
        self.rng = random.Random(seed)
        self.expected: dict[tuple[str, str, tuple], list[tuple[int, bytes]]] = {}

    def scrape(self, source: str, ts: int, series: int = 8) -> None:
        rng = self.rng
        samples = [("c", (("i", str(i)),), float(ts // 1000 + i)) for i in range(series)]
        samples.append(("g", (), rng.choice([math.nan, math.inf, -0.0, rng.random(), 1e300])))
        if rng.random() < 0.3:
            samples.append(("g", (("rare", "1"),), 7.0))
        self.recorder.ingest(source, ts, samples, FAMILIES)
        for name, labels, value in samples:
            self.expected.setdefault((source, name, labels), []).append((ts, bits(value)))


def points(recorder: FlightRecorder) -> dict[tuple[str, str, tuple], list[tuple[int, bytes]]]:
    return {(w.source, w.name, w.labels): [(t, bits(v)) for t, v in zip(w.timestamps_ms, w.values, strict=True)]
            for w in recorder.query()}


def test_a_restart_gets_back_every_sealed_block_and_the_interim_scrapes_exactly(tmp_path):
    writer = Writer(tmp_path, block=6, interim=3)
    for i in range(40):
        writer.scrape("node", T0 + i * 1000)
        if i % 4 == 0:
            writer.scrape("os", T0 + i * 1000 + 7)
    # node: 40 scrapes, 36 sealed; os: 10 scrapes, 6 sealed; the rest open, flushed every 3rd scrape or when
    # another source's flush starts the interim file anew
    restarted = FlightRecorder(block_scrapes=6)
    report = recover(restarted, tmp_path, 30 * 1024 * 1024)
    got = points(restarted)
    for key, want in writer.expected.items():
        kept = got[key]
        assert kept == want[:len(kept)], key  # exact points, oldest first, nothing but a newest tail missing
        assert len(want) - len(kept) <= 3 - 1, key  # at most interim - 1 scrapes after the source's last flush
    assert report.blocks == 6 + 1 and report.damaged == {} and report.unreadable == ()
    assert report.interim_scrapes >= 3 + 2 and set(report.resumed_sources) == {"node", "os"}
    assert restarted.stats().sealed_blocks == 7
    # metadata travels too
    assert {w.name: (w.type, w.help, w.unit) for w in restarted.query()}["g"] == ("gauge", "a gauge", "bytes")


def test_a_clean_stop_loses_nothing(tmp_path):
    writer = Writer(tmp_path, block=5, interim=4)
    for i in range(23):
        writer.scrape("node", T0 + i * 1000)
    writer.durable.close()
    restarted = FlightRecorder(block_scrapes=5)
    recover(restarted, tmp_path, 1 << 30)
    assert points(restarted) == writer.expected


def test_restarting_again_and_again_keeps_one_copy_of_every_point(tmp_path):
    expected = {}
    ts = T0
    for life in range(5):
        writer = Writer(tmp_path, block=4, interim=2, seed=life)
        report = recover(writer.recorder, tmp_path, 1 << 30)
        writer.durable.attach(report.resumed_sources)
        for _ in range(7):
            ts += 1000
            writer.scrape("node", ts, series=3)
        writer.durable.close()
        for key, pts in writer.expected.items():
            expected.setdefault(key, []).extend(pts)
    final = FlightRecorder(block_scrapes=4)
    recover(final, tmp_path, 1 << 30)
    assert points(final) == expected


def test_recovery_reads_only_the_newest_files_the_memory_budget_can_hold(tmp_path):
    writer = Writer(tmp_path, block=10, interim=5, file_bytes=4 * KIB, dir_bytes=4096 * KIB)
    for i in range(3000):
        writer.scrape("node", T0 + i * 1000, series=30)
    archives = [f for f in list_window_files(tmp_path) if f.kind == ARCHIVE]
    assert len(archives) > 10
    restarted = FlightRecorder(budget_bytes=64 * KIB, block_scrapes=10)
    report = recover(restarted, tmp_path, 64 * KIB)
    assert report.files_left > 0 and report.files_read < len(archives)
    got = points(restarted)
    assert got
    for key, pts in got.items():  # an exact, recent stretch of each series, ending at the newest flushed scrape
        want = writer.expected[key]
        start = want.index(pts[0])
        assert pts == want[start:start + len(pts)]
        assert pts[-1] == want[-1]
    assert restarted.stats().used_bytes <= 64 * KIB


def test_a_damaged_archive_chunk_costs_only_its_block(tmp_path):
    writer = Writer(tmp_path, block=5, interim=100)
    for i in range(30):
        writer.scrape("node", T0 + i * 1000, series=2)
    writer.store.close()
    (archive,) = [f for f in list_window_files(tmp_path) if f.kind == ARCHIVE]
    data = bytearray(archive.path.read_bytes())
    third = data.find(b"\xd7FWC", 0)
    for _ in range(2):
        third = data.find(b"\xd7FWC", third + 1)
    data[third + 60] ^= 0xFF  # inside the third block's payload
    archive.path.write_bytes(bytes(data))
    restarted = FlightRecorder(block_scrapes=5)
    report = recover(restarted, tmp_path, 1 << 30)
    assert report.damaged == {CHECKSUM: 1} and report.blocks == 4
    lost = {T0 + i * 1000 for i in range(10, 15)}
    for key, want in points(restarted).items():
        assert want == [p for p in writer.expected[key] if p[0] not in lost and p[0] < T0 + 25_000]


def test_a_block_this_build_cannot_decode_is_skipped_and_counted(tmp_path):
    store = DiskStore(tmp_path, 64 * KIB, 256 * KIB)
    store.open()
    writer = Writer(tmp_path / "source", block=2, interim=100)
    for i in range(5):  # the 5th scrape seals the second block
        writer.scrape("node", T0 + i * 1000, series=1)
    (archive,) = [f for f in list_window_files(tmp_path / "source") if f.kind == ARCHIVE]
    first, second = read_window_file(archive).chunks
    store.append(bytes([9]) + first.payload[1:], first.first_ms, first.last_ms)  # a future block version
    store.append(second.payload, second.first_ms, second.last_ms)
    restarted = FlightRecorder(block_scrapes=2)
    report = recover(restarted, tmp_path, 1 << 30)
    assert report.damaged == {UNDECODABLE: 1} and report.blocks == 1
    assert {t for w in restarted.query() for t in w.timestamps_ms} == {T0 + 2000, T0 + 3000}


def test_garbage_and_foreign_files_do_not_stop_recovery(tmp_path):
    writer = Writer(tmp_path, block=3, interim=100)
    for i in range(9):
        writer.scrape("node", T0 + i * 1000, series=1)
    writer.durable.close()
    (tmp_path / "window-00000000-20260101T000000Z.archive").write_bytes(b"garbage " * 100)
    (tmp_path / "notes.txt").write_text("the operator's notes")
    restarted = FlightRecorder(block_scrapes=3)
    report = recover(restarted, tmp_path, 1 << 30)
    assert report.unreadable == (("window-00000000-20260101T000000Z.archive", "not a FODC window file (no magic)"),)
    assert points(restarted) == writer.expected
    assert (tmp_path / "notes.txt").read_text() == "the operator's notes"


def test_no_directory_yet_means_an_empty_window(tmp_path):
    report = recover(FlightRecorder(), tmp_path / "never-created", 1 << 20)
    assert report.blocks == 0 and report.unreadable == ()


def test_a_failing_disk_never_fails_a_scrape(tmp_path):
    blocker = tmp_path / "window"
    blocker.write_text("not a directory")
    recorder = FlightRecorder(block_scrapes=2)
    store = DiskStore(blocker, 64 * KIB, 256 * KIB)
    DurableWindow(recorder, store, 1).attach()
    for i in range(9):
        recorder.ingest("node", T0 + i, [("c", (), float(i))])
    assert next(iter(recorder.query())).values == [float(i) for i in range(9)]
    assert sum(store.stats().errors.values()) >= 9


@pytest.mark.parametrize("interim", [1, 2, 5])
def test_at_most_interim_minus_one_scrapes_are_lost(tmp_path, interim):
    writer = Writer(tmp_path, block=7, interim=interim)
    for i in range(50):
        writer.scrape("node", T0 + i * 1000, series=1)
        restarted = FlightRecorder(block_scrapes=7)
        recover(restarted, tmp_path, 1 << 30)
        newest = max((t for w in restarted.query() for t in w.timestamps_ms), default=T0 - 1000)
        assert (T0 + i * 1000 - newest) // 1000 <= interim - 1, i
    assert [f.kind for f in list_window_files(tmp_path)][-1] == INTERIM


class Keeper:
    """A listener that keeps sealed payloads, and one that always fails."""

    def __init__(self, fail: bool = False) -> None:
        self.sealed_blocks: list[tuple[str, int, int, bytes]] = []
        self.fail = fail

    def sealed(self, source, first_ms, last_ms, payload):
        if self.fail:
            raise OSError("listener broke")
        self.sealed_blocks.append((source, first_ms, last_ms, payload))

    def scraped(self, source, rows):
        if self.fail:
            raise OSError("listener broke")


def test_restore_takes_blocks_oldest_first_and_refuses_one_it_already_holds():
    source = FlightRecorder(block_scrapes=2)
    keeper = source.listener = Keeper()
    for i in range(7):
        source.ingest("node", T0 + i, [("c", (), float(i))])
    payloads = [p for _, _, _, p in keeper.sealed_blocks]
    assert [(f, last) for _, f, last, _ in keeper.sealed_blocks] == [(T0, T0 + 1), (T0 + 2, T0 + 3), (T0 + 4, T0 + 5)]
    target = FlightRecorder(block_scrapes=2)
    assert [target.restore(p) for p in payloads[:2]] == [2, 2]
    before = points(target)
    with pytest.raises(ValueError, match="not after what the source holds"):
        target.restore(payloads[0])
    assert points(target) == before
    target.ingest("node", T0 + 4, [("c", (), 4.0)])
    with pytest.raises(ValueError):  # the source has scraped since: older blocks can no longer go back
        target.restore(payloads[2])
    assert next(iter(target.query())).values == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_failing_listener_never_fails_a_scrape(caplog):
    recorder = FlightRecorder(block_scrapes=2)
    recorder.listener = Keeper(fail=True)
    for i in range(5):
        recorder.ingest("node", T0 + i, [("c", (), float(i))])
    assert next(iter(recorder.query())).values == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "window listener failed" in caplog.text


def test_open_rows_hands_out_only_the_scrapes_added_since_the_last_mark():
    recorder = FlightRecorder(block_scrapes=4)
    for i in range(3):
        recorder.ingest("node", T0 + i, [("c", (), float(i))])
    first = recorder.open_rows("node")
    assert (first.first_row, first.end_row, first.timestamps_ms) == (0, 3, [T0, T0 + 1, T0 + 2])
    assert recorder.open_rows("node", (first.generation, first.end_row)) is None
    recorder.ingest("node", T0 + 3, [("c", (), 3.0), ("d", (), 9.0)])
    second = recorder.open_rows("node", (first.generation, first.end_row))
    assert (second.first_row, second.timestamps_ms, [h[0] for h in second.heads]) == (3, [T0 + 3], ["c", "d"])
    recorder.ingest("node", T0 + 4, [("c", (), 4.0)])  # seals the block: a new generation starts from row 0
    third = recorder.open_rows("node", (second.generation, second.end_row))
    assert third.generation != second.generation and third.timestamps_ms == [T0 + 4]
    assert recorder.open_rows("unknown") is None


def test_blocks_from_a_clock_ahead_of_now_are_left_on_disk_so_scraping_can_go_on(tmp_path):
    writer = Writer(tmp_path, block=3, interim=1)
    for i in range(8):
        writer.scrape("node", T0 + i * 3_600_000, series=1)  # hourly: the last scrapes are "in the future"
    now = T0 + 4 * 3_600_000
    restarted = FlightRecorder(block_scrapes=3)
    report = recover(restarted, tmp_path, 1 << 30, now_ms=now)
    assert report.damaged == {FUTURE: 3}  # the second sealed block (scrapes 3-5), the interim chunks of 6 and 7
    assert {t for w in restarted.query() for t in w.timestamps_ms} == {T0 + i * 3_600_000 for i in range(3)}
    restarted.ingest("node", now + 1000, [("c", (("i", "0"),), 1.0)])  # not refused as "the clock went back"
    assert len(list_window_files(tmp_path)) == 2  # nothing removed
