"""fodc-proxy's options, defined once: flags, /etc/fodc/proxy.conf and FODC_* environment variables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fodc import config
from fodc.config import HostPort

DEFAULT_CONFIG = "/etc/fodc/proxy.conf"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    grpc_listen_addr: HostPort
    http_listen_addr: HostPort
    agent_heartbeat_timeout: float
    agent_cleanup_timeout: float
    max_agents: int
    grpc_max_msg_size: int
    metrics_timeout: float
    command_timeout: float
    http_threads: int
    log_level: str
    log_format: str


def build_parser() -> config.OneLineErrorParser:
    parser = config.make_parser(
        "fodc-proxy",
        "FODC proxy: accepts agent gRPC streams, keeps the agent registry and cluster topology, and "
        "serves the HTTP API (/cluster, /metrics, /metrics-windows, ...).",
        DEFAULT_CONFIG,
    )
    net = parser.add_argument_group("listeners")
    net.add_argument("--grpc-listen-addr", type=config.host_port, default=config.host_port(":17900"),
                     help="address the agents connect to (host:port; empty host = all interfaces)")
    net.add_argument("--http-listen-addr", type=config.host_port, default=config.host_port(":17901"),
                     help="address of the HTTP API")
    net.add_argument("--grpc-max-msg-size", type=config.byte_size, default=4 * 1024 * 1024,
                     help="largest gRPC message accepted or sent, in bytes; agents chunk replies below it")
    net.add_argument("--http-threads", type=config.positive_int, default=16,
                     help="concurrent HTTP requests served by the single gunicorn worker")
    agents = parser.add_argument_group("agents")
    agents.add_argument("--agent-heartbeat-timeout", type=config.positive_duration, default=30.0,
                        help="an agent silent this long is shown 'unconnected' (e.g. 30s)")
    agents.add_argument("--agent-cleanup-timeout", type=config.positive_duration, default=300.0,
                        help="an unconnected agent is removed after this long; must exceed the heartbeat "
                        "timeout (e.g. 5m)")
    agents.add_argument("--max-agents", type=config.positive_int, default=1000,
                        help="registrations beyond this many are refused with a clear error")
    agents.add_argument("--metrics-timeout", type=config.positive_duration, default=10.0,
                        help="how long /metrics and /metrics-windows wait for each agent's answer")
    agents.add_argument("--command-timeout", type=config.positive_duration, default=15.0,
                        help="how long a configuration request (/cluster/config...) waits for the agents")
    config.add_logging_options(parser)
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> ProxySettings:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.agent_cleanup_timeout <= ns.agent_heartbeat_timeout:
        parser.error(f"argument --agent-cleanup-timeout: {ns.agent_cleanup_timeout:g}s must be greater than "
                     f"--agent-heartbeat-timeout ({ns.agent_heartbeat_timeout:g}s)")
    return ProxySettings(
        grpc_listen_addr=ns.grpc_listen_addr,
        http_listen_addr=ns.http_listen_addr,
        agent_heartbeat_timeout=ns.agent_heartbeat_timeout,
        agent_cleanup_timeout=ns.agent_cleanup_timeout,
        max_agents=ns.max_agents,
        grpc_max_msg_size=ns.grpc_max_msg_size,
        metrics_timeout=ns.metrics_timeout,
        command_timeout=ns.command_timeout,
        http_threads=ns.http_threads,
        log_level=ns.log_level,
        log_format=ns.log_format,
    )
