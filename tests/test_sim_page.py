"""The simulated node's page model: series set, naming contract and how values move with time."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from fodc.sim.page import DEFAULT_SERIES, LATENCY_BUCKETS, ROLES, NodeModel

START = 1_787_300_000.0  # 2026-08-21, a fixed "process start" so pages are reproducible
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
DATA_ROLES = [role for role in ROLES if role != "liaison"]


def parse(page: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """(help by family, type by family, samples as (name, labels, value)); fails on any unknown line."""
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    for line in page.splitlines():
        if line.startswith("# HELP "):
            name, _, text = line[7:].partition(" ")
            helps[name] = text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            samples.append((match[1], dict(LABEL.findall(match[2] or "")), float(match[3])))
    return helps, types, samples


def keyed(samples: list[tuple[str, dict[str, str], float]]) -> dict[tuple, float]:
    return {(name, tuple(sorted(labels.items()))): value for name, labels, value in samples}


def family_of(sample_name: str, types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name.removesuffix(suffix)
        if base != sample_name and types.get(base) in ("histogram", "summary"):
            return base
    return sample_name


def counter_like(samples, types) -> dict[tuple, float]:
    """Every sample that must never decrease: counters plus histogram/summary buckets, sums and counts."""
    out = {}
    for name, labels, value in samples:
        family = family_of(name, types)
        kind = types[family]
        if kind == "counter" or (kind in ("histogram", "summary") and name != family):
            out[(name, tuple(sorted(labels.items())))] = value
    return out


@pytest.fixture(scope="module")
def pages() -> dict[str, tuple]:
    return {role: parse(NodeModel(role, seed=7, start_s=START).render(START + 600)) for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", [None, 5000, 10000])
def test_series_count_is_near_the_target(role: str, target: int | None) -> None:
    model = NodeModel(role, target, seed=1, start_s=START)
    _, _, samples = parse(model.render(START + 60))
    expected = target or DEFAULT_SERIES[role]
    assert len(samples) == model.series_count
    assert abs(len(samples) - expected) <= 0.1 * expected


def test_liaison_and_data_nodes_expose_different_families(pages) -> None:
    liaison = set(pages["liaison"][1])
    data = set(pages["datanode-hot"][1])
    assert "banyandb_liaison_grpc_total_started" in liaison - data
    assert "banyandb_queue_pub_total_latency" in liaison - data
    assert {"banyandb_measure_total_file_parts", "banyandb_stream_total_written",
            "banyandb_trace_total_written"} <= data - liaison


def test_data_tiers_share_families_but_lay_out_segments_differently(pages) -> None:
    def segs(role: str) -> set[str]:
        return {labels["seg"] for _, labels, _ in pages[role][2] if "seg" in labels}

    assert set(pages["datanode-hot"][1]) == set(pages["datanode-cold"][1])
    assert len(segs("datanode-hot")) < len(segs("datanode-warm")) < len(segs("datanode-cold"))


@pytest.mark.parametrize("role", ROLES)
def test_every_family_has_a_type_and_banyandb_help_equals_the_name(role: str, pages) -> None:
    helps, types, samples = pages[role]
    assert set(helps) == set(types)
    for name in helps:
        if name.startswith("banyandb_"):
            assert helps[name] == name
    assert {family_of(name, types) for name, _, _ in samples} == set(types)


@pytest.mark.parametrize("role", ROLES)
def test_banyandb_counters_carry_no_total_suffix(role: str, pages) -> None:
    _, types, _ = pages[role]
    counters = [name for name, kind in types.items() if kind == "counter" and name.startswith("banyandb_")]
    assert counters
    assert not [name for name in counters if name.endswith("_total")]


@pytest.mark.parametrize("role", DATA_ROLES)
def test_shard_gauges_carry_group_seg_and_shard_labels(role: str, pages) -> None:
    _, types, samples = pages[role]
    parts = [labels for name, labels, _ in samples if name == "banyandb_measure_total_file_parts"]
    assert types["banyandb_measure_total_file_parts"] == "gauge"
    assert parts
    for labels in parts:
        assert set(labels) == {"group", "seg", "shard"}
        assert re.fullmatch(r"20\d{6}", labels["seg"])
        assert labels["shard"].isdigit()


def test_segments_end_on_the_start_day() -> None:
    _, _, samples = parse(NodeModel("datanode-warm", seed=1, start_s=START).render(START))
    segs = sorted({labels["seg"] for _, labels, _ in samples if "seg" in labels})
    assert segs[-1] == "20260821"
    assert len(segs) == 7


def test_liaison_examples_from_upstream_are_present(pages) -> None:
    _, types, samples = pages["liaison"]
    started = next(labels for name, labels, _ in samples if name == "banyandb_liaison_grpc_total_started")
    assert set(started) == {"group", "service", "method"}
    bucket = next(labels for name, labels, _ in samples if name == "banyandb_queue_pub_total_latency_bucket")
    assert set(bucket) == {"operation", "group", "remote_node", "remote_role", "remote_tier", "le"}
    assert types["banyandb_queue_pub_total_latency"] == "histogram"


@pytest.mark.parametrize("role", ROLES)
def test_system_go_and_process_families_are_present(role: str, pages) -> None:
    _, types, samples = pages[role]
    for name in ("banyandb_system_cpu_state", "banyandb_system_memory_state", "banyandb_system_disk",
                 "banyandb_memory_protector_cgroup_limit_bytes", "go_goroutines", "go_gc_duration_seconds",
                 "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_start_time_seconds"):
        assert name in types, name
    disk = next(labels for name, labels, _ in samples if name == "banyandb_system_disk")
    assert set(disk) == {"path", "kind"}


@pytest.mark.parametrize("role", ROLES)
def test_histogram_buckets_are_cumulative_and_inf_equals_count(role: str, pages) -> None:
    _, types, samples = pages[role]
    series: dict[tuple, dict[str, float]] = defaultdict(dict)
    counts: dict[tuple, float] = {}
    for name, labels, value in samples:
        family = family_of(name, types)
        if types[family] != "histogram":
            continue
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        if name.endswith("_bucket"):
            series[(family, rest)][labels["le"]] = value
        elif name.endswith("_count"):
            counts[(family, rest)] = value
    assert series
    expected_les = [f"{le:g}" for le in LATENCY_BUCKETS] + ["+Inf"]
    for key, buckets in series.items():
        assert list(buckets) == expected_les
        values = list(buckets.values())
        assert values == sorted(values), key
        assert buckets["+Inf"] == counts[key]


@pytest.mark.parametrize("role", ROLES)
def test_counters_and_buckets_never_decrease_over_time(role: str) -> None:
    model = NodeModel(role, seed=3, start_s=START)
    earlier = None
    for elapsed in (0, 1, 15, 16, 300, 3600, 86_400):
        _, types, samples = parse(model.render(START + elapsed))
        now = counter_like(samples, types)
        if earlier is not None:
            assert all(now[key] >= value for key, value in earlier.items())
        earlier = now


def test_scrapes_15s_apart_differ_while_many_series_stay_put() -> None:
    model = NodeModel("datanode-hot", seed=5, start_s=START)
    first = keyed(parse(model.render(START + 600))[2])
    second = keyed(parse(model.render(START + 615))[2])
    changed = sum(1 for key, value in first.items() if second[key] != value)
    assert first.keys() == second.keys()
    assert 0.2 * len(first) < changed < 0.9 * len(first)


def test_counters_grow_by_varying_increments() -> None:
    model = NodeModel("liaison", seed=2, start_s=START)
    key = None
    values = []
    for elapsed in range(0, 300, 15):
        samples = keyed(parse(model.render(START + elapsed))[2])
        key = key or next(k for k in samples if k[0] == "banyandb_liaison_grpc_total_started")
        values.append(samples[key])
    increments = {b - a for a, b in zip(values, values[1:], strict=False)}
    assert all(step >= 0 for step in increments)
    assert len(increments) > 3


def test_large_gauges_move_slowly() -> None:
    model = NodeModel("datanode-warm", seed=4, start_s=START)
    _, types, first = parse(model.render(START + 1000))
    second = keyed(parse(model.render(START + 1015))[2])
    changes = sorted(
        abs(second[(name, tuple(sorted(labels.items())))] - value) / value
        for name, labels, value in first
        if types.get(name) == "gauge" and value > 1000
    )
    assert changes
    assert changes[len(changes) // 2] < 0.02


def test_same_seed_gives_the_same_page_and_another_seed_a_different_one() -> None:
    def page(seed: int) -> str:
        return NodeModel("datanode-hot", seed=seed, start_s=START).render(START + 42)

    assert page(1) == page(1)
    assert page(1) != page(2)


def test_reset_restarts_counters_from_zero_and_moves_the_start_time() -> None:
    model = NodeModel("datanode-hot", seed=1, start_s=START)
    _, types, before = parse(model.render(START + 900))
    model.reset(START + 900)
    _, _, after = parse(model.render(START + 901))
    before_counters, after_counters = counter_like(before, types), counter_like(after, types)
    assert sum(after_counters.values()) < sum(before_counters.values())
    assert all(after_counters[key] <= value for key, value in before_counters.items())
    start_before = keyed(before)[("process_start_time_seconds", ())]
    start_after = keyed(after)[("process_start_time_seconds", ())]
    assert (start_before, start_after) == (START, START + 900)
    assert model.restarts == 1


def test_render_before_the_start_time_shows_a_fresh_process() -> None:
    model = NodeModel("liaison", seed=1, start_s=START)
    assert model.render(START - 10) == model.render(START)


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        NodeModel("datanode-lukewarm")
