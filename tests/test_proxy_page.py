"""The proxy's /metrics page is written on expfmt's rules: OpenMetrics types come out as render() writes them,
every series carries exactly enrich(own labels, node labels), and the page reads cleanly in promtool."""

from __future__ import annotations

import math
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nodepage import node_page
from procs import http_get, start_agent, start_proxy, wait_for
from promcheck import assert_prometheus_reads

from fodc import expfmt
from fodc.enrich import enrich, node_labels
from fodc.model import Address, Registration
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.exposition import PageWriter
from fodc.proxy.registry import ONLINE, AgentRecord, key_of
from fodc.v1 import fodc_pb2 as pb

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool (Debian package prometheus) not installed")

OPENMETRICS_PAGE = (
    "# HELP req Requests served.\n# TYPE req counter\n"
    'req_total{path="/a"} 10 # {trace_id="abc"} 1.0 1700000000.5\n'
    'req_created{path="/a"} 1700000000\n'
    "# HELP build Build facts.\n# TYPE build info\n"
    'build_info{version="1.2",revision="x\\"y"} 1\n'
    "# HELP mode Operating mode.\n# TYPE mode stateset\n"
    'mode{mode="read"} 1\nmode{mode="write"} 0\n'
    "# HELP queue Queue depth now.\n# TYPE queue gaugehistogram\n"
    'queue_bucket{le="1"} 2\nqueue_bucket{le="+Inf"} 3\nqueue_gcount 3\nqueue_gsum 4.5\n'
    "# HELP lat Latency.\n# TYPE lat histogram\n"
    'lat_bucket{le="0.5"} 1\nlat_bucket{le="+Inf"} 2\nlat_sum 0.75\nlat_count 2\nlat_created 1700000000\n'
    "# HELP temp Temperature.\n# TYPE temp gauge\n# UNIT temp celsius\ntemp 21.5\n"
    "# EOF\n")


def record(node_id: str = "n1", role: str = "datanode-hot", labels: dict[str, str] | None = None) -> AgentRecord:
    reg = Registration(node_id=node_id, role=role, primary=Address("10.0.0.1", 1), labels=labels or {})
    return AgentRecord(key_of(reg).agent_id, key_of(reg), reg, ONLINE, 0, 0, 1, {}, {})


def reply_of(families: list[expfmt.Family]) -> pb.MetricsReply:
    """What an agent sends for these families' newest samples (fodc.agent.answer's shape)."""
    return pb.MetricsReply(families=[pb.MetricFamily(name=f.name, type=f.type, help=f.help, unit=f.unit, series=[
        pb.Series(labels=[pb.Label(name=k, value=v) for k, v in s.labels], timestamps_ms=[1], values=[s.value],
                  sample_name=s.name) for s in f.samples]) for f in families])


def text_types(page: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[3] for line in page.splitlines() if line.startswith("# TYPE ")}


def test_openmetrics_families_get_their_text_format_types_on_the_page():
    families = expfmt.parse(OPENMETRICS_PAGE).families
    writer = PageWriter()
    page = writer.agent_block(record("a"), [reply_of(families)])
    page += writer.agent_block(record("b"), [reply_of(families)])
    # Before: "# TYPE req counter" over req_total and req_created, "# TYPE build untyped" over build_info.
    assert text_types(page) == text_types(expfmt.render(families)) == {
        "req_total": "counter", "req_created": "gauge", "build_info": "gauge", "mode": "gauge",
        "queue": "histogram", "queue_gcount": "gauge", "queue_gsum": "gauge", "lat": "histogram",
        "lat_created": "gauge", "temp": "gauge"}
    assert sum(line.startswith("# TYPE ") for line in page.splitlines()) == 10  # once per page, not per agent
    assert 'build_info{revision="x\\"y",version="1.2",node_id="b",node_role="datanode-hot"} 1' in page
    assert writer.series == 2 * 15


@needs_promtool
def test_a_page_of_many_agents_with_openmetrics_families_passes_promtool():
    families = expfmt.parse(OPENMETRICS_PAGE).families
    writer = PageWriter()
    page = "".join(writer.agent_block(record(f"n{i}", labels={"zone": "z"}), [reply_of(families)])
                   for i in range(3))
    assert_prometheus_reads(page)


def test_a_sample_named_like_the_proxys_own_families_is_refused_whatever_its_family():
    refusals = Refusals()
    writer = PageWriter(refusals)
    sneaky = pb.MetricFamily(name="fodc_proxy", type="gauge", series=[
        pb.Series(sample_name="fodc_proxy_agents", values=[9.0], timestamps_ms=[1])])
    honest = pb.MetricFamily(name="fodc_proxyish", type="gauge", series=[pb.Series(values=[1.0], timestamps_ms=[1])])
    page = writer.agent_block(record(), [pb.MetricsReply(families=[sneaky, honest])])
    assert "fodc_proxy_agents" not in page  # before: written as fodc_proxy_agents{node_id=...} 9
    assert "fodc_proxyish{" in page
    assert writer.series == 1


