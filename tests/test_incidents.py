"""Incidents end to end: a simulated node goes down, restarts or reads slowly; its agent freezes the evidence;
the proxy lists the incidents cluster-wide, serves the bundles and counts them in its metrics."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import tarfile
import time

import pytest
from bpfready import require_bpf
from nodepage import node_page
from procs import BIN, free_port, http_get, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node

FAST = ["--scrape-interval", "0.5s", "--scrape-timeout", "0.5s", "--incident-check-interval", "0.3s",
        "--incident-node-down-for", "1s", "--incident-before", "30s", "--incident-after", "1s",
        "--config-check-interval", "0.3s", "--node-pprof-url", ""]

PROXY_ARGS = ["--command-timeout", "5s", "--incident-copy-interval", "0.5s"]


@pytest.fixture
def cluster(tmp_path, daemons):
    proxy = start_proxy(tmp_path, *PROXY_ARGS)
    daemons.append(proxy)
    nodes = []
    yield proxy, nodes, tmp_path
    for node in nodes:
        if node.running():
            node.popen.kill()
            node.popen.wait()
        node.stderr_file.unlink(missing_ok=True)


def watched_node(cluster, daemons, node_id, *agent_args, **sim_options):
    proxy, nodes, tmp_path = cluster
    pid_file = tmp_path / f"{node_id}.pid"
    node = start_sim_node("datanode-hot", free_port(), series=200, extra_args=["--pid-file", str(pid_file)],
                          **sim_options)
    nodes.append(node)
    wait_for(pid_file.exists, what="pid file")
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", node_id, "--node-metrics-url",
                               node.metrics_url, "--node-pid-file", str(pid_file), "--node-log-file",
                               str(node.stderr_file), "--incident-dir", str(tmp_path / f"incidents-{node_id}"),
                               *FAST, *agent_args))
    return node


def incidents(proxy, query=""):
    status, body = http_json(f"{proxy.url}/incidents{query}")
    assert status == 200, body
    return body["incidents"]


def complete(proxy, trigger, node_id):
    def found():
        done = [i for i in incidents(proxy, f"?trigger={trigger}&node_id={node_id}") if i["state"] == "complete"]
        return done[0] if done else None
    return wait_for(found, 30, interval=0.3, what=f"a complete {trigger} incident on {node_id}")


def bundle_files(proxy, incident):
    status, headers, raw = http_get(f"{proxy.url}{incident['bundle_url']}")
    assert status == 200 and headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {member.name.split("/", 1)[1]: tar.extractfile(member).read() for member in tar if member.isfile()}


def test_node_down_incident_holds_the_window_before_the_stop_config_and_log_tail(cluster, daemons):
    proxy = cluster[0]
    node = watched_node(cluster, daemons, "hot-down")
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    wait_for(lambda: node.fault_state() and _has_points(proxy, "hot-down"), 20, what="points in the window")
    node.fault("reset")  # leaves a line in the node's log
    node.popen.kill()  # the node dies; its log file stays
    node.popen.wait()

    incident = complete(proxy, "node-down", "hot-down")
    assert incident["role"] == "datanode-hot" and incident["detail"]["failing_for_s"] >= 1
    # The onset is the first failed scrape, before the trigger by at least --incident-node-down-for.
    assert incident["onset_ms"] == incident["detail"]["first_failed_ms"]
    assert incident["at_ms"] - incident["onset_ms"] >= 1000
    files = bundle_files(proxy, incident)
    manifest = json.loads(files["manifest.json"])
    assert manifest["trigger"] == "node-down" and manifest["node_id"] == "hot-down"
    assert set(files) >= {"manifest.json", "window.json", "config.json", "ktm.json", "node.log"}
    for name, info in manifest["files"].items():
        assert info["size"] == len(files[name])
    window = json.loads(files["window.json"])
    node_points = [p for s in window["series"] if s["source"] != "kernel-telemetry" for p in s["points"]]
    assert node_points and min(t for t, _ in node_points) < incident["at_ms"]
    assert all(window["start_ms"] <= t <= window["end_ms"] for t, _ in node_points)
    assert b"counters reset" in files["node.log"]
    assert json.loads(files["config.json"])["node_id"] == "hot-down"
    assert "profile.heap" in manifest["errors"]  # profiling is off here, and the bundle says so
    raw = cluster[2] / "down.tar.gz"
    raw.write_bytes(http_get(f"{proxy.url}{incident['bundle_url']}")[2])
    triage = subprocess.run([str(BIN / "fodc"), "triage", str(raw)], capture_output=True, text=True, timeout=60)
    assert triage.returncode == 0 and "the node stopped answering its /metrics" in triage.stdout, triage.stderr
    assert "onset: " in triage.stdout and "(first failed scrape)" in triage.stdout
    assert "compared before/after the onset; 0 stopped" not in triage.stdout  # they stopped at the onset

    status, one = http_json(f"{proxy.url}{incident['url']}")
    assert status == 200 and one["id"] == incident["id"]
    wait_for(lambda: 'fodc_incidents_total{node_id="hot-down",node_role="datanode-hot",trigger="node-down"} 1.0'
             in http_get(f"{proxy.url}/metrics")[2].decode(), 30, interval=0.5, what="incident counter")


def _has_points(proxy, node_id):
    status, body = http_json(f"{proxy.url}/metrics-windows?node_id={node_id}&name=banyandb_system_cpu_state")
    return status == 200 and any(len(s["points"]) >= 3 for s in body["series"])


def _newest_point(proxy, node_id):
    status, body = http_json(f"{proxy.url}/metrics-windows?node_id={node_id}&name=banyandb_system_cpu_state")
    return max((t for s in body.get("series", []) for t, _ in s["points"]), default=0) if status == 200 else 0


def test_counter_reset_is_a_restart_incident_and_a_rule_fires_its_own(cluster, daemons):
    proxy = cluster[0]
    node = watched_node(cluster, daemons, "hot-r", "--incident-rule",
                        'busy: banyandb_system_cpu_state{kind="user"} >= 0 for 1s')
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    rule = complete(proxy, "rule:busy", "hot-r")
    assert rule["detail"]["series"] == "banyandb_system_cpu_state" and rule["detail"]["labels"]["kind"] == "user"
    assert rule["at_ms"] - rule["onset_ms"] == int(rule["detail"]["held_s"] * 1000)
    raw = cluster[2] / "rule.tar.gz"
    raw.write_bytes(http_get(f"{proxy.url}{rule['bundle_url']}")[2])
    triage = subprocess.run([str(BIN / "fodc"), "triage", str(raw)], capture_output=True, text=True, timeout=60)
    table = triage.stdout.split("\nSERIES", 1)[1].splitlines()
    assert table[1].startswith('* banyandb_system_cpu_state{') and 'kind="user"' in table[1], triage.stdout
    wait_for(lambda: _has_points(proxy, "hot-r"), 20, what="points in the window")
    node.signal(signal.SIGHUP)  # the simulated node restarts its counters, as a real restart would
    restart = complete(proxy, "node-restart", "hot-r")
    assert restart["detail"]["signal"] == "counter reset" and restart["detail"]["counters_reset"] >= 1
    assert {i["trigger"] for i in incidents(proxy, "?node_id=hot-r")} >= {"rule:busy", "node-restart"}
    assert incidents(proxy, "?trigger=node-down") == []


def test_a_node_too_slow_to_answer_is_unresponsive_not_down(cluster, daemons):
    proxy = cluster[0]
    node = watched_node(cluster, daemons, "hot-slow")
    wait_for(lambda: _has_points(proxy, "hot-slow"), 20, what="points in the window")
    node.fault("slow", delay=3)  # accepts the scrape, answers after the agent's 0.5 s timeout
    incident = complete(proxy, "node-unresponsive", "hot-slow")
    assert "did not answer within 0.5s" in incident["detail"]["last_error"]
    assert incident["at_ms"] - incident["onset_ms"] >= 1000
    assert incidents(proxy, "?trigger=node-down&node_id=hot-slow") == []


def test_a_new_node_process_is_a_restart_incident(cluster, daemons):
    proxy, nodes, tmp_path = cluster
    node = watched_node(cluster, daemons, "hot-p")
    wait_for(lambda: len(proxy.cluster(status="online")) == 1, what="agent online")
    pid_file = tmp_path / "hot-p.pid"
    node.stop()
    replacement = start_sim_node("datanode-hot", free_port(), series=50, extra_args=["--pid-file", str(pid_file)])
    nodes.append(replacement)
    incident = complete(proxy, "node-restart", "hot-p")
    assert incident["detail"] == {**incident["detail"], "signal": "new process", "pid": replacement.pid}


def test_bad_incident_queries(cluster):
    proxy = cluster[0]
    assert http_json(f"{proxy.url}/incidents?since=yesterday")[0] == 400
    assert http_json(f"{proxy.url}/incidents?colour=red")[0] == 400
    assert http_json(f"{proxy.url}/incidents/ghost/x")[0] == 404


def test_cli_lists_incidents_and_downloads_a_bundle(cluster, daemons):
    proxy, nodes, tmp_path = cluster
    watched_node(cluster, daemons, "hot-cli", "--incident-rule", 'up: banyandb_system_cpu_state{kind="user"} >= 0')
    incident = complete(proxy, "rule:up", "hot-cli")
    listed = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "incidents", "--trigger", "rule:up"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split()
    # A rule without `for` breaches at the trigger: the ONSET column has nothing earlier to say.
    assert row[1:7] == ["-", "hot-cli", "datanode-hot", "rule:up", "complete", incident["id"]]
    out = tmp_path / "bundle.tar.gz"
    fetched = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "incidents", "--node", "hot-cli",
                              "--download", incident["id"], "-o", str(out)], capture_output=True, text=True, timeout=30)
    assert fetched.returncode == 0, fetched.stderr
    with tarfile.open(out) as tar:
        assert any(name.endswith("/window.json") for name in tar.getnames())
    as_json = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "--json", "incidents", "--node", "hot-cli"],
                             capture_output=True, text=True, timeout=30)
    assert as_json.returncode == 0 and incident["id"] in [i["id"] for i in json.loads(as_json.stdout)["incidents"]]
    for since, found in (("1h", True), ("2099-01-01T00:00:00Z", False)):
        recent = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "--json", "incidents", "--since", since],
                                capture_output=True, text=True, timeout=30)
        assert recent.returncode == 0 and (incident["id"] in recent.stdout) is found, (since, recent.stderr)
    bad_since = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "incidents", "--since", "2x"],
                               capture_output=True, text=True, timeout=30)
    assert bad_since.returncode == 2 and "--since" in bad_since.stderr
    no_node = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "incidents", "--download", "x"],
                             capture_output=True, text=True, timeout=30)
    assert no_node.returncode == 2 and "--node" in no_node.stderr


def test_an_agent_killed_while_collecting_finishes_the_incident_after_its_restart(cluster, daemons):
    """First occurrence survives the agent: the incident it was killed in the middle of is finished from the
    window recovered from disk, complete incidents are listed again, and the trigger stays cooling down."""
    proxy, _, tmp_path = cluster
    rule = ["--incident-rule", 'up: banyandb_system_cpu_state{kind="user"} >= 0 for 2s', "--incident-after", "30s",
            "--window-interim-scrapes", "1"]
    node = watched_node(cluster, daemons, "hot-k", *rule)
    agent = daemons[-1]

    def collecting():
        return next((i for i in incidents(proxy, "?node_id=hot-k") if i["state"] == "collecting"), None)
    first = wait_for(collecting, 30, interval=0.3, what="an incident collecting")
    # Still collecting: a 409 that says when to come back (--incident-after 30s, plus a margin).
    status, headers, body = http_get(f"{proxy.url}/incidents/hot-k/{first['id']}/bundle")
    answer = json.loads(body)
    assert status == 409 and answer["complete_by"] and "complete at about" in answer["message"]
    assert 20 <= int(headers["Retry-After"]) <= 36 and first["complete_by_ms"] - first["at_ms"] == 35_000
    wait_for(lambda: _newest_point(proxy, "hot-k") > first["at_ms"] + 1000, 20, what="scrapes after the trigger")
    agent.kill9()  # long before the 30 s after the trigger: no bundle yet, only its marker
    incident_dir = tmp_path / "incidents-hot-k"
    assert not list(incident_dir.glob("*.tar.gz")) and list(incident_dir.glob(".collecting-*.json"))

    def restart(*extra):
        again = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-k", "--node-metrics-url", node.metrics_url,
                            "--node-pid-file", str(tmp_path / "hot-k.pid"), "--node-log-file", str(node.stderr_file),
                            *FAST, *rule, *extra, node_port=agent.ports["node"], http_port=agent.ports["http"])
        daemons.append(again)
        return again
    again = restart()
    resumed = complete(proxy, "rule:up", "hot-k")
    assert resumed["id"] == first["id"] and "interrupted" in resumed["errors"]
    assert not list(incident_dir.glob(".collecting-*.json"))
    files = bundle_files(proxy, resumed)
    window = json.loads(files["window.json"])
    before = [t for s in window["series"] if s["name"] == "banyandb_system_cpu_state" for t, _ in s["points"]
              if t < resumed["at_ms"]]
    assert before, "the points scraped before the trigger come back from the recovered window"
    assert json.loads(files["manifest.json"])["errors"]["interrupted"] == resumed["errors"]["interrupted"]

    assert again.terminate() == 0
    restart()
    wait_for(lambda: len(proxy.cluster(status="online", node_id="hot-k")) == 1, what="agent back")
    wait_for(lambda: any(n["runtime"].get("incidents_suppressed") for n in proxy.cluster(node_id="hot-k")), 30,
             interval=0.5, what="the rule firing again within its cooldown, and held back")
    listed = [i for i in incidents(proxy, "?node_id=hot-k") if i["trigger"] == "rule:up"]
    assert [(i["id"], i["state"]) for i in listed] == [(first["id"], "complete")]


def test_the_proxy_keeps_a_copy_when_the_agent_and_its_disk_are_gone(cluster, daemons):
    proxy, _, tmp_path = cluster
    watched_node(cluster, daemons, "hot-gone", "--incident-rule", 'up: banyandb_system_cpu_state{kind="user"} >= 0')
    agent = daemons[-1]
    incident = complete(proxy, "rule:up", "hot-gone")
    original = http_get(f"{proxy.url}{incident['bundle_url']}")[2]
    wait_for(lambda: incidents(proxy, "?node_id=hot-gone")[0].get("archived"), 30, interval=0.3,
             what="the proxy's copy of the bundle")
    page = http_get(f"{proxy.url}/metrics")[2].decode()
    assert "fodc_proxy_incident_archive_incidents 1.0" in page and "fodc_proxy_incident_copies_total 1.0" in page
    agent.kill9()
    shutil.rmtree(tmp_path / "incidents-hot-gone")  # the node's host, and the agent's disk with it, are gone

    def listed_from_the_copy(p):
        return [(i["id"], i["source"], i["state"]) for i in incidents(p, "?node_id=hot-gone&trigger=rule:up")]
    assert listed_from_the_copy(proxy) == [(incident["id"], "proxy", "complete")]
    assert http_get(f"{proxy.url}{incident['bundle_url']}")[2] == original
    assert incidents(proxy, "?role=liaison") == []  # filters hold for copies too
    listed = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "incidents", "--node", "hot-gone"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[-2:] == [incident["id"], "copy"]

    proxy.terminate()
    again = start_proxy(tmp_path, *PROXY_ARGS)  # same archive directory
    daemons.append(again)
    assert listed_from_the_copy(again) == [(incident["id"], "proxy", "complete")]
    status, headers, raw = http_get(f"{again.url}{incident['bundle_url']}")
    assert status == 200 and headers["Content-Type"] == "application/gzip" and raw == original


READ_HISTOGRAM = "ktm_sys_read_latency_seconds"
READS_PER_S = 200  # fast reads a second while the baseline forms: well over LatencyRise's 50 per look
SLOW_READ_S = 0.01  # a pipe read finding its data takes microseconds; this is 1000x that, and over the floor


@pytest.fixture
def bpf():
    require_bpf("the ktm-read-latency trigger needs real eBPF: ")


def read_points(proxy, node_id, sample):
    """[timestamp_ms, value] points of one sample of the KTM read() histogram in the node's window."""
    status, body = http_json(f"{proxy.url}/metrics-windows?node_id={node_id}&name={READ_HISTOGRAM}")
    assert status == 200, body
    return next((s["points"] for s in body["series"] if s["name"] == f"{READ_HISTOGRAM}_{sample}"), [])


