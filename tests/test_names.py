"""One name grammar for `fodc window`, `fodc dump` and /metrics-windows: exact names, globs, ~regex, matched
against family and sample names, compiled by RE2."""

from __future__ import annotations

import argparse

import pytest

from fodc.names import NameSelector, combined, name_arg, selection_pattern
from fodc.saferegex import PatternError

HISTOGRAM = [("banyandb_write_latency", s) for s in ("banyandb_write_latency_bucket", "banyandb_write_latency_sum",
                                                     "banyandb_write_latency_count")]
SERIES = [*HISTOGRAM, ("banyandb_up", "banyandb_up"), ("go_goroutines", "go_goroutines")]


def picked(selection):
    selector = NameSelector(selection_pattern(selection))
    return [sample for family, sample in SERIES if selector.matches(family, sample)]


@pytest.mark.parametrize(("selection", "expected"), [
    ("banyandb_write_latency", [s for _, s in HISTOGRAM]),  # a family brings all its samples
    ("banyandb_write_latency_bucket", ["banyandb_write_latency_bucket"]),  # a sample name only itself
    ("banyandb_*_latency_bucket", ["banyandb_write_latency_bucket"]),
    ("~banyandb_.*_latency_bucket", ["banyandb_write_latency_bucket"]),
    ("banyandb_up,go_goroutines", ["banyandb_up", "go_goroutines"]),
    ("banyandb_u?", ["banyandb_up"]), ("go_[gx]oroutines", ["go_goroutines"]), ("go_[!g]oroutines", []),
    ("~banyandb_(up|nothing)", ["banyandb_up"]), ("banyandb", []), ("", [s for _, s in SERIES]),
    ("banyandb_write_latency_bucket.", []),  # a dot in a plain name is a dot, not any character
])
def test_a_selection_means_the_same_everywhere(selection, expected):
    assert picked(selection) == expected


def test_a_family_is_picked_before_decoding_when_one_of_its_samples_may_match():
    selector = NameSelector(selection_pattern("banyandb_*_latency_bucket"))
    assert selector.family_may_match("banyandb_write_latency") and not selector.family_may_match("go_goroutines")


@pytest.mark.parametrize("bad", ["~", "~(", "~(a)\\1", "~" + "a" * 2000])
def test_bad_selections_are_refused_with_the_reason(bad):
    with pytest.raises(PatternError):
        selection_pattern(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="invalid name selection"):
        name_arg(bad)


def test_repeated_selections_add_up():
    selector = NameSelector(combined(["banyandb_up", "~go_.*"]))
    assert [s for f, s in SERIES if selector.matches(f, s)] == ["banyandb_up", "go_goroutines"]
    assert combined([]) is None
