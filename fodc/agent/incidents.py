"""Incidents on the agent: watch for trouble, then freeze the evidence from the first time it happened.

IncidentWatch looks every --incident-check-interval at the scraper's state and the window's newest points
(node down, counter resets, KTM read-latency p99, operator threshold rules) and takes events from the config
and memory watches (node restart, memory pressure). IncidentRecorder turns a trigger into a bundle: at once a
config snapshot, KTM state, the node's log tail and profiles (heap, goroutine; CPU when the node is up), then,
--incident-after later, the window from --incident-before the trigger to --incident-after it. One trigger
kind fires again only after --incident-cooldown; bundles are kept within a count and a byte cap. Incidents
are listed again after an agent restart, and one the agent was killed in the middle of is finished then
(fodc.incident.ledger).
"""

from __future__ import annotations

import json
import logging
import subprocess
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fodc.agent.crashes import Evidence
from fodc.agent.streams import ActionContext, ActionFailed
from fodc.diag.store import ArtifactStore
from fodc.incident import ledger
from fodc.incident.bundle import write_bundle
from fodc.incident.detect import CounterResets, LatencyRise, NodeAnswer, NodeDown
from fodc.incident.rules import RuleState, ThresholdRule, evaluate
from fodc.jsonvalue import json_value
from fodc.periodic import Periodic
from fodc.times import compact_utc, rfc3339
from fodc.v1 import fodc_pb2 as pb
from fodc.window import FlightRecorder, SeriesWindow
from fodc.wire_results import incident_to_pb

log = logging.getLogger(__name__)

KTM_READ_LATENCY = "ktm_sys_read_latency_seconds_bucket"
CRASH_CAUSES = ("node-down", "node-restart")  # a node that died may have said why: looked for first


@dataclass(frozen=True)
class IncidentOptions:
    before_s: float
    after_s: float
    cooldown_s: float
    cpu_seconds: int
    log_lines: int
    systemd_unit: str | None
    log_file: str | None


def onset_of(detail: dict[str, Any], at_ms: int) -> int:
    """When the trouble began, from what the trigger says: the first failed scrape (node-down,
    node-unresponsive), how long a rule's condition held; else the trigger time itself (a memory or latency
    trigger fires on its first high sample)."""
    first = detail.get("first_failed_ms")
    if isinstance(first, int) and 0 < first <= at_ms:
        return first
    held = [detail[k] for k in ("failing_for_s", "held_s") if isinstance(detail.get(k), (int, float))]
    return at_ms - int(max(held, default=0) * 1000)


