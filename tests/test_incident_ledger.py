"""The incident ledger: what an agent finds on disk at start is what it lists again, and damage costs one file."""

from __future__ import annotations

from fodc.diag.store import ArtifactStore
from fodc.incident import ledger
from fodc.incident.bundle import write_bundle


def _incident(incident_id: str, at_ms: int) -> dict:
    return {"id": incident_id, "node_id": "n1", "role": "liaison", "trigger": "node-down", "detail": {"x": 1},
            "at": "t", "at_ms": at_ms, "errors": {}}


def test_complete_bundles_and_markers_come_back_oldest_first(tmp_path):
    write_bundle(tmp_path / "b-incident-n1.tar.gz", {**_incident("b", 2000), "window": {"start_ms": 1}},
                 {"window.json": b"{}"})
    write_bundle(tmp_path / "a-incident-n1.tar.gz", _incident("a", 1000), {"node.log": b"line\n"})
    ledger.write_marker(tmp_path, {**_incident("c", 3000), "state": "collecting"})
    complete, interrupted = ledger.load(tmp_path)
    assert [i["id"] for i in complete] == ["a", "b"]
    assert complete[1]["state"] == "complete" and complete[1]["file"] == "b-incident-n1.tar.gz"
    assert complete[1]["files"]["window.json"]["size"] == 2 and "window" not in complete[1]
    assert complete[0]["size"] == (tmp_path / "a-incident-n1.tar.gz").stat().st_size
    assert [(i["id"], i["state"]) for i in interrupted] == [("c", "collecting")]


def test_a_marker_whose_bundle_was_written_is_dropped(tmp_path):
    ledger.write_marker(tmp_path, _incident("a", 1000))
    write_bundle(tmp_path / "a-incident-n1.tar.gz", _incident("a", 1000), {})
    complete, interrupted = ledger.load(tmp_path)
    assert [i["id"] for i in complete] == ["a"] and interrupted == []
    assert not ledger.marker_path(tmp_path, "a").exists()


def test_a_damaged_bundle_or_marker_is_skipped_and_left_in_place(tmp_path):
    write_bundle(tmp_path / "good-incident-n1.tar.gz", _incident("good", 1000), {})
    (tmp_path / "torn-incident-n1.tar.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    ledger.marker_path(tmp_path, "half").write_text('{"id": "half", ')
    complete, interrupted = ledger.load(tmp_path)
    assert [i["id"] for i in complete] == ["good"] and interrupted == []
    assert (tmp_path / "torn-incident-n1.tar.gz").exists() and ledger.marker_path(tmp_path, "half").exists()


def test_no_directory_yet_is_no_incidents(tmp_path):
    assert ledger.load(tmp_path / "missing") == ([], [])


def test_markers_are_outside_the_stores_caps(tmp_path):
    store = ArtifactStore(tmp_path, keep=1, max_bytes=10**6)
    ledger.write_marker(tmp_path, _incident("a", 1000))
    write_bundle(tmp_path / "b-incident-n1.tar.gz", _incident("b", 2000), {})
    assert store.prune() == []
    assert ledger.marker_path(tmp_path, "a").exists()


def test_a_directory_that_is_not_a_directory_is_no_incidents_and_no_crash(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert ledger.load(not_a_dir) == ([], [])
