"""fodc-agent's options, defined once: flags, /etc/fodc/agent.conf and FODC_* environment variables."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fodc import config
from fodc.config import HostPort

DEFAULT_CONFIG = "/etc/fodc/agent.conf"
DEFAULT_WINDOW_DIR = "/var/lib/fodc/agent/window"


@dataclass(frozen=True, slots=True)
class AgentSettings:
    proxy_addr: HostPort
    node_id: str
    node_role: str
    node_address: HostPort
    node_gossip_address: HostPort | None
    node_labels: Mapping[str, str]
    http_listen_addr: HostPort
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
    reconnect_max_backoff: float
    shutdown_timeout: float
    ktm_enabled: str
    ktm_interval: float
    ktm_target_comm: str
    ktm_cgroup_path: str | None
    ktm_kernel_source: str | None
    log_level: str
    log_format: str
    extra: Mapping[str, object] = field(default_factory=dict)


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
    node.add_argument("--node-address", type=config.node_address, default=config.node_address("127.0.0.1:17912"),
                      help="the node's primary (gRPC) address ip:port; part of the agent's key at the proxy")
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
    proxy.add_argument("--send-timeout", type=config.positive_duration, default=10.0,
                       help="deadline for any message to the proxy; a stuck stream is torn down and redialed")
    proxy.add_argument("--reconnect-max-backoff", type=config.positive_duration, default=30.0,
                       help="longest pause between reconnect attempts (exponential backoff with jitter, forever)")
    local = parser.add_argument_group("this agent")
    local.add_argument("--http-listen-addr", type=config.listen_address, default=config.listen_address(":17902"),
                       help="address of the agent's own HTTP endpoint (/metrics, /health)")
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
    config.add_logging_options(parser)
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> AgentSettings:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.scrape_timeout > ns.scrape_interval:
        parser.error(f"argument --scrape-timeout: {ns.scrape_timeout:g}s must not exceed --scrape-interval "
                     f"({ns.scrape_interval:g}s)")
    if not ns.node_id.strip():
        parser.error("argument --node-id: must not be empty")
    urls = tuple(ns.node_metrics_urls or ["http://127.0.0.1:2121/metrics"])
    for url in urls:
        if not url.startswith(("http://", "https://")):
            parser.error(f"argument --node-metrics-url: {url!r} is not an http(s) URL")
    return AgentSettings(
        proxy_addr=ns.proxy_addr,
        node_id=ns.node_id.strip(),
        node_role=ns.node_role,
        node_address=ns.node_address,
        node_gossip_address=ns.node_gossip_address,
        node_labels=dict(ns.node_labels),
        http_listen_addr=ns.http_listen_addr,
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
        reconnect_max_backoff=ns.reconnect_max_backoff,
        shutdown_timeout=ns.shutdown_timeout,
        ktm_enabled=ns.ktm_enabled,
        ktm_interval=ns.ktm_interval,
        ktm_target_comm=ns.ktm_target_comm,
        ktm_cgroup_path=ns.ktm_cgroup_path,
        ktm_kernel_source=ns.ktm_kernel_source,
        log_level=ns.log_level,
        log_format=ns.log_format,
    )


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
