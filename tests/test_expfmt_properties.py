"""Properties of the exposition parser over generated input: it never raises, render and parse are inverse,
a garbage line costs exactly that line, and the cached fast path never changes a result."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from fodc.expfmt import Family, ParseError, Parser, Sample, parse, parse_strict, render

metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in ("le", "quantile"))
nasty = st.sampled_from(['"', "\\", "\n", "}", "{", ",", "=", "#", " ", "\t", "\r", "\\n", '\\"', "", "\x00", "😀"])
label_values = st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=6) | nasty,
                        max_size=4).map("".join)
help_texts = label_values.map(lambda s: s.lstrip(" \t").rstrip("\r"))  # the format cannot carry these
values = (st.floats(allow_nan=True) | st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0, 1e16, 2.0**53])
          | st.integers(-2**60, 2**60).map(float))
timestamps = st.none() | st.integers(-2**63, 2**63 - 1)


def comparable(families: list[Family]) -> list:
    """Families as plain data, NaN made equal to itself."""
    return [(f.name, f.type, f.help, f.unit,
             [(s.name, s.labels, "nan" if math.isnan(s.value) else s.value, s.timestamp_ms) for s in f.samples])
            for f in families]


@st.composite
def label_sets(draw, count: int) -> list[tuple[tuple[str, str], ...]]:
    names = draw(st.lists(label_names, max_size=3, unique=True))
    sets = draw(st.lists(st.tuples(*[label_values] * len(names)), min_size=count, max_size=count, unique=True))
    return [tuple(sorted(zip(names, values_, strict=True))) for values_ in sets]


@st.composite
def a_family(draw, name: str) -> Family:
    kind = draw(st.sampled_from(["gauge", "counter", "untyped", "histogram", "summary"]))
    help_text = draw(help_texts)
    samples: list[Sample] = []
    for labels in draw(label_sets(draw(st.integers(1, 3)))):
        if kind == "histogram":
            for le in ("0.005", "1", "+Inf"):
                samples.append(Sample(f"{name}_bucket", tuple(sorted((*labels, ("le", le)))), draw(values)))
            samples += [Sample(f"{name}_sum", labels, draw(values)), Sample(f"{name}_count", labels, draw(values))]
        elif kind == "summary":
            samples.append(Sample(name, tuple(sorted((*labels, ("quantile", "0.5")))), draw(values)))
            samples += [Sample(f"{name}_sum", labels, draw(values)), Sample(f"{name}_count", labels, draw(values))]
        else:
            samples.append(Sample(name, labels, draw(values), draw(timestamps)))
    return Family(name, kind, help_text, "", samples)


@st.composite
def pages(draw) -> list[Family]:
    names = draw(st.lists(metric_names, min_size=1, max_size=4, unique=True))
    return [draw(a_family(name)) for name in names]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises(text):
    result = parse(text)
    assert all(isinstance(e, ParseError) for e in result.errors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["utf-8", "latin-1"]))
def test_arbitrary_decoded_bytes_never_raise(data, encoding):
    result = parse(data.decode(encoding, errors="replace"))
    assert all(isinstance(e, ParseError) for e in result.errors)


near_format = st.text(alphabet='{}"=,#\\ \t\n\rmab_:01.eE+-NaInfxEOF', max_size=200)


@settings(max_examples=500, deadline=None)
@given(near_format, st.booleans() | st.none())
def test_text_near_the_format_never_raises(text, openmetrics):
    result = parse(text, openmetrics=openmetrics)
    assert all(isinstance(e, ParseError) for e in result.errors)


@settings(max_examples=150, deadline=None)
@given(pages())
def test_render_then_parse_round_trips(families):
    assert comparable(parse_strict(render(families))) == comparable(families)


@settings(max_examples=150, deadline=None)
@given(pages(), st.text(alphabet='{}"=,# \\\tabc1', min_size=1, max_size=30), st.integers(0, 10_000))
def test_one_garbage_line_costs_exactly_that_line(families, garbage, where):
    lines = render(families).split("\n")[:-1]  # not splitlines(): that also splits at \r, \x0c, ...
    at = where % (len(lines) + 1)
    damaged = parse("\n".join([*lines[:at], garbage, *lines[at:]]) + "\n")
    if not damaged.errors:  # the garbage happened to be a valid comment or sample
        return
    assert [e.line_no for e in damaged.errors] == [at + 1]
    assert comparable(damaged.families) == comparable(families)


@settings(max_examples=80, deadline=None)
@given(pages(), pages(), near_format)
def test_a_warm_parser_agrees_with_a_cold_parse(first, second, noise):
    parser = Parser()
    parser.parse(render(first))
    parser.parse(render(second) + noise)
    for text in (render(second), render(first) + noise, render(second).replace(" ", "  ", 3)):
        warm, cold = parser.parse(text), parse(text)
        assert comparable(warm.families) == comparable(cold.families)
        assert [(e.line_no, e.reason) for e in warm.errors] == [(e.line_no, e.reason) for e in cold.errors]
