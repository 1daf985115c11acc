"""TLS between agents and proxy (mutual, with a throwaway CA), HTTPS on the API, certificate reload."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import urllib.request

import grpc
import pytest
from certs import Authority
from cryptography import x509
from procs import BIN, start_agent, start_proxy, wait_for
from rogue import RogueAgent, registration

pytest.importorskip("cryptography", reason="the cryptography package makes the test certificates")


@pytest.fixture
def pki(tmp_path):
    ca = Authority(tmp_path, "cluster")
    return {"ca": ca, "proxy": ca.issue("proxy", server=True), "agent": ca.issue("trusted", server=False),
            "rogue_ca": (rogue := Authority(tmp_path, "rogue")), "rogue_agent": rogue.issue("intruder", server=False)}


def mtls_proxy(tmp_path, daemons, pki, *args):
    proxy = start_proxy(tmp_path, "--grpc-tls-cert", str(pki["proxy"].cert), "--grpc-tls-key", str(pki["proxy"].key),
                        "--grpc-tls-client-ca", str(pki["ca"].path), *args)
    daemons.append(proxy)
    return proxy


def tls_agent(tmp_path, daemons, proxy, node_id, ca, cert=None):
    args = ["--proxy-tls-ca", str(ca)]
    if cert is not None:
        args += ["--proxy-tls-cert", str(cert.cert), "--proxy-tls-key", str(cert.key)]
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", node_id, *args)
    daemons.append(agent)
    return agent


def test_with_mutual_tls_only_agents_with_a_cluster_certificate_register(tmp_path, daemons, pki):
    proxy = mtls_proxy(tmp_path, daemons, pki)
    tls_agent(tmp_path, daemons, proxy, "trusted", pki["ca"].path, pki["agent"])
    no_cert = tls_agent(tmp_path, daemons, proxy, "no-cert", pki["ca"].path)
    rogue = tls_agent(tmp_path, daemons, proxy, "rogue", pki["ca"].path, pki["rogue_agent"])
    wait_for(lambda: [n["node_id"] for n in proxy.cluster()] == ["trusted"], what="the trusted agent online")
    for refused in (no_cert, rogue):
        wait_for(lambda r=refused: "proxy stream ended; reconnecting" in r.log(), what="a refused agent says so")
        assert "UNAVAILABLE" in refused.log() and "TLS: the proxy refuses certificates" in refused.log()
    assert [n["node_id"] for n in proxy.cluster()] == ["trusted"]
    assert "tls=mutual" in proxy.log()
    # gRPC's own line on the proxy side, one per refused handshake
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in proxy.log() and "CERTIFICATE_VERIFY_FAILED" in proxy.log()


def test_with_mutual_tls_a_certificate_registers_only_the_node_it_names(tmp_path, daemons, pki):
    proxy = mtls_proxy(tmp_path, daemons, pki)
    impostor = tls_agent(tmp_path, daemons, proxy, "someone-else", pki["ca"].path, pki["agent"])
    wait_for(lambda: "proxy refused registration" in impostor.log(), what="the impostor refused")
    assert "certificate names" in impostor.log() and "not node id 'someone-else'" in impostor.log()
    assert proxy.cluster() == []


def test_with_mutual_tls_a_stolen_stream_secret_is_useless_with_another_nodes_certificate(tmp_path, daemons, pki):
    proxy = mtls_proxy(tmp_path, daemons, pki)

    def channel(cert):
        credentials = grpc.ssl_channel_credentials(pki["ca"].path.read_bytes(), cert.key.read_bytes(),
                                                   cert.cert.read_bytes())
        return grpc.secure_channel(proxy.grpc_addr, credentials, options=[("grpc.use_local_subchannel_pool", 1)])
    holder = RogueAgent(proxy.grpc_addr, channel(pki["agent"]))  # the real node's certificate: "trusted"
    thief = RogueAgent(proxy.grpc_addr, channel(pki["ca"].issue("other-node", server=False)))
    try:
        assert holder.register(registration("trusted")).accepted
        thief.agent_id, thief.secret = holder.agent_id, holder.secret  # id and secret both known to the thief
        stolen = thief.serve_metrics(lambda request: [])
        assert stolen.wait_ended(10)
        assert stolen.code == grpc.StatusCode.PERMISSION_DENIED and "does not name node" in stolen.details
        own = holder.serve_metrics(lambda request: [])
        assert not own.wait_ended(2)  # the holder's own stream, same secret and its certificate, stays
    finally:
        thief.close()
        holder.close()


def test_an_agent_that_does_not_trust_the_proxy_certificate_does_not_connect(tmp_path, daemons, pki):
    proxy = mtls_proxy(tmp_path, daemons, pki)
    wrong = tls_agent(tmp_path, daemons, proxy, "wrong-ca", pki["rogue_ca"].path, pki["agent"])
    wait_for(lambda: "proxy stream ended; reconnecting" in wrong.log(), what="the agent reports the failure")
    assert proxy.cluster() == []


def test_an_insecure_agent_cannot_talk_to_a_tls_proxy(tmp_path, daemons, pki):
    proxy = mtls_proxy(tmp_path, daemons, pki)
    plain = start_agent(tmp_path, proxy.grpc_addr, "liaison", "plain")
    daemons.append(plain)
    wait_for(lambda: "proxy stream ended; reconnecting" in plain.log(), what="the plain agent reports the failure")
    assert proxy.cluster() == []


def _served_serial(port: int, ca) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_a_renewed_proxy_certificate_is_served_without_a_restart(tmp_path, daemons, pki):
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(pki["proxy"].cert, cert)
    shutil.copy(pki["proxy"].key, key)
    proxy = start_proxy(tmp_path, "--grpc-tls-cert", str(cert), "--grpc-tls-key", str(key))
    daemons.append(proxy)
    assert _served_serial(proxy.ports["grpc"], pki["ca"].path) == pki["proxy"].serial
    renewed = pki["ca"].issue("proxy-renewed", server=True)
    shutil.copy(renewed.key, key)
    shutil.copy(renewed.cert, cert)
    wait_for(lambda: _served_serial(proxy.ports["grpc"], pki["ca"].path) == renewed.serial,
             what="the renewed certificate served")
    agent = tls_agent(tmp_path, daemons, proxy, "after-renewal", pki["ca"].path)
    wait_for(lambda: proxy.cluster(status="online"), what="an agent registers over the renewed certificate")
    assert agent.proc.poll() is None


def test_https_api(tmp_path, daemons, pki):
    proxy = start_proxy(tmp_path, "--http-tls-cert", str(pki["proxy"].cert), "--http-tls-key",
                        str(pki["proxy"].key), wait=False)
    daemons.append(proxy)
    context = ssl.create_default_context(cafile=str(pki["ca"].path))

    def health():
        with urllib.request.urlopen(f"https://localhost:{proxy.ports['http']}/health", context=context,
                                    timeout=2) as resp:
            return json.load(resp)["status"] == "ok"
    wait_for(health, 30, what="HTTPS /health")
    # fodc --proxy host:port --ca CA: https is assumed once a CA is given, and the certificate is checked.
    fodc = [str(BIN / "fodc"), "--proxy", f"localhost:{proxy.ports['http']}", "cluster"]
    verified = subprocess.run([*fodc[:3], "--ca", str(pki["ca"].path), *fodc[3:]], capture_output=True, text=True,
                              timeout=30)
    assert verified.returncode == 0 and "0 online" in verified.stdout, verified.stderr
    rogue = subprocess.run([*fodc[:3], "--ca", str(pki["rogue_ca"].path), *fodc[3:]], capture_output=True,
                           text=True, timeout=30)
    assert rogue.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in rogue.stderr, rogue.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--grpc-tls-cert", "/etc/hostname"], "--grpc-tls-key go together"),
    (["--grpc-tls-client-ca", "/x.pem"], "needs --grpc-tls-cert"),
    (["--grpc-tls-cert", "/nonexistent.crt", "--grpc-tls-key", "/nonexistent.key"], "cannot read /nonexistent.crt"),
    (["--http-tls-cert", "/etc/hostname", "--http-tls-key", "/etc/hostname"], "is not a PEM file"),
])
def test_bad_proxy_tls_flags_stop_with_one_line(args, message):
    result = subprocess.run([str(BIN / "fodc-proxy"), "--config", "/dev/null", *args], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_bad_agent_tls_flags_stop_with_one_line():
    result = subprocess.run([str(BIN / "fodc-agent"), "--config", "/dev/null", "--node-role", "liaison",
                             "--proxy-tls-cert", "/x.crt"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "need --proxy-tls-ca" in result.stderr
