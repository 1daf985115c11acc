"""Start a simulated node as a real process and wait until it serves (for tests and the demo).

    node = start_sim_node("datanode-hot", free_port(), comm="banyand",
                          extra_args=["--measure-root-path=/tmp/m", "--grpc-port=17912"])
    try:
        urllib.request.urlopen(node.metrics_url)
        node.fault("slow", delay=2)
    finally:
        node.stop()

Stdlib only (urllib), so the demo script can use it without test dependencies.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SimNodeProcess:
    """Handle on a running `python -m fodc.sim` process."""

    def __init__(self, popen: subprocess.Popen[bytes], role: str, port: int, argv: Sequence[str],
                 stderr_file: Path) -> None:
        self.popen = popen
        self.role = role
        self.port = port
        self.argv = tuple(argv)
        self.stderr_file = stderr_file

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:2121 (append /metrics, /healthz, /debug/pprof/cmdline)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    def running(self) -> bool:
        return self.popen.poll() is None

    def stderr_text(self) -> str:
        try:
            return self.stderr_file.read_text(errors="replace")
        except OSError:
            return ""

    def fault(self, mode: str, timeout: float = 5.0, **params: object) -> dict[str, object]:
        """POST a fault (`mode` = ok|down|slow|slow-reads|garbage|huge|reset, params such as duration=,
        delay=, variant=, mb=) and return the node's JSON answer (slow-reads needs `reads_per_s`)."""
        body = json.dumps({"mode": mode, **params}).encode()
        request = urllib.request.Request(f"{self.url}/-/fault", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def fault_state(self, timeout: float = 5.0) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.url}/-/fault", timeout=timeout) as response:
            return json.loads(response.read())

    def signal(self, signum: int) -> None:
        if self.running():
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go. Returns the exit code."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self.stderr_file.unlink(missing_ok=True)
        return self.popen.returncode

    def __enter__(self) -> SimNodeProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def sim_node_argv(role: str, port: int, *, series: int | None = None, extra_args: Sequence[str] = (),
                  comm: str | None = None, seed: int | None = None, host: str = "127.0.0.1",
                  reads_per_s: float | None = None) -> list[str]:
    """The command line `start_sim_node` runs (handy for printing in the demo)."""
    argv = [sys.executable, "-m", "fodc.sim", "--role", role, "--listen", f"{host}:{port}"]
    if series is not None:
        argv += ["--series", str(series)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if comm:
        argv += ["--comm", comm]
    if reads_per_s:
        argv += ["--reads-per-s", f"{reads_per_s:g}"]
    return argv + list(extra_args)


def wait_until_serving(url: str, deadline: float, popen: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll `url` until it answers 200, the process dies, or the monotonic `deadline` passes."""
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    return False


def start_sim_node(role: str, port: int, *, series: int | None = None, extra_args: Sequence[str] = (),
                   comm: str | None = None, seed: int | None = None, env: Mapping[str, str] | None = None,
                   ready_timeout: float = 15.0, reads_per_s: float | None = None) -> SimNodeProcess:
    """Start `python -m fodc.sim` on 127.0.0.1:`port` and return once `/healthz` answers.

    Raises RuntimeError (with the node's stderr) if it exits or does not serve within `ready_timeout`.
    """
    argv = sim_node_argv(role, port, series=series, extra_args=extra_args, comm=comm, seed=seed,
                         reads_per_s=reads_per_s)
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), full_env.get("PYTHONPATH", "")) if p)
    fd, stderr_name = tempfile.mkstemp(prefix=f"fodc-sim-{role}-", suffix=".log")
    with os.fdopen(fd, "wb") as stderr:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                 env=full_env, start_new_session=True)
    node = SimNodeProcess(popen, role, port, argv, Path(stderr_name))
    if not wait_until_serving(f"{node.url}/healthz", time.monotonic() + ready_timeout, popen):
        details = node.stderr_text()
        node.stop()
        raise RuntimeError(f"sim node {role} on port {port} did not start serving:\n{details}")
    return node
