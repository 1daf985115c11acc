"""The exposition parser: every corner of the text format, one behaviour per test."""

from __future__ import annotations

import dataclasses
import math

import pytest

from fodc import expfmt
from fodc.expfmt import Family, ParseError, Parser, Sample, parse, parse_strict


def one(text: str, **kwargs) -> Family:
    result = parse(text, **kwargs)
    assert result.errors == []
    families = [f for f in result.families if f.samples]
    assert len(families) == 1
    return families[0]


def labels_of(text: str) -> dict[str, str]:
    return dict(one(text).samples[0].labels)


def rejected(text: str, **kwargs) -> ParseError:
    result = parse(text, **kwargs)
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


# ------------------------------------------------------------------------------------- families and metadata


def test_help_type_and_samples_make_one_family():
    fam = one("# HELP banyandb_measure_total_written banyandb_measure_total_written\n"
              "# TYPE banyandb_measure_total_written counter\n"
              'banyandb_measure_total_written{group="sw_metric"} 42\n')
    assert (fam.name, fam.type, fam.help) == ("banyandb_measure_total_written", "counter",
                                               "banyandb_measure_total_written")
    assert fam.samples == [Sample("banyandb_measure_total_written", (("group", "sw_metric"),), 42.0, None)]


def test_help_unescapes_backslash_and_newline():
    assert one("# HELP m line\\none \\\\ back\nm 1\n").help == "line\none \\ back"


def test_help_keeps_unknown_escapes_and_quotes_as_written_in_text_format():
    assert one('# HELP m a \\d \\"q\\"\nm 1\n').help == 'a \\d \\"q\\"'


def test_openmetrics_help_also_unescapes_quotes():
    assert one('# HELP m say \\"hi\\"\nm 1\n# EOF\n').help == 'say "hi"'


def test_help_keeps_inner_and_trailing_spacing():
    assert one("# HELP m  two  spaces  \nm 1\n").help == "two  spaces  "


def test_unit_line_sets_the_family_unit():
    fam = one("# TYPE lat_seconds gauge\n# UNIT lat_seconds seconds\nlat_seconds 1\n# EOF\n")
    assert fam.unit == "seconds"


def test_type_keyword_is_case_insensitive_and_stored_lower_case():
    assert one("# TYPE m COUNTER\nm 1\n").type == "counter"


def test_histogram_samples_group_under_their_family():
    fam = one("# TYPE lat histogram\n"
              'lat_bucket{le="0.005"} 1\nlat_bucket{le="+Inf"} 3\nlat_sum 0.2\nlat_count 3\n')
    assert fam.type == "histogram"
    assert [s.name for s in fam.samples] == ["lat_bucket", "lat_bucket", "lat_sum", "lat_count"]


def test_summary_samples_group_under_their_family():
    fam = one('# TYPE q summary\nq{quantile="0.5"} 1\nq_sum 3\nq_count 2\n')
    assert fam.type == "summary"
    assert [s.name for s in fam.samples] == ["q", "q_sum", "q_count"]


def test_openmetrics_counter_total_and_created_belong_to_the_counter():
    fam = one("# TYPE req counter\nreq_total 10\nreq_created 1700000000\n# EOF\n")
    assert (fam.name, fam.type) == ("req", "counter")
    assert [s.name for s in fam.samples] == ["req_total", "req_created"]


def test_openmetrics_histogram_created_and_gaugehistogram_gsum_belong_to_their_family():
    result = parse("# TYPE h histogram\nh_count 1\nh_created 5\n"
                   "# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\ng_gsum 2\ng_gcount 1\n# EOF\n")
    assert [(f.name, len(f.samples)) for f in result.families] == [("h", 2), ("g", 3)]


def test_text_format_counter_does_not_absorb_a_total_suffixed_sample():
    families = parse_strict("# TYPE x counter\nx 1\nx_total 2\n")
    assert [(f.name, f.type) for f in families] == [("x", "counter"), ("x_total", "untyped")]


def test_samples_without_type_become_untyped_families():
    families = parse_strict("a 1\nb 2\n")
    assert [(f.name, f.type) for f in families] == [("a", "untyped"), ("b", "untyped")]


def test_openmetrics_samples_without_type_become_unknown_families():
    assert one("a 1\n# EOF\n").type == "unknown"


