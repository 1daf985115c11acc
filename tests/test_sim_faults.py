"""Fault requests for the simulated node and the page transformations they cause (pure functions)."""

from __future__ import annotations

import re

import pytest

from fodc.sim.faults import (
    BAD_LINES,
    DEFAULT_DOWN_S,
    DEFAULT_SLOW_DELAY_S,
    DEFAULT_SLOW_READ_DELAY_S,
    PADDING_FAMILY,
    Fault,
    garbage_page,
    garble,
    padding,
    parse_fault,
)
from fodc.sim.page import NodeModel

VALID_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+]+$')


def test_down_lasts_five_seconds_unless_told_otherwise() -> None:
    assert parse_fault({"mode": "down"}, now=100.0) == Fault(mode="down", started_at=100.0,
                                                              duration_s=DEFAULT_DOWN_S)
    assert parse_fault({"mode": "down", "duration": "2.5"}, now=0.0).duration_s == 2.5


def test_down_without_a_positive_duration_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive duration"):
        parse_fault({"mode": "down", "duration": 0}, now=0.0)


def test_slow_has_a_default_delay_and_lasts_until_cleared() -> None:
    fault = parse_fault({"mode": "slow"}, now=10.0)
    assert (fault.delay_s, fault.duration_s) == (DEFAULT_SLOW_DELAY_S, None)
    assert fault.active(now=10.0 + 86_400)


def test_slow_reads_has_a_default_delay_of_its_own() -> None:
    fault = parse_fault({"mode": "slow-reads"}, now=10.0)
    assert (fault.delay_s, fault.duration_s) == (DEFAULT_SLOW_READ_DELAY_S, None)
    assert parse_fault({"mode": "slow-reads", "delay": "0.01"}, now=0.0).delay_s == 0.01


def test_parameters_arrive_as_strings_or_numbers() -> None:
    assert parse_fault({"mode": "slow", "delay": "0.5"}, 0.0) == parse_fault({"mode": "slow", "delay": 0.5}, 0.0)


@pytest.mark.parametrize("params, message", [
    ({"mode": "explode"}, "mode must be one of"),
    ({}, "mode must be one of"),
    ({"mode": "slow", "delay": "soon"}, "delay must be a number"),
    ({"mode": "slow", "delay": -1}, "must not be negative"),
    ({"mode": "garbage", "variant": "artisanal"}, "variant must be one of"),
    ({"mode": "huge", "mb": 0}, "positive mb"),
    ({"mode": "slow-reads", "delay": 0}, "positive delay"),
])
def test_bad_fault_requests_are_rejected(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(params, now=0.0)


def test_a_fault_with_a_duration_clears_itself() -> None:
    fault = parse_fault({"mode": "garbage", "duration": 30}, now=1000.0)
    assert fault.current(now=1029.0) is fault
    assert fault.current(now=1030.0) == Fault()


def test_ok_is_never_active() -> None:
    assert not parse_fault({"mode": "ok"}, now=0.0).active(now=0.0)


def test_garble_keeps_every_valid_line_and_adds_bad_ones() -> None:
    page = NodeModel("liaison", seed=1, start_s=0.0).render(60.0)
    garbled = garble(page, seed=3)
    lines = garbled.splitlines()
    assert set(page.splitlines()) <= set(lines)
    bad = [line for line in lines if line in BAD_LINES]
    assert len(bad) >= len(page.splitlines()) // 60


def test_garble_adds_a_bad_line_even_to_a_tiny_page() -> None:
    assert BAD_LINES[0] in garble("up 1\n").splitlines()


def test_garbage_page_holds_no_valid_sample_line() -> None:
    junk = garbage_page(size=20_000, seed=9)
    assert len(junk) >= 20_000
    assert not [line for line in junk.splitlines() if VALID_SAMPLE.match(line)]


def test_padding_is_a_valid_family_of_about_the_requested_size() -> None:
    extra = padding(2 * 1024 * 1024)
    lines = extra.splitlines()
    assert 0.9 * 2 * 1024 * 1024 <= len(extra) <= 1.1 * 2 * 1024 * 1024
    assert lines[:2] == [f"# HELP {PADDING_FAMILY} {PADDING_FAMILY}", f"# TYPE {PADDING_FAMILY} gauge"]
    assert all(VALID_SAMPLE.match(line) for line in lines[2:])
    assert len(set(lines)) == len(lines)
