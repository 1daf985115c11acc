"""The incident page's JSON, built from a bundle: ranking with each ranked series' points, the configuration and
what changed since the snapshot before, the log tail; broken bundles are refused with the reason."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from fodc.incident.bundle import write_bundle
from fodc.incident.view import BadBundle, build, previous_snapshot, read_files

AT = 100_000


def _counter(name, before, after):
    points, value = [], 0.0
    for t in range(40_000, 160_001, 10_000):
        points.append([t, value])
        value += (before if t < AT else after) * 10
    return {"name": name, "family": name, "type": "counter", "labels": {"node_id": "hot-1"}, "points": points}


def _snapshot(at_ms, hash_, max_memory):
    return {"captured_at_ms": at_ms, "captured_at": f"t{at_ms}", "hash": hash_, "reason": "periodic",
            "flags": {"max-memory": max_memory}, "env": {}, "files": {}}


def _bundle(tmp_path, files):
    manifest = {"id": "i-1", "node_id": "hot-1", "role": "datanode-hot", "trigger": "node-down", "at_ms": AT,
                "at": "t", "detail": {}, "errors": {"profile.cpu": "node down"}}
    path = tmp_path / "b.tar.gz"
    write_bundle(path, manifest, files)
    return path.read_bytes()


def test_the_ranking_carries_each_series_points_biggest_change_first(tmp_path):
    window = {"series": [_counter("writes_total", 100.0, 120.0), _counter("errors_total", 0.1, 5.0)]}
    data = _bundle(tmp_path, {"window.json": json.dumps(window).encode(), "node.log": b"one\ntwo\n"})
    view = build(read_files(data), top=5, history=None)
    assert [c["name"] for c in view["changes"]] == ["errors_total", "writes_total"]
    assert view["changes"][0]["points"] == window["series"][1]["points"]
    assert view["changes"][0]["type"] == "counter" and view["compared"] == 2
    assert view["log_tail"] == ["one", "two"]
    assert view["manifest"]["errors"] == {"profile.cpu": "node down"}
    assert view["config"] is None and view["config_history"] == "the node's agent is not online"


def test_top_bounds_the_ranking(tmp_path):
    window = {"series": [_counter(f"c{i}_total", 1.0, 2.0 + i) for i in range(8)]}
    view = build(read_files(_bundle(tmp_path, {"window.json": json.dumps(window).encode()})), top=3, history=None)
    assert len(view["changes"]) == 3


def test_the_configuration_diff_is_to_the_last_different_snapshot_before_it(tmp_path):
    current = _snapshot(5_000, "h3", "8G")
    history = [_snapshot(1_000, "h1", "2G"), _snapshot(2_000, "h2", "4G"), _snapshot(4_000, "h3", "8G"),
               _snapshot(9_000, "h4", "16G")]
    assert previous_snapshot(history, current)["hash"] == "h2"
    files = read_files(_bundle(tmp_path, {"config.json": json.dumps(current).encode()}))
    view = build(files, top=5, history=history)
    assert view["config_previous"]["hash"] == "h2"
    assert view["config_changes"]["flag.max-memory"] == {"before": "4G", "after": "8G"}


@pytest.mark.parametrize("data", [b"", b"not gzip at all", gzip.compress(b"not a tar")])
def test_unreadable_bundles_are_refused_with_the_reason(data):
    with pytest.raises(BadBundle, match="unreadable"):
        read_files(data)


def test_a_tar_without_a_manifest_is_not_an_incident_bundle():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("x/window.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(BadBundle, match="no manifest"):
        read_files(buffer.getvalue())
