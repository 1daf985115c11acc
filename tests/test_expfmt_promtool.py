"""Our rendered pages must read cleanly in Prometheus's own checker (promtool, Debian package prometheus)."""

from __future__ import annotations

import shutil

import pytest
from promcheck import check_metrics

from fodc.expfmt import parse, parse_strict, render

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool (Debian package prometheus) not installed")


def test_promtool_finds_only_the_total_suffix_lint_on_a_rendered_banyandb_page():
    from fodc.sim.page import NodeModel

    page = render(parse_strict(NodeModel("datanode-hot", 2000, seed=3).render(1_787_300_000)))
    code, findings = check_metrics(page)
    assert code in (0, 3), findings  # 1 would be a parse error
    assert [f for f in findings if '"_total" suffix' not in f] == []


def test_promtool_parses_a_rendered_page_full_of_escapes_and_openmetrics_types():
    page = ('# HELP req Requests "q" \\\\ x\n# TYPE req counter\n'
            'req_total{path="/a}b,c=d#e \\"q\\" \\\\ \\n",empty=""} 10 1700000000.5 # {trace="t"} 1\n'
            "req_created 1700000000\n# HELP h h\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum NaN\nh_count 2\n# HELP i i\n# TYPE i info\ni_info{v=\"1\"} 1\n# HELP g g\n# TYPE g gaugehistogram\n"
            'g_bucket{le="+Inf"} 1\ng_gsum -Inf\ng_gcount 1\n# EOF\n')
    result = parse(page)
    assert result.errors == []
    code, findings = check_metrics(render(result.families))
    assert code in (0, 3), findings
    assert [f for f in findings if '"_total" suffix' not in f and "counter metrics should" not in f] == []
