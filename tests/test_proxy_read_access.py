"""The proxy's default access: reads of what can carry a node's secrets (incident bundles, crash reports,
profiles, configuration, MCP) need a viewer token; cluster status, /metrics, /metrics-windows and /health stay
open for dashboards and Prometheus; `--auth control` is the documented switch that opens every read again
(issue 23, "Least privilege"). Real proxy processes, the real `fodc` CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from procs import BIN, http_json, start_proxy

VIEWER = "viewer-token-8d2e1f"
OPERATOR = "operator-token-73aa0c"
SENSITIVE_READS = ("/cluster/config", "/cluster/config/drift", "/cluster/config/history?node_id=n1",
                   "/incidents", "/crashes", "/profiles", "/diagnostics")
OPEN_READS = ("/health", "/cluster", "/metrics", f"/metrics-windows?start={int(time.time()) - 60}", "/whoami")


def _tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"grafana viewer sha256:{hashlib.sha256(VIEWER.encode()).hexdigest()}\n"
                    f"ops operator sha256:{hashlib.sha256(OPERATOR.encode()).hexdigest()}\n")
    path.chmod(0o640)
    return path


def _status(proxy, path: str, token: str | None = None) -> int:
    request = urllib.request.Request(proxy.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_by_default_sensitive_reads_need_a_viewer_token_and_prometheus_paths_stay_open(tmp_path: Path,
                                                                                     daemons) -> None:
    proxy = start_proxy(tmp_path, "--auth-tokens-file", str(_tokens(tmp_path)))  # no --auth: the default
    daemons.append(proxy)
    assert http_json(f"{proxy.url}/health")[1]["auth"] == "sensitive"
    for path in SENSITIVE_READS:
        status, body = http_json(proxy.url + path)
        assert status == 401 and body["error"] == "unauthorized", (path, body)
        assert _status(proxy, path, "not-a-token") == 401, path
        assert _status(proxy, path, VIEWER) in (200, 404), path  # 404: no node n1 on this empty proxy
    assert _status(proxy, "/incidents/n1/i1/bundle") == 401
    assert _status(proxy, "/incidents/n1/i1/bundle", VIEWER) == 404
    for path in OPEN_READS:
        assert _status(proxy, path) == 200, path
    # Control actions still need an operator: a viewer is forbidden, not merely unknown.
    assert http_json(f"{proxy.url}/diagnostics", "POST", {"action": "heap"},
                     headers={"Authorization": f"Bearer {VIEWER}"})[0] == 403
    # MCP reads through the same API: without a token it gets no further than the door.
    assert http_json(f"{proxy.url}/mcp", "POST", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})[0] == 401


def test_auth_control_opens_every_read_again(tmp_path: Path, daemons) -> None:
    proxy = start_proxy(tmp_path, "--auth", "control", "--auth-tokens-file", str(_tokens(tmp_path)))
    daemons.append(proxy)
    for path in SENSITIVE_READS + OPEN_READS:
        assert _status(proxy, path) in (200, 404), path
    assert http_json(f"{proxy.url}/diagnostics", "POST", {"action": "heap"})[0] == 401


def test_the_cli_reads_with_a_token_and_says_how_without_one(tmp_path: Path, daemons) -> None:
    proxy = start_proxy(tmp_path, "--auth-tokens-file", str(_tokens(tmp_path)))
    daemons.append(proxy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FODC_")}

    def fodc(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "--json", *args], capture_output=True,
                              text=True, timeout=60, env={**env, **extra})

    refused = fodc("incidents")
    assert refused.returncode != 0 and "401" in refused.stderr and "FODC_TOKEN" in refused.stderr, refused.stderr
    listed = fodc("incidents", FODC_TOKEN=VIEWER)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["incidents"] == []
    token_file = tmp_path / "viewer-token"
    token_file.write_text(VIEWER + "\n")
    assert fodc("--token-file", str(token_file), "config", "drift").returncode == 0
    assert fodc("cluster").returncode == 0  # cluster status stays readable without a token
