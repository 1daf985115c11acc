"""The pprof reader and its analyses on hand-built profiles whose totals are known by construction."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from pprof_build import Builder

from fodc.pprof import analysis
from fodc.pprof.reader import PprofError, decode_message, from_message, parse
from fodc.pprof.units import humanise

REPO = Path(__file__).resolve().parent.parent


def cpu_profile() -> Builder:
    """main→serve→handle→{parse 30ms, (inlined hash in encode) 50ms}, main→gc 20ms; 100ms in all."""
    b = Builder(("samples", "count"), ("cpu", "nanoseconds"))
    inlined = b.location("hash", "encode")  # hash inlined into encode
    b.sample(["parse", "handle", "serve", "main"], 3, 30_000_000)
    b.sample([inlined, "handle", "serve", "main"], 5, 50_000_000)
    b.sample(["gc", "main"], 2, 20_000_000)
    return b


def test_generated_profile_code_is_not_stale(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", str(REPO / "proto/fodc/pprof/profile.proto")], check=True)
    for name in ("profile_pb2.py", "profile_pb2.pyi"):
        fresh = (tmp_path / "fodc/pprof" / name).read_text()
        assert fresh == (REPO / "fodc/pprof" / name).read_text(), f"fodc/pprof/{name} is stale: run dev/gen-proto"


def test_gzipped_and_raw_profiles_read_the_same():
    b = cpu_profile()
    assert parse(b.gz()) == parse(b.raw())


def test_inlined_frames_expand_innermost_first_and_count_in_flat_and_cum():
    profile = parse(cpu_profile().gz())
    assert profile.default_type == "cpu"  # no default_sample_type: the last type, as pprof does
    assert profile.samples[1].stack == ("hash", "encode", "handle", "serve", "main")
    table = analysis.top(profile)
    rows = {r.function: (r.flat, r.cum) for r in table.rows}
    assert table.total == 100_000_000 and table.unit == "nanoseconds"
    assert rows == {"hash": (50_000_000, 50_000_000), "encode": (0, 50_000_000), "parse": (30_000_000, 30_000_000),
                    "gc": (20_000_000, 20_000_000), "handle": (0, 80_000_000), "serve": (0, 80_000_000),
                    "main": (0, 100_000_000)}
    assert [r.function for r in table.rows[:3]] == ["hash", "parse", "gc"]
    assert [r.function for r in analysis.top(profile, by_cum=True).rows[:3]] == ["main", "handle", "serve"]


def test_a_recursive_function_counts_once_per_sample_in_cum():
    b = Builder(("cpu", "nanoseconds"))
    b.sample(["walk", "walk", "walk", "main"], 7)
    rows = {r.function: (r.flat, r.cum) for r in analysis.top(parse(b.gz())).rows}
    assert rows == {"walk": (7, 7), "main": (0, 7)}


def test_unsymbolized_addresses_are_named_by_their_own_mapping():
    b = Builder(("samples", "count"))
    b.mapping(1, "/usr/bin/banyand", 0x400000, 0x800000)
    b.mapping(2, "/lib/x86_64-linux-gnu/libc.so.6", 0x7F0000000000, 0x7F0000100000)
    in_libc = b.location(mapping_id=2, address=0x7F0000000ABC)
    in_binary = b.location(mapping_id=1, address=0x401234)
    b.sample([in_libc, in_binary, "main"], 4)
    b.sample([in_binary, "main"], 1)
    profile = parse(b.gz())
    assert profile.samples[0].stack == ("libc.so.6+0x7f0000000abc", "banyand+0x401234", "main")
    rows = {r.function: (r.flat, r.cum) for r in analysis.top(profile).rows}
    assert rows["libc.so.6+0x7f0000000abc"] == (4, 4) and rows["banyand+0x401234"] == (1, 5)


@pytest.mark.parametrize("types, default, expected", [
    ([("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")],
     "", "inuse_space"),
    ([("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")],
     "alloc_space", "alloc_space"),
    ([("contentions", "count"), ("delay", "nanoseconds")], "", "delay"),
    ([("goroutine", "count")], "", "goroutine"),
])
def test_every_go_sample_type_can_be_chosen_and_the_default_is_honoured(types, default, expected):
    b = Builder(*types, default=default)
    b.sample(["f", "main"], *range(1, len(types) + 1))
    b.sample(["g", "main"], *range(10, 10 * len(types) + 1, 10))
    profile = parse(b.gz())
    assert profile.default_type == expected
    for i, (name, unit) in enumerate(types):
        table = analysis.top(profile, name)
        assert (table.sample_type, table.unit, table.total) == (name, unit, (i + 1) * 11)
    with pytest.raises(PprofError, match="no sample type 'cpu'.*it has: " + types[0][0]):
        analysis.top(profile, "cpu")


def test_focus_keeps_matching_stacks_and_the_total_stays_the_whole_profile():
    table = analysis.top(parse(cpu_profile().gz()), focus=analysis.compile_focus("^enc"))
    assert table.total == 100_000_000 and table.shown == 50_000_000
    assert {r.function for r in table.rows} == {"hash", "encode", "handle", "serve", "main"}
    with pytest.raises(PprofError, match="not a valid regex"):
        analysis.compile_focus("(")
    with pytest.raises(PprofError, match="not a valid regex"):
        analysis.compile_focus(r"(a)\1")  # backreferences need backtracking: refused


def test_focus_matches_in_linear_time_on_hostile_names():
    b = Builder(("cpu", "nanoseconds"))
    b.sample(["a" * 1000, "main"], 3)  # (\w+)+X against this would backtrack for ever in Python's re
    b.sample(["aX", "main"], 4)
    table = analysis.top(parse(b.gz()), focus=analysis.compile_focus(r"^(\w+)+X$"))
    assert table.shown == 4
    with pytest.raises(PprofError, match="longer than"):
        analysis.compile_focus("a" * 1000)


def test_folded_stacks_are_root_first_and_summed():
    b = cpu_profile()
    b.sample(["parse", "handle", "serve", "main"], 1, 5)  # same stack again: summed
    b.sample(["odd;name with space", "main"], 1, 7)
    lines = analysis.folded(parse(b.gz()), "cpu")
    assert lines == [("main;gc", 20_000_000), ("main;odd_name_with_space", 7),
                     ("main;serve;handle;encode;hash", 50_000_000), ("main;serve;handle;parse", 30_000_005)]


def test_flame_tree_holds_the_call_tree_and_its_caps_say_truncated():
    tree, truncated = analysis.flame_tree(parse(cpu_profile().gz()))
    assert not truncated and tree["name"] == "root" and tree["value"] == 100_000_000
    main = tree["children"][0]
    assert (main["name"], main["value"]) == ("main", 100_000_000)
    assert [(c["name"], c["value"]) for c in main["children"]] == [("serve", 80_000_000), ("gc", 20_000_000)]
    handle = main["children"][0]["children"][0]
    assert [(c["name"], c["value"]) for c in handle["children"]] == [("encode", 50_000_000), ("parse", 30_000_000)]
    small, truncated = analysis.flame_tree(parse(cpu_profile().gz()), max_nodes=3)
    assert truncated and small["children"][0]["children"] == [{"name": "serve", "value": 80_000_000,
                                                               "children": []}]
    tiny, truncated = analysis.flame_tree(parse(cpu_profile().gz()), min_fraction=0.25)
    assert truncated and [c["name"] for c in tiny["children"][0]["children"]] == ["serve"]


def test_diff_names_the_functions_whose_share_moved_most_with_a_sign():
    base = cpu_profile()
    new = Builder(("samples", "count"), ("cpu", "nanoseconds"))
    new.sample(["parse", "handle", "serve", "main"], 9, 90_000_000)
    new.sample(["gc", "main"], 1, 10_000_000)
    changes = analysis.diff(parse(base.gz()), parse(new.gz()))
    assert [(c.function, round(c.delta, 3)) for c in changes] == [("parse", 0.6), ("hash", -0.5), ("gc", -0.1)]


def test_summary_is_plain_json_with_top_and_flame():
    summary = analysis.summary(parse(cpu_profile().gz()), top_n=2)
    assert summary["sample_types"] == [{"type": "samples", "unit": "count"}, {"type": "cpu", "unit": "nanoseconds"}]
    assert (summary["sample_type"], summary["unit"], summary["total"]) == ("cpu", "nanoseconds", 100_000_000)
    assert summary["top"] == [{"function": "hash", "flat": 50_000_000, "cum": 50_000_000},
                              {"function": "parse", "flat": 30_000_000, "cum": 30_000_000}]
    assert summary["truncated"] is True  # seven functions, two shown
    assert summary["flame"]["value"] == 100_000_000


@pytest.mark.parametrize("data, message", [
    (b"", "empty input"),
    (b"hello, this is a text file\n", "not a pprof profile"),
    (gzip.compress(b"hello, this is a text file\n"), "not a pprof profile"),
    (gzip.compress(Builder(("cpu", "nanoseconds")).raw())[:-12], "truncated gzip"),
    (b"\x1f\x8b\x08\x00garbage after a gzip magic", "corrupt gzip"),
    (Builder().raw(), "not a pprof profile"),  # no sample types at all
])
def test_input_that_is_not_a_profile_is_one_clear_error(data, message):
    with pytest.raises(PprofError, match=message) as caught:
        parse(data)
    assert "\n" not in str(caught.value)


def test_a_profile_pointing_at_what_it_does_not_hold_is_refused():
    b = Builder(("cpu", "nanoseconds"))
    b.sample(["f"], 1)
    b.message.sample.add(location_id=[99], value=[1])
    with pytest.raises(PprofError, match="location 99"):
        parse(b.gz())
    b = Builder(("cpu", "nanoseconds"))
    b.sample(["f"], 1)
    b.message.function[0].name = 500
    with pytest.raises(PprofError, match="string 500"):
        parse(b.gz())
    b = Builder(("cpu", "nanoseconds"), ("samples", "count"))
    b.message.sample.add(location_id=[], value=[1])
    with pytest.raises(PprofError, match="1 values for 2 types"):
        parse(b.gz())


def test_a_gzip_bomb_stops_at_the_size_bound():
    bomb = gzip.compress(b"\x00" * 5_000_000)
    with pytest.raises(PprofError, match="larger than 1000000 bytes once decompressed"):
        parse(bomb, max_raw_bytes=1_000_000)


@pytest.mark.parametrize("value, unit, text", [
    (230_000_000, "nanoseconds", "230ms"), (1_500_000_000, "nanoseconds", "1.5s"), (0, "nanoseconds", "0"),
    (12_500, "nanoseconds", "12.5us"), (1536, "bytes", "1.5KiB"), (3 * 1024 ** 2, "bytes", "3MiB"),
    (17, "count", "17"), (-2048, "bytes", "-2KiB"), (2, "seconds", "2s"),
])
def test_values_are_humanised_per_unit(value, unit, text):
    assert humanise(value, unit) == text


def test_a_profile_with_more_samples_than_the_bound_is_refused():
    b = Builder(("cpu", "nanoseconds"))
    for i in range(5):
        b.sample([f"f{i}"], 1)
    with pytest.raises(PprofError, match="more than 4 samples"):
        from_message(decode_message(b.gz()), max_samples=4)
    assert len(from_message(decode_message(b.gz()), max_samples=5).samples) == 5


def test_samples_without_a_stack_or_a_function_name_still_count_everywhere():
    """A Go CPU profile can hold a sample with no location (and a function whose name is empty): its value is in
    the total, so it must be in flat, in the folded lines and in diff's shares, or the shares stop summing to 0
    and a folded line reads ' 5' (seen on real profiles: diff summed to 1/180, folded had a line with a blank)."""
    base = cpu_profile()
    base.sample([], 4, 40_000_000)  # no location at all
    base.sample(["", "main"], 1, 10_000_000)  # a function without a name
    profile = parse(base.gz())
    table = analysis.top(profile, "cpu")
    assert sum(r.flat for r in table.rows) == table.total == 150_000_000
    lines = analysis.folded(profile, "cpu")
    assert sum(v for _, v in lines) == table.total
    assert all(name and not any(ch.isspace() for ch in name) for name, _ in lines), lines
    new = cpu_profile()
    changes = analysis.diff(profile, parse(new.gz()))
    assert changes and abs(sum(c.delta for c in changes)) < 1e-12
    tree, _ = analysis.flame_tree(profile)
    assert sum(c["value"] for c in tree["children"]) == tree["value"]
