"""Profiles through the proxy: JSON summaries of job results and incident profiles (checked against the raw
file), and block/mutex profiles with no samples ending `done` with a warning in the API, CLI and manifest.
A real Go process (Debian's prometheus) is the node; real agent and proxy processes."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
import threading

import pytest
from procs import BIN, http_get, http_json, keep_busy, start_agent, start_prometheus, start_proxy, wait_for

from fodc.pprof import profile_pb2 as pb

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="needs a real Go process with /debug/pprof: Debian package prometheus")

FINAL = {"done", "failed", "cancelled", "rejected", "timed_out", "unreachable", "interrupted"}


@pytest.fixture
def go_cluster(tmp_path, daemons):
    """A proxy, a Prometheus server as the node (metrics and pprof), and its agent with a rule that fires."""
    node, url = start_prometheus(tmp_path, "global:\n  scrape_interval: 1h\n")
    daemons.append(node)
    proxy = start_proxy(tmp_path, "--diagnostics-slack", "10s", "--command-timeout", "10s")
    daemons.append(proxy)
    daemons.append(start_agent(
        tmp_path, proxy.grpc_addr, "datanode-hot", "go-1", "--node-pprof-url", url, "--node-metrics-url",
        f"{url}/metrics", "--node-process-name", "no-such-node", "--scrape-interval", "0.5s", "--scrape-timeout",
        "0.5s", "--incident-check-interval", "0.3s", "--incident-after", "1s", "--incident-cpu-seconds", "1",
        "--incident-triggers", "", "--incident-rule", "up: go_goroutines >= 1 for 1s"))
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, 30, what="agent online")
    return proxy, url


def run_job(proxy, action, **params):
    body = {"action": action, "target": {"node_ids": ["go-1"]}, **({"params": params} if params else {})}
    status, job = http_json(f"{proxy.url}/diagnostics", "POST", body)
    assert status == 202, job

    def finished():
        status, current = http_json(f"{proxy.url}/diagnostics/{job['job_id']}")
        return current if all(t["state"] in FINAL for t in current["tasks"]) else None
    return wait_for(finished, 90, interval=0.3, what=f"{action} job finished")


def raw_totals(data: bytes) -> dict[str, int]:
    """Each sample type's total, straight from the message."""
    message = pb.Profile.FromString(gzip.decompress(data))
    names = [message.string_table[t.type] for t in message.sample_type]
    return {name: sum(s.value[i] for s in message.sample) for i, name in enumerate(names)}


def flame_nodes(tree):
    return 1 + sum(flame_nodes(c) for c in tree["children"])


def test_a_finished_cpu_job_has_a_json_summary_matching_its_raw_profile(go_cluster):
    proxy, url = go_cluster
    stop = threading.Event()
    loaders = [threading.Thread(target=keep_busy, args=(url, stop), daemon=True) for _ in range(3)]
    for loader in loaders:
        loader.start()
    try:
        job = run_job(proxy, "cpu", seconds=2)
    finally:
        stop.set()
    assert job["state"] == "done", job
    base = f"{proxy.url}/diagnostics/{job['job_id']}/go-1"
    raw = http_get(base)[2]
    totals = raw_totals(raw)
    status, summary = http_json(f"{base}/summary")
    assert status == 200, summary
    assert summary["sample_types"] == [{"type": "samples", "unit": "count"}, {"type": "cpu", "unit": "nanoseconds"}]
    assert (summary["sample_type"], summary["unit"], summary["total"]) == ("cpu", "nanoseconds", totals["cpu"])
    assert summary["total"] > 0 and summary["flame"]["value"] == summary["total"]
    assert summary["top"][0]["flat"] == max(r["flat"] for r in summary["top"])
    assert sum(c["value"] for c in summary["flame"]["children"]) <= summary["total"]
    status, counts = http_json(f"{base}/summary?sample_type=samples&top=3")
    assert status == 200 and counts["total"] == totals["samples"] and len(counts["top"]) <= 3
    assert flame_nodes(counts["flame"]) <= 2000

    status, error = http_json(f"{base}/summary?sample_type=inuse_space")
    assert status == 422 and "no sample type 'inuse_space'" in error["message"] and "cpu" in error["message"]
    assert http_json(f"{base}/summary?top=0")[0] == 400
    assert http_json(f"{base}/summary?bogus=1")[0] == 400
    config = run_job(proxy, "config")
    status, error = http_json(f"{proxy.url}/diagnostics/{config['job_id']}/go-1/summary")
    assert status == 422 and "only profiles have a summary" in error["message"]
    assert http_json(f"{base}/summary")[1] == summary  # the second time from the cache, and counted so
    metrics = http_get(f"{proxy.url}/metrics")[2].decode()
    for result in ("ok", "cached", "not_a_profile"):
        assert f'fodc_proxy_profile_summaries_total{{result="{result}"}}' in metrics


@pytest.mark.parametrize("kind, switch", [("block", "runtime.SetBlockProfileRate"),
                                          ("mutex", "runtime.SetMutexProfileFraction")])
def test_an_empty_block_or_mutex_profile_is_done_with_a_warning_everywhere(go_cluster, tmp_path, kind, switch):
    proxy, _ = go_cluster
    run = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "profile", kind, "--node", "go-1", "-o",
                          str(tmp_path / "b.tar.gz")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"warning: go-1: the {kind} profile has no samples" in run.stdout and switch in run.stdout
    job_id = json.loads(http_get(f"{proxy.url}/diagnostics?automatic=false")[2])["jobs"][0]["job_id"]
    status, job = http_json(f"{proxy.url}/diagnostics/{job_id}")
    task = job["tasks"][0]
    assert job["state"] == "done" and task["state"] == "done" and switch in task["warning"]
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        manifest = json.load(tar.extractfile(f"{job_id}/manifest.json"))
    assert switch in manifest["tasks"][0]["warning"]
    heap = run_job(proxy, "heap")
    assert heap["tasks"][0]["warning"] is None  # a profile with samples says nothing


def test_an_incident_profile_has_a_summary_from_its_bundle(go_cluster):
    proxy, _ = go_cluster

    def complete():
        status, body = http_json(f"{proxy.url}/incidents?node_id=go-1")
        done = [i for i in body["incidents"] if i["state"] == "complete"] if status == 200 else []
        return done[0] if done else None
    incident = wait_for(complete, 60, interval=0.5, what="a complete incident")
    raw = http_get(f"{proxy.url}{incident['bundle_url']}")[2]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        heap = next(tar.extractfile(m).read() for m in tar if m.name.endswith("/heap.pb.gz"))
    status, summary = http_json(f"{proxy.url}{incident['url']}/profiles/heap.pb.gz/summary")
    assert status == 200, summary
    assert summary["sample_type"] == "inuse_space" and summary["total"] == raw_totals(heap)["inuse_space"]
    status, summary = http_json(f"{proxy.url}{incident['url']}/profiles/heap.pb.gz/summary?sample_type=alloc_objects")
    assert status == 200 and summary["total"] == raw_totals(heap)["alloc_objects"]
    assert http_json(f"{proxy.url}{incident['url']}/profiles/nope.pb.gz/summary")[0] == 404
    assert http_json(f"{proxy.url}{incident['url']}/profiles/window.json/summary")[0] == 422
