"""Diagnostics jobs under races and disk faults, against real processes: many clients downloading a fresh
bundle at once, a full diagnostics disk on the proxy, and node ids no filesystem takes as a file name."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import urllib.parse

import pytest
from disks import fill_disk
from procs import http_get, http_json, start_agent, start_prometheus, start_proxy, wait_for

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="needs a real Go process with /debug/pprof: Debian package prometheus")

FINAL = {"done", "failed", "cancelled", "rejected", "timed_out", "unreachable", "interrupted"}


def go_node(tmp_path, daemons):
    node, url = start_prometheus(tmp_path, "global:\n  scrape_interval: 1h\n", "go")
    daemons.append(node)
    return url


def agents(tmp_path, daemons, proxy, pprof_url, *node_ids):
    for node_id in node_ids:
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", node_id, "--node-pprof-url", pprof_url,
                                   "--node-process-name", "no-such-node"))
    wait_for(lambda: len(proxy.cluster(status="online")) == len(node_ids), 30, what="agents online")


def run_job(proxy, action="heap", timeout=60):
    status, job = http_json(f"{proxy.url}/diagnostics", "POST", {"action": action, "target": "all"})
    assert status == 202, job

    def finished():
        status, body = http_json(f"{proxy.url}/diagnostics/{job['job_id']}")
        assert status == 200, body
        return body if all(t["state"] in FINAL for t in body["tasks"]) else None
    return wait_for(finished, timeout, interval=0.2, what=f"job {job['job_id']} finished")


def bundle_members(raw):
    """The bundle's members by name; raises if the archive is damaged."""
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


def assert_valid_bundle(raw, job):
    members = bundle_members(raw)
    manifest = json.loads(members.pop(f"{job['job_id']}/manifest.json"))
    assert manifest["job_id"] == job["job_id"]
    for entry in manifest["tasks"]:
        if entry["state"] == "done":
            data = members[f"{job['job_id']}/{entry['file']}"]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def download_together(url, clients):
    """`clients` threads released at once, each downloading `url`; their (status, body) answers."""
    gate = threading.Barrier(clients)
    answers = [None] * clients

    def fetch(index):
        gate.wait()
        status, _, body = http_get(url, timeout=60)
        answers[index] = (status, body)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return answers


def test_concurrent_downloads_of_a_fresh_bundle_all_get_the_same_valid_archive(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--http-threads", "24")
    daemons.append(proxy)
    agents(tmp_path, daemons, proxy, go_node(tmp_path, daemons), "hot-1", "hot-2", "hot-3")
    for _ in range(4):  # each round a fresh job, so every round races on building its bundle
        job = run_job(proxy)
        assert job["state"] == "done", job
        answers = download_together(f"{proxy.url}/diagnostics/{job['job_id']}/bundle", 20)
        assert [status for status, _ in answers] == [200] * 20
        assert len({body for _, body in answers}) == 1  # built once: every client got the same bytes
        assert_valid_bundle(answers[0][1], job)
    leftovers = [p.name for p in (tmp_path / "proxy-diagnostics").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_full_diagnostics_disk_ends_every_node_with_the_reason_and_bundles_recover(tmp_path, daemons, small_disk):
    disk = small_disk("proxy-disk", "8m")
    proxy = start_proxy(tmp_path, "--diagnostics-dir", str(disk / "diagnostics"))
    daemons.append(proxy)
    agents(tmp_path, daemons, proxy, go_node(tmp_path, daemons), "hot-1", "hot-2")
    earlier = run_job(proxy)
    assert earlier["state"] == "done", earlier

    filler = fill_disk(disk)
    full = run_job(proxy)
    assert full["state"] == "failed", full
    for entry in full["tasks"]:
        assert entry["state"] == "failed" and "No space left on device" in entry["reason"], entry
        assert entry["ended"] and entry["file"] is None
    status, body = http_json(f"{proxy.url}/diagnostics/{earlier['job_id']}/bundle")
    assert status == 503 and "No space left on device" in body["message"], body

    filler.unlink()
    status, _, raw = http_get(f"{proxy.url}/diagnostics/{earlier['job_id']}/bundle")
    assert status == 200
    assert_valid_bundle(raw, earlier)
    status, _, raw = http_get(f"{proxy.url}/diagnostics/{full['job_id']}/bundle")
    assert status == 200 and list(bundle_members(raw)) == [f"{full['job_id']}/manifest.json"]
    assert run_job(proxy)["state"] == "done"  # the proxy kept working


def test_node_ids_too_long_for_a_file_name_still_get_their_results(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    long_ids = ["n" * 256, "ü" * 201]  # both valid node ids; neither fits NAME_MAX as a file name
    agents(tmp_path, daemons, proxy, go_node(tmp_path, daemons), *long_ids)
    job = run_job(proxy)
    assert job["state"] == "done", job
    for node_id in long_ids:
        entry = next(t for t in job["tasks"] if t["node_id"] == node_id)
        assert len(entry["file"].encode()) <= 200
        status, _, body = http_get(f"{proxy.url}/diagnostics/{job['job_id']}/{urllib.parse.quote(node_id)}")
        assert status == 200 and hashlib.sha256(body).hexdigest() == entry["sha256"]
    status, _, raw = http_get(f"{proxy.url}/diagnostics/{job['job_id']}/bundle")
    assert status == 200
    assert_valid_bundle(raw, job)
