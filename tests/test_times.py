"""The one time grammar of the CLI and the API: every form, told apart by shape, and clear refusals."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from fodc.jsonvalue import json_value
from fodc.times import BadTime, age, compact_utc, now_ms, parse_time_ms, show_time, time_arg

NOW = 1_796_398_800_000  # 2026-12-04T15:40:00Z


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", NOW - 90_000), ("15m", NOW - 900_000), ("2h", NOW - 7_200_000), ("7d", NOW - 7 * 86_400_000),
    ("1h30m", NOW - 5_400_000), ("250ms", NOW - 250), ("now", NOW),
    ("1796398800", NOW), ("1796398800.5", NOW + 500), ("1796398800000", NOW),
    ("2026-12-04T15:40:00Z", NOW), ("2026-12-04T16:40:00+01:00", NOW), ("2026-12-04t15:40:00z", NOW),
    ("0", 0),
])
def test_every_form_means_one_time(text, expected):
    assert parse_time_ms(text, "start", now_ms=NOW) == expected


def test_a_bare_unix_time_is_a_time_not_a_duration_ago():
    """The bug this grammar ends: `--since 1796398800` once meant 1.8 billion seconds ago in `fodc window`."""
    assert parse_time_ms("1796398800", now_ms=NOW + 60_000) == NOW


@pytest.mark.parametrize("text", ["yesterday", "10 m", "2026-12-04T16:20:00", "-5m", "1e3", "99999999999999999",
                                  "9" * 70, "", "5x"])
def test_other_text_is_refused_naming_the_parameter(text):
    with pytest.raises(BadTime, match="end"):
        parse_time_ms(text, "end", now_ms=NOW)


def test_the_cli_type_is_a_usage_error():
    with pytest.raises(argparse.ArgumentTypeError, match="RFC 3339"):
        time_arg("ten minutes")


def test_times_print_as_rfc3339_local_or_raw():
    assert show_time(NOW) == "2026-12-04T15:40:00Z"
    assert show_time("2026-12-04T16:20:00.123Z", precise=True) == "2026-12-04T16:20:00.123Z"
    assert show_time(NOW, epoch_ms=True) == str(NOW)
    assert show_time(NOW, local=True)[:4] == "2026" and show_time(None) == "-"


def test_ages_read_as_people_say_them():
    assert [age(NOW - d, NOW) for d in (40_000, 180_000, 7_300_000, 5 * 86_400_000, -120_000)] == [
        "40s ago", "3m ago", "2h ago", "5d ago", "in 2m"]


def test_now_is_the_wall_clock_in_milliseconds():
    before = int(time.time() * 1000)
    assert before <= now_ms() <= int(time.time() * 1000)


def test_a_compact_stamp_is_the_utc_second_and_sorts_as_text():
    assert compact_utc(1_764_883_200_999) == "20251204T212000Z"
    assert compact_utc(0) == "19700101T000000Z"
    stamps = [compact_utc(ms) for ms in (1_000_000_000_000, 999_999_999_000, 1_796_398_800_000)]
    assert sorted(stamps) == [stamps[1], stamps[0], stamps[2]]


def test_non_finite_values_are_spelled_as_the_exposition_format_does():
    values = [1.5, 0.0, -2.0, float("nan"), float("inf"), float("-inf")]
    assert [json_value(v) for v in values] == [1.5, 0.0, -2.0, "NaN", "+Inf", "-Inf"]
    assert json.dumps([json_value(v) for v in values], allow_nan=False) == (
        '[1.5, 0.0, -2.0, "NaN", "+Inf", "-Inf"]')
