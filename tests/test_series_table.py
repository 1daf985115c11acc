"""The /metrics series table (proto/fodc/v1/series_table.proto): an agent defines each series once, then sends
ids and values; the page the proxy writes from it is exactly the page it writes from full families, and an
answer that does not fit the proxy's table costs only that agent's answer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fodc import expfmt
from fodc.agent.answer import chunk_replies, select_series
from fodc.agent.series_table import SeriesTable
from fodc.model import Address, Registration
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.exposition import PageWriter
from fodc.proxy.registry import ONLINE, AgentRecord, key_of
from fodc.proxy.series_table import MAX_TABLE_IDS, AgentSeriesTable, TableMismatch
from fodc.series_digest import ids_digest
from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import series_table_pb2 as stpb
from fodc.window import FlightRecorder, SeriesWindow


def record(node_id: str = "n1", labels: dict[str, str] | None = None) -> AgentRecord:
    reg = Registration(node_id=node_id, role="liaison", primary=Address("10.0.0.1", 1), labels=labels or {})
    return AgentRecord(key_of(reg).agent_id, key_of(reg), reg, ONLINE, 0, 0, 1, {}, {})


def window(family: str, kind: str, sample: str, labels: dict[str, str], value: float, help_text: str = "h"
           ) -> SeriesWindow:
    return SeriesWindow(sample, tuple(sorted(labels.items())), kind, help_text, "", "node", [1], [value], family)


PAGE = [window("req", "counter", "req_total", {"path": "/a"}, 10), window("req", "counter", "req_created",
        {"path": "/a"}, 1.7e9), window("req", "counter", "req_total", {"path": '/b"\n'}, 11),
        window("req", "counter", "req_created", {"path": '/b"\n'}, 1.7e9),
        window("up", "gauge", "up", {}, 1), window("clash", "gauge", "clash", {"node_id": "own", "x": "1"}, 2.5),
        window("build", "info", "build_info", {"version": "1"}, 1),
        window("lat", "histogram", "lat_bucket", {"le": "+Inf"}, 3),
        window("lat", "histogram", "lat_sum", {}, math.nan)]


def table_answer(agent_table: SeriesTable, series: list[SeriesWindow], held: stpb.SeriesTableState,
                 max_bytes: int = 1 << 20) -> list[pb.MetricsReply]:
    return list(agent_table.replies("r1", series, held, max_bytes))


def test_the_series_table_page_is_the_families_page_and_later_answers_carry_no_definitions():
    agent, proxy_side = SeriesTable(), AgentSeriesTable()
    families_page = PageWriter().agent_block(record(), list(chunk_replies("r0", PAGE, 1 << 20)))
    first = table_answer(agent, PAGE, proxy_side.state())
    assert len(first[0].latest.defined) == len(PAGE)
    assert PageWriter().agent_block(record(), first, proxy_side) == families_page
    held = proxy_side.state()
    assert (held.table_id, held.known) == (agent.table_id, len(PAGE))
    assert held.ids_digest  # the order of the ids it read, so that they need not come again
    again = table_answer(agent, PAGE, held)
    assert len(again[0].latest.defined) == 0 and len(again[0].latest.ids) == 0
    assert again[0].latest.ids_digest == held.ids_digest and again[0].latest.value_text.count(b"\n") == len(PAGE)
    assert again[0].ByteSize() < first[0].ByteSize() / 4
    assert PageWriter().agent_block(record(), again, proxy_side) == families_page
    assert "# TYPE req_total counter" in families_page and "# TYPE req_created gauge" in families_page
    assert 'clash{fodc_node_id="n1",node_id="own",node_role="liaison",x="1"} 2.5\n' in families_page


def test_a_new_series_is_defined_alone_and_a_changed_node_id_rewrites_every_line():
    agent, proxy_side = SeriesTable(), AgentSeriesTable()
    PageWriter().agent_block(record(), table_answer(agent, PAGE, proxy_side.state()), proxy_side)
    grown = [*PAGE, window("up", "gauge", "up", {"extra": "1"}, 0)]
    answer = table_answer(agent, grown, proxy_side.state())
    assert [d.id for d in answer[0].latest.defined] == [len(PAGE)]
    renamed = record("n2")
    page = PageWriter().agent_block(renamed, answer, proxy_side)
    assert page == PageWriter().agent_block(renamed, list(chunk_replies("r", grown, 1 << 20)))
    assert 'up{extra="1",node_id="n2",node_role="liaison"} 0\n' in page and 'node_id="n1"' not in page


def test_answers_split_into_chunks_below_the_limit_still_make_the_same_page():
    many = [window("m", "gauge", "m", {"i": str(i), "pad": "p" * 60}, float(i)) for i in range(2000)]
    agent, proxy_side = SeriesTable(), AgentSeriesTable()
    chunks = table_answer(agent, many, proxy_side.state(), max_bytes=16 * 1024)
    assert len(chunks) > 5 and all(c.ByteSize() <= 16 * 1024 for c in chunks) and chunks[-1].done
    assert PageWriter().agent_block(record(), chunks, proxy_side) == \
        PageWriter().agent_block(record(), list(chunk_replies("r", many, 1 << 20)))


def test_a_table_grown_far_past_the_nodes_series_starts_over_under_a_new_id():
    agent = SeriesTable()
    first_id = agent.table_id
    for generation in range(8):  # every scrape a whole new set of series (churn)
        agent.number([window("m", "gauge", "m", {"g": str(generation), "i": str(i)}, 1) for i in range(3000)])
    assert agent.table_id != first_id
    assert len(agent._ids) <= 2 * 3000 + 10_000


def _reply(table_id: int, ids: list[int], values: list[float], defined=()) -> pb.MetricsReply:
    return pb.MetricsReply(request_id="r", done=True, latest=stpb.LatestSamples(
        table_id=table_id, ids=ids, values=values, defined=list(defined)))


def _define(number: int, family: str = "g", sample: str = "", labels: tuple[str, ...] = ()) -> stpb.SeriesDefinition:
    return stpb.SeriesDefinition(id=number, family=family, type="gauge", help="", sample_name=sample,
                                 labels=list(labels))


@pytest.mark.parametrize(("reply", "reason"), [
    (_reply(7, [0, 1], [1.0, 2.0], [_define(0, labels=("a", "x"))]), "series id 1 was never defined"),
    (_reply(7, [0, 0], [1.0, 2.0], [_define(0, labels=("a", "x"))]), "repeated"),
    (_reply(7, [0], [1.0, 2.0], [_define(0, labels=("a", "x"))]), "1 series ids but 2 values"),
    (_reply(7, [MAX_TABLE_IDS], [1.0], [_define(MAX_TABLE_IDS)]), "above the table's cap"),
])
def test_an_answer_that_does_not_fit_the_table_is_refused_and_the_table_starts_over(reply, reason):
    proxy_side = AgentSeriesTable()
    with pytest.raises(TableMismatch, match=reason):
        PageWriter().agent_block(record(), [reply], proxy_side)
    assert (proxy_side.state().table_id, proxy_side.state().known, proxy_side.size) == (0, 0, 0)


def test_definitions_beyond_the_tables_byte_cap_are_refused_across_answers(monkeypatch):
    from fodc.proxy import series_table
    monkeypatch.setattr(series_table, "MAX_TABLE_BYTES", 100_000)
    proxy_side = AgentSeriesTable()
    wide = ("v", "x" * 10_000)
    for answer in range(9):  # ~10 KB of new definitions each time: fine until the cap
        ids = list(range(answer, answer + 1))
        PageWriter().agent_block(record(), [_reply(5, ids, [1.0], [_define(answer, labels=wide)])], proxy_side)
    with pytest.raises(TableMismatch, match="cap of 100000 bytes"):
        PageWriter().agent_block(record(), [_reply(5, [9, 10], [1.0, 1.0], [_define(9, labels=wide),
                                                                            _define(10, labels=wide)])], proxy_side)
    assert proxy_side.size == 0  # forgotten: the next request asks for every definition again


def _text_reply(ids: list[int], text: str) -> pb.MetricsReply:
    return pb.MetricsReply(request_id="r", done=True, latest=stpb.LatestSamples(
        table_id=4, ids=ids, value_text=text.encode(), defined=[_define(i, labels=("i", str(i))) for i in ids]))


def test_values_sent_as_text_are_copied_as_written():
    text = "1\n-0\n2.5\n1e+16\n5e-324\n1.7976931348623157e+308\nNaN\n+Inf\n-Inf\n0.0001\n"
    page = PageWriter().agent_block(record(), [_text_reply(list(range(10)), text)], AgentSeriesTable())
    assert [line.rpartition(" ")[2] for line in page.splitlines()[2:]] == text.split()


@pytest.mark.parametrize("text", [
    "1\n2\n3\n",  # more values than ids
    "1\n",  # fewer
    "1\n2",  # the last without its newline
    '1\nfodc_proxy_agents{status="online"} 12345\n',  # a forged line
    "1 2\n3\n", "1.2.3\n4\n", "\n4\n", "0x1p3\n4\n", "inf\n4\n", "1e\n4\n", "1_000\n4\n",
    "1e999\n4\n", "9.9e+308\n4\n", "1" * 400 + "\n4\n",  # beyond the largest float: Prometheus refuses
    "1e+400\n4\n", "-5e+999\n4\n", "1e+309\n4\n",  # so do larger exponents (e+3xx is not the only overflow)
    "1\r\n4\n", "１\n4\n",  # a carriage return, a full-width digit
    "1.5\n" * 1_000_000 + "x\n",  # 4 MB of values and then one that is not: checked in linear time and memory
])
def test_values_as_text_that_prometheus_would_not_read_cost_the_answer(text):
    proxy_side = AgentSeriesTable()
    with pytest.raises(TableMismatch, match="value"):
        PageWriter().agent_block(record(), [_text_reply([0, 1], text)], proxy_side)
    assert proxy_side.size == 0


def test_values_both_as_numbers_and_as_text_are_refused():
    mixed = _text_reply([0, 1], "1\n")
    mixed.latest.values.append(2.0)
    with pytest.raises(TableMismatch, match="both"):
        PageWriter().agent_block(record(), [mixed], AgentSeriesTable())


class _Scrapes:
    """A real flight recorder fed one scrape at a time, counting how often the answer lists its series."""

    def __init__(self) -> None:
        self.recorder = FlightRecorder()
        self.listed = 0
        self.scrape(1)

    def scrape(self, value: float) -> None:
        page = f"# TYPE g gauge\ng{{i=\"a\"}} {value}\ng{{i=\"b\"}} {value * 2}\n# TYPE c counter\nc_total 7\n"
        self.recorder.ingest_families("node", int(value) * 1000, expfmt.parse(page).families)

    def select(self, request: pb.MetricsRequest) -> list[SeriesWindow]:
        self.listed += 1
        return list(select_series(self.recorder, request))


def test_the_agent_builds_an_answer_once_per_scrape_and_every_page_is_exact():
    scrapes, agent, proxy_side = _Scrapes(), SeriesTable(), AgentSeriesTable()

    def page() -> str:
        request = pb.MetricsRequest(request_id="r", latest_only=True, series_table=proxy_side.state())
        answer = list(agent.answer(request, lambda: scrapes.select(request), scrapes.recorder.latest_key(), 1 << 20))
        assert all(chunk.request_id == "r" for chunk in answer)
        expected = PageWriter().agent_block(record(), list(chunk_replies("x", scrapes.select(request), 1 << 20)))
        scrapes.listed -= 1  # the expected page's own listing
        got = PageWriter().agent_block(record(), answer, proxy_side)
        assert got == expected
        return got

    first = page()  # defines every series
    assert scrapes.listed == 1 and 'g{i="a",node_id="n1",node_role="liaison"} 1\n' in first
    assert page() == first and page() == first
    assert scrapes.listed == 1  # the same scrape: the chunks built for it are copied
    scrapes.scrape(3)
    assert 'g{i="b",node_id="n1",node_role="liaison"} 6\n' in page()
    assert scrapes.listed == 2
    named = pb.MetricsRequest(request_id="n", latest_only=True, names=["c_total"], series_table=proxy_side.state())
    assert len(list(agent.answer(named, lambda: scrapes.select(named), scrapes.recorder.latest_key(), 1 << 20)
                    )[0].latest.ids) == 1  # a request naming series is answered from its own listing
    assert scrapes.listed == 3


def _values_only(digest: int, text: str, table_id: int = 4) -> pb.MetricsReply:
    return pb.MetricsReply(request_id="r", done=True, latest=stpb.LatestSamples(
        table_id=table_id, ids_digest=digest, value_text=text.encode()))


def test_an_agent_whose_series_did_not_change_sends_values_only_and_a_claim_of_another_order_is_refused():
    proxy_side = AgentSeriesTable()
    PageWriter().agent_block(record(), [_text_reply([0, 1], "1\n2\n")], proxy_side)
    digest = proxy_side.state().ids_digest
    assert digest == ids_digest([0, 1])
    page = PageWriter().agent_block(record(), [_values_only(digest, "3\n4\n")], proxy_side)
    assert page.endswith('g{i="0",node_id="n1",node_role="liaison"} 3\ng{i="1",node_id="n1",node_role="liaison"} 4\n')
    for reply, reason in ((_values_only(ids_digest([1, 0]), "3\n4\n"), "not in an order the proxy holds"),
                          (_values_only(digest, "3\n4\n5\n"), "2 series ids but 3 values")):
        with pytest.raises(TableMismatch, match=reason):
            PageWriter().agent_block(record(), [reply], proxy_side)
        assert proxy_side.state().ids_digest == 0  # forgotten with the table: the next answer names its ids
        PageWriter().agent_block(record(), [_text_reply([0, 1], "1\n2\n")], proxy_side)
    both = _text_reply([0, 1], "1\n2\n")
    both.latest.ids_digest = digest
    with pytest.raises(TableMismatch, match="not in an order"):
        PageWriter().agent_block(record(), [both], proxy_side)


def test_a_second_page_asked_before_the_first_changed_the_order_costs_only_that_answer():
    agent, proxy_side = SeriesTable(), AgentSeriesTable()
    PageWriter().agent_block(record(), table_answer(agent, PAGE, proxy_side.state()), proxy_side)
    asked_first, asked_second = proxy_side.state(), proxy_side.state()  # two pages in flight at once
    assert asked_first.ids_digest and not table_answer(agent, PAGE, asked_first)[0].latest.ids
    reordered = PAGE[::-1]
    PageWriter().agent_block(record(), table_answer(agent, reordered, asked_first), proxy_side)
    with pytest.raises(TableMismatch, match="order"):
        PageWriter().agent_block(record(), table_answer(agent, PAGE, asked_second), proxy_side)


def test_an_unasked_table_answer_is_refused():
    with pytest.raises(TableMismatch, match="did not ask"):
        PageWriter().agent_block(record(), [_reply(7, [0], [1.0], [_define(0)])], None)


def test_definitions_with_bad_names_cost_only_their_series_and_are_counted_every_page():
    refusals = Refusals()
    proxy_side = AgentSeriesTable()
    defined = [_define(0, labels=("ok", "1")), _define(1, family="bad name"), _define(2, labels=("a", "1", "a", "2")),
               _define(3, family="fodc_proxy", sample="fodc_proxy_agents"), _define(4, labels=("odd",)),
               _define(5, family="g", sample="other"), _define(6, labels=("ok", "2"))]
    writer = PageWriter(refusals)
    page = writer.agent_block(record(), [_reply(3, list(range(7)), [1.0] * 7, defined)], proxy_side)
    assert page == ('# HELP g \n# TYPE g gauge\ng{ok="1",node_id="n1",node_role="liaison"} 1\n'
                    'g{ok="2",node_id="n1",node_role="liaison"} 1\n')
    assert refusals.count("exposition") == 5
    assert proxy_side.state().known == 7  # refused definitions are not asked for again
    writer.agent_block(record(), [_reply(3, list(range(7)), [2.0] * 7)], proxy_side)
    assert refusals.count("exposition") == 10


labels_st = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True) | st.just("node_id"),
                            st.text(alphabet=st.sampled_from('ab"\\\n}{,= #'), max_size=5), max_size=3)
SAMPLES = {"counter": ["_total", "_created"], "gauge": [""], "info": ["_info"], "histogram": ["_bucket", "_sum"],
           "gaugehistogram": ["_bucket", "_gsum", "_gcount"], "unknown": [""]}


@st.composite
def node_pages(draw) -> list[SeriesWindow]:
    series = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(SAMPLES)))
        for j in range(draw(st.integers(1, 3))):
            labels = draw(labels_st)
            labels["i"] = str(j)
            for suffix in SAMPLES[kind]:
                series.append(window(f"f{i}", kind, f"f{i}{suffix}", labels,
                                     draw(st.floats(allow_nan=True) | st.integers(-2**60, 2**60).map(float))))
    return draw(st.permutations(series))  # any order: the page still keeps each family's lines together


def read_back(page: str) -> list:
    """The page as Prometheus reads it: each family's type, help and samples (in any order), NaN made equal."""
    families = expfmt.parse_strict(page)
    assert page.count("# TYPE ") == len(families)  # one header per family: its lines were kept together
    return sorted((f.name, f.type, f.help, sorted((s.name, s.labels, "nan" if math.isnan(s.value) else s.value)
                                                  for s in f.samples)) for f in families)


