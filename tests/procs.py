"""Real daemon processes for tests: start on free loopback ports, wait until they serve, clean up by pid."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free a moment ago (all held open together, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "") -> Any:
    """Polls until predicate() is truthy; returns its value or fails the test with `what`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; last error: {last_exc}")


def http_get(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def http_json(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw.startswith(b"{") else raw


@dataclass
class Daemon:
    proc: subprocess.Popen
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


def _spawn(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
           user: str | None = None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("FODC_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    # The tree under test, not whatever checkout the venv's editable install points at.
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p)
    full_env.update(env or {})
    return subprocess.Popen(list(argv), stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, env=full_env,
                            cwd=REPO, start_new_session=True, user=user)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (a zombie nobody has reaped yet does not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                return True
    return False


@dataclass
class Proxy(Daemon):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    def crash(self) -> None:
        """The whole proxy gone with no goodbye, as when its unit's control group is killed. The master dies
        first, so it cannot start a new worker; then the worker, which would otherwise keep serving on the
        ports until it noticed, answering a proxy started on them in its place."""
        self.kill9()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        wait_for(lambda: not _group_alive(self.proc.pid), 10, interval=0.05, what="the proxy's worker gone")

    def cluster(self, **params: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        status, body = http_json(f"{self.url}/cluster" + (f"?{query}" if query else ""))
        assert status == 200, body
        return body["nodes"]

    def worker_pid(self) -> int:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout.split()
        return int(out[0])


def start_proxy(tmp_path: Path, *args: str, grpc_port: int | None = None, http_port: int | None = None,
                env: dict[str, str] | None = None, wait: bool = True, name: str = "proxy") -> Proxy:
    ports = {"grpc": grpc_port or free_port(), "http": http_port or free_port()}
    argv = [str(BIN / "fodc-proxy"), "--config", "/dev/null",
            "--grpc-listen-addr", f"127.0.0.1:{ports['grpc']}", "--http-listen-addr", f"127.0.0.1:{ports['http']}",
            "--log-format", "text", "--audit-log", str(tmp_path / f"{name}-audit.log"),
            "--diagnostics-dir", str(tmp_path / f"{name}-diagnostics"), *args]
    if not any(a.startswith("--incident-archive-dir") for a in args):
        argv += ["--incident-archive-dir", str(tmp_path / f"{name}-incidents")]
    if not any(a.startswith("--auth") for a in args):
        argv += ["--auth", "off"]  # access control has its own tests
    proxy = Proxy(_spawn(argv, tmp_path / f"{name}.log", env), tmp_path / f"{name}.log", ports)
    if wait:
        try:  # a loaded machine can take a while to import gunicorn and Flask
            wait_for(lambda: http_get(f"{proxy.url}/health", 1)[0] == 200, 60, what="proxy up")
        except AssertionError as exc:
            proxy.stop()  # never left running, its ports taken, once the test has failed
            raise AssertionError(f"{exc} ({proxy.log()})") from None
    return proxy


def start_https_proxy(tmp_path: Path, *args: str, ca_name: str = "test") -> tuple[Proxy, Any]:
    """A proxy serving HTTPS with a certificate for `localhost` from a fresh test CA; returns it (not waited
    for: /health needs the CA) and the CA (tests/certs.py Authority, its certificate at `.path`)."""
    from certs import Authority  # needs python3-cryptography, which only TLS tests use

    ca = Authority(tmp_path, ca_name)
    server = ca.issue("localhost", server=True)
    proxy = start_proxy(tmp_path, "--http-tls-cert", str(server.cert), "--http-tls-key", str(server.key), *args,
                        wait=False)
    return proxy, ca


@dataclass
class Agent(Daemon):
    node_id: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"


def start_agent(tmp_path: Path, proxy_grpc: str, role: str, node_id: str, *args: str,
                node_port: int | None = None, labels: str = "", env: dict[str, str] | None = None,
                http_port: int | None = None, user: str | None = None) -> Agent:
    ports = {"http": http_port or free_port(), "node": node_port or free_port()}
    tag = node_id if len(node_id.encode()) <= 64 else hashlib.sha256(node_id.encode()).hexdigest()[:16]
    argv = [str(BIN / "fodc-agent"), "--config", "/dev/null", "--proxy-addr", proxy_grpc,
            "--node-role", role, "--node-id", node_id, "--node-address", f"127.0.0.1:{ports['node']}",
            "--http-listen-addr", f"127.0.0.1:{ports['http']}", "--log-format", "text",
            "--reconnect-max-backoff", "1s", *args]
    if not any(a.startswith("--window-dir") for a in args):
        argv += ["--window-dir", str(tmp_path / f"window-{tag}")]  # never the host's /var/lib/fodc
    if not any(a.startswith("--incident-dir") for a in args):
        argv += ["--incident-dir", str(tmp_path / f"incidents-{tag}")]
    if not any(a.startswith("--diagnostics-dir") for a in args):
        argv += ["--diagnostics-dir", str(tmp_path / f"diagnostics-{tag}")]
    if not any(a.startswith("--profile-ring-dir") for a in args):
        argv += ["--profile-ring-dir", str(tmp_path / f"profiles-{tag}")]
    if not any(a.startswith("--profile-every") for a in args):
        argv += ["--profile-every", "0"]  # periodic profiles only where a test asks: they hold the profile slot
    if not any(a.startswith("--instance-file") for a in args):
        argv += ["--instance-file", str(tmp_path / f"instance-{tag}")]
    if not any(a.startswith("--config-history-file") for a in args):
        argv += ["--config-history-file", str(tmp_path / f"config-history-{tag}.json")]
    if not any(a.startswith("--ktm-enabled") for a in args):
        argv += ["--ktm-enabled", "off"]  # one BCC compile per test agent would only slow the suite down
    if labels:
        argv += ["--node-labels", labels]
    log_path = tmp_path / f"agent-{tag}.log"
    return Agent(_spawn(argv, log_path, env, user), log_path, ports, node_id)


def start_server(argv: Sequence[str], log: Path, port: int, ready_path: str, what: str, *,
                 url: str | None = None, ready: Callable[[], bool] | None = None) -> tuple[Daemon, str]:
    """A server (its own process group, output to `log`) listening on 127.0.0.1:`port`; returns it once
    `ready_path` answers 200 (or `ready()` is true: a server that wants TLS or credentials), and its base URL
    (`url` if given). Stopped again if it never gets ready."""
    process = subprocess.Popen(list(argv), stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                               start_new_session=True)  # the child owns its log file
    daemon = Daemon(process, log, {"http": port})
    url = url or f"http://127.0.0.1:{port}"
    ready = ready or (lambda: http_get(f"{url}{ready_path}", 1)[0] == 200)
    try:
        wait_for(ready, 60, what=f"{what} ready ({log})")
    except AssertionError:
        daemon.stop()
        raise
    return daemon, url


def start_prometheus(directory: Path, config_yaml: str, name: str = "prometheus",
                     extra: Sequence[str] = (), port: int | None = None) -> tuple[Daemon, str]:
    """Debian's Prometheus server on a free loopback port with `config_yaml`; returns it once ready, and its URL.

    Also a real Go program: it serves Go pprof under /debug/pprof on the same port. Started again with the same
    `name` and `port`, it takes up its data where it left off."""
    port = port or free_port()
    config = directory / f"{name}.yml"
    config.write_text(config_yaml)
    return start_server(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={directory / (name + '-tsdb')}",
                         f"--web.listen-address=127.0.0.1:{port}", *extra], directory / f"{name}.log", port,
                        "/-/ready", "prometheus")


def keep_busy(url: str, stop: threading.Event) -> None:
    """Keeps a Go HTTP server (Prometheus) on the CPU until `stop`, so a short CPU profile has samples."""
    while not stop.is_set():
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/api/v1/query?query=sum(rate(up[5m]))%20or%20vector(1)", timeout=2).read()


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since start, or since reset_peak) of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> None:
    """Restarts the process's VmHWM from its current RSS (clear_refs 5, Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