def test_non_contiguous_samples_merge_into_one_family():
    families = parse_strict('# TYPE g gauge\ng{a="1"} 1\nother 5\ng{a="2"} 2\n')
    assert [f.name for f in families] == ["g", "other"]
    assert [s.labels for s in families[0].samples] == [(("a", "1"),), (("a", "2"),)]


def test_a_histogram_resumed_after_another_family_merges_back():
    families = parse_strict('# TYPE h histogram\nh_bucket{le="1"} 1\n# TYPE g gauge\ng 1\n'
                            'h_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n')
    assert [(f.name, len(f.samples)) for f in families] == [("h", 4), ("g", 1)]


def test_a_repeated_identical_type_line_is_accepted():
    assert one("# TYPE m gauge\nm 1\n# TYPE m gauge\nm{a=\"x\"} 2\n").type == "gauge"


def test_comments_and_blank_lines_are_ignored():
    fam = one("# just a comment\n#\n\n   \n# HELPful remark\nm 1\n#TYPE-ish\n")
    assert fam.name == "m"


def test_a_family_declared_without_samples_is_kept():
    families = parse_strict("# HELP lonely nothing yet\n# TYPE lonely gauge\n")
    assert [(f.name, f.type, f.help, f.samples) for f in families] == [("lonely", "gauge", "nothing yet", [])]


# ------------------------------------------------------------------------------------------- labels


@pytest.mark.parametrize(("raw", "value"), [
    (r"a\"b", 'a"b'), (r"a\\b", "a\\b"), (r"a\nb", "a\nb"), ("a}b", "a}b"), ("a,b=c", "a,b=c"), ("#x", "#x"),
    ("", ""), ("spaces inside", "spaces inside"), ("{", "{"), ("ünï 😀", "ünï 😀"), (r"\\\"", '\\"'),
    ("} 1 x{b=", "} 1 x{b="),
])
def test_label_values_with_escapes_and_special_characters(raw, value):
    assert labels_of(f'm{{path="{raw}",kind="x"}} 1\n') == {"path": value, "kind": "x"}


def test_empty_label_values_are_kept():
    assert one('m{a="",b="x"} 1\n').samples[0].labels == (("a", ""), ("b", "x"))


def test_trailing_comma_in_a_label_set():
    assert one('m{a="1",} 3\n').samples[0].labels == (("a", "1"),)


def test_an_empty_label_set():
    assert one("m{} 3\n").samples[0].labels == ()


def test_labels_are_sorted_by_name_for_identity():
    assert one('m{z="1",a="2"} 1\n').samples[0].labels == (("a", "2"), ("z", "1"))


@pytest.mark.parametrize("line", [
    'm{ a = "1" , b="2", } 3', '  m{a="1",b="2"} 3', 'm{a="1",b="2"}\t3', 'm {a="1",b="2"} 3',
    'm{a="1",b="2"}3', 'm{a="1",b="2"} 3   ', 'm{a="1",b="2"}  3', 'm{a="1",b="2"} 3\r',
])
def test_whitespace_variants(line):
    fam = one(line + "\n")
    assert fam.samples == [Sample("m", (("a", "1"), ("b", "2")), 3.0, None)]


# ------------------------------------------------------------------------------------ values and timestamps


@pytest.mark.parametrize(("text", "expected"), [
    ("NaN", math.nan), ("nan", math.nan), ("+Inf", math.inf), ("-Inf", -math.inf), ("Inf", math.inf),
    ("infinity", math.inf), ("1.5e3", 1500.0), ("-2E-3", -0.002), (".5", 0.5), ("5.", 5.0), ("+7", 7.0),
    ("-0", 0.0), ("1e308", 1e308),
])
def test_special_and_scientific_values(text, expected):
    value = one(f"m {text}\n").samples[0].value
    assert (math.isnan(value) and math.isnan(expected)) or value == expected


@pytest.mark.parametrize("text", ["0x1p-2", "0x10", "1_000", "1e999", "-NaN", "١٢", "1.2.3", "one", "--1"])
def test_values_prometheus_refuses_are_rejected(text):
    # Hexadecimal floats: Go's ParseFloat takes 0x1p-2, but the Prometheus server refuses them; so do we.
    assert "value" in rejected(f"m {text}\ngood 1\n").reason


def test_optional_millisecond_timestamps():
    assert one("m 1 1700000000123\n").samples[0].timestamp_ms == 1700000000123


def test_negative_timestamps_are_accepted():
    assert one("m 1 -5\n").samples[0].timestamp_ms == -5


