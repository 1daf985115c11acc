"""`fodc pprof` on profiles of a real Go process (Debian's prometheus, kept busy), checked against totals and
top functions computed independently from the raw protobuf message; and bad files failing with one line."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from pprof_build import Builder
from procs import BIN, http_get, keep_busy, start_prometheus

from fodc.pprof import profile_pb2 as pb

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="needs a real Go process with /debug/pprof: Debian package prometheus")

KINDS = {"cpu": "profile?seconds=3", "cpu-again": "profile?seconds=2", "heap": "heap", "allocs": "allocs",
         "goroutine": "goroutine", "block": "block", "mutex": "mutex"}


@pytest.fixture(scope="module")
def go_profiles(tmp_path_factory) -> dict[str, Path]:
    """One profile of every kind Go serves, taken from a busy Prometheus server."""
    directory = tmp_path_factory.mktemp("go")
    node, url = start_prometheus(directory, "global:\n  scrape_interval: 1h\n")
    stop = threading.Event()
    loaders = [threading.Thread(target=keep_busy, args=(url, stop), daemon=True) for _ in range(3)]
    try:
        for loader in loaders:
            loader.start()
        files = {}
        for kind, path in KINDS.items():
            status, _, body = http_get(f"{url}/debug/pprof/{path}", timeout=30)
            assert status == 200, (kind, body[:200])
            files[kind] = directory / f"{kind}.pb.gz"
            files[kind].write_bytes(body)
        return files
    finally:
        stop.set()
        node.stop()


def fodc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=60)


def independent_flat(path: Path, type_name: str | None) -> tuple[str, str, int, dict[str, int]]:
    """(type, unit, total, flat per leaf function) straight from the message: the leaf is the first line of
    the first location of each sample."""
    message = pb.Profile.FromString(gzip.decompress(path.read_bytes()))
    strings = message.string_table
    types = [(strings[t.type], strings[t.unit]) for t in message.sample_type]
    wanted = type_name or strings[message.default_sample_type] or types[-1][0]
    index = [t for t, _ in types].index(wanted)
    names = {f.id: strings[f.name] for f in message.function}
    leaf = {loc.id: names[loc.line[0].function_id] or f"0x{loc.address:x}" for loc in message.location if loc.line}
    flat: dict[str, int] = {}
    for sample in message.sample:
        name = leaf[sample.location_id[0]] if sample.location_id else "[unknown]"  # no stack: still a cost
        flat[name] = flat.get(name, 0) + sample.value[index]
    return wanted, types[index][1], sum(s.value[index] for s in message.sample), flat


ROW = re.compile(r"^\s*(\S+)\s+([\d.]+)%\s+([\d.]+)%\s+(\S+)\s+([\d.]+)%\s+(.+)$")


@pytest.mark.parametrize("kind, sample_type", [
    ("cpu", None), ("cpu", "samples"), ("heap", None), ("heap", "alloc_objects"), ("allocs", "alloc_space"),
    ("goroutine", None), ("block", "contentions"), ("mutex", "delay"),
])
def test_top_of_a_real_go_profile_matches_the_raw_message(go_profiles, kind, sample_type):
    path = go_profiles[kind]
    type_name, unit, total, flat = independent_flat(path, sample_type)
    args = ["pprof", "top", str(path), "-n", "5"] + (["--sample-type", sample_type] if sample_type else [])
    json_run = fodc("--json", *args)
    assert json_run.returncode == 0, json_run.stderr
    body = json.loads(json_run.stdout)
    assert (body["sample_type"], body["unit"], body["total"]) == (type_name, unit, total)
    if kind == "cpu":
        assert total > 0, "the busy Go process gave no CPU samples"
    top_flat = max(flat.values(), default=0)
    if total:
        assert body["top"][0]["flat"] == top_flat and flat[body["top"][0]["function"]] == top_flat
        got = [r["flat"] for r in body["top"]]
        assert got == (sorted(flat.values(), reverse=True) + [0] * 5)[:len(got)]  # then zero-flat callers
    text = fodc(*args)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"Type: {type_name} ({unit})")
    assert all(len(line) <= 100 for line in lines), lines
    rows = [ROW.match(line) for line in lines[3:]] if total else []
    assert all(rows) and len(rows) == (min(5, len(body["top"])) if total else 0)
    if total and unit == "nanoseconds":
        assert rows[0].group(1).endswith(("ms", "s", "us", "ns"))
    if not total and type_name in ("contentions", "delay"):  # an empty block/mutex profile says why
        assert "runtime.SetBlockProfileRate" in text.stdout and "SetMutexProfileFraction" in text.stdout
        assert len(lines) > 3 and lines[3].startswith("(no samples: ")
    if total and unit == "bytes":
        assert rows[0].group(1).endswith(("B", "KiB", "MiB", "GiB"))


def test_folded_and_flame_of_a_real_cpu_profile(go_profiles, tmp_path):
    path = go_profiles["cpu"]
    _, _, total, _ = independent_flat(path, None)
    run = fodc("pprof", "folded", str(path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == total
    assert all(re.fullmatch(r"\S+ \d+", line) for line in lines)
    for suffix in (".html", ".svg"):
        out = tmp_path / f"flame{suffix}"
        run = fodc("pprof", "flame", str(path), "-o", str(out))
        assert run.returncode == 0, run.stderr
        text = out.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
        assert "<title>root: " in text and "runtime." in text


def test_diff_of_two_real_profiles_is_signed_and_sums_to_zero(go_profiles):
    run = fodc("--json", "pprof", "diff", str(go_profiles["cpu"]), str(go_profiles["cpu-again"]), "-n", "100000")
    assert run.returncode == 0, run.stderr
    changes = json.loads(run.stdout)
    assert changes and abs(sum(c["delta"] for c in changes)) < 1e-9  # shares of two totals: gains = losses
    assert changes == sorted(changes, key=lambda c: -abs(c["delta"]))


@pytest.mark.parametrize("content", [b"", b"not a profile at all\n", b"\x1f\x8b\x08\x00broken",
                                     "truncated", "missing"])
def test_a_bad_file_is_one_line_and_exit_1(tmp_path, content):
    path = tmp_path / "bad.pb.gz"
    every_verb = content == "truncated"
    if content == "truncated":
        b = Builder(("cpu", "nanoseconds"))
        b.sample(["f", "main"], 10)
        content = b.gz()[:-10]
    if content != "missing":
        path.write_bytes(content)
    verbs = ([["top"], ["folded"], ["flame", "-o", str(tmp_path / "x.svg")], ["diff", str(path)]] if every_verb
             else [["top"]])
    for verb in verbs:  # every verb reads through the same loader: all three once, `top` for the rest
        run = fodc("pprof", *verb, str(path))
        assert run.returncode == 1, (verb, run)
        assert run.stdout == "" and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert run.stderr.startswith(f"fodc: {path}: ")


def test_an_unknown_sample_type_or_a_bad_focus_is_one_line(go_profiles):
    run = fodc("pprof", "top", str(go_profiles["heap"]), "--sample-type", "cpu")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "no sample type 'cpu'" in run.stderr and "inuse_space" in run.stderr
    run = fodc("pprof", "folded", str(go_profiles["heap"]), "--focus", "(unclosed")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "not a valid regex" in run.stderr