class IncidentRecorder:
    def __init__(self, options: IncidentOptions, store: ArtifactStore, recorder: FlightRecorder, *, node_id: str,
                 role: str, parts: dict[str, Callable[[], Any]],
                 profile: Callable[[str, int | None, str], Any] | None,
                 clock: Callable[[], float] = time.time,
                 earlier_profiles: Callable[[int, int], list[tuple[str, bytes]]] | None = None) -> None:
        self.options = options
        self.clock = clock  # the window's clock, so an incident's range matches its points' stamps
        self.store = store
        self.recorder = recorder
        self.node_id = node_id
        self.role = role
        self.parts = parts  # name -> callable giving JSON-able evidence now (config snapshot, KTM state)
        self.profile = profile  # (profile, seconds, label) -> Fetched | None, or None when profiling is off
        self.earlier_profiles = earlier_profiles  # (at_ms, window start ms) -> the profile ring's [(name, bytes)]
        self._last: dict[str, float] = {}
        self._incidents: deque[dict[str, Any]] = deque(maxlen=256)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.suppressed = 0
        # (since unix s) -> the node's crash report as evidence, or None; set when node-crash is on
        self.explain: Callable[[float], Evidence | None] | None = None
        self._evidence: dict[str, dict[str, bytes]] = {}  # incident id -> files it brought with it
        self.on_trigger: Callable[[dict[str, Any]], None] | None = None  # told of each new incident (remote-write)

    def trigger(self, kind: str, detail: dict[str, Any], *, node_up: bool = True, evidence: Evidence | None = None,
                force: bool = False) -> dict[str, Any] | None:
        """Starts an incident unless `kind` is cooling down (`force`: regardless); returns its summary (state
        "collecting"). A node found down or restarted is a `node-crash` when it left a crash report."""
        if evidence is None and kind in CRASH_CAUSES and self.explain is not None:
            try:
                evidence = self.explain(self.clock() - self.options.before_s)
            except Exception as exc:  # the incident is still worth having without its explanation
                log.warning("cannot look for the node's crash report", extra={"fields": {"reason": repr(exc)}})
        summary = None
        if evidence is not None:
            summary = evidence.summary
            detail = {**evidence.detail, **({"cause": kind} if kind != evidence.trigger else {}), **detail}
            kind = evidence.trigger
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if not force and last is not None and now - last < self.options.cooldown_s:
                self.suppressed += 1
                return None
            self._last[kind] = now
            at_ms = int(self.clock() * 1000)
            onset_ms = onset_of(detail, at_ms)
            incident: dict[str, Any] = {
                "id": f"{compact_utc(at_ms)}-{kind}", "node_id": self.node_id, "role": self.role, "trigger": kind,
                **({"summary": summary} if summary else {}), "detail": detail,
                "at": rfc3339(at_ms), "at_ms": at_ms, "onset": rfc3339(onset_ms), "onset_ms": onset_ms,
                "complete_by_ms": at_ms + self._collect_ms(), "state": "collecting", "errors": {}}
            if any(i["id"] == incident["id"] for i in self._incidents):  # two of a kind within one second
                incident["id"] += f"-{at_ms % 1000:03d}"
            self._incidents.append(incident)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if evidence is not None and evidence.files:
                self._evidence[incident["id"]] = dict(evidence.files)
        log.warning("incident triggered", extra={"fields": {"trigger": kind, "id": incident["id"], "detail": detail}})
        self._mark(incident)
        if self.on_trigger is not None:
            try:
                self.on_trigger(dict(incident))
            except Exception:  # the incident is collected all the same
                log.exception("an incident listener failed")
        if evidence is not None and evidence.files:
            try:
                ledger.write_evidence(self.store.directory, incident["id"], evidence.files)
            except OSError as exc:  # kept in memory still: only an agent crash before the bundle would lose it
                log.warning("cannot keep an incident's evidence on disk", extra={"fields": {
                    "id": incident["id"], "reason": str(exc)}})
        threading.Thread(target=self._collect, args=(incident, node_up), name=f"incident-{kind}", daemon=True).start()
        return dict(incident)

    def _collect_ms(self) -> int:
        """How long after the trigger the bundle should be written: the window after it, plus a CPU profile
        that may run past it, plus a little for writing."""
        return int((max(self.options.after_s, float(self.options.cpu_seconds or 0)) + 5) * 1000)

    def open_incidents(self) -> list[dict[str, str]]:
        """Incidents still collecting their evidence (the bundle is written --incident-after the trigger)."""
        with self._lock:
            return [{"id": i["id"], "trigger": i["trigger"], "at": i["at"]} for i in self._incidents
                    if i.get("state") == "collecting"]

    def recover(self) -> int:
        """At start: lists the incidents already on disk again, keeps their triggers cooling down across the
        restart, and finishes the ones a previous run was killed in the middle of. Returns how many it resumed."""
        complete, interrupted = ledger.load(self.store.directory)
        now_wall, now_mono = self.clock(), time.monotonic()
        with self._lock:
            for incident in [*complete, *interrupted]:
                self._incidents.append(incident)
                age_s = max(0.0, now_wall - incident.get("at_ms", 0) / 1000)
                last = self._last.get(incident.get("trigger", ""))
                if age_s < self.options.cooldown_s and (last is None or now_mono - age_s > last):
                    self._last[incident["trigger"]] = now_mono - age_s
        resumed = {i["id"] for i in interrupted}
        try:
            leftovers = list(self.store.directory.glob(f"{ledger.EVIDENCE_PREFIX}*.tar"))
        except OSError:  # an unreadable directory: ledger.load said so already, and the agent goes on
            leftovers = []
        for path in leftovers:
            if path.name[len(ledger.EVIDENCE_PREFIX):-len(".tar")] not in resumed:
                path.unlink(missing_ok=True)  # its bundle was written; the agent died before removing it
        for incident in interrupted:
            try:
                self._evidence[incident["id"]] = ledger.read_evidence(self.store.directory, incident["id"])
            except (OSError, tarfile.TarError) as exc:
                incident.setdefault("errors", {})["evidence"] = f"the trigger's files were lost: {exc}"
            incident["state"] = "collecting"
            incident.setdefault("errors", {})["interrupted"] = (
                f"the agent stopped while collecting; finished after its restart at {rfc3339(int(now_wall * 1000))}"
                ": config, KTM state and log tail are from then, and no profiles were taken")
            log.warning("finishing an incident interrupted by an agent restart", extra={"fields": {
                "id": incident["id"], "trigger": incident.get("trigger")}})
            threading.Thread(target=self._collect, args=(incident, False, False), name="incident-resume",
                             daemon=True).start()
        if complete or interrupted:
            log.info("incidents recovered from disk", extra={"fields": {
                "complete": len(complete), "interrupted": len(interrupted)}})
        return len(interrupted)

    def _mark(self, incident: dict[str, Any]) -> None:
        try:
            ledger.write_marker(self.store.directory, incident)
        except OSError as exc:  # the incident is still collected; only a crash before its bundle would lose it
            incident["errors"]["marker"] = f"cannot record the incident on disk: {exc.strerror or exc}"
            log.warning("cannot write an incident marker", extra={"fields": {"id": incident["id"], "reason": str(exc)}})

    def _collect(self, incident: dict[str, Any], node_up: bool, profiles: bool = True) -> None:
        with self._lock:
            files: dict[str, bytes] = self._evidence.pop(incident["id"], {})
        errors: dict[str, str] = incident["errors"]
        for name, part in self.parts.items():
            try:
                files[f"{name}.json"] = json.dumps(part(), indent=2, default=str).encode()
            except Exception as exc:  # one missing part must not cost the incident
                errors[name] = f"{type(exc).__name__}: {exc}"
        self._ring_profiles(incident, files, errors)
        logs = self._log_tail(incident["at_ms"], errors)
        if logs is not None:
            files["node.log"] = logs
        for profile, seconds in (("heap", None), ("goroutine", None), ("cpu", self.options.cpu_seconds)):
            if not profiles or (profile == "cpu" and (not node_up or not seconds)):
                continue
            self._take_profile(profile, seconds, incident["id"], files, errors)
        end_ms = incident["at_ms"] + int(self.options.after_s * 1000)
        time.sleep(max(0.0, end_ms / 1000 - self.clock()))
        start_ms = incident["at_ms"] - int(self.options.before_s * 1000)
        files["window.json"] = self._window(start_ms, end_ms)
        manifest = {k: v for k, v in incident.items() if k not in ("state",)}
        manifest.update(window={"start": rfc3339(start_ms), "end": rfc3339(end_ms), "start_ms": start_ms,
                                "end_ms": end_ms})
        path = self.store.new_path(incident["id"], "incident", incident["node_id"], ".tar.gz")
        try:
            written = write_bundle(path, manifest, files)
            incident.update(file=path.name, size=path.stat().st_size, files=written["files"], state="complete")
            self.store.prune()
        except OSError as exc:
            incident.update(state="failed")
            errors["bundle"] = f"cannot write {path}: {exc.strerror or exc}"
        ledger.remove_marker(self.store.directory, incident["id"])
        ledger.remove_evidence(self.store.directory, incident["id"])
        log.info("incident bundle written", extra={"fields": {"id": incident["id"], "state": incident["state"],
                                                              "errors": errors}})

    def _ring_profiles(self, incident: dict[str, Any], files: dict[str, bytes], errors: dict[str, str]) -> None:
        """The profile ring's profiles from before the trigger, as ring-<name> (even for a resumed incident:
        they were on disk all along)."""
        if self.earlier_profiles is None:
            return
        try:
            earlier = self.earlier_profiles(incident["at_ms"], incident["at_ms"] - int(self.options.before_s * 1000))
        except Exception as exc:  # the rest of the incident is worth more than these
            errors["ring"] = f"{type(exc).__name__}: {exc}"
            return
        for name, data in earlier:
            files[f"ring-{name}"] = data
        incident["ring_profiles"] = [name for name, _ in earlier]

    def _take_profile(self, profile: str, seconds: int | None, label: str, files: dict[str, bytes],
                      errors: dict[str, str]) -> None:
        if self.profile is None:
            errors[f"profile.{profile}"] = "profiling is off (--node-pprof-url is empty)"
            return
        try:
            fetched = self.profile(profile, seconds, label)
            if fetched is not None:
                files[f"{profile}.pb.gz"] = Path(fetched.path).read_bytes()
        except (ActionFailed, OSError) as exc:
            errors[f"profile.{profile}"] = str(exc)

    def _log_tail(self, at_ms: int, errors: dict[str, str]) -> bytes | None:
        lines = self.options.log_lines
        if self.options.systemd_unit:
            since = f"@{int(at_ms / 1000 - self.options.before_s)}"
            try:
                out = subprocess.run(["journalctl", "-u", self.options.systemd_unit, "--since", since, "-n",
                                      str(lines), "--no-pager", "-o", "short-iso-precise"],
                                     capture_output=True, timeout=15, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                errors["node.log"] = f"journalctl failed: {exc}"
                return None
            if out.returncode != 0:
                errors["node.log"] = f"journalctl: {out.stderr.decode(errors='replace').strip()[:300]}"
                return None
            return out.stdout
        if self.options.log_file:
            try:
                with open(self.options.log_file, "rb") as f:
                    f.seek(0, 2)
                    f.seek(max(0, f.tell() - 256 * 1024))
                    return b"\n".join(f.read().splitlines()[-lines:]) + b"\n"
            except OSError as exc:
                errors["node.log"] = f"cannot read {self.options.log_file}: {exc.strerror or exc}"
                return None
        errors["node.log"] = "no log source: set --node-systemd-unit or --node-log-file"
        return None

    def _window(self, start_ms: int, end_ms: int) -> bytes:
        series = [{"name": s.name, "family": s.family or s.name, "type": s.type, "help": s.help,
                   "labels": dict(s.labels), "source": s.source,
                   "points": [[t, json_value(v)] for t, v in zip(s.timestamps_ms, s.values, strict=True)]}
                  for s in self.recorder.query(start_ms=start_ms, end_ms=end_ms)]
        return json.dumps({"start_ms": start_ms, "end_ms": end_ms, "series": series}).encode()

    # ---- reading (command-stream actions)
    def summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for i in self._incidents if i.get("file") is None
                    or (self.store.directory / i["file"]).exists()]

    def action_list(self, ctx: ActionContext) -> None:
        """IncidentListRequest: this agent's incidents, oldest first (pruned bundles are left out)."""
        ctx.send_result(pb.IncidentList(incidents=[incident_to_pb(i) for i in self.summaries()]))

    def action_fetch(self, ctx: ActionContext) -> None:
        """IncidentFetchRequest: one incident's bundle by id."""
        wanted = ctx.request.id
        found = next((i for i in self.summaries() if i["id"] == wanted), None)
        if found is None:
            raise ActionFailed(f"no incident {wanted!r} on this agent")
        if found["state"] != "complete":
            raise ActionFailed(f"incident {wanted} is {found['state']}; its bundle is written once the window "
                               f"after the trigger has passed")
        ctx.send_file(self.store.directory / found["file"],
                      pb.ArtifactInfo(content_type="application/gzip", file_name=found["file"]))


