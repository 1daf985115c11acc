"""The proxy's moving parts in one place: who owns what, and the start and shutdown order.

Start:  registry -> gRPC server (bound, serving) -> health sweeper -> watchdog -> READY (by the caller).
Stop:   STOPPING -> refuse new streams -> cancel agent streams -> gRPC server stop (grace) -> sweeper.
Everything here runs inside the single gunicorn worker, created after the fork (grpc does not survive fork).
The gRPC server is grpc.aio's, on an event loop of its own in one thread (fodc/proxy/loop_thread.py): every
agent stream is a coroutine there, not a thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import grpc
from prometheus_client import Counter

from fodc.periodic import PeriodicCall
from fodc.proxy.admission import HelloGate
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.auth import AuditLog, Authorizer, load_tokens
from fodc.proxy.commands import CommandRunner
from fodc.proxy.fanout import MetricsFanout
from fodc.proxy.grpc_service import FODCServicer, registration_rate
from fodc.proxy.incident_archive import IncidentArchive
from fodc.proxy.incident_copier import ArchiveMetrics, IncidentCopier
from fodc.proxy.jobs import JobStore
from fodc.proxy.loop_thread import LoopThread
from fodc.proxy.registry import AgentRegistry
from fodc.proxy.selfmetrics import ProxyMetrics
from fodc.proxy.selfpush import SelfMetricsPush
from fodc.proxy.settings import ProxySettings
from fodc.proxy.tokenwatch import TokenWatch
from fodc.systemd import Notifier, ProgressWatchdog
from fodc.times import now_ms
from fodc.tls import ReloadingServerConfig, reloading_server_credentials
from fodc.v1 import fodc_pb2_grpc as pb_grpc
from fodc.wire import link_options

log = logging.getLogger(__name__)

STALL_SIGNAL = signal.SIGUSR2
STREAMS_PER_AGENT = 3
LOOP_BEAT_S = 1.0  # the gRPC event loop proves it still turns this often (to the systemd watchdog)


def grpc_server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """The shared link options, plus: accept the agents' keepalive pings, and never share the port."""
    return [
        *link_options(max_message_bytes),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        # An agent needs 3 streams; a client opening dozens on one connection is not an agent.
        ("grpc.max_concurrent_streams", 8),
        ("grpc.so_reuseport", 0),
    ]