# ---------------------------------------------------------------- properties

label_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in ("le", "quantile"))
label_values = st.text(alphabet=st.sampled_from('ab"\\\n}{,= #😀'), max_size=6)
own_labels = st.dictionaries(label_names | st.sampled_from(["node_id", "node_role", "node_zone"]), label_values,
                             max_size=3)
values = st.floats(allow_nan=True) | st.integers(-2**60, 2**60).map(float)
SAMPLES = {"counter": [["_total", "_created"], [""]], "gauge": [[""]], "untyped": [[""]], "unknown": [[""]],
           "info": [["_info"]], "stateset": [[""]], "histogram": [["_bucket", "_sum", "_count", "_created"]],
           "summary": [["", "_sum", "_count", "_created"]], "gaugehistogram": [["_bucket", "_gsum", "_gcount"]]}


@st.composite
def agent_families(draw) -> list[expfmt.Family]:
    families = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(SAMPLES)))
        suffixes = draw(st.sampled_from(SAMPLES[kind]))
        name = f"f{i}_{draw(st.from_regex(r'[a-z][a-z0-9_]{0,5}', fullmatch=True))}"
        samples = []
        for j in range(draw(st.integers(1, 3))):
            own = draw(own_labels)
            own["i"] = str(j)  # distinct series
            for suffix in suffixes:
                labels = dict(own)
                if suffix == "_bucket":
                    labels["le"] = "+Inf"
                if kind == "stateset":
                    labels[name] = "on"
                samples.append(expfmt.Sample(name + suffix, tuple(sorted(labels.items())), draw(values), None))
        families.append(expfmt.Family(name, kind, draw(label_values), "", samples))
    return families


def normalized(pages: list[str]) -> dict[str, tuple[str, str, list]]:
    """Text family -> (type, help, sorted samples) over several pages, NaN made equal to itself."""
    out: dict[str, tuple[str, str, list]] = {}
    for page in pages:
        result = expfmt.parse(page)
        assert result.errors == [], result.errors[:3]
        for family in result.families:
            entry = out.setdefault(family.name, (family.type, family.help, []))
            entry[2].extend((s.name, s.labels, "nan" if math.isnan(s.value) else s.value) for s in family.samples)
    return {name: (kind, help_text, sorted(samples, key=repr)) for name, (kind, help_text, samples) in out.items()}


@settings(max_examples=150, deadline=None)
@given(agent_families(), st.lists(st.dictionaries(st.sampled_from(["zone", "rack", "type"]), label_values,
                                                  max_size=2), min_size=1, max_size=3))
def test_the_page_is_render_of_the_enriched_families_whatever_the_labels(families, node_label_sets):
    """Every series appears once with exactly enrich(own, node labels) and its value; types and help are
    what expfmt.render writes for the same families."""
    writer = PageWriter()
    ours, expected = [], []
    for n, node_extra in enumerate(node_label_sets):
        agent = record(f"node-{n}", labels=node_extra)
        ours.append(writer.agent_block(agent, [reply_of(families)]))
        added = node_labels(agent.registration.node_id, agent.registration.role, node_extra)
        for family in families:
            enriched = [expfmt.Sample(s.name, enrich(s.labels, added), s.value, None) for s in family.samples]
            expected.append(expfmt.render([expfmt.Family(family.name, family.type, family.help, "", enriched)]))
    assert normalized(["".join(ours)]) == normalized(expected)  # the page is read whole
    assert writer.series == sum(len(f.samples) for f in families) * len(node_label_sets)


# ---------------------------------------------------------------- end to end


@needs_promtool
def test_an_openmetrics_node_through_a_real_agent_and_proxy_reads_cleanly_in_promtool(tmp_path, daemons):
    with node_page(OPENMETRICS_PAGE.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8") as url:
        proxy = start_proxy(tmp_path)
        daemons.append(proxy)
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "om-0", "--node-metrics-url", url,
                                   "--scrape-interval", "1s", "--scrape-timeout", "1s"))

        def page() -> str:
            status, _, body = http_get(f"{proxy.url}/metrics", timeout=30)
            assert status == 200
            return body.decode()
        text = wait_for(lambda: (lambda t: t if "queue_gsum{" in t else None)(page()), timeout=30,
                        what="the node's series on the proxy page")
        types = text_types(text)
        assert {k: types[k] for k in ("req_total", "req_created", "build_info", "mode", "queue", "lat_created")} == {
            "req_total": "counter", "req_created": "gauge", "build_info": "gauge", "mode": "gauge",
            "queue": "histogram", "lat_created": "gauge"}
        assert "req" not in types and "build" not in types
        assert 'req_total{path="/a",node_id="om-0",node_role="datanode-hot"} 10\n' in text
        assert "trace_id" not in text  # exemplars are not part of text 0.0.4
        assert_prometheus_reads(text)