class IncidentWatch(Periodic):
    """The periodic look for trouble; event sources (restart, memory) call `recorder.trigger` directly."""

    thread_name = "incident-watch"

    def __init__(self, recorder: IncidentRecorder, window: FlightRecorder, *, interval_s: float,
                 node_down_for_s: float, rules: list[ThresholdRule], latency_factor: float,
                 scrape_state: Callable[[], NodeAnswer], enabled: frozenset[str],
                 on_progress: Callable[[], None] = lambda: None) -> None:
        self.recorder = recorder
        self.window = window
        self.rules = [(rule, RuleState()) for rule in rules]
        self.scrape_state = scrape_state
        self.enabled = enabled
        self.node_down = NodeDown(node_down_for_s)
        self.node_unresponsive = NodeDown(node_down_for_s)
        self.resets = CounterResets()
        self.latency = LatencyRise(factor=latency_factor)
        super().__init__(interval_s, on_progress)

    def run_round(self) -> None:
        self.check(time.monotonic())

    def check(self, now_s: float) -> None:
        """One round: the node's answer first (down, unresponsive); only when it answered, its series (restart,
        read latency, the rules)."""
        answer = self.scrape_state()
        self._check_answer(answer, now_s)
        if not answer.ok:
            return
        latest = [s for s in self.window.latest() if s.source != "kernel-telemetry" or s.name == KTM_READ_LATENCY]
        if "node-restart" in self.enabled:
            self._check_restart(latest)
        if "ktm-read-latency" in self.enabled:
            self._check_read_latency(latest)
        if self.rules:
            self._check_rules(latest, now_s)

    def _check_answer(self, answer: NodeAnswer, now_s: float) -> None:
        down, slow = answer.down(), answer.unresponsive()
        if "node-down" in self.enabled and (fired := self.node_down.observe(
                None if down is None else not down, now_s, answer.reason, answer.failing_since_ms,
                answer.failing_for_s)):
            self.recorder.trigger("node-down", fired, node_up=False)
        if "node-unresponsive" in self.enabled and (fired := self.node_unresponsive.observe(
                None if slow is None else not slow, now_s, answer.reason, answer.failing_since_ms,
                answer.failing_for_s)):
            self.recorder.trigger("node-unresponsive", fired, node_up=False)

    def _check_restart(self, latest: list[SeriesWindow]) -> None:
        """A counter that went back: the node restarted between two scrapes."""
        counters = {(s.name, s.labels): s.values[-1] for s in latest if s.type == "counter"}
        if fired := self.resets.observe(counters):
            self.recorder.trigger("node-restart", {"signal": "counter reset", **fired})

    def _check_read_latency(self, latest: list[SeriesWindow]) -> None:
        """The kernel telemetry's own read latency only: a node's series of that name (`le="abc"`) made every
        round raise before the rules were evaluated."""
        buckets = {float(dict(s.labels).get("le", "nan")): s.values[-1] for s in latest
                   if s.name == KTM_READ_LATENCY and s.source == "kernel-telemetry"
                   and dict(s.labels).get("syscall", "read") == "read"}
        if buckets and (fired := self.latency.observe(buckets)):
            self.recorder.trigger("ktm-read-latency", fired)

    def _check_rules(self, latest: list[SeriesWindow], now_s: float) -> None:
        samples = [(s.name, dict(s.labels), s.values[-1]) for s in latest]
        for rule, state in self.rules:
            for fired in evaluate(rule, samples, now_s, state):
                self.recorder.trigger(f"rule:{rule.name}", fired)
