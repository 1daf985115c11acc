"""Refused and malformed control requests: bounded, rotated, rate-limited audit (issue 16, items 4 and 5)."""

from __future__ import annotations

import json
import subprocess

import pytest
from attack import post, raw_request
from procs import BIN, http_get, start_proxy, wait_for

from fodc.proxy.auth import hash_token

AUDIT_MAX = 64 * 1024


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    tokens = tmp / "tokens"
    tokens.write_text(f"otto operator sha256:{hash_token('operate-me')}\n")
    tokens.chmod(0o600)
    proxy = start_proxy(tmp, "--auth", "control", "--auth-tokens-file", str(tokens),
                        "--audit-log-max-bytes", str(AUDIT_MAX), name="secure")
    yield proxy, tmp
    proxy.stop()


def _audit_files(tmp):
    return sorted(tmp.glob("secure-audit.log*"))


def _audit_lines(tmp):
    return [json.loads(line) for path in _audit_files(tmp) for line in path.read_text().splitlines()]


OPERATOR = {"Authorization": "Bearer operate-me"}


@pytest.mark.parametrize("body, status", [
    (b"[" * 100_000 + b"]" * 100_000, 400),        # nested far deeper than the parser's recursion limit
    (b'{"action": "heap", "x": "' + b"a" * (2 << 20) + b'"}', 413),  # over the 1 MiB body limit
    (b"\xff\xfe not json", 400),
])
def test_an_operators_malformed_body_is_a_4xx_and_audited(secured, body, status):
    proxy, tmp = secured
    before = len(_audit_lines(tmp))
    response = post(proxy.ports["http"], "/diagnostics", body, OPERATOR, timeout=20)
    assert response.status == status, response.body[:300]
    assert response.json()["message"]
    lines = _audit_lines(tmp)[before:]
    assert [(e["who"], e["status"]) for e in lines] == [("otto", status)]


def test_a_huge_content_length_is_refused_and_audited_without_reading_it(secured):
    proxy, tmp = secured
    before = len(_audit_lines(tmp))
    response = raw_request(proxy.ports["http"], b"POST /diagnostics HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{")
    assert response.status == 401
    entry = _audit_lines(tmp)[before]
    assert entry["status"] == 401 and entry["body_bytes"] == 99999999999 and entry["request"] is None


def test_a_flood_of_refused_megabyte_posts_stays_bounded_in_the_audit_log(secured):
    proxy, tmp = secured
    body = b'{"action": "heap", "pad": "' + b"A" * (1 << 20) + b'"}'
    statuses = [post(proxy.ports["http"], "/diagnostics", body, timeout=20).status for _ in range(60)]
    assert set(statuses) == {401, 429} and statuses[0] == 401 and statuses[-1] == 429
    lines = _audit_lines(tmp)
    assert all("AAAA" not in json.dumps(e) for e in lines)  # a body never reaches the log
    refused = [e for e in lines if e["who"] == "anonymous" and e["body_bytes"] and e["body_bytes"] > 1 << 20]
    assert 0 < len(refused) <= 25  # the burst, then 429s that are only counted
    assert sum(p.stat().st_size for p in _audit_files(tmp)) < 10_000_000
    page = http_get(f"{proxy.url}/metrics", timeout=10)[2].decode()
    assert 'fodc_proxy_http_refused_total{status="429"}' in page


def test_the_audit_log_is_rotated_at_its_size(tmp_path):
    from fodc.proxy.auth import AUDIT_KEEP, AuditLog

    log = AuditLog(str(tmp_path / "audit.log"), max_bytes=4096)
    for number in range(2000):
        log.record({"who": "x" * 1000, "n": number})
    files = sorted(tmp_path.iterdir())
    assert len(files) == AUDIT_KEEP + 1 and all(p.stat().st_size <= 4096 for p in files)
    assert json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])["n"] == 1999


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_tokens_file_others_may_write_stops_the_proxy_with_one_line(tmp_path, mode):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"otto operator sha256:{hash_token('operate-me')}\n")
    tokens.chmod(mode)
    result = subprocess.run([str(BIN / "fodc-proxy"), "--config", "/dev/null", "--auth-tokens-file", str(tokens)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"chmod go-w {tokens}" in lines[0] and f"{mode:04o}" in lines[0]


def test_a_tokens_file_made_writable_after_start_is_not_reloaded(secured):
    proxy, tmp = secured
    tokens = tmp / "tokens"
    tokens.chmod(0o666)
    try:
        wait_for(lambda: "writable by group or others" in proxy.log(), 15, what="the refusal in the log")
        assert post(proxy.ports["http"], "/diagnostics", b'{"action": "nope"}', OPERATOR).status == 400  # still known
    finally:
        tokens.chmod(0o600)
