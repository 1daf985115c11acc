"""fodc-agent's options, each declared once (fodc/options.py): flags, /etc/fodc/agent.conf, FODC_* variables.

A new option is one `declare(...)` line in the section it belongs to (docs/options.md); `dev/gen-options`
then rewrites the conffile, the README table and the Ansible argument specs from these declarations.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from fodc import config
from fodc.agent.httpauth import CredentialFileError, load_tokens, load_users
from fodc.agent.identity import primary_ip
from fodc.config import HostPort
from fodc.incident import TRIGGERS
from fodc.incident.gocrash import MAX_TEXT_CHARS
from fodc.incident.rules import RuleError, ThresholdRule, parse_rule
from fodc.options import (
    LogSettings,
    Section,
    Settings,
    absolute_path_or_off,
    declare,
    http_url,
    optional_absolute_path,
    optional_http_url,
    optional_text,
    parse_or_exit,
    text,
)
from fodc.options import build_parser as _build_parser
from fodc.remotewrite.options import RemoteWriteOptions, RemoteWriteSettings
from fodc.tls import ClientTls, ServerTls, TlsFileError, https_server_context, pem_problems

DEFAULT_CONFIG = "/etc/fodc/agent.conf"
DEFAULT_NODE_PORT = 17912  # BanyanDB's gRPC port
DEFAULT_WINDOW_DIR = "/var/lib/fodc/agent/window"
HTTP_TLS_OPTIONS = ("--http-tls-cert", "--http-tls-key", "--http-tls-client-ca")


def _rule(value: str) -> ThresholdRule:
    try:
        return parse_rule(value)
    except RuleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _node_id(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def _triggers(value: str) -> tuple[str, ...]:
    names = config.name_list(value)
    unknown = set(names) - set(TRIGGERS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(sorted(unknown))} (choose from {', '.join(TRIGGERS)})")
    return names


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r} must be an absolute path")
    return value


def _crash_max_bytes(value: str) -> int:
    """Within what the crash report parser reads (fodc.incident.gocrash.MAX_TEXT_CHARS)."""
    size = config.byte_size(value)
    if not 64 * 1024 <= size <= MAX_TEXT_CHARS:
        raise argparse.ArgumentTypeError(f"{size} is outside 64KiB..{MAX_TEXT_CHARS // 2**20}MiB")
    return size


def _size_or_off(value: str) -> int:
    return 0 if value.strip() in ("0", "off") else config.byte_size(value)


def default_node_address() -> HostPort:
    """This host's own address (its default route's source) with BanyanDB's gRPC port; 127.0.0.1 only for a
    host with no network, where every agent would otherwise share one address."""
    return HostPort(primary_ip() or "127.0.0.1", DEFAULT_NODE_PORT)


@dataclass(frozen=True, slots=True)
class NodeSettings(Section):
    title = "The BanyanDB node this agent sits beside"
    role: str = declare(
        "node-role", config.role, None, "the node's role", choices=config.ROLES, required=True,
        example="datanode-hot", role_var="fodc_agent_node_role")
    id: str = declare(
        "node-id", _node_id, None, "the node's identity in the cluster view", example="banyandb-1",
        default_doc="this host's name", default_factory=socket.gethostname, role_var="fodc_agent_node_id",
        role_default="{{ inventory_hostname }}")
    address: HostPort = declare(
        "node-address", config.node_address, None,
        "the node's primary (gRPC) address ip:port; part of the agent's key at the proxy, together with this "
        "host's /etc/machine-id (cloned hosts need their own)", example="10.0.0.5:17912",
        default_doc=f"the source address of this host's default route, port {DEFAULT_NODE_PORT}",
        default_factory=default_node_address, role_var="fodc_agent_node_address",
        role_default="{{ ansible_facts.default_ipv4.address ~ ':17912' if (ansible_facts.default_ipv4 | "
        "default({})).address is defined else '' }}")
    gossip_address: HostPort | None = declare(
        "node-gossip-address", config.node_address, None,
        "the node's property-repair gossip address ip:port, if it has one", example="127.0.0.1:17932",
        role_var="fodc_agent_node_gossip_address")
    labels: Mapping[str, str] = declare(
        "node-labels", config.labels, "", "node labels as k=v,k2=v2; the proxy exports them as node_<k> labels",
        example="zone=a,rack=r1", role_var="fodc_agent_node_labels", role_type="dict", role_default={})
    metrics_urls: tuple[str, ...] = declare(
        "node-metrics-url", http_url, "http://127.0.0.1:2121/metrics",
        "the node's Prometheus endpoint; repeat for several (in the config file: [http://a/metrics, "
        "http://b/metrics])", repeat=True, role_var="fodc_agent_node_metrics_urls")


@dataclass(frozen=True, slots=True)
class ProxyLinkSettings(Section):
    title = "Connection to the FODC proxy"
    addr: HostPort = declare(
        "proxy-addr", config.node_address, "127.0.0.1:17900", "the FODC proxy's gRPC address host:port",
        role_var="fodc_agent_proxy_address", role_required=True)
    send_timeout: float = declare(
        "send-timeout", config.positive_duration, "10s",
        "deadline for any message to the proxy; a stuck stream is torn down and redialed")
    reconnect_max_backoff: float = declare(
        "reconnect-max-backoff", config.positive_duration, "30s",
        "longest pause between reconnect attempts (exponential backoff with jitter, retried forever)")


@dataclass(frozen=True, slots=True)
class ProxyTlsSettings(Section):
    title = "TLS to the proxy (docs/tls.md); the files are read again at each connection and on SIGHUP"
    ca: str | None = declare(
        "proxy-tls-ca", optional_text, None,
        "CA certificate (PEM) that signed the proxy's certificate; setting it turns TLS on",
        example="/etc/fodc/tls/ca.crt", reload=True, role_var="fodc_agent_proxy_tls_ca")
    cert: str | None = declare(
        "proxy-tls-cert", optional_text, None,
        "this agent's certificate (PEM) for mutual TLS, when the proxy asks for one; its CN or a DNS "
        "subjectAltName must be the node id", example="/etc/fodc/tls/agent.crt", reload=True,
        role_var="fodc_agent_proxy_tls_cert")
    key: str | None = declare(
        "proxy-tls-key", optional_text, None, "the private key (PEM) of proxy-tls-cert",
        example="/etc/fodc/tls/agent.key", reload=True, role_var="fodc_agent_proxy_tls_key")
    server_name: str | None = declare(
        "proxy-tls-server-name", optional_text, None,
        "name to expect in the proxy's certificate (default: the host of proxy-addr)",
        example="fodc-proxy.example.org", reload=True)

    def client(self) -> ClientTls | None:
        return ClientTls(self.ca, self.cert, self.key, self.server_name) if self.ca else None

    def problems(self) -> Iterator[str]:
        if not self.ca:
            if self.cert or self.key:
                yield "argument --proxy-tls-cert/--proxy-tls-key: need --proxy-tls-ca as well"
            return
        if bool(self.cert) != bool(self.key):
            yield "argument --proxy-tls-cert: --proxy-tls-cert and --proxy-tls-key go together"
            return
        yield from pem_problems((self.ca, "--proxy-tls-ca"), (self.cert, "--proxy-tls-cert"),
                                (self.key, "--proxy-tls-key"))


@dataclass(frozen=True, slots=True)
class HttpSettings(Section):
    title = "This agent's HTTP endpoint (/metrics, /health)"
    listen_addr: HostPort = declare(
        "http-listen-addr", config.listen_address, ":17902",
        "address of the agent's own HTTP endpoint (/metrics, /health)",
        role_var="fodc_agent_http_listen_address")
    max_connections: int = declare(
        "http-max-connections", config.positive_int, "64", config.HTTP_MAX_CONNECTIONS_HELP)
    client_timeout: float = declare(
        "http-client-timeout", config.positive_duration, "10s", config.HTTP_CLIENT_TIMEOUT_HELP)
    tls_cert: str | None = declare(
        "http-tls-cert", optional_text, None,
        "certificate (PEM) for HTTPS on the agent's endpoint; with http-tls-key turns TLS on (re-read when the "
        "files change)", example="/etc/fodc/agent-http.crt", role_var="fodc_agent_http_tls_cert")
    tls_key: str | None = declare(
        "http-tls-key", optional_text, None, "the private key (PEM) of http-tls-cert",
        example="/etc/fodc/agent-http.key", role_var="fodc_agent_http_tls_key")
    tls_client_ca: str | None = declare(
        "http-tls-client-ca", optional_text, None,
        "CA (PEM) whose client certificates alone may connect (mutual TLS)", example="/etc/fodc/prometheus-ca.crt",
        role_var="fodc_agent_http_tls_client_ca")
    auth_users_file: str | None = declare(
        "http-auth-users-file", optional_text, None,
        "basic auth: lines 'user:<bcrypt hash>' (htpasswd -nbBC 10 prometheus PASSWORD); every path but /health "
        "then needs credentials (re-read when it changes)", example="/etc/fodc/agent-http-users")
    auth_tokens_file: str | None = declare(
        "http-auth-tokens-file", optional_text, None,
        "bearer auth: lines '<name> sha256:<hex of the token>' (printf %s \"$TOKEN\" | sha256sum); every path but "
        "/health then needs credentials (both files: either kind is accepted)",
        example="/etc/fodc/agent-http-tokens")

    def tls(self) -> ServerTls | None:
        if self.tls_cert and self.tls_key:
            return ServerTls(self.tls_cert, self.tls_key, self.tls_client_ca)
        return None

    def problems(self) -> Iterator[str]:
        yield from self._tls_problems()
        for path, flag, load in ((self.auth_users_file, "--http-auth-users-file", load_users),
                                 (self.auth_tokens_file, "--http-auth-tokens-file", load_tokens)):
            yield from _credential_problems(path, flag, load)

    def _tls_problems(self) -> Iterator[str]:
        """HTTPS on the agent's endpoint; the certificate and key are loaded now so a mismatch stops the agent."""
        if not (self.tls_cert or self.tls_key):
            if self.tls_client_ca:
                yield "argument --http-tls-client-ca: needs --http-tls-cert and --http-tls-key"
            return
        if not (self.tls_cert and self.tls_key):
            yield "argument --http-tls-cert: --http-tls-cert and --http-tls-key go together"
            return
        try:
            https_server_context(ServerTls(self.tls_cert, self.tls_key, self.tls_client_ca), HTTP_TLS_OPTIONS)
        except TlsFileError as exc:
            yield f"argument {exc}"