@pytest.mark.parametrize("ts", ["1.5", "1e3", "9223372036854775808", "x"])
def test_text_format_timestamps_must_be_int64_milliseconds(ts):
    assert "timestamp" in rejected(f"m 1 {ts}\n").reason


def test_openmetrics_timestamps_are_float_seconds_converted_exactly_to_ms():
    fam = one("m 1 1700000000.123\nm{a=\"b\"} 2 1700000001\n# EOF\n")
    assert [s.timestamp_ms for s in fam.samples] == [1700000000123, 1700000001000]


@pytest.mark.parametrize("ts", ["inf", "NaN", "1e999"])
def test_openmetrics_non_finite_timestamps_are_rejected_not_raised(ts):
    assert "timestamp" in rejected(f"m 1 {ts}\n# EOF\n").reason


def test_a_timestamped_sample_does_not_fail_the_page():
    families = parse_strict("# TYPE a gauge\na 1 1700000000000\n# TYPE b gauge\nb 2\n")
    assert [(f.name, f.samples[0].value) for f in families] == [("a", 1.0), ("b", 2.0)]


# ------------------------------------------------------------------------------------------- OpenMetrics


def test_openmetrics_exemplars_are_accepted_and_ignored():
    fam = one('# TYPE req counter\nreq_total{code="200"} 10 1700000000.5 # {trace_id="a b}"} 1 1700000000.1\n'
              "# EOF\n")
    assert fam.samples == [Sample("req_total", (("code", "200"),), 10.0, 1700000000500)]


def test_an_exemplar_is_an_error_in_the_text_format():
    assert rejected('m_bucket{le="1"} 1 # {trace_id="a"} 1\n').line_no == 1


def test_openmetrics_is_detected_by_the_eof_line():
    assert parse("m 1\n# EOF\n").families[0].type == "unknown"
    assert parse("m 1\n").families[0].type == "untyped"


def test_content_after_eof_is_rejected_line_by_line():
    result = parse("m 1\n# EOF\nlate 2\n\nlater 3\n", openmetrics=True)
    assert [(e.line_no, e.reason) for e in result.errors] == [(3, "content after # EOF"), (5, "content after # EOF")]
    assert [f.name for f in result.families] == ["m"]


def test_a_missing_eof_in_openmetrics_is_reported_but_keeps_the_samples():
    result = parse("m 1\n", openmetrics=True)
    assert [e.reason for e in result.errors] == ["missing # EOF (truncated page?)"]
    assert result.samples == 1


@pytest.mark.parametrize(("content_type", "expected"), [
    ("application/openmetrics-text; version=1.0.0; charset=utf-8", True),
    ("Application/OpenMetrics-Text", True),
    (expfmt.CONTENT_TYPE_LATEST, False),
    ("", False),
])
def test_is_openmetrics_reads_the_content_type(content_type, expected):
    assert expfmt.is_openmetrics(content_type) is expected


# -------------------------------------------------------------------------------------- rejected lines


@pytest.mark.parametrize(("bad", "reason"), [
    ('m{a="1",a="2"} 1', "duplicate label a"),
    ("1m 1", "invalid metric name"),
    ("m-x 1", "invalid metric name"),
    ('m{1a="x"} 1', "invalid label name"),
    ('m{a-b="x"} 1', "expected '='"),
    ('m{a="x} 1', "unterminated value"),
    ('m{a="x"', "unterminated label set"),
    ('m{a="x" b="y"} 1', "expected ','"),
    ("m{a=x} 1", "expected '\"'"),
    ('m{,} 1', "invalid label name"),
    ("m{}{} 1", "invalid value"),
    ('m{a="1"}{} 1', "invalid value"),
    ("m" + "{}" * 5000 + " 1", "invalid value"),
    ('m{a="1"}x 1', "invalid value"),
    ("m", "missing value"),
    ('m{a="x"}', "missing value"),
    ("m one", "invalid value"),
    ('m{a="\\q"} 1', "invalid escape"),
    ("m 1 2 3", "expected a value and an optional timestamp"),
    ("# TYPE m sometype", "unknown metric type"),
    ("# TYPE m counter extra", "unknown metric type"),
    ("# TYPE", "without a metric name"),
    ("# HELP 9bad text", "invalid metric name"),
])
def test_bad_lines_are_rejected_with_a_reason(bad, reason):
    result = parse(bad + "\ngood 1\n")
    assert [(e.line_no, e.line) for e in result.errors] == [(1, bad)]
    assert reason in result.errors[0].reason
    assert [f.name for f in result.families if f.samples] == ["good"]


