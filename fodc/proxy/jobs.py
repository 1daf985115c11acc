"""Diagnostics jobs on the proxy: one action fanned out to many nodes, each node's result kept on disk.

A job runs on its own thread; each node's result is gathered on a thread of its own so one slow node never
holds up another's state. Results live under --diagnostics-dir/<job id>/ within a byte budget and a job
count; the oldest finished jobs are evicted first, running jobs never.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import shutil
import tarfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fodc.proxy.commands import TIMED_OUT, UNREACHABLE, CommandRunner, RunningCommand
from fodc.proxy.registry import AgentRecord
from fodc.times import rfc3339

log = logging.getLogger(__name__)

QUEUED, RUNNING = "queued", "running"
FINAL_STATES = frozenset({"done", "failed", "cancelled", "rejected", TIMED_OUT, UNREACHABLE})

_ids = itertools.count(1)


def _now_ms() -> int:
    return int(time.time() * 1000)


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
                "file": self.file or None, "size": self.size, "sha256": self.sha256 or None}


@dataclass
class Job:
    job_id: str
    action: str
    agent_action: str
    params: dict[str, str]
    target: dict[str, Any]
    requested_by: str
    suffix: str
    directory: Path
    tasks: dict[str, Task] = field(default_factory=dict)
    created_ms: int = field(default_factory=_now_ms)
    ended_ms: int | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    running: list[RunningCommand] = field(default_factory=list)

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


class JobStore:
    def __init__(self, directory: Path, runner: CommandRunner, *, budget_bytes: int, max_jobs: int) -> None:
        self.directory = directory
        self.runner = runner
        self.budget_bytes = budget_bytes
        self.max_jobs = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    # ---- creating and running
    def submit(self, *, action: str, agent_action: str, params: dict[str, str], target: dict[str, Any],
               requested_by: str, suffix: str, records: list[AgentRecord], unknown_nodes: list[str],
               timeout_s: float) -> Job:
        job_id = f"j{time.strftime('%Y%m%d%H%M%S')}-{next(_ids)}"
        job = Job(job_id, action, agent_action, params, target, requested_by, suffix, self.directory / job_id)
        job.directory.mkdir(parents=True, exist_ok=True)
        for record in records:
            key = record.registration.node_id
            if key in job.tasks:
                key = f"{key}#{record.agent_id[:8]}"
            job.tasks[key] = Task(key, record.registration.role, record.agent_id)
        for node_id in unknown_nodes:
            job.tasks[node_id] = Task(node_id, "", "", UNREACHABLE, "no online agent for this node",
                                      ended_ms=_now_ms())
        with self._lock:
            self._jobs[job_id] = job
        self._evict()
        by_agent = {record.agent_id: record for record in records}
        threading.Thread(target=self._run, args=(job, by_agent, timeout_s), name=f"diag-{job_id}",
                         daemon=True).start()
        return job

    def _run(self, job: Job, records: dict[str, AgentRecord], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        links_by = time.monotonic() + min(self.runner.link_wait_s, timeout_s)
        threads = []
        for key, task in job.tasks.items():
            if task.state in FINAL_STATES:
                continue
            command = self.runner.start(records[task.agent_id], job.agent_action, job.params, timeout_s,
                                        link_deadline=links_by)
            job.running.append(command)
            task.started_ms = _now_ms()
            thread = threading.Thread(target=self._collect, args=(job, key, task, command, deadline),
                                      name=f"diag-{job.job_id}-{key[:12]}", daemon=True)
            thread.start()
            threads.append(thread)
        if job.cancel_requested.is_set():
            self.cancel(job)
        for thread in threads:
            thread.join()
        job.ended_ms = _now_ms()
        log.info("diagnostics job finished", extra={"fields": {"job_id": job.job_id, "action": job.action,
                                                               "nodes": job.summary()["nodes"]}})
        self._evict()

    def _collect(self, job: Job, key: str, task: Task, command: RunningCommand, deadline: float) -> None:
        def on_state(state: str, meta: dict[str, str]) -> None:
            task.state = QUEUED if meta.get("phase") == "queued" else RUNNING

        name = f"{key.replace('/', '_')}{job.suffix}"
        path = job.directory / name
        with open(path, "wb") as sink:
            result = command.collect(deadline, on_state, sink)
        task.ended_ms = _now_ms()
        task.meta = result.meta
        if result.ok and result.meta.get("sha256") not in (None, "", result.sha256):
            result.state, result.error = "failed", "artifact damaged in transit (sha256 mismatch)"
        task.state, task.reason = result.state, result.error
        if result.ok:
            task.file, task.size, task.sha256 = name, result.size, result.sha256
        else:
            path.unlink(missing_ok=True)

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
        """One tar.gz: every node's artifact plus manifest.json (node, role, action, params, times, sizes, sha256)."""
        path = job.directory / "bundle.tar.gz"
        if path.exists():
            return path
        manifest = {**job.to_json(), "format": "fodc-diagnostics-bundle/1"}
        tmp = path.with_suffix(".tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(f"{job.job_id}/manifest.json")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
            for task in job.tasks.values():
                if task.file:
                    tar.add(job.directory / task.file, arcname=f"{job.job_id}/{task.file}")
        tmp.rename(path)
        return path

    def _evict(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            total = sum(j.bytes_on_disk() for j in jobs)
            evicted = []
            for job in jobs:  # oldest first
                if total <= self.budget_bytes and len(jobs) - len(evicted) <= self.max_jobs:
                    break
                if job.finished and job.ended_ms is not None:
                    total -= job.bytes_on_disk()
                    evicted.append(job)
                    del self._jobs[job.job_id]
        for job in evicted:
            shutil.rmtree(job.directory, ignore_errors=True)
            log.info("diagnostics job evicted", extra={"fields": {"job_id": job.job_id}})