def _credential_problems(path: str | None, flag: str, load: Callable[[str], Mapping[str, object]]) -> Iterator[str]:
    """An auth file, loaded now so that a typo stops the agent (an empty file would lock every scrape out)."""
    if not path:
        return
    try:
        if not load(path):
            yield f"argument {flag}: {path} holds no credentials; every scrape would be refused"
    except CredentialFileError as exc:
        yield f"argument {exc}"


@dataclass(frozen=True, slots=True)
class ScrapeSettings(Section):
    title = "Scraping the node"
    interval: float = declare(
        "scrape-interval", config.positive_duration, "15s", "how often the node's metrics are scraped",
        role_var="fodc_agent_scrape_interval")
    timeout: float = declare(
        "scrape-timeout", config.positive_duration, "10s", "deadline of one scrape (at most the interval)",
        role_var="fodc_agent_scrape_timeout")
    shutdown_timeout: float = declare(
        "shutdown-timeout", config.positive_duration, "10s",
        "longest graceful stop after SIGTERM before the agent exits anyway")

    def problems(self) -> Iterator[str]:
        if self.timeout > self.interval:
            yield (f"argument --scrape-timeout: {self.timeout:g}s must not exceed --scrape-interval "
                   f"({self.interval:g}s)")


@dataclass(frozen=True, slots=True)
class WindowSettings(Section):
    title = "The flight recorder window"
    memory: int = declare(
        "window-memory", config.byte_size, "30MiB",
        "size budget of the flight recorder window (its sealed blocks are read from --window-dir when that is "
        "on); the window length follows from it",
        role_var="fodc_agent_window_memory")
    dir: str | None = declare(
        "window-dir", absolute_path_or_off, DEFAULT_WINDOW_DIR,
        "directory the window is also kept in, so it survives agent crashes, restarts and reboots, and is read "
        "back at start ('' or off: memory only); one agent per directory (it is locked); `fodc dump DIR` "
        "prints it; outside /var/lib/fodc the unit also needs ReadWritePaths=; format: docs/window-format.md",
        role_var="fodc_agent_window_dir", role_default="/var/lib/fodc/agent/window")
    file_bytes: int = declare(
        "window-file-bytes", config.byte_size, "10MiB",
        "size at which an archive file of the window directory is closed and a new one begun")
    dir_bytes: int = declare(
        "window-dir-bytes", config.byte_size, "200MiB",
        "cap on the window directory, the oldest archive file going first (at least twice window-file-bytes; "
        "at 0.7 bytes a sample, 5,000 series scraped every 15s take ~20 MiB a day)",
        role_var="fodc_agent_window_dir_bytes")
    interim_scrapes: int = declare(
        "window-interim-scrapes", config.positive_int, "4",
        "the scrapes not yet sealed into a block are written to disk every this many scrapes; a crash loses "
        "at most one fewer")
    block_scrapes: int = declare(
        "window-block-scrapes", config.positive_int, "120",
        "scrapes per sealed (compressed) block of the window; bigger blocks compress better")

    def problems(self) -> Iterator[str]:
        if self.dir_bytes < 2 * self.file_bytes:
            yield (f"argument --window-dir-bytes: {self.dir_bytes} must be at least twice --window-file-bytes "
                   f"({self.file_bytes})")