class ProxyRuntime:
    def __init__(self, settings: ProxySettings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.started_at = time.time()
        self.refusals = Refusals()
        # Each agent holds three long-lived streams (registration, metrics, commands); beyond that gRPC answers
        # RESOURCE_EXHAUSTED instead of queueing without bound.
        self.grpc_max_streams = settings.max_agents * STREAMS_PER_AGENT + 16
        self.registry = AgentRegistry(settings.agent_heartbeat_timeout, settings.agent_cleanup_timeout,
                                      settings.max_agents)
        self.watchdog = ProgressWatchdog(self.notifier)
        self.sweep_interval = max(0.2, min(2.0, settings.agent_heartbeat_timeout / 5))
        self._sweep_beat = self.watchdog.register("registry-health", max(5.0, self.sweep_interval * 3))
        # A quarter of the streams at most may wait for their hello: the rest stay for real agents.
        self.servicer = FODCServicer(
            self.registry,
            heartbeat_interval_s=max(0.2, settings.agent_heartbeat_timeout / 3),
            max_message_bytes=settings.grpc_max_msg_size,
            refusals=self.refusals,
            hello_gate=HelloGate(settings.agent_hello_timeout, max(8, self.grpc_max_streams // 4)),
            peer_rate=registration_rate(settings.registrations_per_peer),
            require_certificate_names=settings.grpc_tls is not None and bool(settings.grpc_tls.client_ca),
        )
        self.metrics = ProxyMetrics(self.registry, self.refusals)
        self.fanout = MetricsFanout(self.registry, self.servicer.metrics_links, self.metrics,
                                    timeout_s=settings.metrics_timeout,
                                    max_chunk_bytes=max(64 * 1024, settings.grpc_max_msg_size - 64 * 1024),
                                    window_max_points=settings.window_max_points,
                                    max_reply_bytes=settings.max_reply_bytes,
                                    max_reply_series=settings.max_reply_series,
                                    max_request_bytes=settings.max_request_bytes, refusals=self.refusals)
        self.metrics.registry.register(self.refusals)
        unsupported = Counter("fodc_proxy_unsupported_commands", "commands not sent because the agent is of the "
                              "previous release (it streams metrics only), by request", ["request"],
                              registry=self.metrics.registry)
        self.commands = CommandRunner(self.servicer.command_links, refusals=self.refusals,
                                      on_unsupported=lambda name: unsupported.labels(name).inc())
        self.jobs = JobStore(Path(settings.diagnostics_dir),
                             CommandRunner(self.servicer.command_links,
                                           max_artifact_bytes=settings.diagnostics_max_bytes,
                                           refusals=self.refusals, on_unsupported=self.commands.on_unsupported),
                             budget_bytes=settings.diagnostics_budget_bytes, max_jobs=settings.diagnostics_max_jobs)
        self.incident_archive = IncidentArchive(Path(settings.incident_archive_dir),
                                                budget_bytes=settings.incident_archive_bytes,
                                                max_incidents=settings.incident_archive_max,
                                                summary_budget_bytes=settings.incident_archive_summary_bytes,
                                                refusals=self.refusals)
        self.incident_copier: IncidentCopier | None = None
        if settings.incident_copy_interval > 0:
            self.incident_copier = IncidentCopier(
                self.registry, self.commands, self.incident_archive, interval_s=settings.incident_copy_interval,
                timeout_s=settings.command_timeout, max_bundle_bytes=settings.incident_archive_bytes,
                on_progress=self.watchdog.register("incident-copier", settings.incident_copy_interval
                                                   + settings.command_timeout * 3).tick)
        self.metrics.registry.register(ArchiveMetrics(self.incident_archive, self.incident_copier))
        tokens: dict = {}
        if settings.auth != "off" and os.path.exists(settings.auth_tokens_file):
            tokens = load_tokens(settings.auth_tokens_file)
        self.authorizer = Authorizer(settings.auth, tokens)
        self.token_watch = TokenWatch(settings.auth_tokens_file, self.authorizer) if settings.auth != "off" else None
        self.audit = AuditLog(settings.audit_log, settings.audit_log_max_bytes)
        self._server: grpc.aio.Server | None = None
        self._loop: LoopThread | None = None
        self._loop_beat = self.watchdog.register("grpc-event-loop", LOOP_BEAT_S * 5)
        self.grpc_tls_files: ReloadingServerConfig | None = None  # its files are replaced on SIGHUP
        self._stop = threading.Event()
        self._stalled = threading.Event()
        self._sweeper: PeriodicCall | None = None
        self.self_push: SelfMetricsPush | None = None
        if (remote_write := settings.remote_write.access()) is not None:  # reads its secret files once
            self.self_push = SelfMetricsPush(
                remote_write, self.metrics.registry, interval_s=settings.remote_write.interval,
                instance=f"{socket.gethostname()}:{settings.http_listen_addr.port}")
        self._last_status = ""

    def start(self) -> None:
        kept_jobs = self.jobs.load()
        if kept_jobs:
            log.info("diagnostics jobs loaded", extra={"fields": {"jobs": kept_jobs}})
        kept = self.incident_archive.load()
        if kept:
            log.info("incident archive loaded", extra={"fields": {"incidents": kept}})
        if self.token_watch is not None:
            self.token_watch.start()
        if self.settings.auth == "off":
            log.warning("access control is OFF (--auth off): anyone who reaches the HTTP API may run diagnostics")
        elif not self.authorizer.tokens:
            log.warning("no API tokens configured: control actions will be refused", extra={"fields": {
                "auth_tokens_file": self.settings.auth_tokens_file}})
        self._loop = LoopThread("grpc-loop")
        self._loop.start()
        try:
            self._server, address = self._loop.call(self._serve(), 30.0)
        except BaseException:
            self._loop.stop(5.0)  # no loop thread left behind by a proxy that could not start
            raise
        self._sweeper = PeriodicCall("registry-health", self.sweep_interval, self._sweep_round,
                                     on_progress=self._sweep_beat.tick)
        self._sweeper.start()
        if self.incident_copier is not None:
            self.incident_copier.start()
        if self.self_push is not None:
            self.self_push.start()
        self.watchdog.start()
        tls = self.settings.grpc_tls
        log.info("gRPC server listening", extra={"fields": {
            "address": address, "tls": "off" if tls is None else "mutual" if tls.client_ca else "server-only"}})

    async def _serve(self) -> tuple[grpc.aio.Server, str]:
        """On the loop thread: the aio server bound and serving, and the address it listens on."""
        server = grpc.aio.server(maximum_concurrent_rpcs=self.grpc_max_streams,
                                 options=grpc_server_options(self.settings.grpc_max_msg_size))
        pb_grpc.add_FODCServiceServicer_to_server(self.servicer, server)
        address = str(self.settings.grpc_listen_addr)
        if address.startswith(":"):
            address = "[::]" + address
        tls = self.settings.grpc_tls
        try:
            if tls is not None:
                credentials, self.grpc_tls_files = reloading_server_credentials(tls)
                bound = server.add_secure_port(address, credentials)
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise RuntimeError(f"cannot listen for agents on {self.settings.grpc_listen_addr}")
        await server.start()
        asyncio.get_running_loop().create_task(self._beat_loop(), name="loop-beat")
        return server, address

    async def _beat_loop(self) -> None:
        """Ticks the watchdog from the event loop: a loop that stopped turning strands every agent stream."""
        while True:
            self._loop_beat.tick()
            await asyncio.sleep(LOOP_BEAT_S)

    def status_line(self) -> str:
        counts = self.registry.counts()
        return f"{counts['online']} agents online, {counts['unconnected']} unconnected"

    def _sweep_round(self) -> None:
        while self._stalled.is_set() and not self._stop.is_set():  # test hook: a wedged main loop
            time.sleep(0.1)
        self.servicer.hello_gate.expire(time.monotonic())
        report = self.registry.check_health(now_ms())
        for record in report.marked_unconnected:
            self.servicer.end_streams(record, "heartbeat timeout")
            log.warning("agent missed heartbeats; marked unconnected", extra={"fields": {
                "agent_id": record.agent_id, "node_id": record.registration.node_id}})
        for record in report.removed:
            log.info("agent removed after cleanup timeout", extra={"fields": {
                "agent_id": record.agent_id, "node_id": record.registration.node_id}})
        status = self.status_line()
        if status != self._last_status:
            self.notifier.status(status)
            self._last_status = status

    def install_stall_hook(self) -> None:
        """Test-only: SIGUSR2 wedges the main loop so tests can prove the watchdog stops pinging."""
        signal.signal(STALL_SIGNAL, lambda *_: self._stalled.set())

    def stop(self, grace_s: float = 5.0) -> None:
        if self._stop.is_set():
            return
        self.notifier.stopping("stopping: closing agent streams")
        log.info("proxy stopping")
        self._stop.set()
        self.watchdog.stop()
        if self._sweeper is not None:
            self._sweeper.stop()
        self.jobs.stopping.set()  # results cut short from here on are "interrupted", not the nodes' failures
        if self.incident_copier is not None:
            self.incident_copier.stop()
        if self.token_watch is not None:
            self.token_watch.stop()
        if self.self_push is not None:
            self.self_push.stop()
        self.servicer.stopping.set()
        self.servicer.cancel_all()
        if self._loop is not None:
            if self._server is not None:
                try:
                    self._loop.call(self._server.stop(grace_s), grace_s + 5)
                except Exception as exc:  # noqa: BLE001 (the loop thread is ended below either way)
                    log.warning("gRPC server did not stop in time", extra={"fields": {"reason": repr(exc)}})
            self._loop.stop(5.0)
        log.info("proxy stopped")
