"""fodc-proxy's options, each declared once (fodc/options.py): flags, /etc/fodc/proxy.conf, FODC_* variables.

A new option is one `declare(...)` line in the section it belongs to (docs/options.md); `dev/gen-options`
then rewrites the conffile, the README table and the Ansible argument specs from these declarations.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from fodc import config
from fodc.config import HostPort
from fodc.options import LogSettings, Section, Settings, declare, optional_text, parse_or_exit, text
from fodc.options import build_parser as _build_parser
from fodc.proxy.auth import DEFAULT_MODE, MODES, TokenFileError, load_tokens
from fodc.remotewrite.options import ProxyRemoteWriteOptions
from fodc.tls import ServerTls, pem_problems

DEFAULT_CONFIG = "/etc/fodc/proxy.conf"


@dataclass(frozen=True, slots=True)
class ListenSettings(Section):
    title = "Listeners"
    grpc_listen_addr: HostPort = declare(
        "grpc-listen-addr", config.host_port, ":17900",
        "address the agents connect to over gRPC (host:port; an empty host means all interfaces)",
        role_var="fodc_proxy_grpc_listen_address")
    http_listen_addr: HostPort = declare(
        "http-listen-addr", config.host_port, ":17901",
        "address of the HTTP API (/cluster, /cluster/config, /metrics, /metrics-windows, ...)",
        role_var="fodc_proxy_http_listen_address")
    grpc_max_msg_size: int = declare(
        "grpc-max-msg-size", config.byte_size, "4194304",
        "largest gRPC message accepted or sent, in bytes; agents split large replies into chunks below it",
        role_var="fodc_proxy_grpc_max_msg_size")
    http_threads: int = declare(
        "http-threads", config.positive_int, "16", "HTTP requests served concurrently by the single gunicorn "
        "worker")
    http_max_connections: int = declare(
        "http-max-connections", config.positive_int, "1000", config.HTTP_MAX_CONNECTIONS_HELP)
    http_client_timeout: float = declare(
        "http-client-timeout", config.positive_duration, "10s", config.HTTP_CLIENT_TIMEOUT_HELP)


@dataclass(frozen=True, slots=True)
class AgentsSettings(Section):
    title = "Agents"
    heartbeat_timeout: float = declare(
        "agent-heartbeat-timeout", config.positive_duration, "30s",
        "an agent silent this long is shown 'unconnected' in /cluster", role_var="fodc_proxy_agent_heartbeat_timeout")
    cleanup_timeout: float = declare(
        "agent-cleanup-timeout", config.positive_duration, "5m",
        "an unconnected agent is removed after this long; must be greater than agent-heartbeat-timeout",
        role_var="fodc_proxy_agent_cleanup_timeout")
    max_agents: int = declare(
        "max-agents", config.positive_int, "1000", "registrations beyond this many agents are refused with a "
        "clear error", role_var="fodc_proxy_max_agents")
    metrics_timeout: float = declare(
        "metrics-timeout", config.positive_duration, "10s",
        "how long /metrics and /metrics-windows wait for each agent's answer", role_var="fodc_proxy_metrics_timeout")
    command_timeout: float = declare(
        "command-timeout", config.positive_duration, "15s",
        "how long configuration requests (/cluster/config, history, capture, drift) wait for the agents")
    window_max_points: int = declare(
        "window-max-points", config.positive_int, "4000000",
        "points one agent may return for one /metrics-windows request (after step); a larger request is a 400 "
        "naming start/end and step (1 h of 6,400 series at 15 s is 1.5 M points)")
    config_drift_ignore: tuple[str, ...] = declare(
        "config-drift-ignore", config.name_list, "",
        "more settings (globs over flag.*, env.*, file.*, agent.*) that may differ between nodes of a role "
        "without being drift, on top of the built-in list (ports, node ids, data paths, host names); "
        "comma-separated", example="flag.*-cache-size")

    def problems(self) -> Iterator[str]:
        if self.cleanup_timeout <= self.heartbeat_timeout:
            yield (f"argument --agent-cleanup-timeout: {self.cleanup_timeout:g}s must be greater than "
                   f"--agent-heartbeat-timeout ({self.heartbeat_timeout:g}s)")


@dataclass(frozen=True, slots=True)
class HostileSettings(Section):
    title = "Limits on what agents send (README: Limits and hostile clients)"
    agent_hello_timeout: float = declare(
        "agent-hello-timeout", config.positive_duration, "10s",
        "a gRPC stream that has not said which agent it is (registration or hello) within this is closed")
    registrations_per_peer: int = declare(
        "registrations-per-peer", config.positive_int, "300",
        "registrations accepted per minute from one peer address (bursts up to this many)")
    max_reply_bytes: int = declare(
        "max-reply-bytes", config.byte_size, "128MiB",
        "largest answer one agent may give to one metrics request; beyond it that agent is reported missing "
        "for that request")
    max_reply_series: int = declare(
        "max-reply-series", config.positive_int, "200000",
        "most series one agent may send in answer to one metrics request")
    max_request_bytes: int = declare(
        "max-request-bytes", config.byte_size, "1GiB",
        "most agent reply bytes one /metrics or /metrics-windows request gathers in all; agents past it are "
        "reported missing")


@dataclass(frozen=True, slots=True)
class TlsSettings(Section):
    title = "TLS (docs/tls.md: making a CA and certificates for a cluster)"
    grpc_tls_cert: str | None = declare(
        "grpc-tls-cert", optional_text, None,
        "the proxy's certificate (PEM) for the agents' gRPC link; with grpc-tls-key turns TLS on; renewed files "
        "are picked up at the next connection, without a restart", example="/etc/fodc/tls/proxy.crt",
        reload=True, role_var="fodc_proxy_grpc_tls_cert")
    grpc_tls_key: str | None = declare(
        "grpc-tls-key", optional_text, None, "the private key (PEM) of grpc-tls-cert",
        example="/etc/fodc/tls/proxy.key", reload=True, role_var="fodc_proxy_grpc_tls_key")
    grpc_tls_client_ca: str | None = declare(
        "grpc-tls-client-ca", optional_text, None,
        "CA (PEM) that signs agent certificates; setting it makes TLS mutual: agents without a certificate "
        "from this CA are refused", example="/etc/fodc/tls/ca.crt", reload=True,
        role_var="fodc_proxy_grpc_tls_client_ca")
    http_tls_cert: str | None = declare(
        "http-tls-cert", optional_text, None,
        "certificate (PEM) for HTTPS on the HTTP API; read at each new connection, so a renewed file needs no "
        "reload", example="/etc/fodc/tls/proxy.crt", reload=True, role_var="fodc_proxy_http_tls_cert")
    http_tls_key: str | None = declare(
        "http-tls-key", optional_text, None, "the private key (PEM) of http-tls-cert",
        example="/etc/fodc/tls/proxy.key", reload=True, role_var="fodc_proxy_http_tls_key")

    def grpc(self) -> ServerTls | None:
        if self.grpc_tls_cert and self.grpc_tls_key:
            return ServerTls(self.grpc_tls_cert, self.grpc_tls_key, self.grpc_tls_client_ca)
        return None

    def problems(self) -> Iterator[str]:
        if bool(self.http_tls_cert) != bool(self.http_tls_key):
            yield "argument --http-tls-cert: --http-tls-cert and --http-tls-key go together"
        else:
            yield from pem_problems((self.http_tls_cert, "--http-tls-cert"), (self.http_tls_key, "--http-tls-key"))
        if not (self.grpc_tls_cert or self.grpc_tls_key):
            if self.grpc_tls_client_ca:
                yield "argument --grpc-tls-client-ca: needs --grpc-tls-cert and --grpc-tls-key"
            return
        if not (self.grpc_tls_cert and self.grpc_tls_key):
            yield "argument --grpc-tls-cert: --grpc-tls-cert and --grpc-tls-key go together"
            return
        yield from pem_problems((self.grpc_tls_cert, "--grpc-tls-cert"), (self.grpc_tls_key, "--grpc-tls-key"),
                                 (self.grpc_tls_client_ca, "--grpc-tls-client-ca"))


@dataclass(frozen=True, slots=True)
class AccessSettings(Section):
    title = "Access control (README: Access control)"
    auth: str = declare(
        "auth", text, DEFAULT_MODE,
        "sensitive: control actions need an operator token, and reads of incident bundles, crash reports, "
        "profiles, configuration and /mcp a viewer token (/cluster, /metrics, /metrics-windows, /health stay "
        "open); control: only control actions need a token (every read open); all: every read needs a viewer "
        "token; off: nothing is checked (lab use; logged and shown in /health)",
        choices=MODES, role_var="fodc_proxy_auth")
    auth_tokens_file: str = declare(
        "auth-tokens-file", text, "/etc/fodc/tokens",
        "lines '<name> <viewer|operator> sha256:<hex of the token>'; a missing file means no tokens; re-read "
        "when it changes and on SIGHUP; a malformed file stops the proxy at start with the line number",
        reload=True)
    audit_log: str = declare(
        "audit-log", text, "/var/log/fodc/proxy-audit.log",
        "JSON lines: who ran which control action on which nodes, allowed or refused")
    audit_log_max_bytes: int = declare(
        "audit-log-max-bytes", config.byte_size, "32MiB",
        "the audit log is rotated at this size; 4 older files (audit-log.1 .. .4) are kept")

    def problems(self) -> Iterator[str]:
        if self.auth != "off" and os.path.exists(self.auth_tokens_file):
            try:
                load_tokens(self.auth_tokens_file)
            except TokenFileError as exc:
                yield f"argument --auth-tokens-file: {exc}"


@dataclass(frozen=True, slots=True)
class DiagnosticsSettings(Section):
    title = "Diagnostics jobs (profiles taken by the agents, kept here for download)"
    dir: str = declare(
        "diagnostics-dir", text, "/var/lib/fodc/proxy/diagnostics",
        "where the agents' profiles are kept, one directory per job")
    budget_bytes: int = declare(
        "diagnostics-budget-bytes", config.byte_size, "1GiB",
        "bytes of results kept; the oldest finished jobs are evicted first")
    max_jobs: int = declare(
        "diagnostics-max-jobs", config.positive_int, "200", "jobs remembered; the oldest finished ones are "
        "evicted first")
    max_bytes: int = declare(
        "diagnostics-max-bytes", config.byte_size, "64MiB", "largest single result accepted from an agent")
    slack: float = declare(
        "diagnostics-slack", config.positive_duration, "60s",
        "how much longer than its own duration (e.g. a CPU profile's seconds) a job may take")


@dataclass(frozen=True, slots=True)
class IncidentArchiveSettings(Section):
    title = "Incident archive (the proxy's copies of the agents' complete incident bundles)"
    dir: str = declare(
        "incident-archive-dir", text, "/var/lib/fodc/proxy/incidents",
        "one directory per node; an incident stays listed and downloadable here after its node's host is gone")
    bytes: int = declare(
        "incident-archive-bytes", config.byte_size, "512MiB",
        "bytes of bundles kept; the oldest incidents are evicted first")
    max: int = declare(
        "incident-archive-max", config.positive_int, "1000", "incidents kept; the oldest are evicted first")
    summary_bytes: int = declare(
        "incident-archive-summary-bytes", config.byte_size, "16MiB",
        "bytes of incident summaries (the agents' detail and file lists) kept, on disk and in memory; the oldest "
        "incidents are evicted first, a summary bigger than this is refused")
    copy_interval: float = declare(
        "incident-copy-interval", config.duration, "30s",
        "how often agents with new incidents are asked for their bundles; 0 turns copying off")


@dataclass(frozen=True, slots=True)
class ProxySettings(Settings):
    program: ClassVar[str] = "fodc-proxy"
    description: ClassVar[str] = (
        "FODC proxy: accepts agent gRPC streams, keeps the agent registry and cluster topology, and serves the "
        "HTTP API (/cluster, /metrics, /metrics-windows, ...).")
    default_config: ClassVar[str] = DEFAULT_CONFIG

    listen: ListenSettings
    agents: AgentsSettings
    limits: HostileSettings
    tls: TlsSettings
    access: AccessSettings
    diagnostics: DiagnosticsSettings
    incident_archive: IncidentArchiveSettings
    remote_write: ProxyRemoteWriteOptions
    log: LogSettings

    @property
    def grpc_tls(self) -> ServerTls | None:
        return self.tls.grpc()


def build_parser() -> argparse.ArgumentParser:
    """fodc-proxy's full parser (for --help and man pages); building it has no side effects."""
    return _build_parser(ProxySettings)


def parse_settings(argv: Sequence[str] | None = None) -> ProxySettings:
    """The settings the proxy starts with, or every problem on its own line and exit status 2."""
    return parse_or_exit(ProxySettings, argv)
