"""The agent's moving parts in one place: who owns what, and the start and shutdown order.

Start:  HTTP endpoint (bound) -> scraper, telemetry, config watch -> proxy session thread (which opens the
        metrics and command streams once registered) -> READY -> main loop (1 s ticks, watchdog beat).
Stop:   STOPPING -> goodbye to the proxy (session) -> metrics and command streams -> config watch, scraper,
        telemetry -> HTTP endpoint; all bounded by --shutdown-timeout so a dead proxy cannot keep the agent
        from exiting.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from fodc import __version__, expfmt
from fodc.agent.answer import chunk_replies, select_series
from fodc.agent.configwatch import ConfigWatcher, capture_options, effective_agent_config, version_from_series
from fodc.agent.crashdir import CrashDirWatch
from fodc.agent.crashes import CrashProbe, NodeOutput, OutputSources
from fodc.agent.diagnostics import Diagnostics
from fodc.agent.http import AgentHTTPServer
from fodc.agent.httpauth import CredentialFiles
from fodc.agent.identity import Instance, host_id
from fodc.agent.incidents import IncidentOptions, IncidentRecorder, IncidentWatch
from fodc.agent.manual import ManualCapture
from fodc.agent.memwatch import MemoryPressureWatch
from fodc.agent.nodestate import NodeScrape, node_scrape
from fodc.agent.oomwatch import OomWatch
from fodc.agent.profilering import ProfileRingCapture, RingActions, RingCollector
from fodc.agent.remotewrite import RemoteWrite
from fodc.agent.scrape import Scraper
from fodc.agent.series_table import SeriesTable
from fodc.agent.session import Connected, ProxySession
from fodc.agent.settings import HTTP_TLS_OPTIONS, AgentSettings
from fodc.agent.streams import CommandStream, MetricsStream
from fodc.agent.telemetry import TelemetryFeeder
from fodc.agent.windowclock import WindowClock
from fodc.agent.windowdisk import WindowDisk
from fodc.diag.ring import ProfileRing
from fodc.diag.store import ArtifactStore
from fodc.incident.detect import NodeAnswer
from fodc.ktm import KernelTelemetry
from fodc.model import Address, HeartbeatInfo, Registration
from fodc.nodeconf.capture import NodeConfigCapturer
from fodc.nodeconf.finder import ProcessByComm
from fodc.periodic import LoopFailuresCollector
from fodc.systemd import Notifier, ProgressWatchdog
from fodc.times import now_ms
from fodc.tls import ReloadingHttpsContext
from fodc.v1 import fodc_pb2 as pb
from fodc.window import FlightRecorder

log = logging.getLogger(__name__)

STALL_SIGNAL = signal.SIGUSR1  # test hook only
CAPTURE_SIGNAL = signal.SIGUSR2  # a manual incident now


def _address(host_port) -> Address:  # noqa: ANN001 (HostPort)
    return Address(host_port.dial_host, host_port.port)


class AgentRuntime:
    """Builds the agent's parts in order, each step one group of them (the steps read what earlier ones
    made), and runs them: start, main loop, shutdown."""

    def __init__(self, settings: AgentSettings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.started_ms = now_ms()
        self.watchdog = ProgressWatchdog(self.notifier)
        self._main_beat = self.watchdog.register("main-loop", 10.0)
        self._stop = threading.Event()
        self._stalled = threading.Event()
        self._build_self_metrics(settings)
        self._build_window(settings)
        self._build_kernel_telemetry(settings)
        self._build_metrics_stream(settings)
        capturer = self._build_config_watch(settings)
        self._build_diagnostics(settings, capturer)
        self._start_profile_ring(settings)
        triggers = frozenset(settings.incident_triggers)
        self._build_incidents(settings, triggers)
        self._build_remote_write(settings)
        self._build_incident_sources(settings, triggers, capturer)
        self._build_command_stream(settings)
        self._build_identity(settings)
        self.session = ProxySession(
            settings.proxy_addr, self.registration, self.heartbeat_info,
            send_timeout_s=settings.send_timeout, max_backoff_s=settings.reconnect_max_backoff,
            on_connected=self._on_connected, on_disconnected=self._on_disconnected, tls=settings.proxy_tls,
        )
        self.http = AgentHTTPServer(settings.http_listen_addr, self.metrics_page, self.health,
                                    max_connections=settings.http_max_connections,
                                    client_timeout_s=settings.http_client_timeout, registry=self.self_metrics,
                                    **_http_security(settings))

    # --------------------------------------------------------------- building the parts, in order

    def _build_self_metrics(self, settings: AgentSettings) -> None:
        """The agent's own metrics registry and the families only the runtime itself sets."""
        self.self_metrics = CollectorRegistry(auto_describe=True)
        self.self_metrics.register(LoopFailuresCollector("fodc_agent"))
        self._proxy_connected = Gauge("fodc_agent_proxy_connected", "1 while the agent is registered with the proxy",
                                      registry=self.self_metrics)
        self._registrations = Counter("fodc_agent_proxy_registrations", "successful registrations with the proxy",
                                      registry=self.self_metrics)
        self._info = Gauge("fodc_agent_info", "constant 1, labelled with the agent's identity",
                           ["version", "node_id", "node_role"], registry=self.self_metrics)
        self._info.labels(__version__, settings.node_id, settings.node_role).set(1)

    def _build_window(self, settings: AgentSettings) -> None:
        """The flight recorder (recovered from disk before the first scrape), its clock and the scraper."""
        self.recorder = FlightRecorder(budget_bytes=settings.window_memory, block_scrapes=settings.window_block_scrapes)
        # recovers before the first scrape
        self.window_disk = WindowDisk(settings.window, self.recorder, self.self_metrics)
        self._scrape_beat = self.watchdog.register("scraper", max(30.0, settings.scrape_interval * 3))
        self.clock = WindowClock()  # shared by every source, so a host clock step back costs no points
        if (newest_ms := self.recorder.stats().newest_ms) is not None:
            self.clock.resume_after(newest_ms / 1000)
        self.scraper = Scraper(settings.node.metrics_urls, self.recorder, self.self_metrics,
                               interval_s=settings.scrape_interval, timeout_s=settings.scrape_timeout,
                               on_progress=self._scrape_beat.tick, clock=self.clock.now)
        self._window_gauges()

    def _build_kernel_telemetry(self, settings: AgentSettings) -> None:
        self.kernel = KernelTelemetry(enabled=settings.ktm_enabled, target_comm=settings.ktm_target_comm,
                                      cgroup_path=settings.ktm_cgroup_path,
                                      target_pid=ProcessByComm(settings.ktm_target_comm),
                                      kernel_source=settings.ktm_kernel_source)
        self._ktm_beat = self.watchdog.register("kernel-telemetry", max(30.0, settings.ktm_interval * 3))
        self.telemetry = TelemetryFeeder(self.kernel, self.recorder, settings.ktm_interval,
                                         on_progress=self._ktm_beat.tick, clock=self.clock.now)

    def _build_metrics_stream(self, settings: AgentSettings) -> None:
        """What answers the proxy's /metrics and window reads, with their outcomes counted."""
        window_reads = Counter("fodc_agent_window_reads", "window reads (/metrics-windows) by outcome: answered, "
                               "cancelled (the requester went away), refused (too many points), busy "
                               "(too many at once)", ["outcome"], registry=self.self_metrics)
        self.series_table = SeriesTable()  # /metrics answers: each series' labels go to the proxy once
        self.metrics_stream = MetricsStream(self.answer_metrics, send_timeout_s=settings.send_timeout,
                                            on_window_read=lambda outcome: window_reads.labels(outcome).inc())

    def _build_config_watch(self, settings: AgentSettings) -> NodeConfigCapturer:
        """The node's configuration watch; returns its capturer, whose process finder others share."""
        capturer = NodeConfigCapturer(capture_options(settings.capture), node_id=settings.node_id,
                                      role=settings.node_role,
                                      agent_config=effective_agent_config(settings),
                                      version_source=lambda: version_from_series(self.recorder.latest()))
        self._config_beat = self.watchdog.register("config-watch", max(30.0, settings.config_check_interval * 3))
        self.config = ConfigWatcher(capturer, history=settings.config_history,
                                    history_file=settings.config_history_file,
                                    check_interval_s=settings.config_check_interval,
                                    capture_interval_s=settings.config_capture_interval,
                                    on_progress=self._config_beat.tick)
        return capturer

    def _build_diagnostics(self, settings: AgentSettings, capturer: NodeConfigCapturer) -> None:
        """Profiles on request, and the memory-pressure watch that takes them by itself."""
        self.diagnostics = Diagnostics(
            settings.node_pprof_url,
            ArtifactStore(Path(settings.diagnostics_dir), keep=settings.diagnostics_keep,
                          max_bytes=settings.diagnostics_dir_bytes),
            max_bytes=settings.diagnostics_max_bytes, max_seconds=settings.diagnostics_max_seconds,
            queue=settings.diagnostics_queue)
        self.memory_watch = MemoryPressureWatch(
            self.diagnostics, capturer.finder, threshold_percent=settings.memory_pressure_threshold,
            interval_s=settings.memory_pressure_interval, cooldown_s=settings.memory_pressure_cooldown,
            max_captures=settings.memory_pressure_max_captures, explicit_limit=settings.memory_limit)
        if self.memory_watch.enabled:  # a capture may take two profiles of up to a minute each
            self.memory_watch.on_progress = self.watchdog.register(
                "memory-pressure", settings.memory_pressure_interval * 3 + 150).tick

    def _build_incidents(self, settings: AgentSettings, triggers: frozenset[str]) -> None:
        """The incident recorder and the watch that triggers it from the window and the scrapes."""
        self.incidents = IncidentRecorder(
            IncidentOptions(before_s=settings.incident_before, after_s=settings.incident_after,
                            cooldown_s=settings.incident_cooldown, cpu_seconds=settings.incident_cpu_seconds,
                            log_lines=settings.incident_log_lines, systemd_unit=settings.node_systemd_unit,
                            log_file=settings.node_log_file),
            ArtifactStore(Path(settings.incident_dir), keep=settings.incident_keep,
                          max_bytes=settings.incident_dir_bytes),
            self.recorder, node_id=settings.node_id, role=settings.node_role,
            parts={"config": lambda: self.config.capture_now("incident"), "ktm": self.kernel.capabilities,
                   "agent": self.runtime_info},
            profile=self._incident_profile if settings.node_pprof_url else None, clock=self.clock.now,
            earlier_profiles=self._ring_profiles_before if self.profile_ring is not None else None)
        self._incident_beat = self.watchdog.register("incident-watch", max(60.0, settings.incident_check_interval * 3))
        self.incident_watch = IncidentWatch(
            self.incidents, self.recorder, interval_s=settings.incident_check_interval,
            node_down_for_s=settings.incident_node_down_for, rules=list(settings.incidents.rules),
            latency_factor=settings.incident_latency_factor, scrape_state=self._scrape_state, enabled=triggers,
            on_progress=self._incident_beat.tick)
        if "node-restart" in triggers:
            self.config.on_restart = lambda snap: self.incidents.trigger("node-restart", {
                "signal": "new process", "pid": (snap.get("process") or {}).get("pid"),
                "start_time": (snap.get("process") or {}).get("start_time")})

    def _build_remote_write(self, settings: AgentSettings) -> None:
        """Remote write when configured (it reads its secret files once, here); it is told of each incident."""
        self.remote_write: RemoteWrite | None = None
        if (remote_write_settings := settings.remote_write) is not None:
            remote_write = RemoteWrite(remote_write_settings, self.recorder, self.self_metrics,
                                       node_id=settings.node_id, role=settings.node_role,
                                       labels=settings.node_labels, clock=self.clock.now)
            self.remote_write = remote_write
            self.incidents.on_trigger = lambda incident: remote_write.incident(
                incident, settings.incident_before, settings.incident_after)

    def _build_incident_sources(self, settings: AgentSettings, triggers: frozenset[str],
                                capturer: NodeConfigCapturer) -> None:
        """What else triggers or explains an incident: crash reports, OOM kills, a crash directory, memory
        pressure and a manual capture."""
        self.crash_probe = CrashProbe(NodeOutput(OutputSources(
            settings.node_crash_output_file, settings.node_systemd_unit, settings.node_log_file,
            settings.node_crash_max_bytes)))
        self.oom_watch: OomWatch | None = None
        if "node-oom" in triggers:
            self.oom_watch = OomWatch(
                self.incidents, capturer.finder, self.recorder, cgroup_path=settings.node_cgroup_path,
                comm=settings.node_process_name, before_s=settings.incident_before,
                diagnostics_dir=Path(settings.diagnostics_dir), interval_s=settings.incident_check_interval,
                ring=self.profile_ring, clock=self.clock.now,
                on_progress=self.watchdog.register("oom-watch", max(60.0, settings.incident_check_interval * 3)).tick)
        self._explain_incidents(triggers)
        self.crash_dir: CrashDirWatch | None = None
        if "node-crash" in triggers and settings.node_crash_dir:
            self.crash_dir = CrashDirWatch(
                self.incidents, settings.node_crash_dir, state_dir=Path(settings.incident_dir),
                max_bytes=settings.node_crash_max_bytes, interval_s=settings.incident_check_interval,
                cooldown_s=settings.incident_cooldown,
                on_progress=self.watchdog.register("crash-dir", max(60.0, settings.incident_check_interval * 3)).tick)
        if "memory-pressure" in triggers:
            self.memory_watch.on_pressure = lambda detail: self.incidents.trigger("memory-pressure", detail)
        self.manual = ManualCapture(self.incidents, trigger_file=settings.trigger_file,
                                    interval_s=min(1.0, settings.incident_check_interval),
                                    node_up=lambda: bool(self._scrape_state().ok),
                                    on_progress=self.watchdog.register("manual-capture", 60.0).tick)

    def _explain_incidents(self, triggers: frozenset[str]) -> None:
        """A node found down or restarted is explained first by its crash report, then by an OOM kill."""
        explainers = [e for e in (self.crash_probe.find if "node-crash" in triggers and
                                  self.crash_probe.output.configured else None,
                                  self.oom_watch.recent if self.oom_watch else None) if e is not None]
        if explainers:
            self.incidents.explain = lambda since: next((found for explain in explainers
                                                         if (found := explain(since)) is not None), None)

    def _build_command_stream(self, settings: AgentSettings) -> None:
        # Workers beyond the profiles that may run or wait, so a config request never waits behind them.
        self.command_stream = CommandStream({  # request message type -> the action answering it
            pb.ConfigSnapshotRequest: self.config.action_snapshot,
            pb.ConfigHistoryRequest: self.config.action_history,
            pb.ProfileRequest: self.diagnostics.action_profile,
            pb.AutomaticListRequest: self.memory_watch.action_list,
            pb.AutomaticFetchRequest: self.memory_watch.action_fetch,
            pb.IncidentListRequest: self.incidents.action_list,
            pb.IncidentFetchRequest: self.incidents.action_fetch,
            pb.IncidentCaptureRequest: self.manual.action_capture,
            pb.RingListRequest: self.ring_actions.action_list,
            pb.RingFetchRequest: self.ring_actions.action_fetch,
        }, send_timeout_s=settings.send_timeout, workers=settings.diagnostics_queue + 4)

    def _build_identity(self, settings: AgentSettings) -> None:
        """Host and instance ids, logged once, with a warning where a loopback node address is ambiguous."""
        self.host_id = host_id()
        self.instance = Instance(settings.instance_file)
        log.info("agent identity", extra={"fields": {
            "node_id": settings.node_id, "node_address": str(settings.node_address), "host_id": self.host_id,
            "instance_id": self.instance.id, **({"instance_note": self.instance.note} if self.instance.note else {})}})
        if settings.node_address.host.startswith("127."):
            log.warning("node-address is a loopback address; agents on other hosts with the same one are told apart "
                        "only by their host id (/etc/machine-id)", extra={"fields": {
                            "node_address": str(settings.node_address)}})

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
            host_id=self.host_id, instance_id=self.instance.id,
        )

    def capabilities(self) -> dict[str, str]:
        return {**self.kernel.capabilities(), "metrics_window": "disk" if self.settings.window_dir else "memory",
                "config_capture": "on",
                "profiling": "on" if self.settings.node_pprof_url else "off"}

    def runtime_info(self) -> dict[str, str]:
        stats = self.recorder.stats(self.settings.scrape_interval)
        info = {
            "pid": str(os.getpid()),
            "uptime_s": str(int(time.time() - self.started_ms / 1000)),
            "window_series": str(stats.series),
            "window_bytes": str(stats.used_bytes),
            "window_covered_s": (str(round((stats.newest_ms - stats.oldest_ms) / 1000))
                                 if stats.oldest_ms and stats.newest_ms is not None else "0"),
            "window_capacity_s": str(int(stats.estimated_window_seconds)),
        }
        info.update(self.scraper.summary())
        info.update(self.window_disk.summary())
        info.update(self.clock.summary())
        if self.remote_write is not None:
            info.update(self.remote_write.summary())
        if self.ring_capture is not None:
            info.update(self.ring_capture.summary())
        if self.incidents.suppressed:  # triggers that fired again within --incident-cooldown
            info["incidents_suppressed"] = str(self.incidents.suppressed)
        if self.oom_watch is not None:  # where OOM kills are counted, or why they cannot be
            info["oom_watch"] = self.oom_watch.status[:200]
        if self.crash_dir is not None and (self.crash_dir.repeats or self.crash_dir.unreadable):
            info["crash_dir"] = f"repeats={self.crash_dir.repeats},unreadable={self.crash_dir.unreadable}"
        return info

    def _node_scrape(self) -> NodeScrape:
        """What the node is doing, from completed scrapes only: for the triggers, STATUS= and /health alike."""
        return node_scrape(self.scraper.targets.values(), time.monotonic(), self.scraper.started_mono)

    def _scrape_state(self) -> NodeAnswer:
        """Whether the node answers: None before the first completed scrape; up if any metrics endpoint answers."""
        node = self._node_scrape()
        if node.ok is None:
            return NodeAnswer(None)
        # "Answered", not "up": a page the window refused (the agent's clock went back) is not a node down.
        failing = [t for t in self.scraper.targets.values() if t.completed_mono and not t.answered]
        return NodeAnswer(ok=node.ok, reason=node.reason,
                          timed_out=bool(failing) and all(t.timed_out for t in failing),
                          failing_since_ms=min((t.failing_since_ms for t in failing if t.failing_since_ms), default=0),
                          failing_for_s=node.failing_for_s)

    def _start_profile_ring(self, settings: AgentSettings) -> None:
        """The ring and its capture loop, unless an option turns it off or its directory is unusable."""
        self.profile_ring: ProfileRing | None = None
        self.ring_capture: ProfileRingCapture | None = None
        off = ("--profile-every is 0" if not settings.profile_every else
               "--profile-ring-bytes is 0" if not settings.profile_ring_bytes else
               "--node-pprof-url is empty" if not settings.node_pprof_url else "")
        if not off:
            ring = ProfileRing(Path(settings.profile_ring_dir), settings.profile_ring_bytes)
            try:
                found = ring.load()
            except OSError as exc:
                off = f"cannot use --profile-ring-dir {settings.profile_ring_dir}: {exc.strerror or exc}"
                log.warning("profile ring off", extra={"fields": {"reason": off}})
            else:
                log.info("profile ring ready", extra={"fields": {"dir": settings.profile_ring_dir,
                                                                  "profiles": found}})
                self.profile_ring = ring
                self.ring_capture = ProfileRingCapture(
                    ring, self.diagnostics, every_s=settings.profile_every,
                    cpu_seconds=settings.profile_cpu_seconds, clock=self.clock.now,
                    on_progress=self.watchdog.register(
                        "profile-ring", settings.profile_every * 3 + settings.profile_cpu_seconds + 150).tick)
                self.self_metrics.register(RingCollector(self.ring_capture))
        self.ring_actions = RingActions(self.profile_ring, off)

    def _ring_profiles_before(self, at_ms: int, start_ms: int) -> list[tuple[str, bytes]]:
        """The ring's profiles an incident at `at_ms` keeps (see ProfileRing.before), as (name, bytes)."""
        out: list[tuple[str, bytes]] = []
        ring = self.profile_ring
        if ring is None:
            return out
        for entry in ring.before(at_ms, start_ms):
            path = ring.path(entry.name)
            try:
                if path is not None:
                    out.append((entry.name, path.read_bytes()))
            except OSError:  # rotated out meanwhile
                continue
        return out

    def _incident_profile(self, profile: str, seconds: int | None, label: str):  # noqa: ANN202
        return self.diagnostics.take(profile, seconds, label, self._stop, time.monotonic() + (seconds or 0) + 60)

    def _window_gauges(self) -> None:
        """Window figures as self-metrics, read at scrape time so they are never stale."""
        def stat(name: str):  # noqa: ANN202
            return lambda: getattr(self.recorder.stats(self.settings.scrape_interval), name)

        for name, attr, doc in (
            ("fodc_agent_window_series", "series", "series held in the flight recorder window"),
            ("fodc_agent_window_samples", "samples", "samples held in the window"),
            ("fodc_agent_window_bytes", "used_bytes", "bytes accounted to the window against --window-memory "
             "(fodc_agent_window_on_disk_bytes of them read from --window-dir when asked)"),
            ("fodc_agent_window_budget_bytes", "budget_bytes", "memory budget of the window (--window-memory)"),
            ("fodc_agent_window_on_disk_bytes", "on_disk_bytes", "of the window's bytes, sealed blocks left in "
             "--window-dir and read from there when asked, not held in memory"),
            ("fodc_agent_window_unreadable_blocks", "unreadable_blocks", "sealed blocks in --window-dir found "
             "damaged or unreadable when read back; every read skips them"),
            ("fodc_agent_window_capacity_seconds", "estimated_window_seconds",
             "how long a window the budget holds at the current series count and interval"),
        ):
            Gauge(name, doc, registry=self.self_metrics).set_function(stat(attr))

        def covered() -> float:
            stats = self.recorder.stats(self.settings.scrape_interval)
            return ((stats.newest_ms - stats.oldest_ms) / 1000
                    if stats.oldest_ms and stats.newest_ms is not None else 0.0)

        Gauge("fodc_agent_window_covered_seconds", "time span the window currently covers",
              registry=self.self_metrics).set_function(covered)

    def heartbeat_info(self) -> HeartbeatInfo:
        return HeartbeatInfo(self.runtime_info(), self.capabilities(), dict(self.incidents.counts))

    def health(self) -> dict[str, object]:
        """/health: "status" is "node_down" (served as 503) once no target has answered for longer than
        --incident-node-down-for, so a load balancer or a wait can tell an agent whose node is gone."""
        node = self._node_scrape()
        down_after = self.settings.incident_node_down_for
        return {
            "status": "node_down" if node.down_longer_than(down_after) else "ok",
            "node_id": self.settings.node_id,
            "node_role": self.settings.node_role,
            "node": {"summary": node.text(), "targets": node.targets, "answering": node.answering,
                     "last_answer_s_ago": None if node.last_answer_age_s is None else round(node.last_answer_age_s, 1),
                     "silent_for_s": round(node.silent_for_s, 1), "down_after_s": down_after,
                     "last_error": node.reason},
            "incidents": {"open": self.incidents.open_incidents()},
            "proxy": {"address": str(self.settings.proxy_addr), "state": self.session.state,
                      "agent_id": self.session.agent_id, "last_error": self.session.last_error,
                      "warning": self.session.warning},
            "runtime": self.runtime_info(),
        }

    def metrics_page(self) -> str:
        """The node's latest samples (types and help carried through) followed by the agent's own metrics."""
        own = generate_latest(self.self_metrics).decode()
        return own + expfmt.render(latest_families(self.recorder))

    def answer_metrics(self, request: pb.MetricsRequest, max_bytes: int) -> Iterator[pb.MetricsReply]:
        if request.latest_only and request.series_table.wanted:  # built once per scrape (fodc.agent.series_table)
            return self.series_table.answer(request, lambda: select_series(self.recorder, request),
                                            self.recorder.latest_key(), max_bytes)
        return chunk_replies(request.request_id, select_series(self.recorder, request), max_bytes)

    # --------------------------------------------------------------- session events

    def _on_connected(self, connected: Connected) -> None:
        self._proxy_connected.set(1)
        self._registrations.inc()
        self.metrics_stream.connect(connected)
        self.command_stream.connect(connected)

    def _on_disconnected(self) -> None:
        self._proxy_connected.set(0)
        self.metrics_stream.disconnect()
        self.command_stream.disconnect()

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.http.start()
        self.scraper.start()
        self.telemetry.start()
        self.config.start()
        self.memory_watch.start()
        self.incidents.recover()  # after the window's own recovery (in __init__), which a resumed bundle reads
        if "node-crash" in self.settings.incident_triggers:  # reports already given or already there: not news
            for incident in self.incidents.summaries():
                if digest := (incident.get("detail") or {}).get("crash", {}).get("sha256"):
                    self.crash_probe.remember(digest)
            self.crash_probe.baseline()
        self.incident_watch.start()
        self.manual.start()
        if self.crash_dir is not None:
            self.crash_dir.start()
        if self.oom_watch is not None:
            self.oom_watch.start()
        if self.ring_capture is not None:
            self.ring_capture.start()
        if self.remote_write is not None:
            self.remote_write.start()
        self.session.start()
        self.watchdog.start()

    def status_line(self) -> str:
        """systemd's STATUS=: the proxy link, what the node is doing, and open incidents."""
        session = self.session
        if session.registered:
            proxy = f"registered with proxy {self.settings.proxy_addr} as {session.agent_id}"
        else:
            reason = f" ({session.last_error})" if session.last_error else ""
            proxy = f"connecting to proxy {self.settings.proxy_addr}{reason}"
        parts = [proxy, self._node_scrape().text()]
        if opened := self.incidents.open_incidents():
            parts.append(f"{len(opened)} open incident{'s' if len(opened) > 1 else ''}: "
                         + ", ".join(sorted({i['trigger'] for i in opened})))
        return "; ".join(parts)

    def request_stop(self) -> None:
        self._stop.set()

    def install_clock_hook(self, offset_file: str) -> None:
        """Test-only: the window clock's idea of the wall clock is shifted by the seconds written in
        `offset_file`, so tests can make the agent's clock jump without touching the host's."""
        def shifted() -> float:
            try:
                with open(offset_file) as f:
                    return time.time() + float(f.read().strip() or 0)
            except (OSError, ValueError):
                return time.time()
        self.clock.wall = shifted

    def install_capture_signal(self) -> None:
        """SIGUSR2 freezes a manual incident (the handler only raises a flag)."""
        signal.signal(CAPTURE_SIGNAL, lambda *_: self.manual.signalled())

    def install_stall_hook(self) -> None:
        """Test-only: SIGUSR1 wedges the main loop so tests can prove the watchdog stops pinging."""
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
        self.command_stream.stop()
        self.config.stop()
        self.memory_watch.stop()
        self.incident_watch.stop()
        self.manual.stop()
        if self.crash_dir is not None:
            self.crash_dir.stop()
        if self.oom_watch is not None:
            self.oom_watch.stop()
        if self.ring_capture is not None:
            self.ring_capture.stop()
        self.scraper.stop()
        self.telemetry.stop()
        if self.remote_write is not None:  # its position to disk, after the last scrape it may send
            self.remote_write.stop(max(0.5, min(5.0, deadline - time.monotonic())))
        self.http.stop()
        self.window_disk.close()  # the latest scrapes to the interim file, so a clean restart loses none
        self.instance.close()
        log.info("agent stopped")


def latest_families(recorder: FlightRecorder) -> list[expfmt.Family]:
    """Groups the window's newest points back into exposition families."""
    families: dict[str, expfmt.Family] = {}
    for series in recorder.latest():
        family_name = getattr(series, "family", "") or series.name
        family = families.get(family_name)
        if family is None:
            family = families[family_name] = expfmt.Family(family_name, series.type, series.help, series.unit, [])
        family.samples.append(expfmt.Sample(series.name, series.labels, series.values[-1], None))
    return list(families.values())


def _http_security(settings: AgentSettings) -> dict[str, Any]:
    """HTTPS and credentials of the agent's endpoint, from the files the settings checked at start."""
    users, tokens = settings.http_auth_users_file, settings.http_auth_tokens_file
    return {"tls": ReloadingHttpsContext(settings.http_tls, HTTP_TLS_OPTIONS) if settings.http_tls else None,
            "credentials": CredentialFiles(users, tokens) if users or tokens else None}
