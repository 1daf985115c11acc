"""Slow, silent and malformed HTTP clients against the real gunicorn-served proxy (issue 16, items 3 and 7)."""

from __future__ import annotations

import json
import time

import pytest
from attack import PARTIAL_HEADER, held_sockets, raise_fd_limit, raw_request, still_open
from procs import http_get, start_proxy, wait_for

CLIENT_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    raise_fd_limit()
    proxy = start_proxy(tmp_path_factory.mktemp("slow"), "--http-client-timeout", f"{CLIENT_TIMEOUT_S}s",
                        "--http-threads", "4")
    yield proxy
    proxy.stop()


def _answers_quickly(proxy, path: str) -> float:
    started = time.monotonic()
    status, _, _ = http_get(f"{proxy.url}{path}", timeout=5)
    assert status == 200
    return time.monotonic() - started


def test_partial_headers_and_silent_sockets_do_not_block_the_api(proxy):
    port = proxy.ports["http"]
    with held_sockets(port, 16, PARTIAL_HEADER) as partial, held_sockets(port, 1000) as silent:
        assert len(partial) == 16 and len(silent) >= 900
        for _ in range(3):
            assert _answers_quickly(proxy, "/health") < 5
            assert _answers_quickly(proxy, "/cluster") < 5
        # The held sockets are closed once they exceed the client timeout, not kept for ever.
        wait_for(lambda: still_open(partial) == 0 and still_open(silent) == 0, CLIENT_TIMEOUT_S + 10,
                 what="slow sockets closed")
    page = http_get(f"{proxy.url}/metrics", timeout=10)[2].decode()
    assert 'fodc_proxy_http_connections_closed_total{reason="head_timeout"}' in page


def test_more_sockets_than_the_connection_cap_still_let_a_real_client_in(tmp_path):
    raise_fd_limit()
    small = start_proxy(tmp_path, "--http-max-connections", "50", "--http-client-timeout", "60s")
    try:
        with held_sockets(small.ports["http"], 60, PARTIAL_HEADER):
            assert _answers_quickly(small, "/health") < 5
    finally:
        small.stop()


def test_a_body_that_never_comes_frees_its_thread(proxy):
    port = proxy.ports["http"]
    promise = (b"POST /diagnostics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 1000\r\n\r\n{")
    with held_sockets(port, 8, promise) as stalled:  # twice the proxy's 4 threads
        assert len(stalled) == 8
        wait_for(lambda: still_open(stalled) == 0, CLIENT_TIMEOUT_S * 3 + 10, what="stalled bodies answered")
    assert _answers_quickly(proxy, "/health") < 5


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 70_000 + b"\r\n\r\n", 431),
    (b"BR\x00KEN / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
])
def test_errors_gunicorn_answers_itself_are_json(proxy, request_bytes, status):
    response = raw_request(proxy.ports["http"], request_bytes)
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] and body["message"]


LONG_NUMBER = "9" * 5000


@pytest.mark.parametrize("path", [
    "/diagnostics?limit=%C2%B2",  # '²': str.isdigit() says yes, int() says no
    f"/diagnostics?limit={LONG_NUMBER}",  # int() refuses more than 4,300 digits
    "/diagnostics?limit=%D9%A1",  # an Arabic-Indic one
    "/cluster/config/history?node_id=n&limit=%C2%B2",
    "/incidents/n/i/view?top=%C2%B2",
    "/metrics-windows?step=inf",
    "/metrics-windows?step=nan",
    f"/metrics-windows?step={LONG_NUMBER}",
    f"/metrics-windows?start={LONG_NUMBER}",
    "/metrics-windows?step=1_0",
])
def test_numbers_in_the_query_are_parsed_strictly(proxy, path):
    status, _, body = http_get(f"{proxy.url}{path}", timeout=10)
    assert status == 400, body[:300]
    assert json.loads(body)["error"] == "bad_request"


def test_a_kept_alive_connection_serves_several_requests_and_its_next_head_is_bounded_too(proxy):
    import socket

    with socket.create_connection(("127.0.0.1", proxy.ports["http"]), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b'"status"' not in answer or not answer.rstrip().endswith(b"}"):
                piece = sock.recv(65536)
                assert piece, answer
                answer += piece
            assert answer.startswith(b"HTTP/1.1 200")
        sock.sendall(PARTIAL_HEADER)  # the next request never completes
        assert _answers_quickly(proxy, "/health") < 5
        sock.settimeout(CLIENT_TIMEOUT_S + 10)
        assert sock.recv(1) == b""  # closed by the proxy after the client timeout


def test_with_https_half_handshakes_and_half_heads_do_not_block_the_api(tmp_path):
    """With HTTPS the loop also does the TLS handshake, so neither a stalled handshake nor a stalled head
    (after a complete handshake) holds a worker thread."""
    import socket
    import ssl
    import urllib.request

    from certs import Authority

    authority = Authority(tmp_path, "cluster")
    server = authority.issue("proxy", server=True)
    raise_fd_limit()
    secure = start_proxy(tmp_path, "--http-tls-cert", str(server.cert), "--http-tls-key", str(server.key),
                         "--http-threads", "4", "--http-client-timeout", f"{CLIENT_TIMEOUT_S}s", wait=False,
                         name="https")
    context = ssl.create_default_context(cafile=str(authority.path))

    def health_seconds() -> float:
        started = time.monotonic()
        with urllib.request.urlopen(f"https://localhost:{secure.ports['http']}/health", context=context,
                                    timeout=5) as response:
            assert json.load(response)["status"] == "ok"
        return time.monotonic() - started

    try:
        wait_for(lambda: health_seconds() < 5, 30, what="HTTPS /health")
        tls_heads = []
        try:
            for _ in range(8):  # twice the threads: complete handshakes, then half a request head
                raw = socket.create_connection(("127.0.0.1", secure.ports["http"]), timeout=5)
                tls = context.wrap_socket(raw, server_hostname="localhost")
                tls.sendall(PARTIAL_HEADER)
                tls_heads.append(tls)
            with held_sockets(secure.ports["http"], 8, b"\x16\x03\x01\x02\x00\x01"):  # half a ClientHello
                for _ in range(3):
                    assert health_seconds() < 5
        finally:
            for tls in tls_heads:
                tls.close()
    finally:
        secure.stop()
