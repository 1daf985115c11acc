"""A client that is not a well-behaved agent (oversized, malformed, flooding) is cut off; real agents are not."""

from __future__ import annotations

import grpc
import pytest
from procs import start_agent, start_proxy, wait_for

from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc


@pytest.fixture
def cluster(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--grpc-max-msg-size", "1MiB")
    daemons.append(proxy)
    for node_id in ("good-1", "good-2"):
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", node_id))
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="the good agents online")
    channel = grpc.insecure_channel(proxy.grpc_addr)
    yield proxy, pb_grpc.FODCServiceStub(channel), channel
    channel.close()


def registration(node_id: str, **labels: str) -> pb.AgentMessage:
    return pb.AgentMessage(register=pb.Registration(
        node_id=node_id, role="liaison", primary=pb.Address(ip="127.0.0.9", port=17912), labels=labels))


def answers(stub, messages, timeout=15):
    """The proxy's answers to `messages`, and the status the stream ended with."""
    received = []
    try:
        for answer in stub.RegisterAgent(iter(messages), timeout=timeout):
            received.append(answer)
    except grpc.RpcError as exc:
        return received, exc.code(), exc.details()
    return received, grpc.StatusCode.OK, ""


def assert_good_agents_unharmed(proxy):
    nodes = {n["node_id"]: n["status"] for n in proxy.cluster()}
    assert nodes == {"good-1": "online", "good-2": "online"} or set(nodes) - {"good-1", "good-2"} <= {"bad"}
    assert all(nodes[n] == "online" for n in ("good-1", "good-2"))


def test_an_oversized_message_ends_only_that_stream(cluster):
    proxy, stub, _ = cluster
    _, code, details = answers(stub, [registration("bad", blob="x" * (2 * 1024 * 1024))])
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert_good_agents_unharmed(proxy)
    assert "bad" not in {n["node_id"] for n in proxy.cluster()}


def test_a_heartbeat_before_registering_is_refused(cluster):
    proxy, stub, _ = cluster
    _, code, details = answers(stub, [pb.AgentMessage(heartbeat=pb.Heartbeat(sent_unix_ms=1))])
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "before registration" in details
    assert_good_agents_unharmed(proxy)


def test_an_invalid_registration_is_refused_with_the_reason(cluster):
    proxy, stub, _ = cluster
    bad = pb.AgentMessage(register=pb.Registration(node_id="bad", role="boss",
                                                   primary=pb.Address(ip="127.0.0.9", port=1)))
    received, _, _ = answers(stub, [bad])
    assert received and not received[0].registration.accepted and "boss" in received[0].registration.error
    assert_good_agents_unharmed(proxy)


def test_bytes_that_are_not_protobuf_end_only_that_stream(cluster):
    proxy, _, channel = cluster
    raw = channel.stream_stream("/fodc.v1.FODCService/RegisterAgent", request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as caught:
        list(raw(iter([b"\xff\xff\xff\xff not a protobuf"]), timeout=10))
    assert caught.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    assert_good_agents_unharmed(proxy)


def test_a_flooding_client_is_disconnected(cluster):
    proxy, stub, _ = cluster
    flood = [registration("bad")] + [pb.AgentMessage(heartbeat=pb.Heartbeat(sent_unix_ms=i)) for i in range(500)]
    received, code, details = answers(stub, flood)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "disconnected" in details
    assert received[0].registration.accepted
    assert len(received) < 200  # cut off well before the flood ended
    wait_for(lambda: {n["node_id"]: n["status"] for n in proxy.cluster()}.get("bad") in (None, "unconnected"),
             what="the flooder no longer online")
    assert "agent stream flooding; disconnected" in proxy.log()
    assert_good_agents_unharmed(proxy)


def test_a_request_stream_from_an_unknown_agent_is_refused(cluster):
    proxy, stub, _ = cluster
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamMetrics(iter([pb.MetricsReply(agent_id="not-registered")]), timeout=10))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert_good_agents_unharmed(proxy)
