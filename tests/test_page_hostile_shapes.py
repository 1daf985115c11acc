"""Whatever names, types, sample names and labels agents send, the proxy's /metrics page reads in promtool.

Each family of these was once a way for one agent to make Prometheus refuse the whole page (every agent's
lines with it): a family named as a histogram's sample (`x_count` after histogram `x`), a sample named apart
from its family (`x_bucket` under an untyped `x`, then a TYPE of `x_bucket`), a histogram's `le` or a
summary's `quantile` that is not a float, a label `__name__`, a second `fodc_node_id` from moving ours aside.
The agents here answer through the series table and as families, several to one page.
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promcheck import assert_prometheus_reads
from test_series_table import record

from fodc.proxy.exposition import PageWriter
from fodc.proxy.series_table import AgentSeriesTable
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import series_table_pb2 as stpb

BASES = ["x", "x_bucket", "x_count", "x_sum", "x_total", "x_created", "x_info", "x_gsum", "y"]
TYPES = ["counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset", "gaugehistogram",
         "", "weird"]
SUFFIXES = ["", "_bucket", "_count", "_sum", "_total", "_created", "_info", "_gsum", "_gcount"]
labels = st.lists(st.tuples(st.sampled_from(["le", "quantile", "a", "node_id", "fodc_node_id", "node_role",
                                             "__name__"]),
                            st.sampled_from(["1", "+Inf", "abc", "0.5", "", "NaN", "1e999"])),
                  max_size=3, unique_by=lambda pair: pair[0])
series_shape = st.tuples(st.sampled_from(BASES), st.sampled_from(TYPES), st.sampled_from(SUFFIXES), labels,
                         st.sampled_from(["1", "NaN", "+Inf", "-2.5"]))


def table_answer(shapes: list) -> list[pb.MetricsReply]:
    defined = [stpb.SeriesDefinition(id=n, family=base, type=kind, sample_name=base + suffix,
                                     labels=[text for pair in own for text in pair])
               for n, (base, kind, suffix, own, _) in enumerate(shapes)]
    text = "".join(value + "\n" for *_, value in shapes).encode()
    return [pb.MetricsReply(request_id="r", done=True, latest=stpb.LatestSamples(
        table_id=1, ids=list(range(len(shapes))), value_text=text, defined=defined))]


def families_answer(shapes: list) -> list[pb.MetricsReply]:
    return [pb.MetricsReply(request_id="r", done=True, families=[pb.MetricFamily(
        name=base, type=kind, series=[pb.Series(sample_name=base + suffix, values=[float(value)], timestamps_ms=[1],
                                                labels=[pb.Label(name=k, value=v) for k, v in own])])
        for base, kind, suffix, own, value in shapes])]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(series_shape, min_size=1, max_size=5)), min_size=1, max_size=4))
def test_any_agents_shapes_make_a_page_promtool_reads(agents):
    writer = PageWriter()
    page = "".join(
        writer.agent_block(record(f"n{n}"), table_answer(shapes), AgentSeriesTable()) if as_table
        else writer.agent_block(record(f"n{n}"), families_answer(shapes))
        for n, (as_table, shapes) in enumerate(agents))
    assert_prometheus_reads(page, page)
