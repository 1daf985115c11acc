"""The agent's moving parts in one place: who owns what, and the start and shutdown order.

Start:  HTTP endpoint (bound) -> proxy session thread -> READY -> main loop (1 s ticks, watchdog beat).
Stop:   STOPPING -> goodbye to the proxy (session) -> metrics stream -> HTTP endpoint; all bounded by
        --shutdown-timeout so a dead proxy cannot keep the agent from exiting.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from fodc import __version__
from fodc.agent.http import AgentHTTPServer
from fodc.agent.metrics_stream import MetricsStream
from fodc.agent.session import Connected, ProxySession
from fodc.agent.settings import AgentSettings
from fodc.model import Address, Registration
from fodc.systemd import Notifier, ProgressWatchdog
from fodc.v1 import fodc_pb2 as pb

log = logging.getLogger(__name__)

STALL_SIGNAL = signal.SIGUSR2


def _address(host_port) -> Address:  # noqa: ANN001 (HostPort)
    return Address(host_port.dial_host, host_port.port)


class AgentRuntime:
    def __init__(self, settings: AgentSettings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.started_ms = int(time.time() * 1000)
        self.watchdog = ProgressWatchdog(self.notifier)
        self._main_beat = self.watchdog.register("main-loop", 10.0)
        self._stop = threading.Event()
        self._stalled = threading.Event()
        self.self_metrics = CollectorRegistry(auto_describe=True)
        self._proxy_connected = Gauge("fodc_agent_proxy_connected", "1 while the agent is registered with the proxy",
                                      registry=self.self_metrics)
        self._registrations = Counter("fodc_agent_proxy_registrations", "successful registrations with the proxy",
                                      registry=self.self_metrics)
        self._info = Gauge("fodc_agent_info", "constant 1, labelled with the agent's identity",
                           ["version", "node_id", "node_role"], registry=self.self_metrics)
        self._info.labels(__version__, settings.node_id, settings.node_role).set(1)
        self.metrics_stream = MetricsStream(self.answer_metrics, send_timeout_s=settings.send_timeout)
        self.session = ProxySession(
            settings.proxy_addr, self.registration, self.heartbeat_info,
            send_timeout_s=settings.send_timeout, max_backoff_s=settings.reconnect_max_backoff,
            on_connected=self._on_connected, on_disconnected=self._on_disconnected,
        )
        self.http = AgentHTTPServer(settings.http_listen_addr, self.metrics_page, self.health)

    # --------------------------------------------------------------- what the agent says about itself

    def registration(self) -> Registration:
        s = self.settings
        secondary = {"metrics": Address(s.http_listen_addr.dial_host if s.http_listen_addr.host else
                                        s.node_address.host, self.http.port)}
        if s.node_gossip_address is not None:
            secondary["gossip"] = _address(s.node_gossip_address)
        return Registration(
            node_id=s.node_id, role=s.node_role, primary=_address(s.node_address), secondary=secondary,
            labels=dict(s.node_labels), agent_version=__version__, capabilities=self.capabilities(),
            hostname=socket.gethostname(), agent_started_ms=self.started_ms,
        )

    def capabilities(self) -> dict[str, str]:
        return {"ktm_mode": "disabled", "metrics_window": "memory"}

    def runtime_info(self) -> dict[str, str]:
        return {"pid": str(os.getpid()), "uptime_s": str(int(time.time() - self.started_ms / 1000))}

    def heartbeat_info(self) -> tuple[dict[str, str], dict[str, str]]:
        return self.runtime_info(), self.capabilities()

    def health(self) -> dict[str, object]:
        return {
            "status": "ok",
            "node_id": self.settings.node_id,
            "node_role": self.settings.node_role,
            "proxy": {"address": str(self.settings.proxy_addr), "state": self.session.state,
                      "agent_id": self.session.agent_id, "last_error": self.session.last_error},
            "runtime": self.runtime_info(),
        }

    def metrics_page(self) -> str:
        return generate_latest(self.self_metrics).decode()

    def answer_metrics(self, request: pb.MetricsRequest, max_bytes: int):  # noqa: ANN201 (generator)
        yield pb.MetricsReply(request_id=request.request_id, done=True)

    # --------------------------------------------------------------- session events

    def _on_connected(self, connected: Connected) -> None:
        self._proxy_connected.set(1)
        self._registrations.inc()
        self.metrics_stream.connect(connected)

    def _on_disconnected(self) -> None:
        self._proxy_connected.set(0)
        self.metrics_stream.disconnect()

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.http.start()
        self.session.start()
        self.watchdog.start()

    def status_line(self) -> str:
        session = self.session
        if session.registered:
            return f"registered with proxy {self.settings.proxy_addr} as {session.agent_id}"
        reason = f" ({session.last_error})" if session.last_error else ""
        return f"connecting to proxy {self.settings.proxy_addr}{reason}"

    def request_stop(self) -> None:
        self._stop.set()

    def install_stall_hook(self) -> None:
        """Test-only: SIGUSR2 wedges the main loop so tests can prove the watchdog stops pinging."""
        signal.signal(STALL_SIGNAL, lambda *_: self._stalled.set())

    def run_main_loop(self) -> None:
        last_status = ""
        while not self._stop.wait(1.0):
            while self._stalled.is_set() and not self._stop.is_set():
                time.sleep(0.1)
            status = self.status_line()
            if status != last_status:
                self.notifier.status(status)
                last_status = status
            self._main_beat.tick()

    def shutdown(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_timeout
        self.notifier.stopping("stopping: saying goodbye to the proxy")
        log.info("agent stopping")
        self.watchdog.stop()
        self.session.stop(max(0.1, deadline - time.monotonic()))
        self.metrics_stream.stop()
        self.http.stop()
        log.info("agent stopped")