@dataclass(frozen=True, slots=True)
class KtmSettings(Section):
    title = "Kernel telemetry (KTM: eBPF through BCC, plus /proc signals)"
    enabled: str = declare(
        "ktm-enabled", text, "auto",
        "auto: load the eBPF programs when the host allows it (needs python3-bpfcc, kernel headers, tracefs "
        "and the CAP_BPF/CAP_PERFMON the unit grants), else run on /proc signals only; on: insist; off: /proc "
        "only", choices=("auto", "on", "off"), role_var="fodc_agent_ktm_enabled")
    interval: float = declare(
        "ktm-interval", config.positive_duration, "15s", "how often kernel and OS telemetry are sampled into "
        "the window")
    target_comm: str = declare(
        "ktm-target-comm", text, "banyand", "process name (comm) of the database; eBPF counts only its syscalls")
    cgroup_path: str | None = declare(
        "ktm-cgroup-path", optional_text, None,
        "cgroup v2 path of the database (default: the cgroup of the process found by ktm-target-comm)",
        example="/system.slice/banyand.service")
    kernel_source: str | None = declare(
        "ktm-kernel-source", optional_text, None,
        "kernel header tree for BCC (default: the running kernel's, or the tree dev/ktm-headers prepares "
        "under /var/lib/fodc/ktm/kernel-headers)", example="/var/lib/fodc/ktm/kernel-headers")


