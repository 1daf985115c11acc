"""Diagnostics jobs on the proxy: one action fanned out to many nodes, each node's result kept on disk.

A job runs on its own thread; each node's result is gathered on a thread of its own so one slow node never
holds up another's state. Results live under --diagnostics-dir/<job id>/ within a byte budget and a job
count; the oldest finished jobs are evicted first, running jobs never. Each job's record (job.json) is
kept beside its results, so a restarted or upgraded proxy still lists and serves them; a job the proxy
stopped in the middle of comes back with its unfinished nodes marked interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import shutil
import tarfile
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from fodc.artifact_names import safe_file_name
from fodc.durablefile import atomic_file, write_atomically
from fodc.eviction import beyond_caps
from fodc.proxy.agent_answers import RESULTS, BadAnswer, check_result
from fodc.proxy.commands import (
    TIMED_OUT,
    UNREACHABLE,
    UNSUPPORTED,
    CommandResult,
    CommandRunner,
    RunningCommand,
    request_name,
)
from fodc.proxy.registry import AgentRecord
from fodc.times import now_ms, rfc3339

log = logging.getLogger(__name__)

QUEUED, RUNNING, INTERRUPTED = "queued", "running", "interrupted"
FINAL_STATES = frozenset({"done", "failed", "cancelled", "rejected", INTERRUPTED, TIMED_OUT, UNREACHABLE,
                          UNSUPPORTED})
RECORD = "job.json"
BUNDLE = "bundle.tar.gz"

_ids = itertools.count(1)


@dataclass
class Task:
    node_id: str
    role: str
    agent_id: str
    state: str = QUEUED
    reason: str = ""
    started_ms: int | None = None
    ended_ms: int | None = None
    file: str = ""
    size: int = 0
    sha256: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "role": self.role, "agent_id": self.agent_id, "state": self.state,
                "reason": self.reason, "started": rfc3339(self.started_ms), "ended": rfc3339(self.ended_ms),
                "file": self.file or None, "size": self.size, "sha256": self.sha256 or None,
                "warning": self.meta.get("warning") or None, "note": self.meta.get("note") or None}


@dataclass
class Job:
    job_id: str
    action: str
    agent_action: str  # the request's Command.body field (e.g. "profile")
    params: dict[str, str]
    target: dict[str, Any]
    requested_by: str
    suffix: str
    directory: Path
    tasks: dict[str, Task] = field(default_factory=dict)
    created_ms: int = field(default_factory=now_ms)
    ended_ms: int | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    running: list[RunningCommand] = field(default_factory=list)
    bundle_lock: threading.Lock = field(default_factory=threading.Lock)

    def file_name(self, key: str) -> str:
        """Where a node's result is kept: a safe name within NAME_MAX whatever the node id."""
        return safe_file_name(key, self.suffix)

    @property
    def finished(self) -> bool:
        return all(t.state in FINAL_STATES for t in self.tasks.values())

    def state(self) -> str:
        if not self.finished:
            return RUNNING
        states = {t.state for t in self.tasks.values()}
        return "done" if states <= {"done"} else "partial" if "done" in states else "failed"

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.state] = counts.get(task.state, 0) + 1
        return {"job_id": self.job_id, "action": self.action, "params": self.params, "target": self.target,
                "requested_by": self.requested_by, "state": self.state(), "created": rfc3339(self.created_ms),
                "ended": rfc3339(self.ended_ms), "nodes": counts}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "tasks": [t.to_json() for t in self.tasks.values()]}

    def bytes_on_disk(self) -> int:
        return sum(t.size for t in self.tasks.values())

    def save(self) -> None:
        """Writes job.json atomically: what a restarted proxy needs to list and serve this job."""
        record = {"job_id": self.job_id, "action": self.action, "agent_action": self.agent_action,
                  "params": self.params, "target": self.target, "requested_by": self.requested_by,
                  "suffix": self.suffix, "created_ms": self.created_ms, "ended_ms": self.ended_ms,
                  "tasks": [asdict(task) for task in self.tasks.values()]}
        write_atomically(self.directory / RECORD, json.dumps(record).encode())

    @classmethod
    def load(cls, directory: Path) -> Job:
        """A job from its job.json; nodes that had not finished are marked interrupted."""
        record = json.loads((directory / RECORD).read_text())
        job = cls(record["job_id"], record["action"], record["agent_action"], record["params"], record["target"],
                  record["requested_by"], record["suffix"], directory, created_ms=record["created_ms"],
                  ended_ms=record["ended_ms"])
        for fields in record["tasks"]:
            task = Task(**fields)
            if task.state not in FINAL_STATES:
                task.state, task.reason = INTERRUPTED, "the proxy stopped while this node's result was pending"
                task.ended_ms = task.ended_ms or job.ended_ms or now_ms()
                task.file, task.size, task.sha256 = "", 0, ""
                (directory / job.file_name(task.node_id)).unlink(missing_ok=True)  # partial
            job.tasks[task.node_id] = task
        job.ended_ms = job.ended_ms or max((t.ended_ms or 0 for t in job.tasks.values()), default=now_ms())
        return job


