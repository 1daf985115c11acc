"""fodc-agent's options, defined once: flags, /etc/fodc/agent.conf and FODC_* environment variables."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fodc import config
from fodc.agent.httpauth import CredentialFileError, load_tokens, load_users
from fodc.agent.identity import primary_ip
from fodc.config import HostPort
from fodc.incident import TRIGGERS
from fodc.incident.gocrash import MAX_TEXT_CHARS
from fodc.incident.rules import RuleError, ThresholdRule, parse_rule
from fodc.remotewrite import options as remote_write
from fodc.tls import ClientTls, ServerTls, TlsFileError, https_server_context, read_pem

DEFAULT_CONFIG = "/etc/fodc/agent.conf"
DEFAULT_NODE_PORT = 17912  # BanyanDB's gRPC port
DEFAULT_WINDOW_DIR = "/var/lib/fodc/agent/window"


def _rule(text: str) -> ThresholdRule:
    try:
        return parse_rule(text)
    except RuleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class AgentSettings:
    proxy_addr: HostPort
    node_id: str
    node_role: str
    node_address: HostPort
    node_gossip_address: HostPort | None
    node_labels: Mapping[str, str]
    http_listen_addr: HostPort
    http_max_connections: int
    http_client_timeout: float
    node_metrics_urls: tuple[str, ...]
    scrape_interval: float
    scrape_timeout: float
    window_memory: int
    window_dir: str | None  # None: the window is kept in memory only
    window_file_bytes: int
    window_dir_bytes: int
    window_interim_scrapes: int
    window_block_scrapes: int
    send_timeout: float
    proxy_tls: ClientTls | None
    reconnect_max_backoff: float
    shutdown_timeout: float
    ktm_enabled: str
    ktm_interval: float
    ktm_target_comm: str
    ktm_cgroup_path: str | None
    ktm_kernel_source: str | None
    node_pid_file: str | None
    node_systemd_unit: str | None
    node_process_name: str
    node_pprof_url: str | None
    node_config_files: tuple[str, ...]
    node_env_allow: tuple[str, ...]
    node_env_deny: tuple[str, ...]
    node_secret_names: tuple[str, ...]
    config_max_file_bytes: int
    config_capture_interval: float
    config_check_interval: float
    config_history: int
    config_history_file: str
    instance_file: str | None
    diagnostics_dir: str
    diagnostics_keep: int
    diagnostics_dir_bytes: int
    diagnostics_max_bytes: int
    diagnostics_max_seconds: int
    diagnostics_queue: int
    memory_pressure_threshold: float
    memory_limit: int | None
    memory_pressure_interval: float
    memory_pressure_cooldown: float
    memory_pressure_max_captures: int
    node_log_file: str | None
    incident_dir: str
    incident_triggers: tuple[str, ...]
    incident_rules: tuple[ThresholdRule, ...]
    incident_before: float
    incident_after: float
    incident_cooldown: float
    incident_check_interval: float
    incident_node_down_for: float
    incident_latency_factor: float
    incident_cpu_seconds: int
    incident_log_lines: int
    incident_keep: int
    incident_dir_bytes: int
    log_level: str
    log_format: str
    extra: Mapping[str, object] = field(default_factory=dict)
    # crash evidence and manual captures
    node_crash_output_file: str | None = None
    node_crash_max_bytes: int = 4 * 1024 * 1024
    node_crash_dir: str | None = None
    trigger_file: str | None = None
    node_cgroup_path: str | None = None
    # the profile ring: periodic profiles of the node, the minutes before an incident (0 = off)
    profile_every: float = 300.0
    profile_cpu_seconds: int = 10
    profile_ring_bytes: int = 64 * 1024 * 1024
    profile_ring_dir: str = "/var/lib/fodc/agent/profiles"
    # the agent's own HTTP endpoint: HTTPS and who may read it (None: plain HTTP, open)
    http_tls: ServerTls | None = None
    http_auth_users_file: str | None = None
    http_auth_tokens_file: str | None = None
    remote_write: remote_write.RemoteWriteSettings | None = None  # None: no --remote-write-url (off)


def build_parser() -> config.OneLineErrorParser:
    parser = config.make_parser(
        "fodc-agent",
        "FODC agent: runs beside one BanyanDB node, scrapes its metrics into an in-memory flight recorder, "
        "and serves them to the FODC proxy over gRPC.",
        DEFAULT_CONFIG,
    )
    node = parser.add_argument_group("the BanyanDB node this agent sits beside")
    node.add_argument("--node-role", type=config.role, required=True,
                      help=f"the node's role: {', '.join(config.ROLES)}")
    node.add_argument("--node-id", default=socket.gethostname(),
                      help="the node's identity in the cluster view (default: this host's name)")
    node.add_argument("--node-address", type=config.node_address, default=None,
                      help="the node's primary (gRPC) address ip:port; part of the agent's key at the proxy "
                      f"(default: this host's default-route address, port {DEFAULT_NODE_PORT})")
    node.add_argument("--node-gossip-address", type=config.node_address, default=None,
                      help="the node's property-repair gossip address ip:port (e.g. 127.0.0.1:17932), if any")
    node.add_argument("--node-labels", type=config.labels, default={},
                      help="node labels as k=v,k2=v2 (e.g. zone=a,rack=r1); exported as node_<k> by the proxy")
    node.add_argument("--node-metrics-url", action="append", dest="node_metrics_urls", default=None,
                      help="the node's Prometheus endpoint; repeat for several "
                      "(default http://127.0.0.1:2121/metrics)")
    proxy = parser.add_argument_group("connection to the proxy")
    proxy.add_argument("--proxy-addr", type=config.node_address, default=config.node_address("127.0.0.1:17900"),
                       help="the FODC proxy's gRPC address host:port")
    proxy.add_argument("--proxy-tls-ca", default=None,
                       help="CA certificate (PEM) that signed the proxy's certificate; setting it turns TLS on")
    proxy.add_argument("--proxy-tls-cert", default=None,
                       help="this agent's certificate (PEM) for mutual TLS, when the proxy asks for one")
    proxy.add_argument("--proxy-tls-key", default=None, help="the private key (PEM) of --proxy-tls-cert")
    proxy.add_argument("--proxy-tls-server-name", default=None,
                       help="name to expect in the proxy's certificate (default: the host of --proxy-addr)")
    proxy.add_argument("--send-timeout", type=config.positive_duration, default=10.0,
                       help="deadline for any message to the proxy; a stuck stream is torn down and redialed")
    proxy.add_argument("--reconnect-max-backoff", type=config.positive_duration, default=30.0,
                       help="longest pause between reconnect attempts (exponential backoff with jitter, forever)")
    local = parser.add_argument_group("this agent")
    local.add_argument("--http-listen-addr", type=config.listen_address, default=config.listen_address(":17902"),
                       help="address of the agent's own HTTP endpoint (/metrics, /health)")
    config.add_http_client_limits(local, max_connections=64)
    local.add_argument("--http-tls-cert", default=None,
                       help="certificate (PEM) for HTTPS on the agent's endpoint; with --http-tls-key turns TLS on "
                       "(re-read when the files change)")
    local.add_argument("--http-tls-key", default=None, help="the private key (PEM) of --http-tls-cert")
    local.add_argument("--http-tls-client-ca", default=None,
                       help="CA (PEM) whose client certificates alone may connect (mutual TLS)")
    local.add_argument("--http-auth-users-file", default=None,
                       help="basic auth: lines 'user:<bcrypt hash>' (htpasswd -nbB user PASSWORD); every path but "
                       "/health then needs credentials")
    local.add_argument("--http-auth-tokens-file", default=None,
                       help="bearer auth: lines '<name> sha256:<hex of the token>'; every path but /health then "
                       "needs credentials (both files: either kind is accepted)")
    local.add_argument("--scrape-interval", type=config.positive_duration, default=15.0,
                       help="how often the node's metrics are scraped")
    local.add_argument("--scrape-timeout", type=config.positive_duration, default=10.0,
                       help="deadline of one scrape")
    local.add_argument("--window-memory", type=config.byte_size, default=30 * 1024 * 1024,
                       help="memory budget of the flight recorder window (e.g. 30MiB); the window length "
                       "is derived from it")
    local.add_argument("--window-dir", default=DEFAULT_WINDOW_DIR,
                       help="directory the window is also kept in, so it survives agent crashes and reboots "
                       "('' or off: memory only); docs/window-format.md describes the files")
    local.add_argument("--window-file-bytes", type=config.byte_size, default=10 * 1024 * 1024,
                       help="size at which an archive file of the window directory is closed and a new one begun")
    local.add_argument("--window-dir-bytes", type=config.byte_size, default=200 * 1024 * 1024,
                       help="cap on the window directory; the oldest archive file goes first (at least twice "
                       "--window-file-bytes)")
    local.add_argument("--window-interim-scrapes", type=config.positive_int, default=4,
                       help="the scrapes not yet sealed into a block are written to disk every this many scrapes; "
                       "a crash loses at most one fewer")
    local.add_argument("--window-block-scrapes", type=config.positive_int, default=120,
                       help="scrapes per sealed (compressed) block of the window; bigger blocks compress better")
    local.add_argument("--shutdown-timeout", type=config.positive_duration, default=10.0,
                       help="longest graceful stop after SIGTERM before the agent exits anyway")
    ktm = parser.add_argument_group("kernel telemetry (KTM: eBPF through BCC, plus /proc signals)")
    ktm.add_argument("--ktm-enabled", choices=["auto", "on", "off"], default="auto",
                     help="auto: load the eBPF programs when the host allows it, else run on /proc signals only")
    ktm.add_argument("--ktm-interval", type=config.positive_duration, default=15.0,
                     help="how often kernel and OS telemetry are sampled into the window")
    ktm.add_argument("--ktm-target-comm", default="banyand",
                     help="process name (comm) of the database; eBPF counts only its syscalls")
    ktm.add_argument("--ktm-cgroup-path", default=None,
                     help="cgroup v2 path of the database (default: the cgroup of the process found by comm)")
    ktm.add_argument("--ktm-kernel-source", default=None,
                     help="kernel header tree for BCC (default: the running kernel's, or the tree dev/ktm-headers "
                     "prepares under /var/lib/fodc/ktm/kernel-headers)")
    conf = parser.add_argument_group("node configuration capture (what the node runs with)")
    conf.add_argument("--node-pid-file", default=None,
                      help="find the node process by this pid file (checked first)")
    conf.add_argument("--node-systemd-unit", default=None,
                      help="find the node process as this unit's MainPID, e.g. banyand.service (checked second)")
    conf.add_argument("--node-process-name", default="banyand",
                      help="find the node process by this name (comm) when neither of the above is set")
    conf.add_argument("--node-pprof-url", default="http://127.0.0.1:6060",
                      help="the node's Go pprof endpoint; its /debug/pprof/cmdline is read when /proc cannot be "
                      "('' turns it off)")
    conf.add_argument("--node-config-file", action="append", dest="node_config_files", default=None,
                      help="a config file to capture besides those the node's flags point to; repeat for several")
    conf.add_argument("--node-env-allow", type=config.name_list, default="*",
                      help="environment variables to capture (comma-separated globs)")
    conf.add_argument("--node-env-deny", type=config.name_list, default="LS_COLORS,SSH_*,LESS*",
                      help="environment variables never captured (comma-separated globs)")
    conf.add_argument("--node-secret-names", type=config.name_list, default="",
                      help="extra globs of secret names (env, flags, config keys) whose values are redacted, on top "
                      "of the built-in PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL, ... list")
    conf.add_argument("--config-max-file-bytes", type=config.byte_size, default=256 * 1024,
                      help="largest part of a config file kept in a snapshot (the hash covers the whole file)")
    conf.add_argument("--config-capture-interval", type=config.duration, default=600.0,
                      help="periodic re-capture (0 turns it off; restarts and API requests still capture)")
    conf.add_argument("--config-check-interval", type=config.positive_duration, default=5.0,
                      help="how often the node process is looked up to notice a restart")
    conf.add_argument("--config-history", type=config.positive_int, default=16,
                      help="distinct snapshots kept per node (oldest dropped first)")
    conf.add_argument("--instance-file", default="/var/lib/fodc/agent/instance-id",
                      help="this agent installation's id, made on first start and kept locked while it runs: a "
                      "restarted agent takes over its own entry at the proxy, a second agent with the same "
                      "identity is refused ('' = a new id each start)")
    conf.add_argument("--config-history-file", default="/var/lib/fodc/agent/config-history.json",
                      help="where the history is kept across agent restarts (empty: memory only)")
    diag = parser.add_argument_group("diagnostics (profiles of the node through its Go pprof endpoint)")
    diag.add_argument("--diagnostics-dir", default="/var/lib/fodc/agent/diagnostics",
                      help="where profiles are written before they are sent to the proxy")
    diag.add_argument("--diagnostics-keep", type=config.positive_int, default=32,
                      help="profiles kept in --diagnostics-dir (oldest removed first)")
    diag.add_argument("--diagnostics-dir-bytes", type=config.byte_size, default=256 * 1024 * 1024,
                      help="bytes kept in --diagnostics-dir (oldest removed first)")
    diag.add_argument("--diagnostics-max-bytes", type=config.byte_size, default=64 * 1024 * 1024,
                      help="largest single profile; a bigger one fails and is deleted")
    diag.add_argument("--diagnostics-max-seconds", type=config.positive_int, default=300,
                      help="longest CPU profile that may be asked for, in seconds")
    diag.add_argument("--diagnostics-queue", type=config.positive_int, default=2,
                      help="profiles that may wait while one runs; more are refused at once")
    diag.add_argument("--memory-pressure-threshold", type=config.percent, default=75.0,
                      help="node RSS as a percentage of its memory limit at which heap and goroutine profiles are "
                      "taken automatically (0 turns it off)")
    diag.add_argument("--memory-limit", type=config.byte_size, default=None,
                      help="the node's memory limit (default: its cgroup's memory.max, else the host's memory)")
    diag.add_argument("--memory-pressure-interval", type=config.positive_duration, default=15.0,
                      help="how often the node's memory is checked")
    diag.add_argument("--memory-pressure-cooldown", type=config.positive_duration, default=300.0,
                      help="least time between two automatic captures")
    diag.add_argument("--memory-pressure-max-captures", type=config.positive_int, default=16,
                      help="automatic captures per agent run at most")
    inc = parser.add_argument_group("incidents (first-occurrence capture)")
    inc.add_argument("--incident-triggers", type=config.name_list, default=",".join(TRIGGERS),
                     help="built-in triggers to use (comma-separated): " + ", ".join(TRIGGERS))
    inc.add_argument("--incident-rule", action="append", dest="incident_rules", type=_rule, default=None,
                     help="a threshold rule 'name: metric{label=\"v\"} > 0.9 for 30s'; repeat for several")
    inc.add_argument("--incident-dir", default="/var/lib/fodc/agent/incidents",
                     help="where incident bundles are written")
    inc.add_argument("--incident-before", type=config.duration, default=300.0,
                     help="window kept from before the trigger")
    inc.add_argument("--incident-after", type=config.duration, default=60.0,
                     help="window kept from after the trigger (the bundle is written once it has passed)")
    inc.add_argument("--incident-cooldown", type=config.positive_duration, default=600.0,
                     help="least time between two incidents of the same trigger")
    inc.add_argument("--incident-check-interval", type=config.positive_duration, default=5.0,
                     help="how often the triggers look at the node")
    inc.add_argument("--incident-node-down-for", type=config.duration, default=30.0,
                     help="how long every scrape must fail before the node counts as down")
    inc.add_argument("--incident-latency-factor", type=config.positive_float, default=4.0,
                     help="KTM read-latency p99 this many times its baseline is an incident")
    inc.add_argument("--incident-cpu-seconds", type=config.non_negative_int, default=10,
                     help="CPU profile taken with an incident while the node is up (0: none)")
    inc.add_argument("--incident-log-lines", type=config.positive_int, default=500,
                     help="lines of the node's log kept with an incident")
    inc.add_argument("--node-log-file", default=None,
                     help="the node's log file, tailed into incidents when --node-systemd-unit is not set")
    inc.add_argument("--incident-keep", type=config.positive_int, default=20,
                     help="incident bundles kept (oldest removed first)")
    inc.add_argument("--incident-dir-bytes", type=config.byte_size, default=512 * 1024 * 1024,
                     help="bytes of incident bundles kept (oldest removed first)")
    crash = parser.add_argument_group("crash evidence and manual captures")
    crash.add_argument("--node-crash-output-file", default=None,
                       help="the file the node's Go crash reports go to (debug.SetCrashOutput), read first when the "
                       "node goes down or restarts; the journal and --node-log-file are read too")
    crash.add_argument("--node-crash-max-bytes", type=config.byte_size, default=4 * 1024 * 1024,
                       help="bytes of the node's last output read for a crash report, and kept of one crash "
                       "artifact")
    crash.add_argument("--node-crash-dir", default=None,
                       help="directory the node writes crash artifacts into (a file or directory per crash, e.g. "
                       "panic.json); each new one is a node-crash incident")
    crash.add_argument("--node-cgroup-path", default=None,
                       help="the node's cgroup directory, whose OOM-kill counter (memory.events, or memory.oom_control "
                       "in cgroup v1) makes node-oom incidents (default: the node process's own cgroup)")
    crash.add_argument("--trigger-file", default=None,
                       help="a file whose appearance (touch it) freezes a manual incident now; its first line is "
                       "the reason; the agent removes it. SIGUSR2 to the agent does the same")
    ring = parser.add_argument_group("profile ring (periodic profiles: the minutes before an incident)")
    ring.add_argument("--profile-every", type=config.duration, default=300.0,
                      help="take a CPU and a heap profile of the node this often into the ring (0 turns it off)")
    ring.add_argument("--profile-cpu-seconds", type=config.non_negative_int, default=10,
                      help="length of each periodic CPU profile (0: heap profiles only)")
    ring.add_argument("--profile-ring-bytes", type=_size_or_off, default=64 * 1024 * 1024,
                      help="bytes of profiles kept on disk, oldest removed first (0 turns the ring off)")
    ring.add_argument("--profile-ring-dir", default="/var/lib/fodc/agent/profiles",
                      help="where the ring's profiles are kept (they survive agent restarts)")
    remote_write.add_arguments(parser)
    config.add_logging_options(parser)
    return parser


def _size_or_off(text: str) -> int:
    return 0 if text.strip() in ("0", "off") else config.byte_size(text)


def default_node_address() -> config.HostPort:
    """This host's own address (its default route's source) with BanyanDB's gRPC port; 127.0.0.1 only for a
    host with no network, where every agent would otherwise share one address."""
    return HostPort(primary_ip() or "127.0.0.1", DEFAULT_NODE_PORT)


def parse_settings(argv: Sequence[str] | None = None) -> AgentSettings:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.scrape_timeout > ns.scrape_interval:
        parser.error(f"argument --scrape-timeout: {ns.scrape_timeout:g}s must not exceed --scrape-interval "
                     f"({ns.scrape_interval:g}s)")
    if not ns.node_id.strip():
        parser.error("argument --node-id: must not be empty")
    if ns.node_pprof_url and not ns.node_pprof_url.startswith(("http://", "https://")):
        parser.error(f"argument --node-pprof-url: {ns.node_pprof_url!r} is not an http(s) URL")
    for path in ns.node_config_files or ():
        if not path.startswith("/"):
            parser.error(f"argument --node-config-file: {path!r} must be an absolute path")
    unknown = set(ns.incident_triggers) - set(TRIGGERS)
    if unknown:
        parser.error(f"argument --incident-triggers: unknown {', '.join(sorted(unknown))} "
                     f"(choose from {', '.join(TRIGGERS)})")
    urls = tuple(ns.node_metrics_urls or ["http://127.0.0.1:2121/metrics"])
    for url in urls:
        if not url.startswith(("http://", "https://")):
            parser.error(f"argument --node-metrics-url: {url!r} is not an http(s) URL")
    if ns.profile_every and ns.profile_cpu_seconds >= ns.profile_every:
        parser.error(f"argument --profile-cpu-seconds: {ns.profile_cpu_seconds}s must be shorter than "
                     f"--profile-every ({ns.profile_every:g}s)")
    if ns.profile_ring_bytes and not ns.profile_ring_dir.startswith("/"):
        parser.error(f"argument --profile-ring-dir: {ns.profile_ring_dir!r} must be an absolute path")
    return AgentSettings(
        proxy_addr=ns.proxy_addr,
        node_id=ns.node_id.strip(),
        node_role=ns.node_role,
        node_address=ns.node_address or default_node_address(),
        node_gossip_address=ns.node_gossip_address,
        node_labels=dict(ns.node_labels),
        http_listen_addr=ns.http_listen_addr,
        http_max_connections=ns.http_max_connections,
        http_client_timeout=ns.http_client_timeout,
        node_metrics_urls=urls,
        scrape_interval=ns.scrape_interval,
        scrape_timeout=ns.scrape_timeout,
        window_memory=ns.window_memory,
        window_dir=_window_dir(parser, ns),
        window_file_bytes=ns.window_file_bytes,
        window_dir_bytes=ns.window_dir_bytes,
        window_interim_scrapes=ns.window_interim_scrapes,
        window_block_scrapes=ns.window_block_scrapes,
        send_timeout=ns.send_timeout,
        proxy_tls=_proxy_tls(parser, ns),
        reconnect_max_backoff=ns.reconnect_max_backoff,
        shutdown_timeout=ns.shutdown_timeout,
        ktm_enabled=ns.ktm_enabled,
        ktm_interval=ns.ktm_interval,
        ktm_target_comm=ns.ktm_target_comm,
        ktm_cgroup_path=ns.ktm_cgroup_path,
        ktm_kernel_source=ns.ktm_kernel_source,
        node_pid_file=ns.node_pid_file or None,
        node_systemd_unit=ns.node_systemd_unit or None,
        node_process_name=ns.node_process_name,
        node_pprof_url=ns.node_pprof_url or None,
        node_config_files=tuple(ns.node_config_files or ()),
        node_env_allow=ns.node_env_allow,
        node_env_deny=ns.node_env_deny,
        node_secret_names=ns.node_secret_names,
        config_max_file_bytes=ns.config_max_file_bytes,
        config_capture_interval=ns.config_capture_interval,
        config_check_interval=ns.config_check_interval,
        config_history=ns.config_history,
        config_history_file=ns.config_history_file,
        instance_file=ns.instance_file or None,
        diagnostics_dir=ns.diagnostics_dir,
        diagnostics_keep=ns.diagnostics_keep,
        diagnostics_dir_bytes=ns.diagnostics_dir_bytes,
        diagnostics_max_bytes=ns.diagnostics_max_bytes,
        diagnostics_max_seconds=ns.diagnostics_max_seconds,
        diagnostics_queue=ns.diagnostics_queue,
        memory_pressure_threshold=ns.memory_pressure_threshold,
        memory_limit=ns.memory_limit,
        memory_pressure_interval=ns.memory_pressure_interval,
        memory_pressure_cooldown=ns.memory_pressure_cooldown,
        memory_pressure_max_captures=ns.memory_pressure_max_captures,
        node_log_file=ns.node_log_file or None,
        incident_dir=ns.incident_dir,
        incident_triggers=ns.incident_triggers,
        incident_rules=tuple(ns.incident_rules or ()),
        incident_before=ns.incident_before,
        incident_after=ns.incident_after,
        incident_cooldown=ns.incident_cooldown,
        incident_check_interval=ns.incident_check_interval,
        incident_node_down_for=ns.incident_node_down_for,
        incident_latency_factor=ns.incident_latency_factor,
        incident_cpu_seconds=ns.incident_cpu_seconds,
        incident_log_lines=ns.incident_log_lines,
        incident_keep=ns.incident_keep,
        incident_dir_bytes=ns.incident_dir_bytes,
        log_level=ns.log_level,
        log_format=ns.log_format,
        node_crash_output_file=_absolute(parser, "--node-crash-output-file", ns.node_crash_output_file),
        node_crash_max_bytes=_crash_max_bytes(parser, ns.node_crash_max_bytes),
        node_crash_dir=_absolute(parser, "--node-crash-dir", ns.node_crash_dir),
        trigger_file=_absolute(parser, "--trigger-file", ns.trigger_file),
        node_cgroup_path=_absolute(parser, "--node-cgroup-path", ns.node_cgroup_path),
        profile_every=ns.profile_every,
        profile_cpu_seconds=ns.profile_cpu_seconds,
        profile_ring_bytes=ns.profile_ring_bytes,
        profile_ring_dir=ns.profile_ring_dir,
        http_tls=_http_tls(parser, ns),
        http_auth_users_file=_credential_file(parser, ns.http_auth_users_file, load_users),
        http_auth_tokens_file=_credential_file(parser, ns.http_auth_tokens_file, load_tokens),
        remote_write=remote_write.from_namespace(parser, ns, scrape_interval_s=ns.scrape_interval),
    )


HTTP_TLS_OPTIONS = ("--http-tls-cert", "--http-tls-key", "--http-tls-client-ca")


def _http_tls(parser: config.OneLineErrorParser, ns: argparse.Namespace) -> ServerTls | None:
    """HTTPS on the agent's endpoint; the certificate and key are loaded now so a mismatch stops the agent."""
    if not (ns.http_tls_cert or ns.http_tls_key):
        if ns.http_tls_client_ca:
            parser.error("argument --http-tls-client-ca: needs --http-tls-cert and --http-tls-key")
        return None
    if not (ns.http_tls_cert and ns.http_tls_key):
        parser.error("argument --http-tls-cert: --http-tls-cert and --http-tls-key go together")
    tls = ServerTls(ns.http_tls_cert, ns.http_tls_key, ns.http_tls_client_ca or None)
    try:
        https_server_context(tls, HTTP_TLS_OPTIONS)
    except TlsFileError as exc:
        parser.error(f"argument {exc}")
    return tls


