"""The README's first quick-start command: the demo cluster comes up, what it prints answers, it stops clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile

from procs import REPO, http_json, wait_for


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
        cli = re.search(r"CLI\s+(\S+) --proxy", banner).group(1)
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
