"""The profile ring on disk (bounded, oldest first, atomic, read back after a restart) and the heavy slot's
rule that background captures never queue ahead of an operator's profile."""

from __future__ import annotations

import gzip
import threading
import time

import pytest

from fodc.agent.diagnostics import HeavySlot
from fodc.artifact_names import parse_ring_name
from fodc.diag.ring import ProfileRing


def gz(size: int, seed: int = 0) -> bytes:
    """A gzipped blob of about `size` bytes (random-ish, so it does not compress away)."""
    import random
    rng = random.Random(seed)
    return gzip.compress(bytes(rng.getrandbits(8) for _ in range(size)), compresslevel=1)


def test_profiles_are_kept_oldest_first_and_the_oldest_go_beyond_the_byte_cap(tmp_path):
    blob = gz(1000)
    ring = ProfileRing(tmp_path, max_bytes=3 * len(blob) + 10)
    ring.load()
    for i in range(5):
        ring.add("cpu" if i % 2 else "heap", 1_700_000_000_000 + i * 1000, 10 if i % 2 else 0, blob)
    entries = ring.entries()
    assert [e.taken_ms for e in entries] == [1_700_000_002_000, 1_700_000_003_000, 1_700_000_004_000]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(e.name for e in entries)
    assert ring.evicted == 2 and ring.writes == 5 and ring.usage() == (3, 3 * len(blob))
    assert entries[1].name == "1700000003000-cpu-10s.pb.gz" and entries[0].name == "1700000002000-heap.pb.gz"
    assert [e.taken_ms for e in ring.entries(since_ms=1_700_000_003_000)] == [1_700_000_003_000, 1_700_000_004_000]


def test_the_ring_survives_a_restart_and_clears_half_written_files(tmp_path):
    ring = ProfileRing(tmp_path, max_bytes=1 << 20)
    ring.load()
    ring.add("cpu", 1_700_000_000_000, 5, gz(100))
    ring.add("heap", 1_700_000_001_000, 0, gz(100, 1))
    (tmp_path / ".1700000002000-cpu-5s.pb.gz.tmp").write_bytes(b"half")  # a crash mid-write
    (tmp_path / "notes.txt").write_text("not the ring's")
    again = ProfileRing(tmp_path, max_bytes=1 << 20)
    assert again.load() == 2
    assert [e.name for e in again.entries()] == ["1700000000000-cpu-5s.pb.gz", "1700000001000-heap.pb.gz"]
    assert not (tmp_path / ".1700000002000-cpu-5s.pb.gz.tmp").exists() and (tmp_path / "notes.txt").exists()
    assert again.path("1700000000000-cpu-5s.pb.gz").read_bytes() == ring.path("1700000000000-cpu-5s.pb.gz").read_bytes()


def test_a_restart_with_a_smaller_cap_trims_the_ring(tmp_path):
    ring = ProfileRing(tmp_path, max_bytes=1 << 20)
    ring.load()
    for i in range(4):
        ring.add("heap", 1_700_000_000_000 + i, 0, gz(500, i))
    smaller = ProfileRing(tmp_path, max_bytes=1200)
    smaller.load()
    assert len(smaller.entries()) == 2 and len(list(tmp_path.iterdir())) == 2


def test_raw_profiles_are_stored_gzipped_and_one_too_big_is_refused(tmp_path):
    ring = ProfileRing(tmp_path, max_bytes=2000)
    ring.load()
    entry = ring.add("heap", 1_700_000_000_000, 0, b"\x0a\x02raw protobuf" * 10)
    assert gzip.decompress(ring.path(entry.name).read_bytes()) == b"\x0a\x02raw protobuf" * 10
    with pytest.raises(ValueError, match="does not fit"):
        ring.add("cpu", 1_700_000_001_000, 5, gz(5000))
    with pytest.raises(ValueError, match="not 'goroutine'"):
        ring.add("goroutine", 1_700_000_001_000, 0, gz(10))


def test_only_the_rings_own_names_are_served(tmp_path):
    ring = ProfileRing(tmp_path, max_bytes=1 << 20)
    ring.load()
    ring.add("heap", 1_700_000_000_000, 0, gz(10))
    assert ring.path("1700000000000-heap.pb.gz") is not None
    for name in ("../etc/passwd", "1700000000000-heap.pb.gz/..", "1700000000001-heap.pb.gz", ".hidden", ""):
        assert ring.path(name) is None
    assert parse_ring_name("1700000000000-cpu-10s.pb.gz") == ("cpu", 1_700_000_000_000, 10)
    assert parse_ring_name("1700000000000-goroutine.pb.gz") is None


