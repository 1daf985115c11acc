"""The bounded on-disk stores that had no test of their caps: the agent's artifact directory and the
proxy's diagnostics jobs, each read back from real files and trimmed oldest first."""

from __future__ import annotations

import os

from fodc.diag.store import ArtifactStore
from fodc.proxy.jobs import Job, JobStore, Task


def _artifact(directory, name, size, mtime):
    path = directory / name
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_the_artifact_store_removes_the_oldest_beyond_its_count(tmp_path):
    for n in range(5):
        _artifact(tmp_path, f"a{n}.pb.gz", 10, 1_700_000_000 + n)
    _artifact(tmp_path, ".collecting-x.json", 10, 1)  # a marker: never weighed, never removed
    removed = ArtifactStore(tmp_path, keep=3, max_bytes=1 << 20).prune()
    assert sorted(p.name for p in removed) == ["a0.pb.gz", "a1.pb.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".collecting-x.json", "a2.pb.gz", "a3.pb.gz", "a4.pb.gz"]


def test_the_artifact_store_removes_the_oldest_beyond_its_bytes(tmp_path):
    _artifact(tmp_path, "old.tar.gz", 500, 1_700_000_000)
    _artifact(tmp_path, "mid.tar.gz", 300, 1_700_000_100)
    _artifact(tmp_path, "new.tar.gz", 300, 1_700_000_200)
    store = ArtifactStore(tmp_path, keep=10, max_bytes=700)
    assert [p.name for p in store.prune()] == ["old.tar.gz"]
    assert store.usage() == (2, 600)


def _saved_job(directory, job_id, created_ms, size):
    job = Job(job_id, "profile", "profile", {}, {}, "ops", ".pb.gz", directory / job_id, created_ms=created_ms,
              ended_ms=created_ms + 1000)
    job.directory.mkdir(parents=True)
    job.tasks["n1"] = Task("n1", "liaison", "agent-1", state="done", file="n1.pb.gz", size=size)
    (job.directory / "n1.pb.gz").write_bytes(b"x" * size)
    job.save()


def test_the_job_store_keeps_the_newest_jobs_within_count_and_bytes(tmp_path):
    for n in range(4):
        _saved_job(tmp_path, f"j{n}", 1_700_000_000_000 + n * 1000, 100)
    by_count = JobStore(tmp_path, runner=None, budget_bytes=1 << 20, max_jobs=3)  # type: ignore[arg-type]
    assert by_count.load() == 4
    assert [job.job_id for job in reversed(by_count.list(10))] == ["j1", "j2", "j3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j1", "j2", "j3"]
    by_bytes = JobStore(tmp_path, runner=None, budget_bytes=150, max_jobs=10)  # type: ignore[arg-type]
    by_bytes.load()
    assert [job.job_id for job in by_bytes.list(10)] == ["j3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j3"]
