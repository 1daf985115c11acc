"""The pure checks behind the proxy's hostile-agent defences: answers, admission, registration bounds."""

from __future__ import annotations

import pytest

from fodc.model import Address, Registration
from fodc.proxy.admission import HelloGate, certificate_names, peer_host
from fodc.proxy.agent_answers import (
    MAX_FIELD_TEXT,
    BadAnswer,
    automatic_captures,
    check_result,
    config_snapshot,
    incidents,
    ring_profiles,
)
from fodc.proxy.grpc_service import registration_rate
from fodc.proxy.registration_limits import LimitExceeded, check_heartbeat, check_registration
from fodc.proxy.registry import AgentRegistry, RegistryFull
from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import incident_from_pb, incident_to_pb

NOW = 1_800_000_000_000


def test_bad_incident_records_are_left_out_with_a_reason_each():
    good = {"id": "20260101T000000Z-node-down", "trigger": "node-down", "at": "2027-01-15T08:00:00Z",
            "at_ms": NOW - 1, "state": "complete", "detail": {"pid": 7}}
    bad = [{**good, "at_ms": 1}, {**good, "trigger": "x" * 300}, {**good, "id": "../x"}, {**good, "state": "done"},
           {**good, "at_ms": NOW + 2 * 86_400_000}]
    listing = pb.IncidentList(incidents=[incident_to_pb(i) for i in [good, *bad]])
    listing.incidents.add().CopyFrom(incident_to_pb(good))
    listing.incidents[-1].detail_json = "[1, 2]"  # typed, but not the object it must be
    kept, refused = incidents(listing, NOW)
    assert kept == [incident_from_pb(incident_to_pb(good), {"pid": 7})] and len(refused) == 6
    assert "at_ms" in refused[0] and "characters" in refused[2] and "state" in refused[3]
    assert "detail_json must be a JSON object" in refused[5]


def test_an_overlong_text_anywhere_in_a_result_record_leaves_that_record_out():
    """Every text of a typed result (fields, list items, map keys and values, nested messages) is bounded; the
    JSON documents have their own, larger bound. A legitimate long text (a crash file's path) still passes."""
    long, most = "x" * (MAX_FIELD_TEXT + 1), "p" * MAX_FIELD_TEXT
    good = {"id": "20260101T000000Z-node-crash", "node_id": "hot-1", "role": "datanode-hot", "trigger": "node-crash",
            "at": "2027-01-15T08:00:00Z", "at_ms": NOW - 1, "state": "complete", "detail": {"text": long},
            "files": {f"crash/{most[6:]}": {"size": 1, "sha256": "ab"}}}
    bad = [{**good, "summary": long}, {**good, "node_id": long}, {**good, "errors": {"bundle": long}},
           {**good, "errors": {long: "why"}}, {**good, "ring_profiles": [long]},
           {**good, "files": {"crash.json": {"size": 1, "sha256": long}}}]
    kept, refused = incidents(pb.IncidentList(incidents=[incident_to_pb(i) for i in [good, *bad]]), NOW)
    assert [i["id"] for i in kept] == [good["id"]] and len(refused) == len(bad)
    assert all(f"at most {MAX_FIELD_TEXT}" in reason for reason in refused)

    capture = pb.AutomaticCapture(id="c1", trigger="memory-pressure", time="2027-01-15T08:00:00Z")
    captures = pb.AutomaticCaptureList(captures=[capture, pb.AutomaticCapture(
        id="c2", trigger="memory-pressure", time="2027-01-15T08:00:00Z", limit_source=long)])
    assert len(automatic_captures(captures, NOW)[0]) == 1
    profile = pb.RingProfile(name="cpu-1.pb.gz", kind="cpu", taken="2027-01-15T08:00:00Z")
    listed = pb.RingProfileList(profiles=[profile, pb.RingProfile(name="heap-1.pb.gz", kind="heap", taken=long)])
    assert [p["name"] for p in ring_profiles(listed, NOW)[0]] == ["cpu-1.pb.gz"]


