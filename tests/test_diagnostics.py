"""On-demand diagnostics end to end: a real Go process (Debian's prometheus serves /debug/pprof), agents
taking profiles of it, the proxy running jobs across nodes, bundles, limits, cancel, and access control."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading

import pytest
from procs import BIN, free_port, http_get, http_json, keep_busy, start_agent, start_prometheus, start_proxy, wait_for

from fodc.pprof.reader import parse
from fodc.proxy.auth import hash_token
from fodc.sim.launcher import start_sim_node

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="needs a real Go process with /debug/pprof: Debian package prometheus")

FINAL = {"done", "failed", "cancelled", "rejected", "timed_out", "unreachable"}


def start_go_node(tmp_path, daemons, name):
    """A Prometheus server: a real Go program serving Go pprof under /debug/pprof on its web port."""
    node, url = start_prometheus(tmp_path, "global:\n  scrape_interval: 1h\n", name)
    daemons.append(node)
    return node, url


def submit(proxy, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return http_json(f"{proxy.url}/diagnostics", "POST", body, headers=headers)


def finished_job(proxy, job_id, timeout=60):
    def done():
        status, job = http_json(f"{proxy.url}/diagnostics/{job_id}")
        assert status == 200, job
        return job if all(t["state"] in FINAL for t in job["tasks"]) else None
    return wait_for(done, timeout, interval=0.2, what=f"job {job_id} finished")


def task(job, node_id):
    return next(t for t in job["tasks"] if t["node_id"] == node_id)


@pytest.fixture
def proxy(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--diagnostics-slack", "5s")
    daemons.append(proxy)
    return proxy


def add_agent(tmp_path, daemons, proxy, node_id, pprof_url, *args, role="datanode-hot"):
    agent = start_agent(tmp_path, proxy.grpc_addr, role, node_id, "--node-pprof-url", pprof_url,
                        "--node-process-name", "no-such-node", *args)
    daemons.append(agent)
    return agent


def test_cpu_and_heap_profiles_of_several_nodes_come_back_as_valid_pprof_with_a_bundle(tmp_path, daemons, proxy):
    urls = {}
    for node_id in ("hot-1", "hot-2"):
        _, urls[node_id] = start_go_node(tmp_path, daemons, node_id)
        add_agent(tmp_path, daemons, proxy, node_id, urls[node_id])
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
    stop = threading.Event()
    loaders = [threading.Thread(target=keep_busy, args=(url, stop), daemon=True) for url in urls.values()]
    for loader in loaders:
        loader.start()
    try:
        status, job = submit(proxy, {"action": "cpu", "params": {"seconds": 2},
                                     "target": {"role": "datanode-hot"}})
        assert status == 202, job
        assert {t["node_id"] for t in job["tasks"]} == {"hot-1", "hot-2"}
        cpu = finished_job(proxy, job["job_id"])
    finally:
        stop.set()
    status, heap_job = submit(proxy, {"action": "heap", "target": {"node_ids": ["hot-1", "hot-2"]}})
    assert status == 202
    heap = finished_job(proxy, heap_job["job_id"])

    for job in (cpu, heap):
        assert job["state"] == "done", job
        for node_id in urls:
            status, headers, body = http_get(f"{proxy.url}/diagnostics/{job['job_id']}/{node_id}")
            assert status == 200
            profile = parse(body)
            assert profile.samples, (job["action"], node_id)
            names = {name for sample in profile.samples for name in sample.stack}
            assert any(name.startswith(("runtime.", "main.", "net/http.")) for name in names)
            assert hashlib.sha256(body).hexdigest() == task(job, node_id)["sha256"]

    status, headers, raw = http_get(f"{proxy.url}/diagnostics/{cpu['job_id']}/bundle")
    assert status == 200 and headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(f"{cpu['job_id']}/manifest.json"))
        contents = {name: tar.extractfile(name).read() for name in names if not name.endswith("manifest.json")}
    assert manifest["action"] == "cpu" and manifest["params"] == {"seconds": "2"}
    assert manifest["target"] == {"role": "datanode-hot"}
    for entry in manifest["tasks"]:
        data = contents[f"{cpu['job_id']}/{entry['file']}"]
        assert entry["role"] == "datanode-hot" and entry["state"] == "done"
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["started"] and entry["ended"]
    status, listing = http_json(f"{proxy.url}/diagnostics")
    assert [j["job_id"] for j in listing["jobs"]][:2] == [heap["job_id"], cpu["job_id"]]


def test_missing_or_unreachable_pprof_fails_with_the_reason(tmp_path, daemons, proxy):
    sim = start_sim_node("datanode-hot", free_port())
    try:
        add_agent(tmp_path, daemons, proxy, "no-pprof", sim.url)  # serves /metrics, not /debug/pprof/heap
        add_agent(tmp_path, daemons, proxy, "refused", f"http://127.0.0.1:{free_port()}")
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
        status, job = submit(proxy, {"action": "heap", "target": {"node_ids": ["no-pprof", "refused"]}})
        assert status == 202
        job = finished_job(proxy, job["job_id"])
    finally:
        sim.stop()
    assert task(job, "no-pprof")["state"] == "failed" and "answered 404" in task(job, "no-pprof")["reason"]
    assert task(job, "refused")["state"] == "failed" and "refused" in task(job, "refused")["reason"].lower()
    assert job["state"] == "failed"
    status, body = http_json(f"{proxy.url}/diagnostics/{job['job_id']}/refused")
    assert status == 409 and "failed" in body["message"]


def test_a_silent_pprof_endpoint_times_out_and_the_agent_stays_useful(tmp_path, daemons, proxy):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        add_agent(tmp_path, daemons, proxy, "silent", f"http://127.0.0.1:{silent.getsockname()[1]}")
        wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
        status, job = submit(proxy, {"action": "goroutine", "target": "all"})
        assert status == 202
        job = finished_job(proxy, job["job_id"])
    finally:
        silent.close()
    state = task(job, "silent")
    assert state["state"] in ("failed", "timed_out"), state
    assert "within" in state["reason"] or "deadline" in state["reason"], state
    status, config = http_json(f"{proxy.url}/cluster/config?node_id=silent")
    assert status == 200 and len(config["nodes"]) == 1


def test_cancel_stops_a_running_cpu_profile_and_config_requests_are_not_held_up(tmp_path, daemons, proxy):
    _, url = start_go_node(tmp_path, daemons, "go")
    add_agent(tmp_path, daemons, proxy, "hot-c", url)
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    status, job = submit(proxy, {"action": "cpu", "params": {"seconds": 60}, "target": "all"})
    assert status == 202
    wait_for(lambda: task(http_json(f"{proxy.url}/diagnostics/{job['job_id']}")[1], "hot-c")["state"] == "running",
             what="profile running")
    status, config = http_json(f"{proxy.url}/cluster/config?node_id=hot-c")
    assert status == 200 and config["missing"] == []  # the command stream still answers
    status, answer = http_json(f"{proxy.url}/diagnostics/{job['job_id']}", "DELETE")
    assert status == 202 and answer["cancelling"] == 1
    job = finished_job(proxy, job["job_id"], timeout=20)
    assert task(job, "hot-c")["state"] == "cancelled"
    status, _ = http_json(f"{proxy.url}/diagnostics/{job['job_id']}", "DELETE")  # finished: deleted
    assert status == 200 and http_json(f"{proxy.url}/diagnostics/{job['job_id']}")[0] == 404


def test_profiles_on_one_node_queue_one_at_a_time_and_a_full_queue_refuses(tmp_path, daemons, proxy):
    _, url = start_go_node(tmp_path, daemons, "go")
    add_agent(tmp_path, daemons, proxy, "hot-q", url, "--diagnostics-queue", "1")
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    first = submit(proxy, {"action": "cpu", "params": {"seconds": 3}, "target": "all"})[1]
    wait_for(lambda: task(http_json(f"{proxy.url}/diagnostics/{first['job_id']}")[1], "hot-q")["state"] == "running",
             what="first profile running")
    second = submit(proxy, {"action": "cpu", "params": {"seconds": 1}, "target": "all"})[1]
    wait_for(lambda: task(http_json(f"{proxy.url}/diagnostics/{second['job_id']}")[1], "hot-q")["state"] == "queued",
             what="second profile queued")
    third = finished_job(proxy, submit(proxy, {"action": "heap", "target": "all"})[1]["job_id"])
    assert task(third, "hot-q")["state"] == "failed" and "node busy" in task(third, "hot-q")["reason"]
    first, second = finished_job(proxy, first["job_id"]), finished_job(proxy, second["job_id"])
    assert task(first, "hot-q")["state"] == task(second, "hot-q")["state"] == "done"
    assert task(second, "hot-q")["ended"] > task(first, "hot-q")["ended"]


def test_an_oversized_profile_fails_and_leaves_nothing_behind(tmp_path, daemons, proxy):
    _, url = start_go_node(tmp_path, daemons, "go")
    add_agent(tmp_path, daemons, proxy, "hot-o", url, "--diagnostics-max-bytes", "1KiB")
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    job = finished_job(proxy, submit(proxy, {"action": "heap", "target": "all"})[1]["job_id"])
    assert task(job, "hot-o")["state"] == "failed" and "larger than" in task(job, "hot-o")["reason"]
    assert list((tmp_path / "diagnostics-hot-o").glob("*")) == []


def test_node_dying_mid_profile_fails_that_node_only(tmp_path, daemons, proxy):
    dying, dying_url = start_go_node(tmp_path, daemons, "dying")
    _, ok_url = start_go_node(tmp_path, daemons, "ok")
    add_agent(tmp_path, daemons, proxy, "hot-d", dying_url)
    add_agent(tmp_path, daemons, proxy, "hot-ok", ok_url)
    wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
    job = submit(proxy, {"action": "cpu", "params": {"seconds": 3}, "target": "all"})[1]
    wait_for(lambda: task(http_json(f"{proxy.url}/diagnostics/{job['job_id']}")[1], "hot-d")["state"] == "running",
             what="profile running")
    dying.kill9()
    job = finished_job(proxy, job["job_id"])
    assert task(job, "hot-d")["state"] == "failed" and task(job, "hot-d")["reason"]
    assert task(job, "hot-ok")["state"] == "done" and job["state"] == "partial"


@pytest.mark.parametrize(("body", "message"), [
    ({"action": "flamegraph"}, "action must be one of"),
    ({"action": "cpu", "params": {"seconds": 0}}, "params.seconds"),
    ({"action": "cpu", "params": {"seconds": "30"}}, "params.seconds"),
    ({"action": "heap", "params": {"seconds": 3}}, "takes no parameter 'seconds'"),
    ({"action": "heap", "target": {"role": "boss"}}, "unknown role"),
    ({"action": "heap", "target": {"node_ids": []}}, "non-empty list"),
    ({"action": "heap", "target": "some"}, "target must be"),
    ({"action": "heap", "colour": "red"}, "unknown field 'colour'"),
])
def test_bad_diagnostics_requests_are_refused_with_a_reason(proxy, body, message):
    status, answer = submit(proxy, body)
    assert status == 400 and message in answer["message"]


def test_unknown_jobs_and_bad_listing_queries(proxy):
    assert http_json(f"{proxy.url}/diagnostics/nope")[0] == 404
    assert http_json(f"{proxy.url}/diagnostics/nope/bundle")[0] == 404
    assert http_json(f"{proxy.url}/diagnostics?limit=x")[0] == 400


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# name role hash\nvera viewer sha256:{hash_token('view-me')}\n"
                    f"otto operator sha256:{hash_token('operate-me')}\n")
    return path


def test_control_actions_need_an_operator_token_and_are_audited(tmp_path, daemons, tokens):
    proxy = start_proxy(tmp_path, "--auth", "control", "--auth-tokens-file", str(tokens), name="secure")
    daemons.append(proxy)
    body = {"action": "heap", "target": "all"}
    assert submit(proxy, body)[0] == 401
    assert submit(proxy, body, token="wrong")[0] == 401
    status, answer = submit(proxy, body, token="view-me")
    assert status == 403 and "operator" in answer["message"]
    status, job = submit(proxy, body, token="operate-me")
    assert status == 202 and job["requested_by"] == "otto"
    assert http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "all"})[0] == 401
    assert http_json(f"{proxy.url}/diagnostics")[0] == 200  # reads stay open in "control" mode
    assert http_get(f"{proxy.url}/health")[0] == 200

    lines = [json.loads(line) for line in (tmp_path / "secure-audit.log").read_text().splitlines()]
    assert [(e["who"], e["status"]) for e in lines] == [
        ("anonymous", 401), ("anonymous", 401), ("vera", 403), ("otto", 202), ("anonymous", 401)]
    allowed = lines[3]
    assert allowed["job_id"] == job["job_id"] and allowed["request"] == body
    assert allowed["method"] == "POST" and allowed["path"] == "/diagnostics" and allowed["time"].endswith("Z")


def test_auth_all_protects_reads_too_but_not_health(tmp_path, daemons, tokens):
    proxy = start_proxy(tmp_path, "--auth", "all", "--auth-tokens-file", str(tokens), name="locked", wait=False)
    daemons.append(proxy)
    wait_for(lambda: http_get(f"{proxy.url}/health", 1)[0] == 200, 30, what="proxy up")
    assert http_json(f"{proxy.url}/cluster")[0] == 401
    assert http_json(f"{proxy.url}/cluster", headers={"Authorization": "Bearer view-me"})[0] == 200
    assert http_get(f"{proxy.url}/health")[1] and http_json(f"{proxy.url}/health")[1]["auth"] == "all"


def test_a_malformed_tokens_file_stops_the_proxy_with_the_line(tmp_path):
    bad = tmp_path / "tokens"
    bad.write_text("otto operator sha256:abc\n")
    result = subprocess.run([str(BIN / "fodc-proxy"), "--config", "/dev/null",
                             "--auth-tokens-file", str(bad)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{bad}:1: expected" in result.stderr


def test_memory_pressure_takes_heap_and_goroutine_profiles_listed_with_the_jobs(tmp_path, daemons, proxy):
    go, url = start_go_node(tmp_path, daemons, "go")
    pid_file = tmp_path / "go.pid"
    pid_file.write_text(str(go.pid))
    # A Go server's RSS is tens of MiB: 1 % of 1 GiB is crossed at once.
    add_agent(tmp_path, daemons, proxy, "hot-m", url, "--node-pid-file", str(pid_file), "--memory-limit", "1GiB",
              "--memory-pressure-threshold", "1", "--memory-pressure-interval", "0.5s",
              "--memory-pressure-cooldown", "1h")
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")

    def captured():
        status, listing = http_json(f"{proxy.url}/diagnostics")
        assert status == 200
        return [c for c in listing["automatic"] if len(c["files"]) == 2] or None
    captures = wait_for(captured, 60, interval=0.5, what="an automatic capture with two profiles")
    assert len(captures) == 1  # the cooldown holds back a second one
    capture = captures[0]
    assert capture["node_id"] == "hot-m" and capture["trigger"] == "memory-pressure"
    assert capture["limit_bytes"] == 1024 ** 3 and capture["percent"] >= 1
    assert [f["profile"] for f in capture["files"]] == ["heap", "goroutine"]
    status, _, body = http_get(f"{proxy.url}{capture['files'][0]['url']}")
    assert status == 200 and hashlib.sha256(body).hexdigest() == capture["files"][0]["sha256"]
    assert parse(body).samples
    assert http_json(f"{proxy.url}/diagnostics/automatic/hot-m/..%2Fescape")[0] == 404


def test_jobs_outlive_a_proxy_restart_and_one_cut_short_says_so(tmp_path, daemons, proxy):
    _, url = start_go_node(tmp_path, daemons, "hot-keep")
    add_agent(tmp_path, daemons, proxy, "hot-keep", url)
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    status, heap = submit(proxy, {"action": "heap", "target": {"node_ids": ["hot-keep"]}})
    assert status == 202, heap
    before = finished_job(proxy, heap["job_id"])
    assert task(before, "hot-keep")["state"] == "done"
    artifact = http_get(f"{proxy.url}/diagnostics/{heap['job_id']}/hot-keep")[2]
    status, cpu = submit(proxy, {"action": "cpu", "params": {"seconds": 20}, "target": {"node_ids": ["hot-keep"]}})
    assert status == 202, cpu
    wait_for(lambda: task(http_json(f"{proxy.url}/diagnostics/{cpu['job_id']}")[1], "hot-keep")["state"]
             == "running", 20, interval=0.2, what="the CPU profile running")
    stray = tmp_path / "proxy-diagnostics" / "j-from-an-older-version"
    stray.mkdir()
    (stray / "hot-keep.pb.gz").write_bytes(b"x" * 1000)
    proxy.crash()  # in the middle of the CPU profile, no goodbye at all

    again = start_proxy(tmp_path, "--diagnostics-slack", "5s", grpc_port=proxy.ports["grpc"])  # same dirs too
    daemons.append(again)
    listed = [j["job_id"] for j in http_json(f"{again.url}/diagnostics?automatic=false")[1]["jobs"]]
    assert listed == [cpu["job_id"], heap["job_id"]]  # newest first, as before the restart
    kept = http_json(f"{again.url}/diagnostics/{heap['job_id']}")[1]
    assert kept["tasks"] == before["tasks"] and kept["state"] == "done"
    assert http_get(f"{again.url}/diagnostics/{heap['job_id']}/hot-keep")[2] == artifact
    cut = http_json(f"{again.url}/diagnostics/{cpu['job_id']}")[1]
    assert task(cut, "hot-keep")["state"] == "interrupted", cut
    assert "proxy stopped" in task(cut, "hot-keep")["reason"]
    assert cut["state"] == "failed" and http_get(f"{again.url}/diagnostics/{cpu['job_id']}/bundle")[0] == 200
    assert not stray.exists()  # a directory no job record describes cannot be served: removed

    wait_for(lambda: len(again.cluster(status="online")) == 1, what="the agent back")
    status, second = submit(again, {"action": "cpu", "params": {"seconds": 20}, "target": {"node_ids": ["hot-keep"]}})
    assert status == 202, second
    wait_for(lambda: task(http_json(f"{again.url}/diagnostics/{second['job_id']}")[1], "hot-keep")["state"]
             == "running", 20, interval=0.2, what="the second CPU profile running")
    assert again.terminate() == 0  # a graceful stop (systemctl restart) cuts it short too, and says so
    third = start_proxy(tmp_path, "--diagnostics-slack", "5s", grpc_port=proxy.ports["grpc"])
    daemons.append(third)
    stopped = http_json(f"{third.url}/diagnostics/{second['job_id']}")[1]
    assert task(stopped, "hot-keep")["state"] == "interrupted", stopped
