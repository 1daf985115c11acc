"""The agent's HTTP endpoint with HTTPS and basic/bearer credentials, through a real fodc-agent process and a
real Prometheus scraping it (issue 23, "Least privilege": node_exporter-style web config).

The agent's proxy is a port nobody listens on: the endpoint serves whether or not the agent is registered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from certs import Authority
from procs import BIN, free_port, http_get, start_agent, start_prometheus, wait_for

TOKEN = "scrape-token-4f1c9a"
PASSWORD = "correct horse battery"


def _users_file(tmp_path: Path, users: dict[str, str]) -> Path:
    path = tmp_path / "agent-users"
    path.write_text("".join(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=6)).decode()}\n"
                            for user, pw in users.items()))
    path.chmod(0o640)
    return path


def _tokens_file(tmp_path: Path, tokens: dict[str, str]) -> Path:
    path = tmp_path / "agent-tokens"
    path.write_text("".join(f"{name} sha256:{hashlib.sha256(token.encode()).hexdigest()}\n"
                            for name, token in tokens.items()))
    path.chmod(0o640)
    return path


def _get(url: str, authorization: str | None = None, context: ssl.SSLContext | None = None,
         timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k: ", ".join(exc.headers.get_all(k)) for k in exc.headers}, exc.read()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _self_metric(page: bytes, name: str, reason: str) -> float:
    match = re.search(rf'^{name}{{reason="{reason}"}} (\S+)$', page.decode(), re.M)
    return float(match.group(1)) if match else 0.0


def _agent(tmp_path: Path, *args: str):
    agent = start_agent(tmp_path, f"127.0.0.1:{free_port()}", "liaison", "auth-node", *args)
    return agent


def test_basic_auth_lets_the_right_password_in_and_refuses_the_rest(tmp_path: Path) -> None:
    users = _users_file(tmp_path, {"prometheus": PASSWORD})
    agent = _agent(tmp_path, "--http-auth-users-file", str(users))
    try:
        wait_for(lambda: http_get(f"{agent.url}/health", 2)[0] in (200, 503), 30, what="agent serving /health")
        right = _basic("prometheus", PASSWORD)
        status, _, page = _get(f"{agent.url}/metrics", right)
        assert status == 200 and b"fodc_agent_scrape_up" in page
        status, headers, body = _get(f"{agent.url}/metrics", _basic("prometheus", "wrong"))
        assert status == 401 and json.loads(body)["error"] == "unauthorized"
        assert headers["WWW-Authenticate"] == 'Basic realm="fodc-agent"'
        assert _get(f"{agent.url}/metrics", _basic("nobody", PASSWORD))[0] == 401
        assert _get(f"{agent.url}/metrics")[0] == 401
        assert _get(f"{agent.url}/metrics", "Basic !!!not-base64")[0] == 401
        assert _get(f"{agent.url}/metrics", f"Bearer {TOKEN}")[0] == 401  # no tokens file: bearer is not on
        assert _get(f"{agent.url}/nothing-here")[0] == 401  # no path tells an anonymous caller anything
        assert http_get(f"{agent.url}/health", 5)[0] in (200, 503)  # probes need no credentials
        page = _get(f"{agent.url}/metrics", right)[2]
        assert _self_metric(page, "fodc_agent_http_auth_failures_total", "wrong") == 2
        assert _self_metric(page, "fodc_agent_http_auth_failures_total", "missing") == 2
        assert _self_metric(page, "fodc_agent_http_auth_failures_total", "malformed") == 2
        assert "HTTP request refused" in agent.log()
        assert PASSWORD not in agent.log() and "wrong" not in re.findall(r"Authorization\S*", agent.log())
    finally:
        agent.stop()


def test_bearer_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    tokens = _tokens_file(tmp_path, {"prometheus": TOKEN})
    agent = _agent(tmp_path, "--http-auth-tokens-file", str(tokens))
    try:
        wait_for(lambda: http_get(f"{agent.url}/health", 2)[0] in (200, 503), 30, what="agent serving /health")
        assert _get(f"{agent.url}/metrics", f"Bearer {TOKEN}")[0] == 200
        status, headers, _ = _get(f"{agent.url}/metrics", "Bearer not-the-token")
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="fodc-agent"'
        _tokens_file(tmp_path, {"prometheus": "rotated-token"})  # revoked and replaced without a restart
        os.utime(tokens, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        assert _get(f"{agent.url}/metrics", "Bearer rotated-token")[0] == 200
        assert _get(f"{agent.url}/metrics", f"Bearer {TOKEN}")[0] == 401  # the remembered pass went with it
    finally:
        agent.stop()


def test_a_flood_of_wrong_credentials_is_answered_429_without_checking_them(tmp_path: Path) -> None:
    users = _users_file(tmp_path, {"prometheus": PASSWORD})
    agent = _agent(tmp_path, "--http-auth-users-file", str(users))
    try:
        wait_for(lambda: http_get(f"{agent.url}/health", 2)[0] in (200, 503), 30, what="agent serving /health")
        right = _basic("prometheus", PASSWORD)
        assert _get(f"{agent.url}/metrics", right)[0] == 200  # checked once, then remembered
        started = time.monotonic()
        replies = [_get(f"{agent.url}/metrics", _basic("prometheus", f"guess-{n}")) for n in range(40)]
        elapsed = time.monotonic() - started
        codes = [status for status, _, _ in replies]
        # A burst of 20 refusals, then 429; the budget refills at one a second, so a slow machine sees one more
        # 401 per second the 40 requests took.
        assert codes[:20] == [401] * 20 and set(codes) == {401, 429}, codes
        assert codes.count(401) <= 20 + int(elapsed) + 1, (codes, elapsed)
        assert int(next(headers for status, headers, _ in replies if status == 429)["Retry-After"]) >= 1
        # The scraper whose credential already passed goes on being served meanwhile.
        status, _, page = _get(f"{agent.url}/metrics", right)
        assert status == 200
        assert _self_metric(page, "fodc_agent_http_auth_failures_total", "rate_limited") == codes.count(429)
        assert _self_metric(page, "fodc_agent_http_auth_failures_total", "wrong") == codes.count(401)
        assert agent.log().count("HTTP request refused") == codes.count(401)  # the 429s are not logged
    finally:
        agent.stop()


def test_https_serves_with_the_certificate_and_refuses_plain_http(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "agent-ca")
    server = ca.issue("localhost", server=True)
    agent = _agent(tmp_path, "--http-tls-cert", str(server.cert), "--http-tls-key", str(server.key))
    https = f"https://localhost:{agent.ports['http']}"
    trusted = ssl.create_default_context(cafile=str(ca.path))
    try:
        wait_for(lambda: _get(f"{https}/health", context=trusted, timeout=2)[0] in (200, 503), 30,
                 what=f"agent serving HTTPS ({agent.log()[-2000:]})")
        assert _get(f"{https}/metrics", context=trusted)[0] == 200
        with pytest.raises(urllib.error.URLError):  # a client that does not trust the CA stops at the handshake
            _get(f"{https}/metrics", context=ssl.create_default_context())
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            _get(f"{agent.url}/metrics", timeout=5)  # plain HTTP to an HTTPS port gets no page
        # A client that connects and never says hello holds its thread only for the handshake timeout.
        silent = socket.create_connection(("127.0.0.1", agent.ports["http"]))
        try:
            page = _get(f"{https}/metrics", context=trusted)[2]
        finally:
            silent.close()
        failures = _self_metric(page, "fodc_agent_http_tls_handshake_failures_total", "protocol")
        assert failures >= 1, page.decode()[-3000:]
    finally:
        agent.stop()


def test_mutual_tls_refuses_a_client_without_a_certificate_from_the_client_ca(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "agent-ca")
    server = ca.issue("localhost", server=True)
    client = ca.issue("prometheus", server=False)
    agent = _agent(tmp_path, "--http-tls-cert", str(server.cert), "--http-tls-key", str(server.key),
                   "--http-tls-client-ca", str(ca.path))
    https = f"https://localhost:{agent.ports['http']}"
    with_cert = ssl.create_default_context(cafile=str(ca.path))
    with_cert.load_cert_chain(str(client.cert), str(client.key))
    try:
        wait_for(lambda: _get(f"{https}/health", context=with_cert, timeout=2)[0] in (200, 503), 30,
                 what=f"agent serving HTTPS ({agent.log()[-2000:]})")
        assert _get(f"{https}/metrics", context=with_cert)[0] == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            _get(f"{https}/metrics", context=ssl.create_default_context(cafile=str(ca.path)))
    finally:
        agent.stop()


@pytest.mark.parametrize("option,content,message", [
    ("--http-auth-users-file", "prometheus:plaintext-password\n", ":1: expected 'user:<bcrypt hash>'"),
    ("--http-auth-tokens-file", "prometheus sha256:abc\n", ":1: expected '<name> sha256:<64 hex digits>'"),
    ("--http-auth-tokens-file", "# nothing but a comment\n", "holds no credentials"),
])
def test_a_bad_credentials_file_stops_the_agent_with_exit_2(tmp_path: Path, option: str, content: str,
                                                           message: str) -> None:
    path = tmp_path / "credentials"
    path.write_text(content)
    path.chmod(0o600)
    result = subprocess.run([str(BIN / "fodc-agent"), "--config", "/dev/null", "--node-role", "liaison", option,
                             str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr and option in result.stderr, result.stderr


def test_prometheus_scrapes_the_agent_over_https_with_basic_auth_and_with_a_bearer_token(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "agent-ca")
    server = ca.issue("localhost", server=True)
    users = _users_file(tmp_path, {"prometheus": PASSWORD})
    tokens = _tokens_file(tmp_path, {"prometheus": TOKEN})
    agent = _agent(tmp_path, "--http-tls-cert", str(server.cert), "--http-tls-key", str(server.key),
                   "--http-auth-users-file", str(users), "--http-auth-tokens-file", str(tokens))
    (tmp_path / "password").write_text(PASSWORD)
    (tmp_path / "token").write_text(TOKEN)
    target = f"localhost:{agent.ports['http']}"
    config = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: agents-basic
    scheme: https
    tls_config: {{ca_file: {ca.path}}}
    basic_auth: {{username: prometheus, password_file: {tmp_path / 'password'}}}
    static_configs: [{{targets: ['{target}']}}]
  - job_name: agents-bearer
    scheme: https
    tls_config: {{ca_file: {ca.path}}}
    authorization: {{type: Bearer, credentials_file: {tmp_path / 'token'}}}
    static_configs: [{{targets: ['{target}']}}]
  - job_name: agents-wrong
    scheme: https
    tls_config: {{ca_file: {ca.path}}}
    basic_auth: {{username: prometheus, password: not-it}}
    static_configs: [{{targets: ['{target}']}}]
"""
    prometheus, url = start_prometheus(tmp_path, config)
    try:
        def health() -> dict[str, str]:
            targets = json.loads(http_get(f"{url}/api/v1/targets", 5)[2])["data"]["activeTargets"]
            return {t["labels"]["job"]: t["health"] for t in targets}

        wait_for(lambda: health() == {"agents-basic": "up", "agents-bearer": "up", "agents-wrong": "down"}, 60,
                 what="basic and bearer jobs up, the wrong password down")
        query = urllib.parse.quote('fodc_agent_scrape_up{job=~"agents-basic|agents-bearer"}')
        result = json.loads(http_get(f"{url}/api/v1/query?query={query}", 5)[2])["data"]["result"]
        assert {r["metric"]["job"] for r in result} == {"agents-basic", "agents-bearer"}
    finally:
        prometheus.stop()
        agent.stop()
