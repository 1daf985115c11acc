"""The exposition parser: every corner of the format, bad lines cost only themselves, round trips."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fodc import expfmt
from fodc.expfmt import Family, Parser, Sample, parse, parse_strict, render


def one(text: str) -> Family:
    families = parse_strict(text)
    assert len(families) == 1
    return families[0]


def test_help_type_and_samples_make_one_family():
    fam = one('# HELP banyandb_measure_total_written banyandb_measure_total_written\n'
              '# TYPE banyandb_measure_total_written counter\n'
              'banyandb_measure_total_written{group="sw_metric"} 42\n')
    assert (fam.name, fam.type, fam.help) == ("banyandb_measure_total_written", "counter",
                                               "banyandb_measure_total_written")
    assert fam.samples == [Sample("banyandb_measure_total_written", (("group", "sw_metric"),), 42.0, None)]


@pytest.mark.parametrize(("raw", "value"), [
    (r'a\"b', 'a"b'), (r"a\\b", "a\\b"), (r"a\nb", "a\nb"), ("a}b", "a}b"), ("a,b=c", "a,b=c"), ("#x", "#x"),
    ("", ""), ("spaces inside", "spaces inside")])
def test_label_values_with_escapes_and_special_characters(raw, value):
    fam = one(f'm{{path="{raw}",kind="x"}} 1\n')
    assert dict(fam.samples[0].labels) == {"path": value, "kind": "x"}


def test_trailing_comma_and_whitespace_in_label_sets():
    fam = one('m{ a = "1" , b="2", } 3\n')
    assert fam.samples[0].labels == (("a", "1"), ("b", "2"))


def test_labels_are_sorted_for_identity():
    assert one('m{z="1",a="2"} 1\n').samples[0].labels == (("a", "2"), ("z", "1"))


def test_optional_millisecond_timestamps():
    assert one("m 1 1700000000123\n").samples[0].timestamp_ms == 1700000000123


@pytest.mark.parametrize(("text", "check"), [
    ("NaN", math.isnan), ("+Inf", lambda v: v == math.inf), ("-Inf", lambda v: v == -math.inf),
    ("Inf", lambda v: v == math.inf), ("1.5e3", lambda v: v == 1500), ("-0", lambda v: v == 0)])
def test_special_and_scientific_values(text, check):
    assert check(one(f"m {text}\n").samples[0].value)


def test_histogram_samples_group_under_their_family():
    fam = one("# TYPE lat histogram\n"
              'lat_bucket{le="0.005"} 1\nlat_bucket{le="+Inf"} 3\nlat_sum 0.2\nlat_count 3\n')
    assert fam.type == "histogram"
    assert [s.name for s in fam.samples] == ["lat_bucket", "lat_bucket", "lat_sum", "lat_count"]


def test_summary_samples_group_under_their_family():
    fam = one('# TYPE q summary\nq{quantile="0.5"} 1\nq_sum 3\nq_count 2\n')
    assert fam.type == "summary" and len(fam.samples) == 3


def test_untyped_samples_become_untyped_families():
    families = parse_strict("a 1\nb 2\n")
    assert [(f.name, f.type) for f in families] == [("a", "untyped"), ("b", "untyped")]


def test_non_contiguous_samples_merge_into_one_family():
    families = parse_strict('# TYPE g gauge\ng{a="1"} 1\nother 5\ng{a="2"} 2\n')
    g = next(f for f in families if f.name == "g")
    assert len(g.samples) == 2 and [f.name for f in families].count("g") == 1


def test_help_escapes():
    assert one("# HELP m line\\none \\\\ back\nm 1\n").help == "line\none \\ back"


@pytest.mark.parametrize("bad", ['m{a="1",a="2"} 1', "1m 1", 'm{1a="x"} 1', 'm{a="x} 1', "m", "m one",
                                 'm{a="\\q"} 1', "m 1 2 3", "m 1_000", "# TYPE m sometype"])
def test_bad_lines_are_rejected_with_a_reason(bad):
    result = parse(bad + "\ngood 1\n")
    assert len(result.errors) == 1 and result.errors[0].line_no == 1 and result.errors[0].reason
    assert [f.name for f in result.families if f.samples] == ["good"]


def test_openmetrics_timestamps_exemplars_and_eof():
    text = ('# TYPE req counter\nreq_total{code="200"} 10 1700000000.5 # {trace_id="abc"} 1 1700000000.1\n'
            "req_created 1700000000\n# EOF\n")
    fam = one(text)
    assert fam.type == "counter"
    assert fam.samples[0].timestamp_ms == 1700000000500
    assert expfmt.is_openmetrics("application/openmetrics-text; version=1.0.0; charset=utf-8")


def test_parser_cache_gives_the_same_result_as_a_cold_parse():
    text = '# TYPE m gauge\nm{a="1"} 1\nm{a="2"} 2\n'
    parser = Parser()
    assert parser.parse(text).families == parser.parse(text).families == parse(text).families


def test_parser_cache_is_bounded():
    parser = Parser(max_cache_entries=10)
    parser.parse("".join(f'm{{i="{i}"}} 1\n' for i in range(100)))
    assert len(parser._cache) <= 10


def test_render_writes_one_header_per_family_and_escapes():
    fam = Family("m", "counter", "help\nwith newline", "", [Sample("m", (("v", 'q"\\\n'),), 1.0, 5)])
    assert render([fam]) == '# HELP m help\\nwith newline\n# TYPE m counter\nm{v="q\\"\\\\\\n"} 1 5\n'


@pytest.mark.parametrize(("value", "text"), [(3.0, "3"), (0.25, "0.25"), (math.nan, "NaN"), (math.inf, "+Inf"),
                                             (-math.inf, "-Inf"), (1e20, "1e+20")])
def test_values_are_formatted_like_prometheus(value, text):
    assert expfmt.format_value(value) == text


label_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
names = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
values = st.floats(allow_nan=False) | st.sampled_from([math.inf, -math.inf])


@st.composite
def families(draw):
    result = []
    for name in draw(st.lists(names, min_size=1, max_size=4, unique=True)):
        label_names = draw(st.lists(names, max_size=3, unique=True))
        samples, seen = [], set()
        for _ in range(draw(st.integers(1, 3))):
            labels = tuple(sorted((n, draw(label_values)) for n in label_names))
            if labels in seen:
                continue
            seen.add(labels)
            samples.append(Sample(f"fam_{name}", labels, draw(values), draw(st.none() | st.integers(0, 2**40))))
        result.append(Family(f"fam_{name}", draw(st.sampled_from(["gauge", "counter", "untyped"])),
                             draw(label_values).strip(), "", samples))
    return result


@settings(max_examples=150, deadline=None)
@given(families())
def test_render_then_parse_round_trips(fams):
    assert parse_strict(render(fams)) == fams


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    result = parse(text)
    assert all(isinstance(e, expfmt.ParseError) for e in result.errors)


@settings(max_examples=100, deadline=None)
@given(families(), st.text(alphabet="{}\"=,# \\abc1", min_size=1, max_size=30).filter(lambda s: "\n" not in s))
def test_one_garbage_line_costs_exactly_that_line(fams, garbage):
    page = render(fams)
    lines = page.splitlines(keepends=True)
    damaged = "".join(lines[:2]) + garbage + "\n" + "".join(lines[2:])
    result = parse(damaged)
    clean = parse(page)
    if not result.errors:  # the garbage happened to be a valid comment or sample
        return
    assert len(result.errors) == 1
    assert [f for f in result.families if f.samples] == [f for f in clean.families if f.samples]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_a_rendered_banyandb_page():
    from fodc.sim.page import NodeModel

    page = render(parse_strict(NodeModel("datanode-hot", 2000, seed=3).render(1_787_300_000)))
    result = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True)
    findings = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert result.returncode in (0, 3)
    assert [f for f in findings if '"_total" suffix' not in f] == []
