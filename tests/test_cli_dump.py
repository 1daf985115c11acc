"""`fodc dump DIR`: the window directory read offline as JSON lines, CSV or series, filtered, past damage."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse

import pytest
from procs import BIN, REPO, free_port, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node
from fodc.window import FlightRecorder, SeriesMeta
from fodc.window.codec import decode_block
from fodc.window.diskfiles import ARCHIVE, list_window_files, read_window_file
from fodc.window.diskstore import DiskStore
from fodc.window.durable import DurableWindow

T0 = 1_787_300_000_000  # 2026-08-21T08:13:20Z
URL = "http://db-1:2121/metrics"
FAMILIES = {"lat": SeriesMeta("lat", "histogram", "latency", "seconds"), "up": SeriesMeta("up", "gauge", "", "")}
SAMPLE_FAMILY = {"lat_bucket": "lat", "lat_sum": "lat"}


def fodc(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=60, input=stdin,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def write_window(directory, scrapes: int, t0: int = T0, block: int = 4, interim: int = 2, close: bool = False,
                 step: int = 1000):
    """A window directory written by the real store; returns every point ingested as (ms, source, name, labels, v)."""
    recorder = FlightRecorder(block_scrapes=block)
    store = DiskStore(directory, 4096, 1 << 20)
    store.open()
    durable = DurableWindow(recorder, store, interim)
    durable.attach()
    points = []
    for i in range(scrapes):
        ts = t0 + i * step
        samples = [("lat_bucket", (("le", "0.5"),), float(i)), ("lat_sum", (), i / 10),
                   ("up", (("msg", 'say "hi"\\'),), [1.0, math.nan, math.inf, -math.inf][i % 4])]
        recorder.ingest(URL, ts, samples, FAMILIES, SAMPLE_FAMILY)
        recorder.ingest("kernel-telemetry", ts + 5, [("ktm_status", (), 2.0)])
        points += [(ts, URL, name, labels, v) for name, labels, v in samples]
        points.append((ts + 5, "kernel-telemetry", "ktm_status", (), 2.0))
    if close:
        durable.close()
    return points


def as_key(value):
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def from_jsonl(text: str):
    out = []
    for line in text.splitlines():
        p = json.loads(line)
        value = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}.get(p["value"], p["value"])
        out.append((p["timestamp_ms"], p["source"], p["name"], tuple(p["labels"].items()), as_key(value)))
    return out


def test_jsonl_prints_each_written_point_once_even_where_the_interim_file_repeats_sealed_scrapes(tmp_path):
    points = write_window(tmp_path, 9)  # the 9th scrape sealed scrapes 5-8 while the interim file still holds them
    interim_chunks = [f for f in list_window_files(tmp_path) if f.kind != ARCHIVE]
    assert interim_chunks
    result = fodc("dump", str(tmp_path))
    assert result.returncode == 0, result.stderr
    got = from_jsonl(result.stdout)
    flushed = [(t, s, n, lb, as_key(v)) for t, s, n, lb, v in points if t < T0 + 8000]  # the 9th was not flushed
    assert sorted(got, key=repr) == sorted(flushed, key=repr)
    first = json.loads(result.stdout.splitlines()[0])
    assert first["time"] == "2026-08-21T08:13:20.000Z" and first["type"] == "histogram" and first["family"] == "lat"


def test_csv_has_a_header_and_one_row_per_point_with_labels_quoted(tmp_path):
    write_window(tmp_path, 8, close=True)
    result = fodc("dump", str(tmp_path), "--format", "csv", "--name", "up")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["time", "timestamp_ms", "source", "family", "name", "type", "labels", "value"]
    assert [r[7] for r in rows[1:]] == ["1.0", "NaN", "+Inf", "-Inf"] * 2
    assert {r[6] for r in rows[1:]} == {'{msg="say \\"hi\\"\\\\"}'}
    assert [int(r[1]) for r in rows[1:]] == [T0 + i * 1000 for i in range(8)]


def test_series_format_gives_one_line_per_series_with_all_its_points(tmp_path):
    write_window(tmp_path, 10, close=True)
    result = fodc("dump", str(tmp_path), "--format", "series", "--source", "http://*")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(s["name"] for s in lines) == ["lat_bucket", "lat_sum", "up"]
    bucket = next(s for s in lines if s["name"] == "lat_bucket")
    assert bucket["points"] == [[T0 + i * 1000, float(i)] for i in range(10)] and bucket["labels"] == {"le": "0.5"}


@pytest.mark.parametrize(("args", "names"), [
    (["--name", "lat"], {"lat_bucket", "lat_sum"}),  # a family brings all its samples
    (["--name", "lat_s*"], {"lat_sum"}),  # a sample-name glob only those samples
    (["--name", "up", "--name", "ktm_*"], {"up", "ktm_status"}),
    (["--source", "kernel-telemetry"], {"ktm_status"}),
    (["--name", "nothing-like-it"], set()),
])
def test_name_and_source_filters(tmp_path, args, names):
    write_window(tmp_path, 6, close=True)
    result = fodc("dump", str(tmp_path), *args)
    assert result.returncode == 0, result.stderr
    assert {p[2] for p in from_jsonl(result.stdout)} == names
    if not names:
        assert "no points matched" in result.stderr and "2026-08-21T08:13:20.000Z" in result.stderr


def test_time_filters_take_rfc3339_unix_seconds_and_durations_back_from_now(tmp_path):
    write_window(tmp_path, 12, close=True)
    result = fodc("dump", str(tmp_path), "--name", "lat_sum", "--since", "2026-08-21T08:13:23Z",
                  "--until", str((T0 + 6000) / 1000))
    assert [p[0] for p in from_jsonl(result.stdout)] == [T0 + i * 1000 for i in range(3, 7)]
    recent = tmp_path / "recent"
    now_ms = int(time.time() * 1000)
    t0 = now_ms - 3_600_000 - 150_000
    write_window(recent, 5, t0=t0, close=True, step=60_000)  # 150, 90 and 30 s before "1h ago", then 30 and 90 after
    result = fodc("dump", str(recent), "--name", "lat_sum", "--since", "1h")
    assert [p[0] for p in from_jsonl(result.stdout)] == [t0 + 180_000, t0 + 240_000]


def test_a_damaged_chunk_is_skipped_with_a_warning_and_exit_status_4(tmp_path):
    write_window(tmp_path, 13, close=True)
    archive = next(f for f in list_window_files(tmp_path) if f.kind == ARCHIVE)
    chunks = [c for c in read_window_file(archive).chunks if decode_block(c.payload).source == URL]
    data = bytearray(archive.path.read_bytes())
    data[chunks[1].offset + 40] ^= 0xFF  # the node's second block: scrapes 4-7
    archive.path.write_bytes(bytes(data))
    (tmp_path / "window-00000000-20260101T000000Z.archive").write_bytes(b"not ours at all")
    (tmp_path / "README.txt").write_text("ignored")
    result = fodc("dump", str(tmp_path), "--name", "lat_sum")
    assert result.returncode == 4
    assert "checksum" in result.stderr and "not a FODC window file" in result.stderr
    assert "README" not in result.stderr
    stamps = [p[0] for p in from_jsonl(result.stdout)]
    assert stamps and len(stamps) == len(set(stamps)) and stamps == sorted(stamps)
    assert stamps == [T0 + i * 1000 for i in range(13) if not 4 <= i <= 7]


def test_a_missing_or_empty_directory_exits_1_and_bad_times_exit_2(tmp_path):
    missing = fodc("dump", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    empty = fodc("dump", str(tmp_path))
    assert empty.returncode == 1 and "holds no window files" in empty.stderr
    bad = fodc("dump", str(tmp_path), "--since", "yesterday")
    assert bad.returncode == 2 and "invalid time 'yesterday'" in bad.stderr
    naive = fodc("dump", str(tmp_path), "--until", "2026-11-23T10:00:00")
    assert naive.returncode == 2 and "need a zone" in naive.stderr


def test_a_closed_pipe_ends_the_dump_quietly(tmp_path):
    write_window(tmp_path, 40, close=True)
    result = subprocess.run(f"'{BIN / 'fodc'}' dump '{tmp_path}' | head -n 1", shell=True, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert len(result.stdout.splitlines()) == 1 and result.stderr == ""


def test_a_copied_agent_directory_dumps_the_points_the_proxy_served(tmp_path, daemons):
    node = start_sim_node("liaison", free_port(), series=200, seed=9)
    try:
        proxy = start_proxy(tmp_path)
        daemons.append(proxy)
        window = tmp_path / "window"
        agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "li-dump", "--node-metrics-url", node.metrics_url,
                            "--scrape-interval", "200ms", "--scrape-timeout", "200ms", "--window-dir", str(window),
                            "--window-block-scrapes", "5")
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(node_id="li-dump", status="online"), 30, what="agent online")
        wait_for(lambda: len([f for f in list_window_files(window) if f.kind == ARCHIVE]) >= 1, 30, what="a block")
        node.stop()  # the window stops growing, so the proxy's answer and the files hold the same scrapes
        time.sleep(0.5)
        status, body = http_json(f"{proxy.url}/metrics-windows?start=0&name=banyandb_system_cpu_state")
        assert status == 200
        served = {json.dumps(s["labels"] | {"node_id": None, "node_role": None}, sort_keys=True): s["points"]
                  for s in body["series"]}
        selected = {sel: (_api_series(proxy, sel), _cli_series(proxy, sel)) for sel in SELECTIONS}
        assert agent.terminate() == 0  # a clean stop writes the open scrapes to the interim file
    finally:
        node.stop()
    copy = tmp_path / "elsewhere"
    shutil.copytree(window, copy)
    result = fodc("dump", str(copy), "--format", "series", "--name", "banyandb_system_cpu_state")
    assert result.returncode == 0, result.stderr
    dumped = {json.dumps(s["labels"] | {"node_id": None, "node_role": None}, sort_keys=True): s["points"]
              for s in map(json.loads, result.stdout.splitlines())}
    assert dumped == served and len(served) == 8
    # One name grammar: the API, `fodc window` and `fodc dump` select the same series, by sample name too.
    for selection, (from_api, from_cli) in selected.items():
        result = fodc("dump", str(copy), "--format", "series", "--name", selection)
        from_dump = {(s["name"], _plain(s["labels"])) for s in map(json.loads, result.stdout.splitlines())}
        assert from_api and from_api == from_cli == from_dump, selection
        assert all(name.endswith("_latency_bucket") for name, _ in from_api)


SELECTIONS = ("banyandb_*_latency_bucket", "~banyandb_.*_latency_bucket")


def _plain(labels):
    return json.dumps({k: v for k, v in labels.items() if k not in ("node_id", "node_role")}, sort_keys=True)


def _api_series(proxy, selection):
    status, body = http_json(f"{proxy.url}/metrics-windows?start=0&name={urllib.parse.quote(selection)}")
    assert status == 200, body
    return {(s["name"], _plain(s["labels"])) for s in body["series"]}


def _cli_series(proxy, selection):
    result = fodc("--proxy", proxy.url, "window", "--since", "0", "--name", selection, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    return {(s["name"], _plain(s["labels"])) for s in map(json.loads, result.stdout.splitlines())}
