"""Agents that send forged exposition, endless replies, huge registrations or made-up triggers: the proxy's
/metrics stays valid and bounded, and only the offender loses (issue 16, items 9, 10, 12 and 13)."""

from __future__ import annotations

import shutil
import time

import grpc
import pytest
from procs import http_get, start_proxy, wait_for
from promcheck import assert_prometheus_reads
from rogue import RogueAgent, gauge, metrics_reply, refused, registration

from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import series_table_pb2 as stpb


@pytest.fixture
def rogues():
    made: list[RogueAgent] = []
    yield made
    for rogue in made:
        rogue.close()


def enrolled(proxy, rogues, node_id: str, answer=None, **fields) -> RogueAgent:
    rogue = RogueAgent(proxy.grpc_addr)
    rogues.append(rogue)
    result = rogue.register(registration(node_id, port=20000 + len(rogues), **fields))
    assert result.accepted, result.error
    if answer is not None:
        rogue.serve_metrics(answer)
    return rogue


def page(proxy, query: str = "") -> str:
    status, _, body = http_get(f"{proxy.url}/metrics{query}", timeout=60)
    assert status == 200
    return body.decode()




@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_forged_exposition_is_dropped_and_the_page_stays_valid(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    forged = 'x 1\nfodc_proxy_agents{status="online"} 12345\n# HELP y'

    def answer(request):
        return [metrics_reply(request, [
            gauge("honest_gauge", 1.0, {"path": '/a"b\\c\nd'}, help_text="line one\nline two \\ end"),
            gauge(forged, 2.0),
            gauge("bad_label", 3.0, {'le"} 9\nfodc_proxy_agents{status': "x"}),
            pb.MetricFamily(name="sneaky", type="gauge", series=[pb.Series(
                sample_name="fodc_proxy_agents", values=[4.0], timestamps_ms=[1])]),
            gauge("fodc_proxy_agents", 5.0),
        ])]
    enrolled(proxy, rogues, "forger", answer)
    text = page(proxy)
    assert [ln for ln in text.splitlines() if "12345" in ln] == [] and 'fodc_proxy_agents{status="online"} 1.0' in text
    assert 'honest_gauge{path="/a\\"b\\\\c\\nd",node_id="forger",node_role="liaison"} 1' in text
    assert "# HELP honest_gauge line one\\nline two \\\\ end" in text
    assert "sneaky" not in text  # a family with nothing valid leaves no HELP/TYPE behind
    assert_prometheus_reads(text)
    assert refused(proxy, "exposition") == 4


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_a_family_named_as_a_histograms_or_summarys_sample_is_left_out_and_the_page_stays_valid(
        tmp_path, daemons, rogues):
    """A gauge `lat_count` after histogram `lat` (or `rt_sum` after summary `rt`) on the page: Prometheus's
    parser reads its TYPE line as a second one of `lat` and refuses the whole page, every agent's lines with
    it; the gauges go (counted), the histogram and summary stay."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)

    def shadowing(request):
        return [metrics_reply(request, [
            pb.MetricFamily(name="lat", type="histogram", series=[
                pb.Series(sample_name=name, labels=labels, values=[1.0], timestamps_ms=[1])
                for name, labels in (("lat_bucket", [pb.Label(name="le", value="+Inf")]), ("lat_count", []),
                                     ("lat_sum", []))]),
            pb.MetricFamily(name="rt", type="summary", series=[
                pb.Series(sample_name="rt_sum", values=[2.0], timestamps_ms=[1])]),
            gauge("lat_count", 3.0), gauge("lat_bucket", 4.0), gauge("rt_sum", 5.0), gauge("rt_total", 6.0)])]
    enrolled(proxy, rogues, "shadow", shadowing)
    text = page(proxy)
    assert "# TYPE lat histogram" in text and "# TYPE rt summary" in text and "# TYPE rt_total gauge" in text
    assert "# TYPE lat_count" not in text and "# TYPE lat_bucket" not in text and "# TYPE rt_sum" not in text
    assert_prometheus_reads(text)
    assert refused(proxy, "exposition") == 3


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_a_bucket_bound_or_quantile_that_is_not_a_float_costs_only_its_series(tmp_path, daemons, rogues):
    """Prometheus's parser reads a histogram's `le` and a summary's `quantile` as floats and refuses the whole
    page when one is not (`le="abc"`, `1e999`, Python's `1_0`): only those series are left out (counted),
    through the series table and the families alike, also a gauge written under a histogram of its name."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    bounds = ["abc", "1e999", "1_0", " 1", "0x1p3", "+Inf", "1e3", ".5", "NaN", "-inf"]  # the last five read

    def table(request):
        return [pb.MetricsReply(request_id=request.request_id, done=True, latest=stpb.LatestSamples(
            table_id=5, ids=list(range(len(bounds) + 1)), value_text=b"1\n" * (len(bounds) + 1), defined=[
                *(stpb.SeriesDefinition(id=n, family="tb", type="histogram", sample_name="tb_bucket",
                                        labels=["le", bound]) for n, bound in enumerate(bounds)),
                stpb.SeriesDefinition(id=len(bounds), family="ts", type="summary", labels=["quantile", "high"])]))]

    def families(request):
        def series(sample, label, value):
            return pb.Series(sample_name=sample, labels=[pb.Label(name=label, value=value)], values=[1.0],
                             timestamps_ms=[1])
        return [metrics_reply(request, [
            pb.MetricFamily(name="fb", type="histogram", series=[series("fb_bucket", "le", "NaNx"),
                                                                 series("fb_bucket", "le", "2")]),
            pb.MetricFamily(name="fb", type="gauge", series=[series("fb", "le", "abc")]),
            pb.MetricFamily(name="fs", type="summary", series=[series("fs_sum", "quantile", "1,5")])])]
    enrolled(proxy, rogues, "table", table)
    enrolled(proxy, rogues, "families", families)
    text = page(proxy)
    def first_labels(prefix):
        return sorted(line.split("{")[1].split(",")[0] for line in text.splitlines() if line.startswith(prefix))
    assert first_labels("tb_bucket") == sorted(f'le="{bound}"' for bound in bounds[5:])
    assert first_labels("fb") == ['le="2"']
    assert "\nts{" not in text and "fs_sum" not in text
    assert_prometheus_reads(text)
    assert refused(proxy, "exposition") == 5 + 1 + 3


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_own_labels_named_like_ours_moved_aside_keep_the_page_valid(tmp_path, daemons, rogues):
    """A series with its own `node_id` and `fodc_node_id` got the proxy's node_id as a second `fodc_node_id`:
    a label name twice on one line, and Prometheus refused the whole page, every agent's lines with it."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)

    def table(request):
        return [pb.MetricsReply(request_id=request.request_id, done=True, latest=stpb.LatestSamples(
            table_id=5, ids=[0], value_text=b"1\n", defined=[stpb.SeriesDefinition(
                id=0, family="tg", type="gauge", labels=["node_id", "a", "fodc_node_id", "b"])]))]
    enrolled(proxy, rogues, "table", table)
    enrolled(proxy, rogues, "families", lambda request: [metrics_reply(request, [
        gauge("fg", 2.0, {"node_role": "r", "fodc_node_role": "s"})])])
    text = page(proxy)
    assert 'tg{fodc_fodc_node_id="table",fodc_node_id="b",node_id="a",node_role="liaison"} 1\n' in text
    assert 'fg{fodc_fodc_node_role="liaison",fodc_node_role="s",node_id="families",node_role="r"} 2\n' in text
    assert_prometheus_reads(text)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_values_as_text_beyond_the_largest_float_cost_only_their_agent(tmp_path, daemons, rogues):
    """`1e+400` is in the value grammar's shape but overflows: one such value on the page made promtool (and
    Prometheus) refuse the whole page, every agent's metrics with it (only e+3xx exponents were checked)."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)

    def overflowing(request):
        return [pb.MetricsReply(request_id=request.request_id, done=True, latest=stpb.LatestSamples(
            table_id=5, ids=[0, 1], value_text=b"1\n-2.5e+400\n", defined=[
                stpb.SeriesDefinition(id=n, family="huge_gauge", type="gauge", labels=["i", str(n)])
                for n in (0, 1)]))]
    enrolled(proxy, rogues, "overflow", overflowing)
    enrolled(proxy, rogues, "honest", lambda request: [metrics_reply(request, [gauge("honest_gauge", 1.0)])])
    text = page(proxy)
    assert 'honest_gauge{node_id="honest",node_role="liaison"} 1' in text and "huge_gauge" not in text
    assert 'fodc_proxy_agent_missing{endpoint="metrics",node_id="overflow",node_role="liaison"} 1' in text
    assert_prometheus_reads(text)
    assert refused(proxy, "series_table") == 1


def test_an_endless_reply_is_cut_off_at_the_reply_cap(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path, "--max-reply-bytes", "2MiB", "--max-request-bytes", "64MiB")
    daemons.append(proxy)
    filler = [pb.MetricFamily(name="filler", type="gauge", series=[pb.Series(
        labels=[pb.Label(name="i", value=f"{i:06d}" + "x" * 100)], values=[1.0], timestamps_ms=[1])
        for i in range(8000)])]  # about 1 MiB a chunk

    def endless(request):  # 30 chunks, never `done`
        return [metrics_reply(request, filler, done=False, seq=seq) for seq in range(30)]
    enrolled(proxy, rogues, "endless", endless)
    enrolled(proxy, rogues, "honest", lambda request: [metrics_reply(request, [gauge("honest_gauge", 1.0)])])
    text = page(proxy)
    assert 'honest_gauge{node_id="honest",node_role="liaison"} 1' in text
    assert "filler" not in text  # what it sent before the cap is left out too: all of an agent, or nothing
    assert 'fodc_proxy_agent_missing{endpoint="metrics",node_id="endless",node_role="liaison"} 1' in text
    assert refused(proxy, "oversized_reply") == 1
    assert "reply larger than 2097152 bytes" in proxy.log()


def test_too_many_series_in_a_reply_and_in_a_request_are_cut_off(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path, "--max-reply-series", "1000", "--max-request-bytes", "3MiB")
    daemons.append(proxy)

    def series(count, width=0):
        return lambda request: [metrics_reply(request, [pb.MetricFamily(name="many", type="gauge", series=[
            pb.Series(labels=[pb.Label(name="i", value=f"{i}" + "y" * width)], values=[1.0], timestamps_ms=[1])
            for i in range(count)])])]
    enrolled(proxy, rogues, "wide", series(5000))
    enrolled(proxy, rogues, "values-only", lambda request: [pb.MetricsReply(  # ids left out: its values count
        request_id=request.request_id, done=True, latest=stpb.LatestSamples(table_id=3, ids_digest=7,
                                                                           value_text=b"1\n" * 5000))])
    for n in range(4):  # 4 x ~1 MiB: more than the request's 3 MiB in all
        enrolled(proxy, rogues, f"big-{n}", series(900, 1100))
    text = page(proxy)
    assert 'fodc_proxy_agent_missing{endpoint="metrics",node_id="wide",node_role="liaison"} 1' in text
    assert 'fodc_proxy_agent_missing{endpoint="metrics",node_id="values-only",node_role="liaison"} 1' in text
    assert "more than 1000 series" in proxy.log()
    assert refused(proxy, "series_table") == 0  # cut off by the cap as it came, not read whole and refused
    missing = [n for n in range(4) if f'fodc_proxy_agent_missing{{endpoint="metrics",node_id="big-{n}"' in text]
    assert 1 <= len(missing) < 4 and "exceed the request's cap of 3145728 bytes" in proxy.log()


def test_oversized_registrations_and_heartbeats_are_refused(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    attempts = {
        "hostname": {"hostname": "h" * 300},
        "capabilities": {"capabilities": {f"c{i}": "on" for i in range(100)}},
        "secondary": {"secondary": {f"s{i}": pb.Address(ip="10.0.0.1", port=1) for i in range(40)}},
        "agent_version": {"agent_version": "v" * 1000},
    }
    for what, fields in attempts.items():
        rogue = RogueAgent(proxy.grpc_addr)
        rogues.append(rogue)
        result = rogue.register(registration(f"huge-{what}", port=21000 + len(rogues), **fields))
        assert not result.accepted and what in result.error, (what, result.error)
    rogue = enrolled(proxy, rogues, "chatty")
    rogue.control.send(pb.AgentMessage(heartbeat=pb.Heartbeat(runtime={f"k{i}": "v" for i in range(500)})))
    assert rogue.control.wait_ended(10)
    assert rogue.control.code == grpc.StatusCode.INVALID_ARGUMENT and "runtime" in rogue.control.details
    wait_for(lambda: proxy.cluster(status="online") == [], what="the chatty agent no longer online")
    assert refused(proxy, "registration") == 4 and refused(proxy, "heartbeat") == 1


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_a_sample_named_apart_from_its_family_is_left_out_and_the_page_stays_valid(tmp_path, daemons, rogues):
    """Under `# TYPE x untyped` a sample `x_bucket` is a family of its own to Prometheus's parser (untyped), so
    a later `# TYPE x_bucket` (another agent's) was a second TYPE line and the whole page was refused; and
    `xq_count{quantile="abc"}` under `xq_c` landed in summary `xq`; and a summary `g2` after a gauge `g2` had its
    `g2_sum` read as a family of its own before gauge `g2_sum`'s TYPE. Those series are left out (counted); the
    samples a histogram or summary owns stay."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)

    def table(request):
        return [pb.MetricsReply(request_id=request.request_id, done=True, latest=stpb.LatestSamples(
            table_id=5, ids=list(range(6)), value_text=b"1\n2\n3\n4\n5\n6\n", defined=[
                stpb.SeriesDefinition(id=0, family="x", type="untyped", sample_name="x_bucket"),
                stpb.SeriesDefinition(id=1, family="xq", type="summary", sample_name="xq_count"),
                stpb.SeriesDefinition(id=2, family="xq_c", type="gauge", sample_name="xq_count",
                                      labels=["quantile", "abc"]),
                stpb.SeriesDefinition(id=3, family="g2", type="gauge"),
                stpb.SeriesDefinition(id=4, family="g2", type="summary", sample_name="g2_sum"),
                stpb.SeriesDefinition(id=5, family="g2_sum", type="gauge")]))]
    enrolled(proxy, rogues, "table", table)
    enrolled(proxy, rogues, "families", lambda request: [metrics_reply(request, [gauge("x_bucket", 7.0)])])
    text = page(proxy)
    assert 'xq_count{node_id="table",node_role="liaison"} 2\n' in text and "abc" not in text
    assert 'x_bucket{node_id="families",node_role="liaison"} 7\n' in text and 'x_bucket{node_id="table"' not in text
    assert 'g2{node_id="table",node_role="liaison"} 4\n' in text
    assert 'g2_sum{node_id="table",node_role="liaison"} 6\n' in text  # the gauge, not the summary's
    assert_prometheus_reads(text)
    assert refused(proxy, "exposition") == 3


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_a_series_labelled_name_is_left_out_and_the_page_stays_valid(tmp_path, daemons, rogues):
    """A label named `__name__` (the metric name's own label, reserved) made Prometheus's parser refuse the whole
    page; only that series goes (counted), through the series table and the families alike."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)

    def table(request):
        return [pb.MetricsReply(request_id=request.request_id, done=True, latest=stpb.LatestSamples(
            table_id=5, ids=[0, 1], value_text=b"1\n2\n", defined=[
                stpb.SeriesDefinition(id=0, family="tn", type="gauge", labels=["__name__", "fodc_proxy_agents"]),
                stpb.SeriesDefinition(id=1, family="tn", type="gauge", labels=["__meta", "kept"])]))]
    enrolled(proxy, rogues, "table", table)
    enrolled(proxy, rogues, "families", lambda request: [metrics_reply(request, [
        gauge("fn", 3.0, {"__name__": "x"}), gauge("fk", 4.0)])])
    text = page(proxy)
    assert "__name__" not in text and 'tn{__meta="kept",' in text and 'fk{node_id="families"' in text
    assert_prometheus_reads(text)
    assert refused(proxy, "exposition") == 2


def test_a_node_label_name_ending_in_a_newline_is_refused_at_registration(tmp_path, daemons, rogues):
    """`zone\n` passed the label-name check (`$` matches before a final newline): `node_zone\n="a"` on every
    line of that agent broke them in two, and Prometheus refused the whole page."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    rogue = RogueAgent(proxy.grpc_addr)
    rogues.append(rogue)
    result = rogue.register(registration("newline", port=21001, labels={"zone\n": "a"}))
    assert not result.accepted and "invalid label 'zone\\n'" in result.error, result.error
    enrolled(proxy, rogues, "honest", lambda request: [metrics_reply(request, [gauge("honest_gauge", 1.0)])],
             labels={"zone": "a"})
    assert 'honest_gauge{node_id="honest",node_role="liaison",node_zone="a"} 1\n' in page(proxy)
    assert refused(proxy, "registration") == 1


def test_incident_triggers_are_bounded_and_go_with_their_agent(tmp_path, daemons, rogues):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    rogue = enrolled(proxy, rogues, "exploder", agent_started_unix_ms=int(time.time() * 1000))
    counts = {"node-down": 2, **{f"rule:r{i}": 1 for i in range(40)}, **{f"made-up-{i}": 1 for i in range(200)}}
    for _ in range(3):
        rogue.heartbeat(incidents_total=counts)

    def incident_series():
        return [line for line in page(proxy, "?role=datanode-cold").splitlines()
                if line.startswith("fodc_incidents_total{")]
    series = incident_series()
    assert 'fodc_incidents_total{node_id="exploder",node_role="liaison",trigger="node-down"} 2.0' in series
    assert len(series) == 1 + 32  # node-down and the first 32 rule triggers of this agent
    assert not any("made-up" in line for line in series)
    assert refused(proxy, "trigger") >= 200 + 8
    rogue.control.send(pb.AgentMessage(goodbye=pb.Goodbye(reason="done")))
    assert rogue.control.wait_ended(10)
    wait_for(lambda: incident_series() == [], what="the agent's trigger series gone with it")
