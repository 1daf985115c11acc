"""Real remote-write receivers on loopback for tests and the bench: Debian's victoria-metrics (single node) and
Debian's prometheus with its remote-write receiver and an out-of-order window (for backfilled minutes).

Both are read back raw, so a test can compare every sample with what the agent's window holds: VictoriaMetrics
through /api/v1/export (stored samples as they are), Prometheus through a range selector (`name[…]`), whose
values it prints with Go's shortest exact float formatting.
"""

from __future__ import annotations

import json
import shutil
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from procs import Daemon, free_port, http_get, start_prometheus, start_server, wait_for

Samples = dict[str, dict[int, float]]  # canonical labels (JSON, __name__ included) -> {unix ms: value}


def have_victoria_metrics() -> bool:
    return shutil.which("victoria-metrics") is not None


def key(labels: dict[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


def start_victoria_metrics(directory: Path, name: str = "vm", port: int | None = None, extra: Sequence[str] = (),
                           url: str | None = None, ready: Callable[[], bool] | None = None) -> tuple[Daemon, str]:
    """victoria-metrics on a free port; returns it once healthy, and its base URL (write at /api/v1/write).
    Started again with the same `name` and `port`, it takes up its data where it left off. `extra` flags, `url`
    and `ready` for one behind TLS or credentials."""
    port = port or free_port()
    return start_server(["victoria-metrics", f"-storageDataPath={directory / (name + '-data')}",
                         f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y", "-search.latencyOffset=0s",
                         "-search.disableCache", "-loggerLevel=WARN", *extra], directory / f"{name}.log", port,
                        "/health", "victoria-metrics", url=url, ready=ready)


def start_vmauth(directory: Path, bearer_token: str, backend: str) -> tuple[Daemon, str]:
    """Debian's vmauth on a free port, letting requests with `bearer_token` through to `backend` (the
    VictoriaMetrics way to put credentials in front of a TSDB); others get 401."""
    port = free_port()
    config = directory / "vmauth.yml"
    config.write_text(f"users:\n  - bearer_token: {json.dumps(bearer_token)}\n    url_prefix: {json.dumps(backend)}\n")
    return start_server(["vmauth", f"-auth.config={config}", f"-httpListenAddr=127.0.0.1:{port}",
                         "-loggerLevel=WARN"], directory / "vmauth.log", port, "/health", "vmauth")


def vm_get(url: str, path: str, *, context: ssl.SSLContext | None = None,
           authorization: str | None = None) -> tuple[int, bytes]:
    """GET from a victoria-metrics that may want TLS (`context`) and credentials."""
    request = urllib.request.Request(f"{url}{path}", headers={"Authorization": authorization} if authorization
                                     else {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def vm_export(url: str, match: str, start_ms: int = 0, end_ms: int | None = None, *,
              context: ssl.SSLContext | None = None, authorization: str | None = None) -> Samples:
    """Every stored sample of the series `match` selects, as VictoriaMetrics holds them."""
    params = {"match[]": match, "start": f"{start_ms / 1000:.3f}"}
    if end_ms is not None:
        params["end"] = f"{end_ms / 1000:.3f}"
    status, body = vm_get(url, f"/api/v1/export?{urllib.parse.urlencode(params)}", context=context,
                          authorization=authorization)
    assert status == 200, body[:300]
    out: Samples = {}
    for line in body.decode().splitlines():
        if line.strip():
            item = json.loads(line)
            points = out.setdefault(key(item["metric"]), {})
            points.update(zip(item["timestamps"], (float(v) for v in item["values"]), strict=True))
    return out


PROMETHEUS_RECEIVER = """
global:
  scrape_interval: 1h
storage:
  tsdb:
    out_of_order_time_window: 1d
"""


def start_prometheus_receiver(directory: Path, name: str = "prom-rw", port: int | None = None) -> tuple[Daemon, str]:
    """Debian's prometheus taking remote-write (at /api/v1/write), with samples up to a day out of order (an
    incident's backfilled scrapes are older than the regular push's newest)."""
    return start_prometheus(directory, PROMETHEUS_RECEIVER, name=name, extra=("--web.enable-remote-write-receiver",),
                            port=port)


def prometheus_raw(url: str, selector: str, at_ms: int, span_s: int) -> Samples:
    """Every sample of `selector` in the `span_s` seconds up to `at_ms`, as Prometheus stored them."""
    query = urllib.parse.urlencode({"query": f"{selector}[{span_s}s]", "time": f"{at_ms / 1000:.3f}"})
    status, _, body = http_get(f"{url}/api/v1/query?{query}", 30)
    assert status == 200, body[:300]
    out: Samples = {}
    for item in json.loads(body)["data"]["result"]:
        out[key(item["metric"])] = {round(float(t) * 1000): float(v) for t, v in item["values"]}
    return out


def window_samples(proxy_url: str, family: str, start_ms: int = 0) -> Samples:
    """What the agents' windows hold for `family`, through the proxy's /metrics-windows, keyed like the
    receivers' answers (the sample name as __name__, node labels as the proxy adds them)."""
    status, _, body = http_get(f"{proxy_url}/metrics-windows?start={start_ms / 1000:.3f}&name={family}", 30)
    assert status == 200, body[:300]
    out: Samples = {}
    for series in json.loads(body)["series"]:
        labels = {k: v for k, v in series["labels"].items() if v}
        labels["__name__"] = series["name"]
        out[key(labels)] = {t: float(v) for t, v in series["points"]}
    return out


# VictoriaMetrics converts each value to a decimal (int64 mantissa, exponent) and keeps 12-13 significant
# digits: 19.06342846616221 comes back as 19.063428466162. Prometheus keeps the float64 as it was sent.
VM_RELATIVE_PRECISION = 1e-11


def differences(truth: Samples, got: Samples, relative: float = 0.0) -> list[str]:
    """What `got` lacks or holds differently from `truth` (empty: the same series, timestamps and values,
    each value equal, or within `relative` of the truth when a receiver rounds)."""
    out = [f"missing series {k}" for k in truth if k not in got]
    out += [f"extra series {k}" for k in got if k not in truth]
    for k, points in truth.items():
        theirs = got.get(k, {})
        if set(points) != set(theirs):
            lacking, extra = sorted(set(points) - set(theirs)), sorted(set(theirs) - set(points))
            out.append(f"{k}: missing {lacking[:3]} ({len(lacking)}), extra {extra[:3]} ({len(extra)})")
            continue
        for t, v in points.items():
            w = theirs[t]
            if not (v == w or (v != v and w != w) or abs(v - w) <= relative * max(abs(v), abs(w))):
                out.append(f"{k} at {t}: {v!r} in the window, {w!r} in the receiver")
                break
    return out


def wait_until_holds(expected: Samples, read: Callable[[], Samples], relative: float, what: str,
                     timeout: float = 30.0) -> None:
    """Polls until `read()` holds what `expected` holds (see differences); on timeout the failure names the
    differences found last."""
    diff: list[str] = []

    def same() -> bool:
        diff[:] = differences(expected, read(), relative)
        return not diff

    try:
        wait_for(same, timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; differences: {diff[:10]}") from None


class ScriptedReceiver(ThreadingHTTPServer):
    """A receiver that misbehaves on demand, for what no real one does when asked: answers each POST as
    `script` says, (status, body, extra headers), "hang" (never answers) or "drip" (headers one byte at a time).
    A context manager: serves on a thread of its own until the block ends."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: object = (204, b"", {})
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/write"

    def __enter__(self) -> ScriptedReceiver:
        threading.Thread(target=self.serve_forever, name="scripted-receiver", daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        server: ScriptedReceiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.seen.append((dict(self.headers), body))
        if server.script == "hang":
            server.release.wait(30)
            return
        if server.script == "drip":  # headers never finish: one byte a while, each well within a socket timeout
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(300):
                if server.release.wait(0.1):
                    return
                self.wfile.write(b"X")
                self.wfile.flush()
            return
        status, answer, headers = server.script  # type: ignore[misc]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