@dataclass(frozen=True, slots=True)
class CaptureSettings(Section):
    title = "Node configuration capture (what the node runs with: argv flags, environment, config files)"
    pid_file: str | None = declare(
        "node-pid-file", optional_text, None, "find the node process by this pid file (checked first)",
        example="/run/banyandb/banyand.pid")
    systemd_unit: str | None = declare(
        "node-systemd-unit", optional_text, None,
        "find the node process as this unit's MainPID (checked second); its journal is read for crashes and "
        "log tails", example="banyand.service")
    process_name: str = declare(
        "node-process-name", text, "banyand",
        "find the node process by this name (comm) when neither of the above is set")
    pprof_url: str | None = declare(
        "node-pprof-url", optional_http_url, "http://127.0.0.1:6060",
        "the node's Go pprof endpoint, for profiles; its /debug/pprof/cmdline gives the argv when /proc "
        "cannot ('' turns it off)")
    config_files: tuple[str, ...] = declare(
        "node-config-file", _absolute_path, None,
        "a config file to capture besides those the node's flags point to; repeat for several",
        repeat=True, example="/etc/banyandb/banyand.yaml")
    env_allow: tuple[str, ...] = declare(
        "node-env-allow", config.name_list, "*", "environment variables to capture (comma-separated globs)")
    env_deny: tuple[str, ...] = declare(
        "node-env-deny", config.name_list, "LS_COLORS,SSH_*,LESS*",
        "environment variables never captured (comma-separated globs)")
    secret_names: tuple[str, ...] = declare(
        "node-secret-names", config.name_list, "",
        "extra globs of secret names (env, flags, config file keys) whose values are redacted, on top of the "
        "built-in PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL, ... list; redaction cannot be turned off",
        example="*_DSN,LICENSE_*")
    max_file_bytes: int = declare(
        "config-max-file-bytes", config.byte_size, "256KiB",
        "largest part of a config file kept in a snapshot (its size and sha256 always cover the whole file)")
    capture_interval: float = declare(
        "config-capture-interval", config.duration, "10m",
        "periodic re-capture (0 turns it off; node restarts and API requests still capture)")
    check_interval: float = declare(
        "config-check-interval", config.positive_duration, "5s",
        "how often the node process is looked up to notice a restart")
    history: int = declare(
        "config-history", config.positive_int, "16", "distinct snapshots kept per node (oldest dropped first)")
    instance_file: str | None = declare(
        "instance-file", optional_text, "/var/lib/fodc/agent/instance-id",
        "this agent installation's id, made on first start and locked while it runs: a restarted agent takes "
        "over its own entry at the proxy at once, a second agent with the same key is refused ('' = a new id "
        "at every start)")
    history_file: str = declare(
        "config-history-file", text, "/var/lib/fodc/agent/config-history.json",
        "where the history is kept across agent restarts, so a node restarted with other flags while the "
        "agent was down still shows as a change (empty: memory only)")


