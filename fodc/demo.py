"""A real local FODC cluster on loopback: one proxy, four simulated BanyanDB nodes and their agents.

Everything is a real process talking over real sockets (gRPC between agents and proxy, HTTP through
gunicorn), so what you see is what a deployment does. Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fodc.config import ROLES, duration
from fodc.sim.launcher import SimNodeProcess, free_port, start_sim_node

BIN = Path(sys.executable).parent
GO_PPROF = shutil.which("prometheus")  # Debian's prometheus: a real Go program serving /debug/pprof


NODE_DOWN_FOR_S = 10  # the demo's --incident-node-down-for: short, so a fault's incident shows up quickly


def fault_examples(fault_url: str) -> list[str]:
    """The fault commands the banner prints, each with what it makes happen (every sim fault mode; the
    durations outlast the demo's node-down-for, so each produces what it says)."""
    hold = NODE_DOWN_FOR_S + 15
    return [
        f"F={fault_url}   # the hot node's; each node below has its own",
        f"curl -d mode=down -d duration={hold} $F              # node-down after {NODE_DOWN_FOR_S}s",
        f"curl -d mode=slow -d delay=10 -d duration={hold} $F  # node-unresponsive after {NODE_DOWN_FOR_S}s",
        "curl -d mode=reset $F                           # node-restart (counters reset)",
        "curl -d mode=garbage -d duration=30 $F          # bad lines skipped and counted",
        "curl -d mode=huge -d mb=16 -d duration=30 $F    # 16 MiB pages, still scraped",
        "curl -d mode=slow-reads -d duration=60 $F       # ktm-read-latency (eBPF: root)",
        "curl -d mode=crash -d text='panic: demo' $F     # node-crash; the node exits",
        "curl -d mode=ok $F                              # clears the fault",
    ]


def _port(preferred: int) -> int:
    """The preferred (documented) port when it is free, else any free one."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def _go_pprof_config(workdir: Path, role: str, metrics_url: str, port: int) -> Path:
    """A Prometheus config that scrapes the simulated node (and itself) twice a second: real Go work, so a
    CPU profile of it has samples."""
    target = metrics_url.split("//", 1)[1].split("/", 1)[0]
    path = workdir / f"go-pprof-{role}.yml"
    path.write_text("global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n"
                    f"  - job_name: node\n    static_configs: [{{targets: ['{target}']}}]\n"
                    f"  - job_name: self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    return path


class DemoCluster:
    """The demo's processes, started in order (proxy, then per role a simulated node, its Go pprof target and
    its agent) and stopped together; every log in `workdir`."""

    def __init__(self, workdir: Path, scrape_interval: str, scrape_timeout: str, series: int | None) -> None:
        self.workdir = workdir
        self.scrape_interval, self.scrape_timeout, self.series = scrape_interval, scrape_timeout, series
        self.grpc_port, self.http_port = _port(17900), _port(17901)
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.children: list[subprocess.Popen] = []
        self.nodes: list[SimNodeProcess] = []
        self.agent_urls: dict[str, str] = {}
        self.go_urls: dict[str, str] = {}
        self.token = secrets.token_hex(16)

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (the child process owns it)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append(proc)
        return proc

    def start_proxy(self) -> None:
        workdir = self.workdir
        (workdir / "tokens").write_text(f"demo operator sha256:{hashlib.sha256(self.token.encode()).hexdigest()}\n")
        self.spawn("proxy", [str(BIN / "fodc-proxy"), "--config", "/dev/null",
                             "--grpc-listen-addr", f"127.0.0.1:{self.grpc_port}",
                             "--http-listen-addr", f"127.0.0.1:{self.http_port}",
                             "--log-format", "text", "--auth-tokens-file", str(workdir / "tokens"),
                             "--auth", "control",  # a lab on loopback: every read open, control needs the token
                             "--audit-log", str(workdir / "audit.log"),
                             "--diagnostics-dir", str(workdir / "diagnostics"),
                             "--incident-archive-dir", str(workdir / "incident-archive")])
        _wait_http(f"{self.base}/health", 30)

    def start_node(self, index: int, role: str) -> None:
        """One simulated node of `role`, a real Go process beside it for pprof (when there is one), its agent."""
        workdir = self.workdir
        pid_file = workdir / f"node-{role}.pid"
        node = start_sim_node(role, free_port(), series=self.series, comm="banyand", reads_per_s=50, extra_args=[
            "--pid-file", str(pid_file), f"--grpc-port={17912 + 100 * index}",
            f"--measure-root-path={workdir}/data-{role}", f"--config={workdir}/node-{role}.yaml"])
        (workdir / f"node-{role}.yaml").write_text(f"role: {role}\nmax-memory: 4G\nauth_password: demo\n")
        self.nodes.append(node)
        pprof_url = self.start_go_pprof(role, node) if GO_PPROF else node.url  # the sim answers only /cmdline
        agent_port = _port(17902 + index)
        self.spawn(f"agent-{role}", [
            str(BIN / "fodc-agent"), "--config", "/dev/null", "--proxy-addr", f"127.0.0.1:{self.grpc_port}",
            "--node-role", role, "--node-id", f"demo-{role}", "--node-address", f"127.0.0.1:{17912 + 100 * index}",
            "--node-gossip-address", f"127.0.0.1:{17932 + 100 * index}", "--node-labels", f"zone=z{index % 2}",
            "--node-metrics-url", node.metrics_url, "--http-listen-addr", f"127.0.0.1:{agent_port}",
            "--scrape-interval", self.scrape_interval, "--scrape-timeout", self.scrape_timeout,
            "--log-format", "text", "--node-pid-file", str(pid_file), "--node-pprof-url", pprof_url,
            "--diagnostics-dir", str(workdir / f"diagnostics-{role}"), "--incident-dir",
            str(workdir / f"incidents-{role}"), "--window-dir", str(workdir / f"window-{role}"),
            "--config-history-file", str(workdir / f"config-history-{role}.json"),
            "--profile-ring-dir", str(workdir / f"profiles-{role}"),
            "--node-log-file", str(node.stderr_file), "--incident-node-down-for", f"{NODE_DOWN_FOR_S}s",
            "--instance-file", str(workdir / f"instance-{role}"), "--ktm-interval", "5s"])
        self.agent_urls[role] = f"http://127.0.0.1:{agent_port}"

    def start_go_pprof(self, role: str, node: SimNodeProcess) -> str:
        """A real Go process beside the node, so profiles of "the node" are genuine; its URL."""
        assert GO_PPROF is not None
        go_port = free_port()
        go_config = _go_pprof_config(self.workdir, role, node.metrics_url, go_port)
        self.spawn(f"go-pprof-{role}", [GO_PPROF, f"--config.file={go_config}",
                                        f"--storage.tsdb.path={self.workdir / f'go-pprof-{role}-tsdb'}",
                                        f"--web.listen-address=127.0.0.1:{go_port}"])
        self.go_urls[role] = f"http://127.0.0.1:{go_port}"
        return self.go_urls[role]

    def any_exited(self) -> bool:
        return any(p.poll() is not None for p in self.children)

    def wait_online(self, timeout_s: float = 30) -> bool:
        """Whether every node's agent registered with the proxy in time (and nothing exited meanwhile)."""
        for url in self.go_urls.values():
            _wait_http(f"{url}/-/ready", 60)
        deadline = time.monotonic() + timeout_s
        while True:
            with urllib.request.urlopen(f"{self.base}/cluster", timeout=2) as response:
                if json.load(response)["summary"]["online"] == len(ROLES):
                    return True
            if time.monotonic() > deadline or self.any_exited():
                return False
            time.sleep(0.3)

    def banner(self) -> str:
        """What the operator reads once the cluster is up: every URL, the token and the faults to try."""
        base, workdir = self.base, self.workdir
        pprof_note = ("each node's pprof is a real Go process (Debian's prometheus)" if self.go_urls
                      else "no `prometheus` binary here, so profiles fail (404)")
        start = int(time.time()) - 600
        hot = next(node for node in self.nodes if node.role == "datanode-hot")
        faults = "\n                ".join(fault_examples(f"{hot.url}/-/fault"))
        lines = [f"""
FODC demo cluster is running (logs in {workdir}).

  Web console   {base}/
                cluster, nodes, incidents, configuration, profiles (token below)
  Proxy API     {base}/cluster               registered nodes and their status
                {base}/metrics               every node's latest metrics
                {base}/metrics-windows?start={start}
                                                        the flight-recorder window (JSON)
                {base}/cluster/config        each node's configuration
                {base}/cluster/config/drift  what differs, and what changed
                {base}/diagnostics           profiling jobs (operator token below)
                ({pprof_note})
                {base}/incidents             first-occurrence incidents (see Faults)
                {base}/health
  CLI           {BIN / "fodc"}
                fodc --proxy {base} cluster
                (and: config drift | incidents | snapshot | triage BUNDLE | window --name N)
  Profiles      FODC_TOKEN=<token> fodc --proxy {base} profile cpu
                --role datanode-hot --seconds 5 -o cpu.tar.gz; tar xzf cpu.tar.gz;
                fodc pprof top <job>/<node>.pb.gz
  Operator token {self.token}
                (audit log: {workdir / "audit.log"})
  Proxy gRPC    127.0.0.1:{self.grpc_port}
  Faults        {faults}
"""]
        lines += [f"  Agent {role:<14} {url}/metrics   {url}/health" for role, url in self.agent_urls.items()]
        lines += [f"  Simulated {node.role:<10} {node.metrics_url}   faults: {node.url}/-/fault" for node in self.nodes]
        return "\n".join(lines)

    def stop(self) -> None:
        for proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.children:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for node in self.nodes:
            node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev/demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scrape-interval", default="5s", help="agents' scrape interval (default 5s for the demo)")
    parser.add_argument("--series", type=int, default=None, help="approximate series per simulated node")
    parser.add_argument("--duration", type=float, default=0, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    try:
        timeout = f"{min(4.0, duration(args.scrape_interval)):g}s"  # an agent refuses a timeout over its interval
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument --scrape-interval: {exc}")

    cluster = DemoCluster(Path(tempfile.mkdtemp(prefix="fodc-demo-")), args.scrape_interval, timeout, args.series)
    try:
        cluster.start_proxy()
        for index, role in enumerate(ROLES):
            cluster.start_node(index, role)
        if not cluster.wait_online():
            print(f"the demo cluster did not come up; see the logs in {cluster.workdir}", file=sys.stderr)
            return 1
        print(cluster.banner())
        print("\nPress Ctrl-C to stop.", flush=True)
        return _run(cluster, args.duration)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
        print("demo stopped.")


def _run(cluster: DemoCluster, duration_s: float) -> int:
    """Until Ctrl-C, SIGTERM or `duration_s` (0: no end); 1 when a process of the demo exits meanwhile."""
    stop_at = time.monotonic() + duration_s if duration_s else None
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    while stop_at is None or time.monotonic() < stop_at:
        if cluster.any_exited():
            print("a demo process exited unexpectedly; see the logs in", cluster.workdir, file=sys.stderr)
            return 1
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
