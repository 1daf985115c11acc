"""Tokens without hand-editing: `fodc token add|list|revoke` on the tokens file, and a running proxy that
picks the change up by itself (and at once on SIGHUP, without replacing its worker), saying so in its log."""

from __future__ import annotations

import signal
import subprocess

from procs import BIN, http_json, start_agent, start_proxy, wait_for

from fodc.proxy.auth import load_tokens


def fodc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=30)


def test_add_list_revoke_edit_the_file_and_refuse_mistakes(tmp_path):
    tokens = tmp_path / "tokens"
    added = fodc("token", "add", "ops", "--role", "operator", "--file", str(tokens))
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert len(secret) >= 40 and "shown only this once" in added.stderr and secret not in tokens.read_text()
    assert oct(tokens.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in load_tokens(str(tokens)).values()] == ["ops"]
    assert fodc("token", "add", "viewer-1", "--role", "viewer", "--file", str(tokens)).returncode == 0
    listed = fodc("token", "list", "--file", str(tokens))
    assert [line.split()[:2] for line in listed.stdout.splitlines()[1:]] == [["ops", "operator"],
                                                                             ["viewer-1", "viewer"]]
    for bad in (("add", "ops", "--role", "viewer"), ("add", "x y", "--role", "viewer"), ("add", "nobody"),
                ("revoke", "ghost"), ("revoke",)):
        refused = fodc("token", *bad, "--file", str(tokens))
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, (bad, refused.stderr)
    assert fodc("token", "revoke", "ops", "--file", str(tokens)).returncode == 0
    assert [p.name for p in load_tokens(str(tokens)).values()] == ["viewer-1"]


def _capture(proxy, secret):
    return http_json(f"{proxy.url}/cluster/config/capture", "POST", {"scope": "all"},
                     headers={"Authorization": f"Bearer {secret}"})[0]


def test_the_proxy_reloads_the_tokens_file_on_change_and_on_sighup(tmp_path, daemons):
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    tokens.chmod(0o640)
    proxy = start_proxy(tmp_path, "--auth", "control", "--auth-tokens-file", str(tokens))
    daemons.append(proxy)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-t"))
    wait_for(lambda: proxy.cluster(status="online"), what="agent online")
    secret = fodc("token", "add", "ops", "--role", "operator", "--file", str(tokens)).stdout.strip()
    wait_for(lambda: _capture(proxy, secret) == 200, 15, what="the new token accepted")
    assert "tokens file reloaded" in proxy.log() and "file changed" in proxy.log()

    worker = proxy.worker_pid()
    proxy.signal(signal.SIGHUP)
    wait_for(lambda: "why=SIGHUP" in proxy.log(), 15, what="a reload on SIGHUP")
    assert proxy.worker_pid() == worker and proxy.cluster(status="online")  # same worker, agents kept

    assert fodc("token", "revoke", "ops", "--file", str(tokens)).returncode == 0
    wait_for(lambda: _capture(proxy, secret) == 401, 15, what="the revoked token refused")

    secret = fodc("token", "add", "ops2", "--role", "operator", "--file", str(tokens)).stdout.strip()
    wait_for(lambda: _capture(proxy, secret) == 200, 15, what="the second token accepted")
    tokens.write_text("this line is not a token\n")  # a broken file keeps the tokens already loaded
    wait_for(lambda: "tokens file not reloaded" in proxy.log(), 15, what="the broken file noticed")
    assert _capture(proxy, secret) == 200