@dataclass(frozen=True, slots=True)
class DiagnosticsSettings(Section):
    title = "Diagnostics (profiles of the node through its Go pprof endpoint)"
    dir: str = declare(
        "diagnostics-dir", text, "/var/lib/fodc/agent/diagnostics",
        "where profiles are written before they are streamed to the proxy")
    keep: int = declare(
        "diagnostics-keep", config.positive_int, "32", "profiles kept in diagnostics-dir (oldest removed first)")
    dir_bytes: int = declare(
        "diagnostics-dir-bytes", config.byte_size, "256MiB", "bytes kept in diagnostics-dir (oldest removed "
        "first)")
    max_bytes: int = declare(
        "diagnostics-max-bytes", config.byte_size, "64MiB",
        "largest single profile; a bigger one fails (and is deleted) instead of filling the disk")
    max_seconds: int = declare(
        "diagnostics-max-seconds", config.positive_int, "300", "longest CPU profile that may be asked for, in "
        "seconds")
    queue: int = declare(
        "diagnostics-queue", config.positive_int, "2",
        "one profile runs at a time; this many more may wait for it, further requests are refused at once")


@dataclass(frozen=True, slots=True)
class MemoryPressureSettings(Section):
    title = "Automatic profiles under memory pressure"
    threshold: float = declare(
        "memory-pressure-threshold", config.percent, "75",
        "node RSS as a percentage of its memory limit at which heap and goroutine profiles are taken "
        "automatically (0 turns it off)")
    limit: int | None = declare(
        "memory-limit", config.byte_size, None, "the node's memory limit", example="16GiB",
        default_doc="its cgroup's memory.max, else the host's memory")
    interval: float = declare(
        "memory-pressure-interval", config.positive_duration, "15s", "how often the node's memory is checked")
    cooldown: float = declare(
        "memory-pressure-cooldown", config.positive_duration, "5m", "least time between two automatic captures")
    max_captures: int = declare(
        "memory-pressure-max-captures", config.positive_int, "16", "automatic captures per agent run at most")


