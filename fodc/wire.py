"""Conversions between protobuf messages and FODC's plain data types, done once at the wire edge."""

from __future__ import annotations

from fodc.model import Address, HeartbeatInfo, Registration
from fodc.v1 import fodc_pb2 as pb


def address_to_pb(address: Address) -> pb.Address:
    return pb.Address(ip=address.ip, port=address.port)


def address_from_pb(msg: pb.Address) -> Address:
    return Address(msg.ip, msg.port)


def registration_to_pb(reg: Registration) -> pb.Registration:
    return pb.Registration(
        node_id=reg.node_id,
        role=reg.role,
        primary=address_to_pb(reg.primary),
        secondary={name: address_to_pb(a) for name, a in reg.secondary.items()},
        labels=dict(reg.labels),
        agent_version=reg.agent_version,
        capabilities=dict(reg.capabilities),
        hostname=reg.hostname,
        agent_started_unix_ms=reg.agent_started_ms,
        host_id=reg.host_id,
        instance_id=reg.instance_id,
        command_protocol=pb.COMMAND_PROTOCOL_TYPED if reg.typed_commands else pb.COMMAND_PROTOCOL_UNSPECIFIED,
    )


def registration_from_pb(msg: pb.Registration) -> Registration:
    return Registration(
        node_id=msg.node_id,
        role=msg.role,
        primary=address_from_pb(msg.primary),
        secondary={name: address_from_pb(a) for name, a in msg.secondary.items()},
        labels=dict(msg.labels),
        agent_version=msg.agent_version,
        capabilities=dict(msg.capabilities),
        hostname=msg.hostname,
        agent_started_ms=msg.agent_started_unix_ms,
        host_id=msg.host_id,
        instance_id=msg.instance_id,
        typed_commands=msg.command_protocol >= pb.COMMAND_PROTOCOL_TYPED,
    )


def heartbeat_pb(now_ms: int, info: HeartbeatInfo) -> pb.AgentMessage:
    return pb.AgentMessage(heartbeat=pb.Heartbeat(
        sent_unix_ms=now_ms, runtime=dict(info.runtime), capabilities=dict(info.capabilities),
        incidents_total=dict(info.incidents_total)))


def link_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """gRPC options both ends share: the message limit, and keepalive pings so a silent dead link between
    agent and proxy is noticed within ~25 s even when no data flows."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 15_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