def _credential_file(parser: config.OneLineErrorParser, path: str | None,
                     load: Callable[[str], Mapping[str, object]]) -> str | None:
    """An auth file, loaded now so that a typo stops the agent (an empty file would lock every scrape out)."""
    if not path or not path.strip():
        return None
    try:
        if not load(path.strip()):
            parser.error(f"argument {'--http-auth-users-file' if load is load_users else '--http-auth-tokens-file'}"
                         f": {path} holds no credentials; every scrape would be refused")
    except CredentialFileError as exc:
        parser.error(f"argument {exc}")
    return path.strip()


def _crash_max_bytes(parser: config.OneLineErrorParser, value: int) -> int:
    """Within what the crash report parser reads (fodc.incident.gocrash.MAX_TEXT_CHARS)."""
    if not 64 * 1024 <= value <= MAX_TEXT_CHARS:
        parser.error(f"argument --node-crash-max-bytes: {value} is outside 64KiB..{MAX_TEXT_CHARS // 2**20}MiB")
    return value


def _absolute(parser: config.OneLineErrorParser, option: str, path: str | None) -> str | None:
    """An optional path option: None when empty, else it must be absolute (a relative one hides a typo)."""
    if not path or not path.strip():
        return None
    if not path.startswith("/"):
        parser.error(f"argument {option}: {path!r} must be an absolute path")
    return path.strip()