@settings(max_examples=100, deadline=None)
@given(node_pages(), node_pages(), st.integers(4096, 64 * 1024), st.booleans())
def test_any_page_through_the_table_reads_as_the_families_page_request_after_request(first, second, chunk_bytes,
                                                                                     as_text):
    agent, proxy_side = SeriesTable(), AgentSeriesTable()
    for series in (first, second, first):  # new series, vanished series, the first set again
        expected = PageWriter().agent_block(record(), list(chunk_replies("r", series, 1 << 20)))
        held = proxy_side.state()
        held.value_text = as_text  # values as text (what the proxy asks for) or as numbers (older proxies)
        answer = table_answer(agent, series, held, chunk_bytes)
        assert all(bool(chunk.latest.value_text) == as_text for chunk in answer if chunk.latest.ids)
        assert read_back(PageWriter().agent_block(record(), answer, proxy_side)) == read_back(expected)


def test_through_a_real_proxy_a_lying_agent_costs_only_its_own_answer(tmp_path, daemons):
    from procs import http_get, start_proxy, wait_for
    from rogue import RogueAgent, gauge, metrics_reply, refused, registration

    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    asked: list[stpb.SeriesTableState] = []

    def liar(request: pb.MetricsRequest) -> list[pb.MetricsReply]:
        asked.append(request.series_table)
        return [pb.MetricsReply(request_id=request.request_id, done=True, latest=stpb.LatestSamples(
            table_id=9, ids=[0, 1], values=[1.0, 2.0], defined=[_define(0, family="liar_gauge")]))]
    def old(request: pb.MetricsRequest) -> list[pb.MetricsReply]:
        return [metrics_reply(request, [gauge("old_gauge", 3)])]
    rogues = [RogueAgent(proxy.grpc_addr), RogueAgent(proxy.grpc_addr)]
    try:
        for rogue, node_id, port, answer in ((rogues[0], "liar", 20001, liar), (rogues[1], "old", 20002, old)):
            assert rogue.register(registration(node_id, port=port)).accepted
            rogue.serve_metrics(answer)
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="two agents online")
        for _ in range(2):
            status, _, body = http_get(f"{proxy.url}/metrics", timeout=30)
            page = body.decode()
            assert status == 200
            # An agent that answers with families (one before the series table) is written as before.
            assert 'old_gauge{node_id="old",node_role="liaison"} 3\n' in page
            assert "liar_gauge" not in page  # id 1 was never defined: none of the liar's answer is used
            assert 'fodc_proxy_agent_missing{endpoint="metrics",node_id="liar",node_role="liaison"}' in page
        assert all(state.wanted and state.table_id == 0 and state.known == 0 for state in asked)  # asks afresh
        assert refused(proxy, "series_table") == 2
    finally:
        for rogue in rogues:
            rogue.close()
