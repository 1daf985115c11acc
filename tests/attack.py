"""An attacker's toolbox for tests: raw sockets against real daemons on loopback, always bounded.

Every helper takes a count or a deadline and closes what it opened, so a test that fails half way leaves no
sockets behind. Only 127.0.0.1 is ever a target.
"""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from procs import Agent, Proxy, free_port, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import SimNodeProcess, start_sim_node

LOOPBACK = "127.0.0.1"


def _connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@contextlib.contextmanager
def held_sockets(port: int, count: int, first_bytes: bytes = b"", *,
                 connect_timeout: float = 5.0) -> Iterator[list[socket.socket]]:
    """Opens up to `count` connections that each send `first_bytes` (nothing: silent; a partial header:
    slowloris) and then say nothing more, holds them for the `with` body, closes them all after.
    Connections the server refuses or resets are not retried; the list holds the ones that got through."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                sock = _connect(port, connect_timeout)
            except OSError:
                continue
            if first_bytes:
                with contextlib.suppress(OSError):
                    sock.sendall(first_bytes)
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()


PARTIAL_HEADER = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def still_open(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has neither closed nor answered (a read would still block)."""
    alive = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


@contextlib.contextmanager
def fd_soft_limit(limit: int) -> Iterator[None]:
    """Processes started inside get `limit` as their soft descriptor limit (systemd's default is 1024), so an
    exhaustion attack meets the limit a daemon really has, whatever this test process was given."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def raise_fd_limit(wanted: int = 8192) -> None:
    """Lifts this process's soft descriptor limit (and so its children's) towards `wanted`, within the hard
    limit: an attack holding a thousand sockets must not fail on the attacker's side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> RawResponse:
    """Sends `data` as is (however malformed or large) while reading, as a browser would, so an answer the
    server gives before it has read everything (401 to a 1 MB body) is seen; returns once the answer's
    Content-Length is in or the server closes."""
    raw = b""
    with _connect(port, timeout) as sock:
        sock.setblocking(False)
        unsent = memoryview(data)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while time.monotonic() < deadline and not _complete(raw):
                events = selector.select(max(0.0, deadline - time.monotonic()))
                for _, mask in events:
                    if mask & selectors.EVENT_WRITE and unsent:
                        try:
                            unsent = unsent[sock.send(unsent[:65536]):]
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            unsent = memoryview(b"")
                        if not unsent:
                            selector.modify(sock, selectors.EVENT_READ)
                    if mask & selectors.EVENT_READ:
                        try:
                            piece = sock.recv(65536)
                        except (BlockingIOError, InterruptedError):
                            continue
                        except OSError:
                            piece = b""
                        if not piece:
                            deadline = 0.0
                        raw += piece
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or len(lines[0].split()) < 2:
        raise AssertionError(f"no HTTP response, got {raw[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split()[1]), headers, body)


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    length = _content_length(head) if sep else None
    return length is not None and len(body) >= length


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> RawResponse:
    """A POST of `body` with a Content-Length that tells the truth, through raw_request."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return raw_request(port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body, timeout)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def slow_get(port: int, path: str, *, stall_s: float = 0.0, bytes_per_read: int = 65536, pause_s: float = 0.0,
             deadline_s: float = 120.0) -> bytes:
    """GET `path` through a small receive buffer, reading nothing for `stall_s`, then `bytes_per_read` every
    `pause_s` (a slow client); returns the body (chunked encoding undone)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((LOOPBACK, port))
    raw = b""
    stop = time.monotonic() + deadline_s
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n\r\n".encode())
        time.sleep(stall_s)
        while time.monotonic() < stop:
            piece = sock.recv(bytes_per_read)
            if not piece:
                break
            raw += piece
            time.sleep(pause_s)
        else:
            raise AssertionError(f"slow read of {path} not finished within {deadline_s}s")
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return body


def _unchunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


@dataclass
class SmallCluster:
    proxy: Proxy
    agents: list[Agent]
    nodes: list[SimNodeProcess]

    def stop(self) -> None:
        for daemon in [*self.agents, self.proxy]:
            daemon.stop()
        for node in self.nodes:
            node.stop()


def start_small_cluster(tmp: Path, agents: int = 1, *, proxy_args: tuple[str, ...] = (),
                        agent_args: tuple[str, ...] = (), series: int = 200) -> SmallCluster:
    """A proxy (through gunicorn), `agents` simulated liaison nodes and their agents (1 s scrapes), all
    online and with a few scrapes in their windows. Call .stop() when done."""
    proxy = start_proxy(tmp, *proxy_args)
    cluster = SmallCluster(proxy, [], [])
    try:
        for index in range(agents):
            node = start_sim_node("liaison", free_port(), series=series, seed=index)
            cluster.nodes.append(node)
            cluster.agents.append(start_agent(tmp, proxy.grpc_addr, "liaison", f"l-{index}", "--node-metrics-url",
                                              node.metrics_url, "--scrape-interval", "1s", "--scrape-timeout",
                                              "1s", *agent_args))
        wait_for(lambda: len(proxy.cluster(status="online")) == agents, 30, what="agents online")
        wait_for(lambda: all(window_covers(a, 2) for a in cluster.agents), 30, what="2 s in every window")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def window_covers(agent: Agent, seconds: int) -> bool:
    """Whether the agent's window spans at least `seconds` (so it has scraped a few times)."""
    status, body = http_json(f"{agent.url}/health", timeout=5)
    return status == 200 and int(body["runtime"]["window_covered_s"]) >= seconds