def _window_dir(parser: config.OneLineErrorParser, ns: argparse.Namespace) -> str | None:
    """--window-dir checked with the sizes that go with it; None when the window stays in memory only."""
    window_dir = ns.window_dir.strip()
    if ns.window_dir_bytes < 2 * ns.window_file_bytes:
        parser.error(f"argument --window-dir-bytes: {ns.window_dir_bytes} must be at least twice "
                     f"--window-file-bytes ({ns.window_file_bytes})")
    if window_dir.lower() in ("", "off"):
        return None
    if not window_dir.startswith("/"):
        parser.error(f"argument --window-dir: {ns.window_dir!r} must be an absolute path, or '' or off")
    return window_dir


def _proxy_tls(parser: config.OneLineErrorParser, ns: argparse.Namespace) -> ClientTls | None:
    """TLS to the proxy when --proxy-tls-ca is set; the files are checked now so a typo stops the agent."""
    if not ns.proxy_tls_ca:
        if ns.proxy_tls_cert or ns.proxy_tls_key:
            parser.error("argument --proxy-tls-cert/--proxy-tls-key: need --proxy-tls-ca as well")
        return None
    if bool(ns.proxy_tls_cert) != bool(ns.proxy_tls_key):
        parser.error("argument --proxy-tls-cert: --proxy-tls-cert and --proxy-tls-key go together")
    try:
        for path, option in ((ns.proxy_tls_ca, "--proxy-tls-ca"), (ns.proxy_tls_cert, "--proxy-tls-cert"),
                             (ns.proxy_tls_key, "--proxy-tls-key")):
            if path:
                read_pem(path, option)
    except TlsFileError as exc:
        parser.error(f"argument {exc}")
    return ClientTls(ns.proxy_tls_ca, ns.proxy_tls_cert or None, ns.proxy_tls_key or None,
                     ns.proxy_tls_server_name or None)