class JobStore:
    def __init__(self, directory: Path, runner: CommandRunner, *, budget_bytes: int, max_jobs: int) -> None:
        self.directory = directory
        self.runner = runner
        self.budget_bytes = budget_bytes
        self.max_jobs = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # set before the agents' streams are closed at shutdown

    def load(self) -> int:
        """Reads back the jobs an earlier run kept, oldest first; a directory without a readable record (an
        older version's, or half written) cannot be served and is removed, so it stops costing disk."""
        self.directory.mkdir(parents=True, exist_ok=True)
        found = []
        for directory in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            try:
                found.append(Job.load(directory))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("removing a diagnostics job directory without a readable record", extra={"fields": {
                    "path": str(directory), "reason": f"{type(exc).__name__}: {exc}"}})
                shutil.rmtree(directory, ignore_errors=True)
        with self._lock:
            for job in sorted(found, key=lambda j: j.created_ms):
                self._jobs[job.job_id] = job
        self._evict()
        return len(found)

    # ---- creating and running
    def submit(self, *, action: str, request: Message, params: dict[str, str], target: dict[str, Any],
               requested_by: str, suffix: str, records: list[AgentRecord], unknown_nodes: list[str],
               timeout_s: float) -> Job:
        job_id = f"j{time.strftime('%Y%m%d%H%M%S')}-{next(_ids)}"
        while (self.directory / job_id).exists():  # a job of an earlier run in the same second
            job_id = f"j{time.strftime('%Y%m%d%H%M%S')}-{next(_ids)}"
        job = Job(job_id, action, request_name(request), params, target, requested_by, suffix,
                  self.directory / job_id)
        job.directory.mkdir(parents=True, exist_ok=True)
        for record in records:
            key = record.registration.node_id
            if key in job.tasks:
                key = f"{key}#{record.agent_id[:8]}"
            job.tasks[key] = Task(key, record.registration.role, record.agent_id)
        for node_id in unknown_nodes:
            job.tasks[node_id] = Task(node_id, "", "", UNREACHABLE, "no online agent for this node",
                                      ended_ms=now_ms())
        self._save(job)
        with self._lock:
            self._jobs[job_id] = job
        self._evict()
        by_agent = {record.agent_id: record for record in records}
        threading.Thread(target=self._run, args=(job, request, by_agent, timeout_s), name=f"diag-{job_id}",
                         daemon=True).start()
        return job

    def _run(self, job: Job, request: Message, records: dict[str, AgentRecord], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        links_by = time.monotonic() + min(self.runner.link_wait_s, timeout_s)
        threads = []
        for key, task in job.tasks.items():
            if task.state in FINAL_STATES:
                continue
            try:
                command = self.runner.start(records[task.agent_id], request, timeout_s, link_deadline=links_by)
            except Exception as exc:  # noqa: BLE001 (one node's failure never leaves the job running)
                self._end_task(job, task, "failed", f"cannot start: {type(exc).__name__}: {exc}")
                continue
            job.running.append(command)
            task.started_ms = now_ms()
            thread = threading.Thread(target=self._collect, args=(job, key, task, command, deadline),
                                      name=f"diag-{job.job_id}-{key[:12]}", daemon=True)
            thread.start()
            threads.append(thread)
        if job.cancel_requested.is_set():
            self.cancel(job)
        for thread in threads:
            thread.join()
        job.ended_ms = now_ms()
        self._save(job)
        log.info("diagnostics job finished", extra={"fields": {"job_id": job.job_id, "action": job.action,
                                                               "nodes": job.summary()["nodes"]}})
        self._evict()

    def _collect(self, job: Job, key: str, task: Task, command: RunningCommand, deadline: float) -> None:
        """Gathers one node's result; whatever goes wrong here (a full disk, a name the filesystem refuses)
        ends this node with the reason, never the thread with the job left running."""
        path = job.directory / job.file_name(key)
        try:
            self._receive(job, task, command, deadline, path)
        except Exception as exc:  # noqa: BLE001
            command.cancel()
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            reason = (f"cannot keep the result on the proxy: {exc.strerror or exc}" if isinstance(exc, OSError)
                      else f"{type(exc).__name__}: {exc}")
            self._end_task(job, task, "failed", reason)
            log.warning("diagnostics result lost", extra={"fields": {"job_id": job.job_id, "node_id": key,
                                                                     "reason": reason}})

    def _receive(self, job: Job, task: Task, command: RunningCommand, deadline: float, path: Path) -> None:
        def on_state(state: str, meta: dict[str, str]) -> None:
            task.state = QUEUED if meta.get("phase") == "queued" else RUNNING
            task.reason = meta.get("waiting_for", "") if task.state == QUEUED else ""  # e.g. the ring's capture

        with open(path, "wb") as sink:
            result = command.collect(deadline, on_state, sink)
        if result.ok and result.meta.get("sha256") not in (None, "", result.sha256):
            result.state, result.error = "failed", "artifact damaged in transit (sha256 mismatch)"
        if result.ok and job.agent_action in RESULTS:
            self._result_as_json(job, result, path)
        if not result.ok:
            path.unlink(missing_ok=True)
        task.meta = result.meta
        if result.ok:
            task.file, task.size, task.sha256 = path.name, result.size, result.sha256
        self._end_task(job, task, result.state, result.error)

    def _result_as_json(self, job: Job, result: CommandResult, path: Path) -> None:
        """A result message (e.g. a configuration snapshot) is checked and kept as the JSON operators read."""
        try:
            payload, _ = check_result(job.agent_action, path.read_bytes(), now_ms())
        except BadAnswer as exc:
            self.runner.refusals.refuse("unreadable_answer" if exc.unreadable else "answer", str(exc),
                                        action=job.agent_action, node_id=result.record.registration.node_id)
            result.state, result.error = "failed", f"agent sent an unusable answer: {str(exc)[:200]}"
            return
        data = json.dumps(payload).encode()
        path.write_bytes(data)
        result.size, result.sha256 = len(data), hashlib.sha256(data).hexdigest()

    def _end_task(self, job: Job, task: Task, state: str, reason: str) -> None:
        task.ended_ms = now_ms()
        if state != "done" and self.stopping.is_set():
            state, reason = INTERRUPTED, "the proxy stopped while this node's result was pending"
        task.state, task.reason = state, reason

    @staticmethod
    def _save(job: Job) -> None:
        try:
            job.save()
        except OSError as exc:  # the job runs and is served all the same; only a restart would lose it
            log.warning("cannot write a diagnostics job record", extra={"fields": {"job_id": job.job_id,
                                                                                    "reason": str(exc)}})

    def cancel(self, job: Job) -> int:
        """Asks every running node to stop; returns how many were asked."""
        job.cancel_requested.set()
        return sum(command.cancel() for command in job.running)

    # ---- reading
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, limit: int) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))[:limit]

    def delete(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.job_id, None)
        shutil.rmtree(job.directory, ignore_errors=True)

    def bundle(self, job: Job) -> Path:
        """One tar.gz: every node's artifact plus manifest.json (node, role, action, params, times, sizes, sha256).

        Built once per job: concurrent downloads wait for the one build, written atomically, so nobody is
        ever served a half-written bundle. OSError (a full disk) reaches the caller, and the next download
        tries again."""
        path = job.directory / BUNDLE
        with job.bundle_lock:
            if path.exists():
                return path
            with atomic_file(path) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                self._fill_bundle(job, tar)
        return path

    @staticmethod
    def _fill_bundle(job: Job, tar: tarfile.TarFile) -> None:
        manifest = {**job.to_json(), "format": "fodc-diagnostics-bundle/1"}
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(f"{job.job_id}/manifest.json")
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
        for task in job.tasks.values():
            if task.file:
                tar.add(job.directory / task.file, arcname=f"{job.job_id}/{task.file}")

    def _evict(self) -> None:
        with self._lock:
            evicted = beyond_caps(list(self._jobs.values()), Job.bytes_on_disk, max_count=self.max_jobs,
                                  max_bytes=self.budget_bytes,
                                  removable=lambda job: job.finished and job.ended_ms is not None)
            for job in evicted:
                del self._jobs[job.job_id]
        for job in evicted:
            shutil.rmtree(job.directory, ignore_errors=True)
            log.info("diagnostics job evicted", extra={"fields": {"job_id": job.job_id}})
