"""fodc-proxy's options, defined once: flags, /etc/fodc/proxy.conf and FODC_* environment variables."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

from fodc import config
from fodc.config import HostPort
from fodc.proxy.auth import DEFAULT_MODE, MODES, TokenFileError, load_tokens
from fodc.tls import ServerTls, TlsFileError, read_pem

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
    window_max_points: int
    grpc_tls: ServerTls | None
    http_tls_cert: str | None
    http_tls_key: str | None
    command_timeout: float
    config_drift_ignore: tuple[str, ...]
    auth: str
    auth_tokens_file: str
    audit_log: str
    audit_log_max_bytes: int
    diagnostics_dir: str
    diagnostics_budget_bytes: int
    diagnostics_max_jobs: int
    diagnostics_max_bytes: int
    diagnostics_slack: float
    incident_archive_dir: str
    incident_archive_bytes: int
    incident_archive_max: int
    incident_copy_interval: float
    agent_hello_timeout: float
    registrations_per_peer: int
    max_reply_bytes: int
    max_reply_series: int
    max_request_bytes: int
    http_threads: int
    http_max_connections: int
    http_client_timeout: float
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
    net.add_argument("--grpc-tls-cert", default=None,
                     help="the proxy's certificate (PEM) for the agents' gRPC link; with --grpc-tls-key turns TLS on")
    net.add_argument("--grpc-tls-key", default=None, help="the private key (PEM) of --grpc-tls-cert")
    net.add_argument("--grpc-tls-client-ca", default=None,
                     help="CA (PEM) that signs agent certificates; setting it makes TLS mutual: agents without a "
                     "certificate from this CA are refused")
    net.add_argument("--http-tls-cert", default=None, help="certificate (PEM) for HTTPS on the HTTP API")
    net.add_argument("--http-tls-key", default=None, help="the private key (PEM) of --http-tls-cert")
    net.add_argument("--http-threads", type=config.positive_int, default=16,
                     help="concurrent HTTP requests served by the single gunicorn worker")
    config.add_http_client_limits(net, max_connections=1000)
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
    agents.add_argument("--window-max-points", type=config.positive_int, default=4_000_000,
                        help="points one agent may return for one /metrics-windows request (after step); "
                        "larger requests get a 400 naming start/end and step (1 h of 6,400 series at 15 s is "
                        "1.5 M)")
    agents.add_argument("--config-drift-ignore", type=config.name_list, default=(),
                        help="more settings (globs over flag.*, env.*, file.*, agent.*) that may differ between "
                        "nodes of a role without being drift, on top of the built-in list (ports, node ids, "
                        "data paths, host names)")
    agents.add_argument("--command-timeout", type=config.positive_duration, default=15.0,
                        help="how long a configuration request (/cluster/config...) waits for the agents")
    hostile = parser.add_argument_group("limits on what agents send (README: Limits and hostile clients)")
    hostile.add_argument("--agent-hello-timeout", type=config.positive_duration, default=10.0,
                         help="a gRPC stream that has not identified itself (registration or hello) within this "
                         "is closed")
    hostile.add_argument("--registrations-per-peer", type=config.positive_int, default=300,
                         help="registrations accepted per minute from one peer address (bursts up to this many)")
    hostile.add_argument("--max-reply-bytes", type=config.byte_size, default=128 * 1024 * 1024,
                         help="largest answer one agent may give to one metrics request; beyond it the agent is "
                         "reported missing for that request")
    hostile.add_argument("--max-reply-series", type=config.positive_int, default=200_000,
                         help="most series one agent may send in answer to one metrics request")
    hostile.add_argument("--max-request-bytes", type=config.byte_size, default=1024 * 1024 * 1024,
                         help="most agent reply bytes one /metrics or /metrics-windows request gathers in all; "
                         "agents past it are reported missing")
    sec = parser.add_argument_group("access control")
    sec.add_argument("--auth", choices=MODES, default=DEFAULT_MODE,
                     help="sensitive: control actions need an operator token, reads of incident bundles, profiles "
                     "and configuration a viewer token (cluster, metrics, health stay open); control: only control "
                     "actions need a token; all: every read needs a viewer token; off: no checks (lab only; logged "
                     "and shown in /health)")
    sec.add_argument("--auth-tokens-file", default="/etc/fodc/tokens",
                     help="lines '<name> <viewer|operator> sha256:<hex of the token>'; read at start")
    sec.add_argument("--audit-log", default="/var/log/fodc/proxy-audit.log",
                     help="JSON lines: who ran which control action on which nodes, allowed or refused")
    sec.add_argument("--audit-log-max-bytes", type=config.byte_size, default=32 * 1024 * 1024,
                     help="the audit log is rotated at this size (e.g. 32MiB); 4 older files are kept")
    diag = parser.add_argument_group("diagnostics jobs")
    diag.add_argument("--diagnostics-dir", default="/var/lib/fodc/proxy/diagnostics",
                      help="where the agents' profiles are kept, one directory per job")
    diag.add_argument("--diagnostics-budget-bytes", type=config.byte_size, default=1024 * 1024 * 1024,
                      help="bytes of results kept; the oldest finished jobs are evicted first")
    diag.add_argument("--diagnostics-max-jobs", type=config.positive_int, default=200,
                      help="jobs remembered; the oldest finished ones are evicted first")
    diag.add_argument("--diagnostics-max-bytes", type=config.byte_size, default=64 * 1024 * 1024,
                      help="largest single result accepted from an agent")
    diag.add_argument("--diagnostics-slack", type=config.positive_duration, default=60.0,
                      help="how much longer than its own duration (e.g. a CPU profile's seconds) a job may take")
    inc = parser.add_argument_group("incident archive")
    inc.add_argument("--incident-archive-dir", default="/var/lib/fodc/proxy/incidents",
                     help="the proxy's copies of the agents' complete incident bundles, one directory per node, "
                          "so an incident outlives its node's host")
    inc.add_argument("--incident-archive-bytes", type=config.byte_size, default=512 * 1024 * 1024,
                     help="bytes of bundles kept; the oldest incidents are evicted first")
    inc.add_argument("--incident-archive-max", type=config.positive_int, default=1000,
                     help="incidents kept; the oldest are evicted first")
    inc.add_argument("--incident-copy-interval", type=config.duration, default=30.0,
                     help="how often agents with new incidents are asked for their bundles; 0 turns copying off")
    config.add_logging_options(parser)
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> ProxySettings:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.agent_cleanup_timeout <= ns.agent_heartbeat_timeout:
        parser.error(f"argument --agent-cleanup-timeout: {ns.agent_cleanup_timeout:g}s must be greater than "
                     f"--agent-heartbeat-timeout ({ns.agent_heartbeat_timeout:g}s)")
    if bool(ns.http_tls_cert) != bool(ns.http_tls_key):
        parser.error("argument --http-tls-cert: --http-tls-cert and --http-tls-key go together")
    _check_pem(parser, (ns.http_tls_cert, "--http-tls-cert"), (ns.http_tls_key, "--http-tls-key"))
    if ns.auth != "off" and os.path.exists(ns.auth_tokens_file):
        try:
            load_tokens(ns.auth_tokens_file)
        except TokenFileError as exc:
            parser.error(f"argument --auth-tokens-file: {exc}")
    return ProxySettings(
        grpc_listen_addr=ns.grpc_listen_addr,
        http_listen_addr=ns.http_listen_addr,
        agent_heartbeat_timeout=ns.agent_heartbeat_timeout,
        agent_cleanup_timeout=ns.agent_cleanup_timeout,
        max_agents=ns.max_agents,
        grpc_max_msg_size=ns.grpc_max_msg_size,
        metrics_timeout=ns.metrics_timeout,
        window_max_points=ns.window_max_points,
        grpc_tls=_grpc_tls(parser, ns),
        http_tls_cert=ns.http_tls_cert or None,
        http_tls_key=ns.http_tls_key or None,
        command_timeout=ns.command_timeout,
        config_drift_ignore=ns.config_drift_ignore,
        auth=ns.auth,
        auth_tokens_file=ns.auth_tokens_file,
        audit_log=ns.audit_log,
        audit_log_max_bytes=ns.audit_log_max_bytes,
        diagnostics_dir=ns.diagnostics_dir,
        diagnostics_budget_bytes=ns.diagnostics_budget_bytes,
        diagnostics_max_jobs=ns.diagnostics_max_jobs,
        diagnostics_max_bytes=ns.diagnostics_max_bytes,
        diagnostics_slack=ns.diagnostics_slack,
        incident_archive_dir=ns.incident_archive_dir,
        incident_archive_bytes=ns.incident_archive_bytes,
        incident_archive_max=ns.incident_archive_max,
        incident_copy_interval=ns.incident_copy_interval,
        agent_hello_timeout=ns.agent_hello_timeout,
        registrations_per_peer=ns.registrations_per_peer,
        max_reply_bytes=ns.max_reply_bytes,
        max_reply_series=ns.max_reply_series,
        max_request_bytes=ns.max_request_bytes,
        http_threads=ns.http_threads,
        http_max_connections=ns.http_max_connections,
        http_client_timeout=ns.http_client_timeout,
        log_level=ns.log_level,
        log_format=ns.log_format,
    )


def _check_pem(parser: config.OneLineErrorParser, *files: tuple[str | None, str]) -> None:
    try:
        for path, option in files:
            if path:
                read_pem(path, option)
    except TlsFileError as exc:
        parser.error(f"argument {exc}")


def _grpc_tls(parser: config.OneLineErrorParser, ns: argparse.Namespace) -> ServerTls | None:
    if not (ns.grpc_tls_cert or ns.grpc_tls_key):
        if ns.grpc_tls_client_ca:
            parser.error("argument --grpc-tls-client-ca: needs --grpc-tls-cert and --grpc-tls-key")
        return None
    if not (ns.grpc_tls_cert and ns.grpc_tls_key):
        parser.error("argument --grpc-tls-cert: --grpc-tls-cert and --grpc-tls-key go together")
    _check_pem(parser, (ns.grpc_tls_cert, "--grpc-tls-cert"), (ns.grpc_tls_key, "--grpc-tls-key"),
               (ns.grpc_tls_client_ca, "--grpc-tls-client-ca"))
    return ServerTls(ns.grpc_tls_cert, ns.grpc_tls_key, ns.grpc_tls_client_ca or None)