def mean_latencies(series_by_name):
    """Mean read() latency between consecutive KTM points, from the histogram's _sum and _count."""
    sums, counts = series_by_name[f"{READ_HISTOGRAM}_sum"], series_by_name[f"{READ_HISTOGRAM}_count"]
    return [(t1, (s1 - s0) / (c1 - c0)) for (_, s0), (t1, s1), (_, c0), (_, c1)
            in zip(sums, sums[1:], counts, counts[1:], strict=False) if c1 > c0]


def test_slow_reads_of_the_database_are_a_ktm_read_latency_incident(cluster, daemons, bpf):
    proxy = cluster[0]
    node = watched_node(cluster, daemons, "hot-ktm", "--ktm-enabled", "on", "--ktm-interval", "1s",
                        "--incident-triggers", "ktm-read-latency", "--incident-before", "60s",
                        comm="banyand", reads_per_s=READS_PER_S)
    capabilities = wait_for(
        lambda: (n := proxy.cluster(node_id="hot-ktm")) and "not started" not in n[0]["capabilities"].get(
            "ktm_reason", "not started") and n[0]["capabilities"], timeout=120, interval=0.5,
        what="the agent's eBPF programs compiled and loaded (or their failure reported)")
    assert capabilities["ktm_mode"] != "disabled", capabilities["ktm_reason"]
    assert "read" in capabilities["ktm_programs"].split(","), capabilities

    def baseline_formed():  # four KTM looks in a row, each with enough fast reads for a p99
        counts = [v for _, v in read_points(proxy, "hot-ktm", "count")][-5:]
        return len(counts) == 5 and all(b - a >= 50 for a, b in zip(counts, counts[1:], strict=False))
    wait_for(baseline_formed, 60, interval=0.5, what="steady fast reads in the KTM histogram")
    assert incidents(proxy, "?trigger=ktm-read-latency") == []

    node.fault("slow-reads", delay=SLOW_READ_S)
    incident = complete(proxy, "ktm-read-latency", "hot-ktm")
    detail = incident["detail"]
    assert detail["p99_s"] >= SLOW_READ_S / 2  # log2 buckets: the 10 ms reads land in (8.2, 16.4] ms
    assert detail["p99_s"] >= 4 * detail["baseline_p99_s"]  # --incident-latency-factor's default
    assert detail["observations"] >= 50

    files = bundle_files(proxy, incident)
    assert {"manifest.json", "window.json", "ktm.json"} <= set(files)
    ktm = json.loads(files["ktm.json"])
    assert ktm["ktm_mode"] in ("full", "degraded") and "read" in ktm["ktm_programs"].split(",")
    window = json.loads(files["window.json"])
    kernel = {s["name"]: s["points"] for s in window["series"] if s["source"] == "kernel-telemetry"
              and s["family"] == READ_HISTOGRAM}
    assert f"{READ_HISTOGRAM}_bucket" in kernel
    means = mean_latencies(kernel)
    before = [mean for t, mean in means if t < incident["at_ms"] - 2000]
    assert before and min(before) < SLOW_READ_S / 10  # the fast baseline is in the bundle
    assert means[-1][1] >= SLOW_READ_S / 2  # and so are the slow reads after the trigger


