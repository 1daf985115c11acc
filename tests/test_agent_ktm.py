"""Kernel telemetry inside a real agent: OS signals always flow; eBPF status is reported, never fatal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bpfready import require_bpf, skip_or_fail
from procs import BIN, free_port, http_get, start_agent, start_proxy, wait_for

from fodc import expfmt
from fodc.sim.launcher import start_sim_node


def _families(agent) -> dict[str, expfmt.Family]:
    return {f.name: f for f in expfmt.parse(http_get(f"{agent.url}/metrics")[2].decode()).families}


def test_agent_without_ebpf_still_serves_os_telemetry_and_says_why(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "no-bpf", "--ktm-enabled", "off",
                        "--ktm-interval", "1s")
    daemons.append(agent)
    families = wait_for(lambda: (f := _families(agent)) and "ktm_status" in f and f, what="ktm metrics")
    assert families["ktm_status"].samples[0].value == 0
    assert any(name.startswith("fodc_os_") for name in families)
    node = wait_for(lambda: (n := proxy.cluster(node_id="no-bpf")) and n[0], what="registered")
    assert node["capabilities"]["ktm_mode"] == "disabled" and node["capabilities"]["ktm_reason"]
    shown = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "cluster"], capture_output=True, text=True,
                           timeout=30)
    assert f"ktm disabled on no-bpf: {node['capabilities']['ktm_reason']}" in shown.stdout, shown.stdout


def test_agent_with_ebpf_reports_its_mode_and_counts_the_database(tmp_path, daemons):
    require_bpf()
    proxy = start_proxy(tmp_path, "--agent-heartbeat-timeout", "3s")
    daemons.append(proxy)
    node = start_sim_node("datanode-hot", free_port(), series=200, comm="banyand")
    try:
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "bpf", "--ktm-enabled", "auto",
                            "--ktm-interval", "1s", "--node-metrics-url", node.metrics_url,
                            "--scrape-interval", "1s", "--scrape-timeout", "1s")
        daemons.append(agent)
        capabilities = wait_for(
            lambda: (n := proxy.cluster(node_id="bpf")) and "not started" not in n[0]["capabilities"].get(
                "ktm_reason", "not started") and n[0]["capabilities"], timeout=90,
            what="eBPF programs loaded (or their failure reported) in /cluster capabilities")
        families = wait_for(lambda: (f := _families(agent)) and "ktm_status" in f and
                            f["ktm_status"].samples[0].value == {"disabled": 0, "degraded": 1, "full": 2}[
                                capabilities["ktm_mode"]] and f, timeout=10, what="ktm_status on the agent page")
        mode = families["ktm_status"].samples[0].value
        assert mode in (0, 1, 2)
        assert capabilities["ktm_mode"] in ("disabled", "degraded", "full")
        if mode == 1:  # degraded: `fodc cluster` says why, not only --json
            shown = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "cluster"], capture_output=True,
                                   text=True, timeout=30)
            assert f"ktm degraded on bpf: {capabilities['ktm_reason']}" in shown.stdout, shown.stdout
        if mode == 0:
            skip_or_fail(f"eBPF did not load in the agent: {capabilities.get('ktm_reason')}")
        attached = [s for s in families["ktm_program_attached"].samples if s.value == 1]
        assert attached
        # compiled in a child that has exited: BCC's LLVM never enters the long-running agent
        assert "libbcc" not in Path(f"/proc/{agent.pid}/maps").read_text()
    finally:
        node.stop()
