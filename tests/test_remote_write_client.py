"""One send to a receiver (fodc/remotewrite/client.py) against a real HTTP server on loopback: what counts as sent,
retried or dropped, and that no receiver can hold a send beyond its deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from receivers import ScriptedReceiver

from fodc.remotewrite.client import DROP, RETRY, SENT, Auth, Client, check_url, endpoint_name
from fodc.remotewrite.encode import Series, compress, decode, encode


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    with ScriptedReceiver() as server:
        yield server


BODY = compress(encode([Series((("__name__", "up"), ("job", "x")), [1000, 2000], [1.0, 0.0])]))


def test_a_2xx_is_sent_with_the_protocol_headers_and_the_body_intact(receiver):
    outcome = Client(receiver.url, timeout_s=5, auth=Auth(bearer_token="s3cret")).post(BODY)
    assert outcome.kind == SENT and outcome.status == 204
    headers, body = receiver.seen[0]
    assert headers["Content-Encoding"] == "snappy" and headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["Authorization"] == "Bearer s3cret"
    assert decode(body)[0].values == [1.0, 0.0]


def test_basic_auth_header():
    client = Client("http://127.0.0.1:1/w", timeout_s=1, auth=Auth(basic_user="agent", basic_password="pw"))
    assert client.headers["Authorization"] == "Basic YWdlbnQ6cHc="


@pytest.mark.parametrize(("status", "kind"), [(400, DROP), (401, DROP), (404, DROP), (413, DROP), (429, RETRY),
                                              (500, RETRY), (503, RETRY)])
def test_4xx_other_than_429_is_dropped_and_5xx_or_429_retried(receiver, status, kind):
    receiver.script = (status, b"out of order sample\nsecond line", {"Retry-After": "7"})
    outcome = Client(receiver.url, timeout_s=5).post(BODY)
    assert (outcome.kind, outcome.status) == (kind, status)
    assert outcome.message == f"HTTP {status}: out of order sample second line"
    if kind == RETRY:
        assert outcome.retry_after_s == 7.0


@pytest.mark.parametrize("script", ["hang", "drip"])
def test_a_receiver_that_hangs_or_trickles_costs_one_deadline_then_a_retry(receiver, script):
    receiver.script = script
    started = time.monotonic()
    outcome = Client(receiver.url, timeout_s=1.0).post(BODY)
    assert outcome.kind == RETRY and outcome.status is None and "no answer within 1s" in outcome.message
    assert time.monotonic() - started < 5  # the deadline is the whole send, not one read


def test_a_closed_port_is_retried():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = Client(f"http://127.0.0.1:{port}/w", timeout_s=2).post(BODY)
    assert outcome.kind == RETRY and "ConnectionRefused" in outcome.message


def test_the_connection_is_reused_after_a_huge_answer_is_cut(receiver):
    receiver.script = (500, b"x" * 100_000, {})
    client = Client(receiver.url, timeout_s=5)
    assert len(client.post(BODY).message) < 400
    receiver.script = (204, b"", {})
    assert client.post(BODY).kind == SENT


@pytest.mark.parametrize(("url", "reason"), [("ftp://h/w", "not an http"), ("http://u:p@h/w", "credentials"),
                                             ("http://h:99999/w", "not a URL"), ("http:///w", "not an http"),
                                             ("http://h/w x", "spaces"), ("http://h/w\r\nX-Evil: 1", "control"),
                                             ("http://h/" + "w" * 3000, "longer than")])
def test_urls_that_cannot_be_used_are_refused(url, reason):
    with pytest.raises(ValueError, match=reason):
        check_url(url)


def test_the_receiver_is_named_without_its_query():
    assert endpoint_name("https://mimir:443/api/v1/push?tenant=a") == "https://mimir:443/api/v1/push"


def test_credentials_a_receiver_quotes_back_are_not_logged(receiver):
    receiver.script = (400, b'cannot find the provided auth token "Bearer s3cret-t0ken" in config', {})
    outcome = Client(receiver.url, timeout_s=5, auth=Auth(bearer_token="s3cret-t0ken")).post(BODY)
    assert outcome.message == 'HTTP 400: cannot find the provided auth token "<redacted>" in config'
