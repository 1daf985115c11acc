"""render(): Prometheus text 0.0.4 that keeps each family's type, escapes, and formats values like Go."""

from __future__ import annotations

import math

import pytest

from fodc import expfmt
from fodc.expfmt import Family, Sample, parse, parse_strict, render


def test_render_writes_one_header_per_family_and_escapes():
    fam = Family("m", "counter", "help\nwith \\ newline", "", [Sample("m", (("v", 'q"\\\n'),), 1.0, 5)])
    assert render([fam]) == '# HELP m help\\nwith \\\\ newline\n# TYPE m counter\nm{v="q\\"\\\\\\n"} 1 5\n'


def test_render_writes_samples_without_labels_or_timestamp_plainly():
    assert render([Family("up", "gauge", "", "", [Sample("up", (), 1.0, None)])]) == (
        "# HELP up \n# TYPE up gauge\nup 1\n")


def test_render_of_nothing_is_empty():
    assert render([]) == ""


@pytest.mark.parametrize(("value", "text"), [
    (3.0, "3"), (-12.0, "-12"), (0.25, "0.25"), (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
    (1e20, "1e+20"), (123456789012345.0, "123456789012345"), (9007199254740993.0, "9007199254740992"),
    (1.5e-07, "1.5e-07"), (0.1, "0.1"), (-0.0, "-0"), (0.0, "0"), (7, "7"),
])
def test_values_are_formatted_like_prometheus(value, text):
    assert expfmt.format_value(value) == text


@pytest.mark.parametrize("value", [0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 2.0**60, -123.456])
def test_formatted_values_read_back_exactly(value):
    assert float(expfmt.format_value(value)) == value


def test_a_counter_stays_a_counter_through_render_and_parse():
    families = parse_strict("# HELP c c\n# TYPE c counter\nc{a=\"1\"} 5\n# TYPE h histogram\n"
                            'h_bucket{le="+Inf"} 1\nh_sum 2\nh_count 1\n# TYPE s summary\ns_sum 1\ns_count 1\n')
    assert [(f.name, f.type) for f in parse_strict(render(families))] == [
        ("c", "counter"), ("h", "histogram"), ("s", "summary")]


def test_openmetrics_families_render_as_their_text_format_kin():
    page = ("# TYPE req counter\nreq_total 10\nreq_created 1700000000\n"
            "# TYPE build info\nbuild_info{v=\"1\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\n"
            "# TYPE gh gaugehistogram\ngh_bucket{le=\"+Inf\"} 2\ngh_gsum 3\ngh_gcount 2\n"
            "# TYPE u unknown\nu 1\n# EOF\n")
    rendered = parse_strict(render(parse(page).families))
    assert [(f.name, f.type, [s.name for s in f.samples]) for f in rendered] == [
        ("req_total", "counter", ["req_total"]), ("req_created", "gauge", ["req_created"]),
        ("build_info", "gauge", ["build_info"]), ("st", "gauge", ["st"]),
        ("gh", "histogram", ["gh_bucket"]), ("gh_gsum", "gauge", ["gh_gsum"]), ("gh_gcount", "gauge", ["gh_gcount"]),
        ("u", "untyped", ["u"]),
    ]


def test_openmetrics_timestamps_render_as_milliseconds():
    page = render(parse("m 1 1700000000.25\n# EOF\n").families)
    assert page.splitlines()[-1] == "m 1 1700000000250"


def test_format_sample_matches_render_lines():
    sample = Sample("m", (("a", 'x"y'),), 2.5, 7)
    assert expfmt.format_sample(*dataclass_fields(sample)) == 'm{a="x\\"y"} 2.5 7\n'


def dataclass_fields(sample: Sample) -> tuple:
    return sample.name, sample.labels, sample.value, sample.timestamp_ms