def test_a_conflicting_second_type_line_is_rejected_and_the_first_kept():
    result = parse("# TYPE m counter\nm 1\n# TYPE m gauge\nm{a=\"b\"} 2\n")
    assert [e.line_no for e in result.errors] == [3]
    assert [(f.name, f.type, len(f.samples)) for f in result.families] == [("m", "counter", 2)]


def test_a_type_line_after_the_family_samples_is_rejected():
    result = parse("m 1\n# TYPE m counter\n")
    assert [e.reason for e in result.errors] == ["TYPE for m after its samples"]
    assert result.families[0].type == "untyped"


def test_a_second_different_help_is_rejected():
    result = parse("# HELP m one\n# HELP m two\nm 1\n")
    assert [e.line_no for e in result.errors] == [2]
    assert result.families[0].help == "one"


def test_parse_error_is_one_clear_line_with_its_fields():
    error = rejected('m{a="x\\q"} 1\n')
    assert (error.line_no, error.line) == (1, 'm{a="x\\q"} 1')
    assert "\n" not in str(error) and str(error).startswith("line 1: invalid escape")
    assert isinstance(error, ValueError)


def test_parse_strict_raises_the_first_error():
    with pytest.raises(ParseError) as info:
        parse_strict("good 1\nbad{ 1\nworse{ 2\n")
    assert info.value.line_no == 2


def test_parse_result_counts_accepted_samples():
    assert parse("a 1\nb{x=\"1\"} 2\nb{x=\"2\"} 3\nbad{\n").samples == 3


def test_samples_are_frozen():
    sample = one("m 1\n").samples[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.value = 2.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- Parser cache


PAGE = ('# HELP g g\n# TYPE g gauge\ng{a="1"} 1\ng{a="2",b="x}y"} 2\n# TYPE h histogram\n'
        'h_bucket{le="0.005"} 0\nh_bucket{le="+Inf"} 4\nh_sum 1.5\nh_count 4\nplain 7 1700000000000\n')


def test_a_warm_parser_gives_the_same_result_as_a_cold_parse():
    parser = Parser()
    parser.parse(PAGE)
    changed = PAGE.replace("} 1\n", "} 10\n").replace("h_sum 1.5", "h_sum 2.5")
    assert parser.parse(changed) == parse(changed)


def test_a_warm_parser_reuses_unchanged_samples():
    parser = Parser()
    first = parser.parse(PAGE).families[0].samples[0]
    assert parser.parse(PAGE).families[0].samples[0] is first


@pytest.mark.parametrize(("value", "ok"), [("NaN", True), ("+Inf", True), ("1_0", False), ("x", False), ("", False)])
def test_a_cached_series_with_an_unusual_value_takes_the_full_lexer(value, ok):
    parser = Parser()
    parser.parse('g{a="1"} 1\n')
    result = parser.parse(f'g{{a="1"}} {value}\n')
    assert (result.samples == 1) is ok and (len(result.errors) == 0) is ok


def test_a_cached_series_followed_by_a_timestamp_keeps_it():
    parser = Parser()
    parser.parse('g{a="1"} 1\n')
    assert parser.parse('g{a="1"} 2 1700000000000\n').families[0].samples[0].timestamp_ms == 1700000000000


def test_parser_cache_is_bounded():
    parser = Parser(max_cache_entries=10)
    for scrape in range(3):
        result = parser.parse("".join(f'm{{i="{i}"}} {scrape}\n' for i in range(100)))
        assert result.samples == 100 and parser.cached_series <= 10


def test_parser_cache_forgets_series_gone_from_the_endpoint_first():
    parser = Parser(max_cache_entries=8)
    parser.parse("".join(f'old{{i="{i}"}} 1\n' for i in range(6)))
    parser.parse("".join(f'new{{i="{i}"}} 1\n' for i in range(4)))
    parser.parse("".join(f'new{{i="{i}"}} 1\n' for i in range(4)) +
                 "".join(f'more{{i="{i}"}} 1\n' for i in range(3)))
    assert parser.cached_series <= 8
    assert 'new{i="0"}' in parser._cache and 'old{i="0"}' not in parser._cache


def test_a_parser_without_a_cache_still_parses():
    parser = Parser(max_cache_entries=0)
    assert parser.parse(PAGE) == parse(PAGE) and parser.cached_series == 0
