"""The README's first quick-start command: the demo cluster comes up, what it prints answers, it stops clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request

from procs import REPO, http_json, wait_for

from fodc.sim.faults import MODES


def test_the_demo_cluster_prints_working_addresses_and_stops_by_itself(tmp_path):
    out = tmp_path / "demo.out"
    with open(out, "w") as sink:
        demo = subprocess.Popen([sys.executable, "-m", "fodc.demo", "--duration", "35", "--scrape-interval", "1s",
                                 "--series", "200"], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        banner = wait_for(lambda: "Press Ctrl-C to stop." in (text := out.read_text()) and text, 90, interval=0.5,
                          what="the demo's banner")
        base = re.search(r"Proxy API\s+(http://127\.0\.0\.1:\d+)/cluster", banner).group(1)
        status, cluster = http_json(f"{base}/cluster")
        assert status == 200
        assert sorted(n["role"] for n in cluster["nodes"] if n["status"] == "online") == [
            "datanode-cold", "datanode-hot", "datanode-warm", "liaison"]
        for url in re.findall(r"Agent \S+\s+(http://\S+/health)", banner):
            assert http_json(url)[0] == 200
        token = re.search(r"Operator token (\S+)", banner).group(1)
        assert len(token) == 32
        assert http_json(f"{base}/incidents")[0] == 200
        cli = re.search(r"CLI\s+(\S+)\n", banner).group(1)
        listed = subprocess.run([cli, "--proxy", base, "cluster"], capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0 and listed.stdout.rstrip().endswith("4 online, 0 unconnected")

        # every simulated node has a real Go pprof beside it: a CPU profile ends done, with samples
        bundle = tmp_path / "cpu.tar.gz"
        profiled = subprocess.run([cli, "--proxy", base, "profile", "cpu", "--role", "datanode-hot", "--seconds", "5",
                                   "-o", str(bundle)], capture_output=True, text=True, timeout=90,
                                  env={**os.environ, "FODC_TOKEN": token})
        assert profiled.returncode == 0 and " done " in profiled.stdout, profiled.stdout + profiled.stderr
        with tarfile.open(bundle) as tar:
            member = next(m for m in tar if m.name.endswith("/demo-datanode-hot.pb.gz"))
            (tmp_path / "hot.pb.gz").write_bytes(tar.extractfile(member).read())
        top = subprocess.run([cli, "--json", "pprof", "top", str(tmp_path / "hot.pb.gz")], capture_output=True,
                             text=True, timeout=30)
        assert top.returncode == 0, top.stderr
        summary = json.loads(top.stdout)
        assert summary["sample_type"] == "cpu" and summary["total"] > 0 and summary["top"][0]["flat"] > 0
        assert demo.wait(120) == 0
        assert out.read_text().rstrip().endswith("demo stopped.")
    finally:
        if demo.poll() is None:
            demo.terminate()
            demo.wait(30)


def test_every_fault_the_banner_prints_does_what_it_says(tmp_path):
    out = tmp_path / "demo.out"
    with open(out, "w") as sink:
        demo = subprocess.Popen([sys.executable, "-m", "fodc.demo", "--duration", "240", "--scrape-interval", "1s",
                                 "--series", "100"], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        banner = wait_for(lambda: "Press Ctrl-C to stop." in (text := out.read_text()) and text, 90, interval=0.5,
                          what="the demo's banner")
        assert max(len(line) for line in banner.splitlines()) <= 100, banner
        base = re.search(r"Proxy API\s+(http://127\.0\.0\.1:\d+)/cluster", banner).group(1)
        examples = {re.search(r"mode=([a-z-]+)", line).group(1): line.split("#")[0].strip()
                    for line in banner.splitlines() if line.strip().startswith("curl -d mode=")}
        assert sorted(examples) == sorted(MODES)
        faults = dict(re.findall(r"Simulated (\S+)\s+\S+\s+faults: (\S+)", banner))

        def run(mode, role):  # as printed, with F set to that role's node
            done = subprocess.run(examples[mode], shell=True, capture_output=True, text=True, timeout=30,
                                  env={**os.environ, "F": faults[role]})
            assert done.returncode == 0 and '"fault"' in done.stdout, (done.stdout, done.stderr)
            return done.stdout

        expected = {"down": ("datanode-hot", "node-down"), "slow": ("datanode-warm", "node-unresponsive"),
                    "reset": ("datanode-cold", "node-restart"), "crash": ("liaison", "node-crash")}
        # A reset is seen by comparing two looks (every 5 s): let the cold agent take its first look first.
        wait_for(lambda: len(_points(base, "demo-datanode-cold")) >= 8, 60, interval=1, what="8 s of cold points")
        # slow-reads makes a ktm-read-latency incident where eBPF runs (root, bcc); elsewhere KTM says why not.
        cold = http_json(f"{base}/cluster?node_id=demo-datanode-cold")[1]["nodes"][0]["capabilities"]
        if cold.get("ktm_mode") != "disabled":
            wait_for(lambda: len(_points(base, "demo-datanode-cold", "ktm_sys_read_latency_seconds_count")) >= 4, 60,
                     interval=1, what="a KTM read-latency baseline (four looks)")
            said = run("slow-reads", "datanode-cold")  # alone: the other faults slow every read a little
            wait_for(lambda: http_json(f"{base}/incidents?node_id=demo-datanode-cold&trigger=ktm-read-latency")[1][
                "incidents"], 60, interval=1, what=f"ktm-read-latency after mode=slow-reads ({said})")
        for mode, (role, _) in expected.items():
            run(mode, role)
        for mode, (role, trigger) in expected.items():
            wait_for(lambda r=role, t=trigger: http_json(f"{base}/incidents?node_id=demo-{r}&trigger={t}")[1][
                "incidents"], 60, interval=1, what=f"{trigger} after mode={mode}")
        agent = re.search(r"Agent datanode-cold\s+(\S+)/metrics", banner).group(1)
        run("garbage", "datanode-cold")
        wait_for(lambda: _sample(agent, "fodc_agent_scrape_parse_errors_total") > 0, 30, what="bad lines counted")
        run("huge", "datanode-cold")
        wait_for(lambda: _sample(agent, "fodc_agent_scrape_page_bytes") >= 16 * 2**20, 30, what="a 16 MiB page")
        run("ok", "datanode-cold")
        assert json.load(urllib.request.urlopen(faults["datanode-cold"], timeout=10))["fault"]["mode"] == "ok"
    finally:
        if demo.poll() is None:
            demo.terminate()
            demo.wait(30)


def _sample(agent, name):
    with urllib.request.urlopen(f"{agent}/metrics", timeout=10) as page:
        return sum(float(line.rsplit(" ", 1)[1]) for line in page.read().decode().splitlines()
                   if line.startswith(name))


def _points(base, node_id, name="banyandb_system_cpu_state"):
    status, body = http_json(f"{base}/metrics-windows?node_id={node_id}&name={name}&start=5m")
    return [p for series in body.get("series", [])[:1] for p in series["points"]] if status == 200 else []