@dataclass(frozen=True, slots=True)
class IncidentSettings(Section):
    title = "Incidents (first-occurrence capture: the evidence from the first time something went wrong)"
    triggers: tuple[str, ...] = declare(
        "incident-triggers", _triggers, ",".join(TRIGGERS),
        "built-in triggers to use (comma-separated): node-down (every scrape refused or failing), "
        "node-unresponsive (every scrape timing out), node-restart (new process or counters going back), "
        "memory-pressure, ktm-read-latency (read p99 well above its baseline), node-crash (a Go crash report "
        "or a new crash artifact), node-oom (the kernel OOM-killed the node); manual captures are always on")
    rules: tuple[ThresholdRule, ...] = declare(
        "incident-rule", _rule, None,
        "a threshold rule on any series, 'name: metric{label=\"v\"} > 0.9 for 30s'; repeat for several",
        repeat=True, example='disk-full: banyandb_system_disk{kind="used_percent"} > 90 for 1m')
    dir: str = declare(
        "incident-dir", text, "/var/lib/fodc/agent/incidents",
        "where incident bundles are written: the window from incident-before the trigger to incident-after "
        "it, a config snapshot, KTM state, profiles and the node's log tail")
    before: float = declare("incident-before", config.duration, "5m", "window kept from before the trigger")
    after: float = declare(
        "incident-after", config.duration, "1m",
        "window kept from after the trigger (the bundle is written once it has passed)")
    cooldown: float = declare(
        "incident-cooldown", config.positive_duration, "10m", "least time between two incidents of the same "
        "trigger")
    check_interval: float = declare(
        "incident-check-interval", config.positive_duration, "5s", "how often the triggers look at the node")
    node_down_for: float = declare(
        "incident-node-down-for", config.duration, "30s",
        "how long every scrape must fail before the node counts as down")
    latency_factor: float = declare(
        "incident-latency-factor", config.positive_float, "4", "KTM read-latency p99 this many times its "
        "baseline is an incident")
    cpu_seconds: int = declare(
        "incident-cpu-seconds", config.non_negative_int, "10",
        "CPU profile taken with an incident while the node is up (0: none)")
    log_lines: int = declare(
        "incident-log-lines", config.positive_int, "500", "lines of the node's log kept with an incident")
    node_log_file: str | None = declare(
        "node-log-file", optional_text, None,
        "the node's log file, tailed into incidents when node-systemd-unit is not set (journalctl is used then)",
        example="/var/log/banyandb/banyand.log", role_var="fodc_agent_node_log_file")
    keep: int = declare(
        "incident-keep", config.positive_int, "20", "incident bundles kept (oldest removed first)")
    dir_bytes: int = declare(
        "incident-dir-bytes", config.byte_size, "512MiB", "bytes of incident bundles kept (oldest removed first)")


@dataclass(frozen=True, slots=True)
class CrashSettings(Section):
    title = "Crash evidence and manual captures"
    output_file: str | None = declare(
        "node-crash-output-file", optional_absolute_path, None,
        "the file the node's Go crash reports go to (debug.SetCrashOutput), read first when the node goes down "
        "or restarts; its journal (node-systemd-unit) and node-log-file are read too",
        example="/var/log/banyandb/crash.log", role_var="fodc_agent_node_crash_output_file")
    max_bytes: int = declare(
        "node-crash-max-bytes", _crash_max_bytes, "4MiB",
        "bytes of the node's last output read for a crash report, and kept of one crash artifact")
    dir: str | None = declare(
        "node-crash-dir", optional_absolute_path, None,
        "directory the node writes crash artifacts into (a file or directory per crash, e.g. panic.json); each "
        "new one is a node-crash incident", example="/var/lib/banyandb/crashes",
        role_var="fodc_agent_node_crash_dir")
    cgroup_path: str | None = declare(
        "node-cgroup-path", optional_absolute_path, None,
        "the node's cgroup directory, whose OOM-kill counter (memory.events; memory.oom_control in cgroup v1) "
        "rising is a node-oom incident", example="/sys/fs/cgroup/system.slice/banyand.service",
        default_doc="the node process's own cgroup", role_var="fodc_agent_node_cgroup_path")
    trigger_file: str | None = declare(
        "trigger-file", optional_absolute_path, None,
        "a file whose appearance (touch it) freezes a manual incident now; its first line is the reason; the "
        "agent removes it (the unit lets it write below /var/lib/fodc only). SIGUSR2 to the agent does the same",
        example="/var/lib/fodc/agent/capture-now", role_var="fodc_agent_trigger_file")


