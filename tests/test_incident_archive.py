"""The proxy's incident archive: copies survive a restart, stay within their caps, and refuse torn bundles."""

from __future__ import annotations

import json

import pytest

from fodc.proxy.incident_archive import IncidentArchive

BASE_MS = 1_700_000_000_000  # a plausible time: the archive refuses summaries dated 1970


def _summary(node: str, incident_id: str, at_ms: int, size: int) -> dict:
    return {"id": incident_id, "node_id": node, "role": "liaison", "trigger": "node-down", "at_ms": BASE_MS + at_ms,
            "state": "complete", "size": size}


def _archive(tmp_path, budget=10_000, count=10, summaries=1_000_000) -> IncidentArchive:
    archive = IncidentArchive(tmp_path / "archive", budget_bytes=budget, max_incidents=count,
                              summary_budget_bytes=summaries)
    archive.load()
    return archive


def test_a_copy_is_listed_and_read_back_after_a_restart(tmp_path):
    archive = _archive(tmp_path)
    archive.put(_summary("hot/1", "a", 1000, 3), b"abc")
    assert archive.get("hot/1", "a") is not None and archive.get("hot/1", "b") is None
    again = _archive(tmp_path)
    assert [e["id"] for e in again.entries()] == ["a"]
    kept = again.get("hot/1", "a")
    assert kept is not None and kept.bundle.read_bytes() == b"abc"
    assert kept.bundle.parent.parent == tmp_path / "archive"  # a node id never escapes the directory


def test_the_oldest_incidents_go_first_beyond_the_count_or_the_bytes(tmp_path):
    archive = _archive(tmp_path, budget=100, count=3)
    for i, at in enumerate([5000, 1000, 3000, 4000]):
        archive.put(_summary("n", f"i{i}", at, 10), b"x" * 10)
    assert sorted(e["id"] for e in archive.entries()) == ["i0", "i2", "i3"]  # i1 was the oldest
    archive.put(_summary("m", "big", 6000, 75), b"y" * 75)
    assert sorted(e["id"] for e in archive.entries()) == ["big", "i0", "i3"]  # i2 went to make room
    assert archive.usage() == (3, 95) and archive.evicted == 2
    assert not (tmp_path / "archive" / "n" / "i1.tar.gz").exists()
    assert archive.get("n", "i1") is None and archive.known("n", "i1")  # evicted: not fetched again this run
    assert not archive.known("n", "never")


def test_a_bundle_shorter_than_announced_is_refused_and_nothing_is_kept(tmp_path):
    archive = _archive(tmp_path)
    with pytest.raises(ValueError, match="bundle is 2 bytes, the agent listed 5"):
        archive.put(_summary("n", "torn", 1000, 5), b"ab")
    assert archive.entries() == [] and not any((tmp_path / "archive").rglob("*.tar.gz"))


def test_an_unreadable_copy_is_dropped_at_load_and_the_rest_kept(tmp_path):
    archive = _archive(tmp_path)
    archive.put(_summary("n", "good", 1000, 1), b"g")
    archive.put(_summary("n", "orphan", 2000, 1), b"o")
    (tmp_path / "archive" / "n" / "orphan.tar.gz").unlink()
    (tmp_path / "archive" / "n" / "bad.json").write_text("{not json")
    again = _archive(tmp_path)
    assert [e["id"] for e in again.entries()] == ["good"]
    assert not (tmp_path / "archive" / "n" / "bad.json").exists()
    assert json.loads((tmp_path / "archive" / "n" / "good.json").read_text())["id"] == "good"


def test_summaries_have_their_own_byte_budget_oldest_first_and_a_fat_one_is_refused(tmp_path):
    def fat(incident_id: str, at: int) -> dict:
        return {**_summary("n", incident_id, at, 1), "detail": {"pad": "x" * 150}}  # 300 bytes of JSON
    archive = _archive(tmp_path, summaries=1000)
    for i in range(4):
        archive.put(fat(f"s{i}", 1000 * (i + 1)), b"b")
    assert sorted(e["id"] for e in archive.entries()) == ["s1", "s2", "s3"]  # the summaries' bytes, not the count
    assert archive.summary_usage() == sum(p.stat().st_size for p in (tmp_path / "archive").rglob("*.json")) <= 1000
    with pytest.raises(ValueError, match="over the archive's summary budget of 1000"):
        archive.put({**fat("huge", 9000), "detail": {"pad": "x" * 1000}}, b"b")
    assert not (tmp_path / "archive" / "n" / "huge.tar.gz").exists()
    assert sorted(e["id"] for e in _archive(tmp_path, summaries=700).entries()) == ["s2", "s3"]  # also at load