def test_an_incident_with_too_many_errors_files_or_ring_profiles_is_left_out():
    base = dict(id="i1", trigger="node-down", at="2027-01-15T08:00:00Z", at_ms=NOW - 1, state="complete")
    crowded = [pb.Incident(**base, errors={str(i): "" for i in range(257)}),
               pb.Incident(**base, files={str(i): pb.FileDigest() for i in range(10_001)}),
               pb.Incident(**base, ring_profiles=["r"] * 257)]
    kept, refused = incidents(pb.IncidentList(incidents=[pb.Incident(**base), *crowded]), NOW)
    assert len(kept) == 1 and [reason.split()[0] for reason in refused] == ["errors", "files", "ring_profiles"]


@pytest.mark.parametrize("data", [b"\x0a\xff\xff\xff\xff", b"[" * 100_000,
                                  pb.IncidentList(incidents=[pb.Incident()] * 10_001).SerializeToString()])
def test_an_answer_that_is_not_a_bounded_list_fails_as_a_whole(data):
    with pytest.raises(BadAnswer):
        check_result("incident_list", data, NOW)


def test_a_snapshot_without_its_hash_fails_as_a_whole():
    with pytest.raises(BadAnswer, match="hash"):
        config_snapshot(pb.ConfigSnapshot(captured_at="x", confirmed_at="y"), NOW)


def test_the_hello_gate_cancels_overdue_streams_and_refuses_past_its_cap():
    cancelled = []
    gate = HelloGate(timeout_s=5, max_waiting=2)
    first = gate.enter(0.0, lambda: cancelled.append("first"))
    second = gate.enter(1.0, lambda: cancelled.append("second"))
    assert gate.enter(1.0, lambda: None) is None  # two waiting already
    gate.leave(second)
    assert gate.expire(5.5) == 1 and cancelled == ["first"] and gate.waiting == 0
    assert first is not None


def test_the_registration_rate_allows_a_minutes_burst_then_refills():
    rate = registration_rate(per_minute=3)
    assert [rate.admit("10.0.0.1", 0.0)[0] for _ in range(4)] == [True, True, True, False]
    assert rate.admit("10.0.0.2", 0.0)[0]  # another peer has its own bucket
    assert rate.admit("10.0.0.1", 20.0)[0] and not rate.admit("10.0.0.1", 20.0)[0]


def test_peer_addresses_lose_their_port_and_certificates_give_their_names():
    assert peer_host("ipv4:10.0.0.5:41234") == "10.0.0.5" and peer_host("ipv6:[::1]:5000") == "::1"
    assert certificate_names({"x509_common_name": [b"hot-1"], "x509_subject_alternative_name": [b"hot-1.lan"]}) \
        == {"hot-1", "hot-1.lan"}


def test_registration_and_heartbeat_bounds_name_the_field():
    base = Registration("n", "liaison", Address("10.0.0.1", 1))
    check_registration(base)
    for field, value in [("hostname", "h" * 257), ("capabilities", {f"k{i}": "" for i in range(65)}),
                         ("secondary", {f"s{i}": Address("1.1.1.1", 1) for i in range(17)})]:
        with pytest.raises(LimitExceeded, match=field):
            check_registration(Registration("n", "liaison", Address("10.0.0.1", 1), **{field: value}))
    with pytest.raises(LimitExceeded, match="runtime"):
        check_heartbeat({"k": "v" * 5000}, {})


def test_a_registration_that_never_streamed_expires_fast_and_gives_way_when_the_registry_is_full():
    registry = AgentRegistry(30, 300, max_agents=2)

    def register(node: str, port: int, now: int):
        return registry.register(Registration(node, "liaison", Address("10.0.0.1", port)), now)[0]
    silent = register("silent", 1, 0)
    registry.connection_lost(silent.agent_id, silent.connection, 10, expire_after_ms=1_000)
    real = register("real", 2, 20)
    registry.connection_lost(real.agent_id, real.connection, 30)  # an ordinary loss keeps its slot
    register("newcomer", 3, 40)
    assert sorted(r.registration.node_id for r in registry.list()) == ["newcomer", "real"]
    with pytest.raises(RegistryFull):
        register("one-too-many", 4, 50)
    quiet = register("real", 2, 60)  # the real agent back; then it never streams on this connection
    registry.connection_lost(quiet.agent_id, quiet.connection, 70, expire_after_ms=1_000)
    assert [r.registration.node_id for r in registry.check_health(1_100).removed] == ["real"]