def test_an_incident_keeps_the_latest_cpu_and_heap_before_it_and_all_within_its_window(tmp_path):
    ring = ProfileRing(tmp_path, max_bytes=1 << 20)
    ring.load()
    minute = 60_000
    for t in (0, 5, 10, 15, 20):  # minutes: cpu at each, heap at 0 and 10 only
        ring.add("cpu", 1_700_000_000_000 + t * minute, 10, gz(10, t))
        if t in (0, 10):
            ring.add("heap", 1_700_000_000_000 + t * minute + 1, 0, gz(10, 100 + t))
    at = 1_700_000_000_000 + 17 * minute
    chosen = ring.before(at, at - 5 * minute)  # a 5-minute before-window: 12..17
    assert [(e.kind, (e.taken_ms - 1_700_000_000_000) // minute) for e in chosen] == [("heap", 10), ("cpu", 15)]
    wide = ring.before(at, at - 10 * minute)  # 7..17
    assert [(e.kind, (e.taken_ms - 1_700_000_000_000) // minute) for e in wide] == [
        ("cpu", 10), ("heap", 10), ("cpu", 15)]
    assert len(ring.before(at, 0, max_count=2)) == 2
    assert ring.before(1_600_000_000_000, 0) == []  # nothing from before the ring began


def test_a_background_capture_never_takes_the_slot_while_a_profile_waits_or_runs():
    slot = HeavySlot(max_waiting=2)
    never = threading.Event()
    with slot.try_hold("the periodic ring capture (cpu)", expected_s=7) as held:
        assert held
        assert slot.busy_with().startswith("the periodic ring capture (cpu) (about ")
        with slot.try_hold("another capture") as second:
            assert not second  # one holder at a time
        got = []
        waiter = threading.Thread(target=lambda: got.append(_hold_briefly(slot, never)))
        waiter.start()
        time.sleep(0.3)
    waiter.join(5)
    assert got == [True] and slot.busy_with() == ""
    # while an operator's profile runs and another waits, a background capture stays out
    first, second = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_until, args=(slot, first))
    holder.start()
    _wait(lambda: slot.busy_with())
    waiter = threading.Thread(target=_hold_until, args=(slot, second))
    waiter.start()
    _wait(lambda: slot._waiting == 1)
    with slot.try_hold("the periodic ring capture (heap)") as held:
        assert not held  # one runs, one waits
    first.set()
    with slot.try_hold("the periodic ring capture (heap)") as held:
        assert not held  # the waiter is next (waiting or already holding), never the background capture
    second.set()
    holder.join(5)
    waiter.join(5)
    with slot.try_hold("the periodic ring capture (heap)") as held:
        assert held


def _hold_briefly(slot: HeavySlot, never: threading.Event) -> bool:
    with slot.hold(never, time.monotonic() + 10, lambda _n: None, "an on-demand heap profile") as held:
        return held


def _hold_until(slot: HeavySlot, release: threading.Event) -> None:
    with slot.hold(threading.Event(), time.monotonic() + 10, lambda _n: None, "an on-demand cpu profile", 30):
        release.wait(10)


def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_fetched_file_is_adopted_in_place_and_a_raw_one_is_gzipped(tmp_path):
    ring = ProfileRing(tmp_path, max_bytes=1 << 20)
    ring.load()
    fetched = ring.temp_path("cpu")
    fetched.write_bytes(gz(300))
    entry = ring.adopt("cpu", 1_700_000_000_000, 10, fetched)
    assert not fetched.exists() and ring.path(entry.name).stat().st_size == entry.size
    raw = ring.temp_path("heap")
    raw.write_bytes(b"\x0a\x00not gzipped")
    entry = ring.adopt("heap", 1_700_000_001_000, 0, raw)
    assert not raw.exists() and gzip.decompress(ring.path(entry.name).read_bytes()) == b"\x0a\x00not gzipped"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1700000000000-cpu-10s.pb.gz", "1700000001000-heap.pb.gz"]
    too_big = ring.temp_path("cpu")
    too_big.write_bytes(gz(2 << 20, 3))
    with pytest.raises(ValueError, match="does not fit"):
        ring.adopt("cpu", 1_700_000_002_000, 10, too_big)
    assert not too_big.exists() and len(ring.entries()) == 2
