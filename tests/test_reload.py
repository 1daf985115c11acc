"""SIGHUP (systemctl reload) through real processes: settings re-read, what may change applied, agents' streams
kept; a config that does not validate changes nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import ssl
import time
from pathlib import Path

from procs import http_json, start_agent, start_proxy, wait_for


def _registered(proxy) -> dict:
    nodes = proxy.cluster()
    assert len(nodes) == 1 and nodes[0]["status"] == "online", nodes
    return nodes[0]


def _hup_and_wait(daemon, lines_before: int, needle: str = "SIGHUP: reloaded") -> str:
    daemon.signal(signal.SIGHUP)
    return wait_for(lambda: daemon.log().count(needle) > lines_before and daemon.log(), 30,
                    what=f"{needle!r} in the log")


def test_proxy_reload_keeps_every_agent_stream_and_worker(tmp_path: Path) -> None:
    """With --auth off there was no SIGHUP handler in the worker: the signal killed it, gunicorn booted a
    new one, and every agent was gone until it redialed (~10 s)."""
    proxy = start_proxy(tmp_path)  # --auth off
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "hot-1")
    try:
        first = wait_for(lambda: proxy.cluster() and _registered(proxy), 30, what="agent registered")
        worker = proxy.worker_pid()
        log = _hup_and_wait(proxy, 0)
        assert "SIGHUP: nothing waits for a restart" in log
        time.sleep(2)  # a dropped stream would show as a second registration by now (redial backoff is 1 s)
        assert proxy.worker_pid() == worker
        assert _registered(proxy)["registered_at"] == first["registered_at"]
        assert proxy.log().count("agent registered") == 1
    finally:
        agent.stop()
        proxy.stop()


def test_proxy_reload_applies_tokens_and_log_level_and_names_what_needs_a_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    tokens.chmod(0o600)
    conf = tmp_path / "proxy.conf"
    conf.write_text("log-level = info\nmetrics-timeout = 10s\n")
    proxy = start_proxy(tmp_path, "--auth", "sensitive", "--auth-tokens-file", str(tokens), "--config", str(conf))
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "hot-1")
    try:
        first = wait_for(lambda: proxy.cluster() and _registered(proxy), 30, what="agent registered")
        secret = "s3cret-viewer-token"
        headers = {"Authorization": f"Bearer {secret}"}
        assert http_json(f"{proxy.url}/cluster/config", headers=headers)[0] == 401
        # Written without changing size or mtime order the watcher might notice first: SIGHUP re-reads anyway.
        tokens.write_text(f"alice viewer sha256:{hashlib.sha256(secret.encode()).hexdigest()}\n")
        conf.write_text("log-level = debug\nmetrics-timeout = 20s\n")
        log = _hup_and_wait(proxy, 0)
        reloaded = next(line for line in log.splitlines() if "SIGHUP: reloaded" in line)
        assert "log-level info -> debug" in reloaded and "(1 tokens)" in reloaded
        restart = next(line for line in log.splitlines() if "needs a restart" in line)
        assert "metrics-timeout 10.0 -> 20.0" in restart and "log-level" not in restart
        assert http_json(f"{proxy.url}/cluster/config", headers=headers)[0] == 200
        assert _registered(proxy)["registered_at"] == first["registered_at"]
        assert proxy.log().count("agent registered") == 1
    finally:
        agent.stop()
        proxy.stop()


def test_a_config_broken_before_reload_changes_nothing_and_the_proxy_runs_on(tmp_path: Path) -> None:
    conf = tmp_path / "proxy.conf"
    conf.write_text("log-level = info\n")
    proxy = start_proxy(tmp_path, "--config", str(conf))
    try:
        conf.write_text("log-level = loud\nmax-agents = none\n")
        log = _hup_and_wait(proxy, 0, "settings not reloaded")
        line = next(line for line in log.splitlines() if "settings not reloaded" in line)
        assert "--log-level" in line and "--max-agents" in line
        assert http_json(f"{proxy.url}/health")[0] == 200
        conf.write_text("log-level = info\n")
        assert "no setting changed" in _hup_and_wait(proxy, 0)
    finally:
        proxy.stop()


def test_agent_reload_keeps_it_running_and_registered(tmp_path: Path) -> None:
    """SIGHUP used to end the agent (no handler), and systemd counts that as a clean stop: no restart."""
    proxy = start_proxy(tmp_path)
    conf = tmp_path / "agent.conf"
    conf.write_text("log-level = info\n")
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "hot-1", "--config", str(conf))
    try:
        first = wait_for(lambda: proxy.cluster() and _registered(proxy), 30, what="agent registered")
        conf.write_text("log-level = debug\nscrape-interval = 30s\n")
        log = _hup_and_wait(agent, 0)
        assert "log-level info -> debug" in log
        assert "needs a restart to take effect: scrape-interval 15.0 -> 30.0" in log
        assert agent.proc.poll() is None
        time.sleep(2)
        assert _registered(proxy)["registered_at"] == first["registered_at"]
        assert os.path.exists(f"/proc/{agent.pid}")
    finally:
        agent.stop()
        proxy.stop()


def _served_serial(port: int) -> int:
    """The serial of the certificate a new TLS connection to `port` is shown."""
    from cryptography import x509  # python3-cryptography, as tests/certs.py

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_proxy_reload_puts_new_certificates_in_force_for_new_connections_only(tmp_path: Path) -> None:
    from certs import Authority

    ca = Authority(tmp_path, "reload")
    old, new = ca.issue("proxy-old", server=True), ca.issue("proxy-new", server=True)
    conf = tmp_path / "proxy.conf"

    def use(issued) -> None:
        conf.write_text(f"grpc-tls-cert = {issued.cert}\ngrpc-tls-key = {issued.key}\n"
                        f"http-tls-cert = {issued.cert}\nhttp-tls-key = {issued.key}\n")

    use(old)
    proxy = start_proxy(tmp_path, "--config", str(conf), wait=False)
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "hot-1", "--proxy-tls-ca", str(ca.path),
                        "--proxy-tls-server-name", "localhost")
    try:
        wait_for(lambda: "agent registered" in proxy.log(), 30, what=f"agent registered over TLS ({proxy.log()})")
        assert _served_serial(proxy.ports["grpc"]) == old.serial
        assert _served_serial(proxy.ports["http"]) == old.serial
        use(new)
        log = _hup_and_wait(proxy, 0)
        assert "gRPC TLS files re-read" in log and "HTTPS files" in log
        assert "needs a restart" not in log
        assert _served_serial(proxy.ports["grpc"]) == new.serial
        assert _served_serial(proxy.ports["http"]) == new.serial
        time.sleep(2)
        assert proxy.log().count("agent registered") == 1  # the agent's stream, opened on the old one, stays
        assert agent.proc.poll() is None
    finally:
        agent.stop()
        proxy.stop()
