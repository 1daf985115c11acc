"""A list answer read record by record as it arrives (fodc.proxy.answer_stream): the same result as the whole
answer checked at once, however it is chunked; oversized records and records past the answer's memory budget
left out and counted; and a hostile agent's incident list costs the real proxy worker a bounded amount of
memory (~670 MiB over idle for one /incidents before)."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from procs import http_json, memory_kib, reset_peak, start_proxy, wait_for
from rogue import RogueAgent, refused, registration, typed_answers

from fodc.proxy import answer_stream
from fodc.proxy.agent_answers import RECORD_LISTS, BadAnswer, check_result, checked_record
from fodc.proxy.answer_stream import MAX_OTHER_FIELDS, MAX_RECORD_BYTES, ListAnswerReader, estimated_cost
from fodc.v1 import fodc_pb2 as pb

NOW_MS = int(time.time() * 1000)


def incident(incident_id: str, **fields) -> pb.Incident:
    return pb.Incident(id=incident_id, trigger="node-down", at="2026-01-01T00:00:00Z", at_ms=NOW_MS - 60_000,
                       state="collecting", **fields)


def tiny_keys(count: int) -> str:
    """A JSON object of `count` tiny keys: ~7x its bytes once parsed, the costliest shape per byte."""
    return json.dumps({f"k{i}": 0 for i in range(count)}, separators=(",", ":"))


def read(data: bytes, chunk: int, request: str = "incident_list") -> tuple[list, list, list]:
    reader = ListAnswerReader(*RECORD_LISTS[request], NOW_MS)
    for offset in range(0, len(data), chunk):
        reader.write(data[offset:offset + chunk])
    return reader.finish()


@pytest.mark.parametrize("chunk", [1, 7, 1000, 10**9])
def test_any_chunking_gives_the_whole_answers_result(chunk):
    listing = pb.IncidentList(incidents=[incident("a", detail_json='{"x": [1, 2]}'), incident("../bad"),
                                         incident("b", files={"f": pb.FileDigest(size=3, sha256="0" * 64)}),
                                         incident("c", detail_json='"not an object"')]).SerializeToString()
    whole, whole_refused = check_result("incident_list", listing, NOW_MS)
    kept, refused_records, over = read(listing, chunk)
    assert [i["id"] for i in kept] == ["a", "b"] and kept == whole
    assert refused_records == whole_refused and len(refused_records) == 2 and over == []


def test_unknown_fields_are_passed_over_and_a_cut_answer_is_unusable():
    listing = pb.IncidentList(incidents=[incident("a")]).SerializeToString()
    extra = bytes([2 << 3 | 0, 150, 1, 3 << 3 | 5, 0, 0, 0, 0, 4 << 3 | 2, 2, 0, 0])  # varint, fixed32, bytes
    assert [i["id"] for i in read(extra + listing + extra, 3)[0]] == ["a"]
    with pytest.raises(BadAnswer, match="ends inside a field"):
        read(listing[:-1], 5)
    with pytest.raises(BadAnswer, match="wire type"):
        read(bytes([1 << 3 | 3]) + listing, 5)  # a group start: no result message has one


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def test_fields_that_are_not_records_stream_past_unbuffered_and_their_number_is_bounded():
    """Before, a field that is not a record was buffered whole (20 MiB held for a 20 MiB one) and each tiny
    field was a step in Python (64 MiB of 2-byte fields: ~8 s of the worker's CPU, 0.06 s parsed whole)."""
    listing = pb.IncidentList(incidents=[incident("a")]).SerializeToString()
    data = bytes([2 << 3 | 2]) + varint(20 << 20) + b"x" * (20 << 20) + listing
    reader = ListAnswerReader(*RECORD_LISTS["incident_list"], NOW_MS)
    biggest = 0
    for offset in range(0, len(data), 1 << 20):
        reader.write(data[offset:offset + (1 << 20)])
        biggest = max(biggest, len(reader._buffer))
    assert [i["id"] for i in reader.finish()[0]] == ["a"] and biggest <= 2 << 20
    tiny = bytes([2 << 3, 0])  # field 2, varint 0
    assert [i["id"] for i in read(tiny * MAX_OTHER_FIELDS + listing, 3)[0]] == ["a"]  # each counted once
    with pytest.raises(BadAnswer, match=f"more than {MAX_OTHER_FIELDS} fields that are not Incident records"):
        read(tiny * (MAX_OTHER_FIELDS + 1) + listing, 1 << 20)


def test_an_oversized_record_streams_past_unbuffered():
    huge = incident("huge", detail_json=json.dumps({"pad": "x" * (MAX_RECORD_BYTES + 1)}))
    data = pb.IncidentList(incidents=[incident("a"), huge, incident("b")]).SerializeToString()
    reader = ListAnswerReader(*RECORD_LISTS["incident_list"], NOW_MS)
    biggest = 0
    for offset in range(0, len(data), 1 << 20):
        reader.write(data[offset:offset + (1 << 20)])
        biggest = max(biggest, len(reader._buffer))
    kept, _, over = reader.finish()
    assert [i["id"] for i in kept] == ["a", "b"]
    assert over == [f"a record of {huge.ByteSize()} bytes; at most {MAX_RECORD_BYTES}"]
    assert biggest <= 2 << 20  # never more than a chunk and a small record held


def test_records_past_the_memory_budget_are_left_out_before_they_are_parsed():
    fat = tiny_keys(250_000)  # ~2.3 MB of JSON, ~20 MB once parsed
    listing = pb.IncidentList(incidents=[incident("first"), *(incident(f"fat-{i}", detail_json=fat) for i in range(4)),
                                         incident("last")]).SerializeToString()
    tracemalloc.start()
    kept, _, over = read(listing, 1 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [i["id"] for i in kept] == ["first", "last"]
    assert len(over) == 4 and "would take the answer past" in over[0]
    assert peak < 3 * len(fat) + (4 << 20)  # the list itself and one record, never a parsed detail


def test_too_many_records_make_the_answer_unusable(monkeypatch):
    monkeypatch.setattr(answer_stream, "MAX_RECORDS", 3)
    with pytest.raises(BadAnswer, match="more than 3 records"):
        read(pb.IncidentList(incidents=[incident(f"i{n}") for n in range(4)]).SerializeToString(), 100)


@pytest.mark.parametrize("detail, files", [
    (tiny_keys(300_000), 0), (json.dumps({"a": [{}] * 300_000}), 0), (json.dumps({"a": "x" * 3_000_000}), 0),
    ("{}", 10_000)])
def test_the_cost_estimate_is_an_upper_bound_of_the_memory_a_record_takes(detail, files):
    record = incident("r", detail_json=detail, files={f"f{i}": pb.FileDigest() for i in range(files)},
                      errors={"part": "e" * 4000})
    check = RECORD_LISTS["incident_list"][1]
    tracemalloc.start()
    kept = checked_record(record, lambda msg: check(msg, NOW_MS))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert kept["id"] == "r"
    assert size <= estimated_cost(record) <= 3 * size + 4096


def test_a_hostile_incident_list_costs_the_proxy_worker_little(tmp_path, daemons):
    """One agent lists ~60 MiB of incidents whose details are tiny-key JSON (~7x their bytes parsed): the
    worker's peak (VmHWM of the real process) stays within a bound the whole-answer parse broke by far
    (~670 MiB over idle), the honest records around the fat ones are listed and the rest is counted."""
    proxy = start_proxy(tmp_path, "--command-timeout", "60s", "--incident-copy-interval", "0")
    daemons.append(proxy)
    fat = tiny_keys(300_000)
    listing = [incident("honest-1"), *(incident(f"fat-{i}", detail_json=fat) for i in range(17)), incident("honest-2")]
    rogue = RogueAgent(proxy.grpc_addr)
    try:
        assert rogue.register(registration("bloater", port=20001)).accepted
        rogue.serve_commands(typed_answers({"incident_list": pb.IncidentList(incidents=listing)}))
        wait_for(lambda: proxy.cluster(node_id="bloater", status="online"), 20, what="the rogue agent online")
        worker = proxy.worker_pid()
        http_json(f"{proxy.url}/health")
        reset_peak(worker)
        idle = memory_kib(worker)["VmRSS"]
        status, body = http_json(f"{proxy.url}/incidents", timeout=120)
        growth_mib = (memory_kib(worker)["VmHWM"] - idle) / 1024
        assert status == 200, body
        assert {i["id"] for i in body["incidents"]} == {"honest-1", "honest-2"} and body["missing"] == []
        assert refused(proxy, "answer_budget") == 17
        assert growth_mib < 250, f"the worker grew {growth_mib:.0f} MiB for one hostile answer"
    finally:
        rogue.close()


def test_an_incident_list_of_tiny_fields_costs_only_its_agent(tmp_path, daemons):
    """A list answer made of thousands of tiny fields that are not records (each a Python step of the reader)
    is refused whole with a clear reason, while a newer agent's unknown field, however large, is passed by and
    the honest agent's records are listed."""
    proxy = start_proxy(tmp_path, "--command-timeout", "30s", "--incident-copy-interval", "0")
    daemons.append(proxy)
    listing = pb.IncidentList(incidents=[incident("honest-1")]).SerializeToString()
    answers = {"tiny": bytes([2 << 3, 0]) * 500_000 + listing,
               "newer": bytes([7 << 3 | 2]) + varint(8 << 20) + b"y" * (8 << 20) + listing}
    rogues = [RogueAgent(proxy.grpc_addr) for _ in answers]
    try:
        for port, (rogue, (node_id, data)) in enumerate(zip(rogues, answers.items(), strict=True), 20001):
            assert rogue.register(registration(node_id, port=port)).accepted
            rogue.serve_commands(typed_answers({"incident_list": data}))
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, 20, what="both rogue agents online")
        status, body = http_json(f"{proxy.url}/incidents", timeout=120)
        assert status == 200, body
        assert [(i["id"], i["node_id"]) for i in body["incidents"]] == [("honest-1", "newer")]
        assert [m["node_id"] for m in body["missing"]] == ["tiny"]
        assert f"more than {MAX_OTHER_FIELDS} fields that are not Incident records" in body["missing"][0]["reason"]
        assert refused(proxy, "answer") == 1
    finally:
        for rogue in rogues:
            rogue.close()