def test_a_bundle_the_proxy_cannot_take_is_tried_three_times_then_left_on_its_agent(tmp_path, daemons):
    proxy = start_proxy(tmp_path, *PROXY_ARGS, "--incident-archive-bytes", "4KiB")  # smaller than any bundle
    daemons.append(proxy)
    cluster = (proxy, [], tmp_path)
    try:
        watched_node(cluster, daemons, "hot-big", "--incident-rule", 'up: banyandb_system_cpu_state{kind="user"} >= 0')
        incident = complete(proxy, "rule:up", "hot-big")

        def failures():
            page = http_get(f"{proxy.url}/metrics")[2].decode()
            line = next((ln for ln in page.splitlines() if ln.startswith("fodc_proxy_incident_copy_failures_total ")),
                        "x 0")
            return float(line.split()[1])
        wait_for(lambda: failures() == 3, 30, interval=0.3, what="three failed copies")
        time.sleep(3)  # six more passes of the copier
        assert failures() == 3
        listed = incidents(proxy, "?node_id=hot-big")[0]
        assert listed["id"] == incident["id"] and listed["source"] == "agent" and not listed.get("archived")
    finally:
        for node in cluster[1]:
            node.stop()


_POISONED_PAGE = (b'# TYPE busy gauge\nbusy 1\n# TYPE ktm_sys_read_latency_seconds histogram\n'
                  b'ktm_sys_read_latency_seconds_bucket{le="abc"} 3\n')


def test_a_node_series_named_like_the_kernel_telemetrys_does_not_stop_the_rules(cluster, daemons):
    """A node exposing `ktm_sys_read_latency_seconds_bucket{le="abc"}` (the name of the agent's own eBPF read
    latency) made every round of the incident watch raise (float("abc")) before the rules were evaluated: no
    rule fired, ever. The read-latency trigger reads only the kernel telemetry's own series."""
    proxy, _, tmp_path = cluster
    with node_page(_POISONED_PAGE) as url:
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "poisoned", "--node-metrics-url", url,
                                   "--incident-dir", str(tmp_path / "incidents-poisoned"), "--incident-triggers",
                                   "ktm-read-latency,node-restart", "--incident-rule", "busy: busy >= 1 for 1s",
                                   *FAST))
        wait_for(lambda: proxy.cluster(node_id="poisoned", status="online"), 30, what="the agent online")
        rule = complete(proxy, "rule:busy", "poisoned")
    assert rule["detail"]["series"] == "busy"
