"""One identity per host, with the packaged defaults: two agents on two "hosts" (network namespaces with their
own address, machine id and host name, joined to the proxy's namespace by veth pairs) both stay registered
and distinct; a second agent claiming a live agent's key is refused, with both named, while the first stays;
a restart of the first takes its entry over at once (root only; all traffic stays inside the namespaces). And the
identity files themselves: the machine id, and the instance id kept and locked across restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from procs import REPO, Daemon, _spawn, wait_for

from fodc.agent.identity import Instance, host_id

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

CONFFILE = REPO / "packaging" / "etc" / "agent.conf"
BIN = os.path.dirname(sys.executable)
GRPC, HTTP = 17900, 17901  # the packaged defaults, free inside the proxy's own namespace


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def hosts():
    """Namespaces: `proxy`, and hosts `a` and `b` each on a veth pair to it (10.77.1.0/24, 10.77.2.0/24)."""
    prefix = f"fodc{os.getpid() % 100000}"
    names = {role: f"{prefix}-{role}" for role in ("proxy", "a", "b")}
    try:
        for ns in names.values():
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        for index, host in ((1, "a"), (2, "b")):
            ip("link", "add", "eth0", "netns", names[host], "type", "veth", "peer", "name", f"to-{host}", "netns",
               names["proxy"])
            ip("-n", names["proxy"], "addr", "add", f"10.77.{index}.1/24", "dev", f"to-{host}")
            ip("-n", names["proxy"], "link", "set", f"to-{host}", "up")
            ip("-n", names[host], "addr", "add", f"10.77.{index}.2/24", "dev", "eth0")
            ip("-n", names[host], "link", "set", "eth0", "up")
            ip("-n", names[host], "route", "add", "default", "via", f"10.77.{index}.1")
        yield names
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def in_host(ns: str, machine_id_file, hostname: str, argv: list[str]) -> list[str]:
    """`argv` run as on its own host: namespace `ns`, its own /etc/machine-id and host name."""
    script = f'hostname {hostname} && mount --bind "$0" /etc/machine-id && exec "$@"'
    return ["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation", "private",
            "sh", "-c", script, str(machine_id_file), *argv]


def ns_cluster(ns: str) -> list[dict]:
    code = (f"import json, urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{HTTP}/cluster', "
            f"timeout=5).read().decode())")
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["nodes"]


def start_host_agent(tmp_path, hosts, host: str, index: int, daemons, name: str | None = None,
                     *extra: str) -> Daemon:
    """An agent with the packaged conffile; only what the docs say to set, and its own state directory."""
    name = name or host
    state = tmp_path / f"state-{name}"
    state.mkdir(exist_ok=True)
    machine_id = tmp_path / f"machine-id-{host}"
    if not machine_id.exists():
        machine_id.write_text(f"{index:032x}\n")
    argv = [f"{BIN}/fodc-agent", "--config", str(CONFFILE), "--node-role", "datanode-hot",
            "--proxy-addr", f"10.77.{index}.1:{GRPC}", "--log-format", "text", "--ktm-enabled", "off",
            "--reconnect-max-backoff", "1s", "--window-dir", str(state / "window"),
            "--incident-dir", str(state / "incidents"), "--diagnostics-dir", str(state / "diagnostics"),
            "--config-history-file", str(state / "config-history.json"),
            "--instance-file", str(state / "instance-id"), "--profile-ring-dir", str(state / "profiles"), *extra]
    log = tmp_path / f"agent-{name}.log"
    agent = Daemon(_spawn(in_host(hosts[host], machine_id, f"node-{host}", argv), log), log)
    daemons.append(agent)
    return agent


@needs_root
def test_two_hosts_with_packaged_defaults_stay_registered_and_distinct(tmp_path, daemons, hosts):
    proxy_log = tmp_path / "proxy.log"
    proxy = Daemon(_spawn(["ip", "netns", "exec", hosts["proxy"], f"{BIN}/fodc-proxy", "--config", "/dev/null",
                           "--auth", "off", "--log-format", "text", "--audit-log", str(tmp_path / "audit.log"),
                           "--diagnostics-dir", str(tmp_path / "proxy-diagnostics"),
                           "--incident-archive-dir", str(tmp_path / "proxy-incidents")], proxy_log), proxy_log)
    daemons.append(proxy)
    wait_for(lambda: ns_cluster(hosts["proxy"]) == [], 30, what=f"proxy up ({proxy.log()})")
    a = start_host_agent(tmp_path, hosts, "a", 1, daemons)
    start_host_agent(tmp_path, hosts, "b", 2, daemons)

    def both_online():
        nodes = ns_cluster(hosts["proxy"])
        return nodes if sorted(n["node_id"] for n in nodes if n["status"] == "online") == ["node-a", "node-b"] \
            else None

    nodes = wait_for(both_online, 60, interval=0.5, what="both agents online")
    by_node = {n["node_id"]: n for n in nodes}
    # The node address comes from each host's own default route, not 127.0.0.1.
    assert by_node["node-a"]["primary_address"] == {"ip": "10.77.1.2", "port": 17912}
    assert by_node["node-b"]["primary_address"] == {"ip": "10.77.2.2", "port": 17912}
    assert by_node["node-a"]["host_id"] == f"{1:032x}" and by_node["node-b"]["host_id"] == f"{2:032x}"
    assert by_node["node-a"]["agent_id"] != by_node["node-b"]["agent_id"]

    # A second agent on host a with the same identity (another installation) is refused; a keeps its entry.
    intruder = start_host_agent(tmp_path, hosts, "a", 1, daemons, "a-second", "--http-listen-addr", ":17903")
    wait_for(lambda: "is held by a live agent" in intruder.log(), 30, what=f"refusal ({intruder.log()})")
    assert "node 'node-a' on host 'node-a'" in intruder.log()
    wait_for(lambda: "registration refused" in proxy.log() and "is held by a live agent" in proxy.log(), 10,
             what="the proxy's account of the refusal")
    wait_for(lambda: "claims this agent's key" in a.log(), 30, what=f"the holder told too ({a.log()})")
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:  # no flapping: the same two entries, never replaced
        now = {n["node_id"]: n for n in ns_cluster(hosts["proxy"])}
        assert set(now) == {"node-a", "node-b"}
        for node_id, node in now.items():
            assert node["status"] == "online" and node["registered_at"] == by_node[node_id]["registered_at"]
        time.sleep(0.5)

    # A restart of the first agent (same installation) takes its live entry over at once.
    intruder.stop()
    a.kill9()
    start_host_agent(tmp_path, hosts, "a", 1, daemons)
    wait_for(lambda: any(n["node_id"] == "node-a" and n["status"] == "online"
                         and n["registered_at"] != by_node["node-a"]["registered_at"]
                         for n in ns_cluster(hosts["proxy"])), 30, interval=0.5, what="the restarted agent back")
    assert len(ns_cluster(hosts["proxy"])) == 2


def test_a_machine_id_that_is_not_one_gives_no_host_id(tmp_path):
    files = [tmp_path / "machine-id", tmp_path / "dbus-machine-id"]
    files[0].write_text("uninitialized\n")  # systemd's first-boot placeholder
    assert host_id(tuple(files)) == ""
    files[1].write_text("0123456789abcdef0123456789abcdef\n")
    assert host_id(tuple(files)) == "0123456789abcdef0123456789abcdef"


def test_the_instance_id_survives_a_restart_and_a_second_agent_gets_its_own(tmp_path):
    path = str(tmp_path / "state" / "instance-id")
    first = Instance(path)
    second = Instance(path)  # another agent on the same file while the first runs
    assert first.id and second.id != first.id and "held by another running agent" in second.note
    first.close()
    second.close()
    again = Instance(path)  # the first agent restarted
    assert again.id == first.id and again.note == ""
    again.close()
