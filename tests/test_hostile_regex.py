"""Regular expressions from clients: RE2 only, so no pattern can wedge an agent or the proxy (issue 16, item 1)."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from attack import start_small_cluster, window_covers
from procs import http_json

from fodc.saferegex import MAX_PATTERN_CHARS, PatternError, compile_pattern

EVIL = r"(\w+)+X"  # exponential for a backtracking engine on any name of word characters


def test_a_catastrophic_pattern_matches_a_long_name_in_linear_time():
    started = time.monotonic()
    assert compile_pattern(EVIL).fullmatch("banyandb_" + "a" * 200_000) is None
    assert time.monotonic() - started < 5  # a backtracking engine would not finish at all


@pytest.mark.parametrize("pattern, reason", [
    ("(a", "missing )"),
    (r"(a)\1", "invalid escape"),  # backreferences need backtracking
    ("(?=a)b", "invalid perl operator"),  # so does look-ahead
    ("a{1000}{1000}", "repetition"),
    ("x" * (MAX_PATTERN_CHARS + 1), f"at most {MAX_PATTERN_CHARS}"),
])
def test_patterns_re2_cannot_run_safely_are_refused_with_one_line(pattern, reason):
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = start_small_cluster(tmp_path_factory.mktemp("regex"), agents=2, proxy_args=("--metrics-timeout", "8s"))
    yield cluster
    cluster.stop()


@pytest.mark.parametrize("query", [f"name_regex={urllib.parse.quote(EVIL)}", f"name=~{urllib.parse.quote(EVIL)}",
                                   f"role=liaison&name_regex={urllib.parse.quote('(.*a){20}')}"])
def test_a_catastrophic_pattern_is_answered_and_no_agent_wedges(cluster, query):
    status, body = http_json(f"{cluster.proxy.url}/metrics-windows?{query}", timeout=30)
    assert status == 200, body
    assert body["missing_agents"] == [] and body["agents_answered"] == 2
    for agent in cluster.agents:
        status, health = http_json(f"{agent.url}/health", timeout=5)
        assert status == 200 and health["proxy"]["state"] == "registered"
    assert all(window_covers(a, 2) for a in cluster.agents)


def test_a_pattern_re2_refuses_is_a_400_naming_it(cluster):
    backreference = urllib.parse.quote(r"(a)\1")
    status, body = http_json(f"{cluster.proxy.url}/metrics-windows?name_regex={backreference}")
    assert status == 400 and "name_regex" in body["message"] and "invalid escape" in body["message"]


def test_a_selective_pattern_still_selects(cluster):
    status, body = http_json(f"{cluster.proxy.url}/metrics-windows?name_regex=banyandb_system_cpu_.*")
    assert status == 200 and body["series"]
    assert {s["family"] for s in body["series"]} == {"banyandb_system_cpu_state"}
