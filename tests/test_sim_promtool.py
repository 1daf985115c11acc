"""The simulated node's pages checked by Prometheus' own parser and linter (`promtool check metrics`)."""

from __future__ import annotations

import shutil

import pytest
from promcheck import check_metrics

from fodc.sim.faults import garble, padding
from fodc.sim.page import ROLES, NodeModel

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
pytestmark = pytest.mark.skipif(shutil.which(PROMTOOL) is None,
                                reason="promtool not installed (Debian package prometheus)")
START = 1_787_300_000.0
TOTAL_SUFFIX_LINT = 'counter metrics should have "_total" suffix'


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("series", [None, 10_000])
def test_promtool_only_lints_the_missing_total_suffix_of_banyandb_counters(role: str, series) -> None:
    page = NodeModel(role, series, seed=11, start_s=START).render(START + 900)
    code, findings = check_metrics(page)
    assert code == 3, findings
    assert findings
    others = [line for line in findings if not (line.startswith("banyandb_") and TOTAL_SUFFIX_LINT in line)]
    assert others == []


def test_promtool_accepts_a_huge_page() -> None:
    page = NodeModel("datanode-hot", seed=1, start_s=START).render(START + 60) + padding(4 * 1024 * 1024)
    code, findings = check_metrics(page)
    assert code == 3
    assert [line for line in findings if TOTAL_SUFFIX_LINT not in line] == []


def test_promtool_rejects_a_garbled_page() -> None:
    page = garble(NodeModel("liaison", seed=1, start_s=START).render(START + 60))
    code, _ = check_metrics(page)
    assert code == 1