@dataclass(frozen=True, slots=True)
class ProfileRingSettings(Section):
    title = "Profile ring (periodic profiles of the node: the minutes before an incident)"
    every: float = declare(
        "profile-every", config.duration, "5m",
        "take a CPU and a heap profile of the node this often into the ring; incident bundles include the ones "
        "from before the trigger (0 turns it off)", role_var="fodc_agent_profile_every")
    cpu_seconds: int = declare(
        "profile-cpu-seconds", config.non_negative_int, "10",
        "length of each periodic CPU profile, shorter than profile-every (0: heap profiles only)",
        role_var="fodc_agent_profile_cpu_seconds", role_type="int")
    ring_bytes: int = declare(
        "profile-ring-bytes", _size_or_off, "64MiB",
        "bytes of profiles kept on disk, oldest removed first (0 turns the ring off)",
        role_var="fodc_agent_profile_ring_bytes")
    ring_dir: str = declare(
        "profile-ring-dir", text, "/var/lib/fodc/agent/profiles",
        "where the ring's profiles are kept (they survive agent restarts)")

    def problems(self) -> Iterator[str]:
        if self.every and self.cpu_seconds >= self.every:
            yield (f"argument --profile-cpu-seconds: {self.cpu_seconds}s must be shorter than --profile-every "
                   f"({self.every:g}s)")
        if self.ring_bytes and not self.ring_dir.startswith("/"):
            yield f"argument --profile-ring-dir: {self.ring_dir!r} must be an absolute path"


@dataclass(frozen=True, slots=True)
class AgentSettings(Settings):
    program: ClassVar[str] = "fodc-agent"
    description: ClassVar[str] = (
        "FODC agent: runs beside one BanyanDB node, scrapes its metrics into an in-memory flight recorder, "
        "and serves them to the FODC proxy over gRPC.")
    default_config: ClassVar[str] = DEFAULT_CONFIG
    aliases: ClassVar[dict[str, str]] = {
        "node_metrics_urls": "node_metrics_url", "node_config_files": "node_config_file",
        "incident_rules": "incident_rule"}

    node: NodeSettings
    proxy: ProxyLinkSettings
    proxy_tls_files: ProxyTlsSettings
    http: HttpSettings
    scrape: ScrapeSettings
    window: WindowSettings
    ktm: KtmSettings
    capture: CaptureSettings
    diagnostics: DiagnosticsSettings
    memory_pressure: MemoryPressureSettings
    incidents: IncidentSettings
    crash: CrashSettings
    profile_ring: ProfileRingSettings
    remote_write_options: RemoteWriteOptions
    log: LogSettings

    @property
    def proxy_tls(self) -> ClientTls | None:
        return self.proxy_tls_files.client()

    @property
    def http_tls(self) -> ServerTls | None:
        return self.http.tls()

    @property
    def remote_write(self) -> RemoteWriteSettings | None:
        """None when no --remote-write-url is given (off); secrets are read from their files here."""
        return self.remote_write_options.settings(self.scrape.interval)


def build_parser() -> argparse.ArgumentParser:
    """fodc-agent's full parser (for --help and man pages); building it has no side effects."""
    return _build_parser(AgentSettings)


def parse_settings(argv: Sequence[str] | None = None) -> AgentSettings:
    """The settings the agent starts with, or every problem on its own line and exit status 2."""
    return parse_or_exit(AgentSettings, argv)
