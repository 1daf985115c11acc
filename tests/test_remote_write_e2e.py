"""Remote-write end to end: a real agent scraping a simulated node pushes to real receivers on loopback, and
what the receivers hold is compared, sample by sample, with what the agent's window holds (read through the
proxy's /metrics-windows, labels as the proxy adds them).

Minutes are cheap here: the agent scrapes every 200 ms, so one second of test stands for a minute of a node
scraped every 15 s (the same number of scrapes); "a receiver outage of several minutes" is several seconds
with 25+ scrapes missed, and an incident window of 5 minutes is 5 seconds."""

from __future__ import annotations

import base64
import json
import signal
import ssl
import time

import pytest
from procs import free_port, free_ports, http_get, http_json, start_agent, start_proxy, wait_for
from receivers import (
    VM_RELATIVE_PRECISION,
    Samples,
    ScriptedReceiver,
    have_victoria_metrics,
    prometheus_raw,
    start_prometheus_receiver,
    start_victoria_metrics,
    start_vmauth,
    vm_export,
    vm_get,
    wait_until_holds,
    window_samples,
)

from fodc.remotewrite.plan import on_grid
from fodc.sim.launcher import start_sim_node

pytestmark = pytest.mark.skipif(not have_victoria_metrics(), reason="needs Debian's victoria-metrics (dev/bootstrap)")

FAMILY = "banyandb_system_cpu_state"
FAST = ("--scrape-interval", "200ms", "--scrape-timeout", "200ms")


@pytest.fixture
def node():
    sim = start_sim_node("datanode-hot", free_port(), series=200, seed=7)
    yield sim
    sim.stop()


def self_metric(agent, name: str, receiver: str = "") -> float:
    """The sum of the agent's self-metric `name` (over its labels; of one receiver's series if given)."""
    text = http_get(f"{agent.url}/metrics")[2].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and (not receiver or f'receiver="{receiver}"' in line))


def keep(truth: Samples, wanted) -> Samples:  # noqa: ANN001 (a predicate on (series points, timestamp))
    return {k: {t: v for t, v in points.items() if wanted(points, t)} for k, points in truth.items()}


def grid(points: dict[int, float], t: int, interval_ms: int) -> bool:
    """Whether the scrape at t is the one the regular push sends (the family is in every scrape of the node)."""
    earlier = [s for s in points if s < t]
    return on_grid(max(earlier) if earlier else None, t, interval_ms)


def test_live_samples_reach_victoria_metrics_exactly_as_the_window_holds_them(tmp_path, daemons, node):
    vm, vm_url = start_victoria_metrics(tmp_path)
    daemons.append(vm)
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "rw-live", "--node-metrics-url", node.metrics_url,
                        *FAST, "--remote-write-url", f"{vm_url}/api/v1/write",
                        "--remote-write-state-file", str(tmp_path / "rw.json"), labels="zone=a")
    daemons.append(agent)
    wait_for(lambda: proxy.cluster(node_id="rw-live", status="online"), 30, what="agent online")
    truth = wait_for(lambda: (w := window_samples(proxy.url, FAMILY)) and min(map(len, w.values())) >= 10 and w,
                     30, what="ten scrapes in the window")
    newest = max(max(points) for points in truth.values())
    assert all('"node_id":"rw-live"' in k and '"node_zone":"a"' in k for k in truth)
    wait_until_holds(truth, lambda: vm_export(vm_url, f'{{__name__="{FAMILY}"}}', end_ms=newest),
                     VM_RELATIVE_PRECISION, f"victoria-metrics holding the window's samples up to {newest}")
    assert self_metric(agent, "fodc_agent_remote_write_samples_sent_total") > 0
    assert self_metric(agent, "fodc_agent_remote_write_samples_dropped_total") == 0


def test_an_incident_during_a_receiver_outage_reaches_both_receivers_at_full_resolution(tmp_path, daemons, node):
    """Regular push every 1 s (one scrape in five); both receivers go down for ~6 s, an incident fires in the
    middle, the agent is restarted while they are down; once they are back, each holds every scrape of the
    incident window and one scrape per second elsewhere, exactly as the window holds them."""
    vm_port, prom_port, http_port, node_port = free_ports(4)
    vm, vm_url = start_victoria_metrics(tmp_path, port=vm_port)
    prom, prom_url = start_prometheus_receiver(tmp_path, port=prom_port)
    proxy = start_proxy(tmp_path)
    daemons.extend([vm, prom, proxy])
    args = ["--node-metrics-url", node.metrics_url, *FAST, "--remote-write-interval", "1s",
            "--remote-write-url", f"{vm_url}/api/v1/write", "--remote-write-url", f"{prom_url}/api/v1/write",
            "--remote-write-state-file", str(tmp_path / "rw.json"), "--remote-write-max-backoff", "500ms",
            "--incident-before", "4s", "--incident-after", "1s"]

    def start():
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "rw-bf", *args, http_port=http_port,
                            node_port=node_port)
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(node_id="rw-bf", status="online"), 30, what="agent online")
        return agent

    agent = start()
    time.sleep(3)
    vm.stop()
    prom.stop()
    time.sleep(2.5)
    agent.signal(signal.SIGUSR2)  # a manual incident while nothing can be sent
    incident = wait_for(lambda: http_json(f"{proxy.url}/incidents?node_id=rw-bf")[1]["incidents"], 20,
                        what="the incident listed")[0]
    start_ms, end_ms = incident["at_ms"] - 4000, incident["at_ms"] + 1000
    time.sleep(1.5)
    assert agent.terminate() == 0  # restarted while the receivers are down: sending resumes from the state file
    agent = start()
    time.sleep(1)
    vm, _ = start_victoria_metrics(tmp_path, port=vm_port)
    prom, _ = start_prometheus_receiver(tmp_path, port=prom_port)
    daemons.extend([vm, prom])
    try:
        wait_for(lambda: self_metric(agent, "fodc_agent_remote_write_backfills_total", ) >= 2
                 and self_metric(agent, "fodc_agent_remote_write_lag_seconds") < 1, 60, interval=0.5,
                 what="both receivers caught up, the incident window sent")
    except AssertionError:
        print([line for line in http_get(f"{agent.url}/metrics")[2].decode().splitlines() if "remote_write" in line])
        print(agent.log()[-5000:])
        print((tmp_path / "rw.json").read_text())
        raise
    truth = window_samples(proxy.url, FAMILY)
    newest = min(max(points) for points in truth.values()) - 1000  # what the regular push has surely passed
    expected = keep(truth, lambda points, t: t <= newest and (start_ms <= t <= end_ms or grid(points, t, 1000)))
    in_window = sum(1 for points in expected.values() for t in points if start_ms <= t <= end_ms)
    on_the_grid = sum(1 for points in expected.values() for t in points
                      if start_ms <= t <= end_ms and grid(points, t, 1000))
    assert in_window >= 3 * on_the_grid  # full resolution: ~25 scrapes of those 5 s, where the push sends ~5
    assert sum(map(len, expected.values())) < sum(map(len, keep(truth, lambda _, t: t <= newest).values()))
    wait_until_holds(expected, lambda: vm_export(vm_url, f'{{__name__="{FAMILY}"}}', end_ms=newest),
                     VM_RELATIVE_PRECISION, "victoria-metrics as the window")
    wait_until_holds(expected, lambda: keep(prometheus_raw(prom_url, f'{{__name__="{FAMILY}"}}', newest, 3600),
                                            lambda _, t: t <= newest), 0.0, "prometheus exactly as the window")
    assert self_metric(agent, "fodc_agent_remote_write_backfill_samples_sent_total") > 0
    assert self_metric(agent, "fodc_agent_remote_write_samples_dropped_total") == 0


def test_a_receiver_that_hangs_fails_or_refuses_costs_only_its_own_lag(tmp_path, daemons, node):
    vm, vm_url = start_victoria_metrics(tmp_path)
    proxy = start_proxy(tmp_path)
    daemons.extend([vm, proxy])
    with ScriptedReceiver() as bad:
        bad.script = "hang"
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "rw-bad", "--node-metrics-url",
                            node.metrics_url, *FAST, "--remote-write-url", bad.url,
                            "--remote-write-url", f"{vm_url}/api/v1/write", "--remote-write-timeout", "1s",
                            "--remote-write-max-backoff", "300ms", "--remote-write-state-file", "")
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(node_id="rw-bad", status="online"), 30, what="agent online")
        wait_for(lambda: self_metric(agent, "fodc_agent_remote_write_lag_seconds", bad.url) > 3, 30,
                 what="the hanging receiver falling behind")
        # meanwhile the node is scraped and the other receiver keeps up
        assert self_metric(agent, "fodc_agent_scrape_up") == 1
        truth = window_samples(proxy.url, FAMILY)
        newest = min(max(points) for points in truth.values())
        assert min(map(len, truth.values())) >= 8
        wait_until_holds(truth, lambda: vm_export(vm_url, f'{{__name__="{FAMILY}"}}', end_ms=newest),
                         VM_RELATIVE_PRECISION, "victoria-metrics holding all despite the other receiver hanging")
        assert self_metric(agent, "fodc_agent_remote_write_samples_sent_total", bad.url) == 0
        assert self_metric(agent, "fodc_agent_remote_write_samples_failed_total", bad.url) > 0  # timeouts retried
        bad.release.set()
        bad.script = (503, b"overloaded", {})
        wait_for(lambda: self_metric(agent, "fodc_agent_remote_write_requests_total", bad.url) > 5, 30,
                 what="5xx retried")
        assert self_metric(agent, "fodc_agent_remote_write_samples_dropped_total", bad.url) == 0
        bad.script = (400, b"bad labels", {})  # refused for good: dropped, counted, and the backlog moves on
        wait_for(lambda: self_metric(agent, "fodc_agent_remote_write_lag_seconds", bad.url) < 1, 30,
                 what="the refusing receiver's backlog gone")
        dropped = self_metric(agent, "fodc_agent_remote_write_samples_dropped_total", bad.url)
        assert dropped > 0 and "HTTP 400: bad labels" in agent.log()
        bad.script = (204, b"", {})
        wait_for(lambda: self_metric(agent, "fodc_agent_remote_write_samples_sent_total", bad.url) > 0, 30,
                 what="taking samples again")
        assert self_metric(agent, "fodc_agent_remote_write_samples_dropped_total", bad.url) == dropped


def test_tls_with_basic_auth_and_a_bearer_token_reach_real_receivers(tmp_path, daemons, node):
    """victoria-metrics serving HTTPS with basic auth, and vmauth taking a bearer token in front of another:
    each agent's samples arrive with the right credentials; the wrong ones are refused (4xx) and counted as
    dropped, the receiver's answer is logged without the token it quotes, and the scraping goes on."""
    from certs import Authority  # needs python3-cryptography, which only TLS tests use

    ca = Authority(tmp_path, "rw")
    server = ca.issue("localhost", server=True)
    context = ssl.create_default_context(cafile=str(ca.path))
    basic = "Basic " + base64.b64encode(b"fodc:s3cret pass").decode()
    port = free_port()
    secure, secure_url = start_victoria_metrics(
        tmp_path, "vm-tls", port, ("-tls", f"-tlsCertFile={server.cert}", f"-tlsKeyFile={server.key}",
                                   "-httpAuth.username=fodc", "-httpAuth.password=s3cret pass"),
        url=f"https://localhost:{port}",
        ready=lambda: vm_get(f"https://localhost:{port}", "/health", context=context, authorization=basic)[0] == 200)
    plain, plain_url = start_victoria_metrics(tmp_path, "vm-plain")
    gate, gate_url = start_vmauth(tmp_path, "t0ken", plain_url)
    proxy = start_proxy(tmp_path)
    daemons.extend([secure, plain, gate, proxy])
    (tmp_path / "password").write_text("s3cret pass\n")
    (tmp_path / "token").write_text("t0ken\n")
    (tmp_path / "wrong").write_text("not-it\n")

    def agent(node_id: str, *args: str):
        started = start_agent(tmp_path, proxy.grpc_addr, "liaison", node_id, "--node-metrics-url", node.metrics_url,
                              *FAST, "--remote-write-state-file", "", "--remote-write-max-backoff", "300ms", *args)
        daemons.append(started)
        return started

    basic_agent = agent("rw-basic", "--remote-write-url", f"{secure_url}/api/v1/write",
                        "--remote-write-tls-ca", str(ca.path), "--remote-write-basic-auth-user", "fodc",
                        "--remote-write-basic-auth-password-file", str(tmp_path / "password"))
    bearer_agent = agent("rw-bearer", "--remote-write-url", f"{gate_url}/api/v1/write",
                         "--remote-write-bearer-token-file", str(tmp_path / "token"))
    refused_agent = agent("rw-refused", "--remote-write-url", f"{gate_url}/api/v1/write",
                          "--remote-write-bearer-token-file", str(tmp_path / "wrong"))
    match = f'{{__name__="{FAMILY}",node_id="%s"}}'
    wait_for(lambda: vm_export(secure_url, match % "rw-basic", context=context, authorization=basic), 30,
             what="samples over TLS with basic auth")
    wait_for(lambda: vm_export(plain_url, match % "rw-bearer"), 30, what="samples through vmauth with the token")
    wait_for(lambda: self_metric(refused_agent, "fodc_agent_remote_write_samples_dropped_total") > 0, 30,
             what="the wrong token refused and counted")
    assert 'reason="http_40' in http_get(f"{refused_agent.url}/metrics")[2].decode()  # vmauth 1.79 says 400
    assert not vm_export(plain_url, match % "rw-refused")
    assert self_metric(refused_agent, "fodc_agent_scrape_up") == 1
    for good in (basic_agent, bearer_agent):
        assert self_metric(good, "fodc_agent_remote_write_samples_dropped_total") == 0
    assert "auth token" in refused_agent.log() and "not-it" not in refused_agent.log()
    assert "s3cret" not in basic_agent.log()


def test_the_proxy_pushes_its_own_metrics_labelled_as_a_target(tmp_path, daemons, node):
    vm, vm_url = start_victoria_metrics(tmp_path)
    proxy = start_proxy(tmp_path, "--remote-write-url", f"{vm_url}/api/v1/write", "--remote-write-interval", "1s")
    daemons.extend([vm, proxy])
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "rw-proxy-seen", "--node-metrics-url", node.metrics_url,
                        *FAST)
    daemons.append(agent)
    wait_for(lambda: proxy.cluster(node_id="rw-proxy-seen", status="online"), 30, what="agent online")

    def online_in_vm() -> list[float]:
        got = vm_export(vm_url, '{__name__="fodc_proxy_agents",status="online"}')
        return [v for points in got.values() for _, v in sorted(points.items())[-1:]]

    wait_for(lambda: online_in_vm() == [1.0], 30, what="the proxy's own agent count in victoria-metrics")
    labels = json.loads(next(iter(vm_export(vm_url, '{__name__="fodc_proxy_agents",status="online"}'))))
    assert labels["job"] == "fodc-proxy" and labels["instance"].endswith(f":{proxy.ports['http']}")
    page = http_get(f"{proxy.url}/metrics")[2].decode()
    assert 'fodc_proxy_remote_write_samples_sent_total{receiver="' in page
    assert 'fodc_proxy_agents{status="online"} 1.0' in page


def test_after_a_sigkill_the_receiver_still_gets_every_scrape_the_window_holds(tmp_path, daemons, node):
    """Killed mid-send, the agent comes back with its window (from --window-dir) and its receiver's position
    (from the state file, at most 2 s old): what was not confirmed is sent again, nothing is skipped."""
    vm, vm_url = start_victoria_metrics(tmp_path)
    proxy = start_proxy(tmp_path)
    daemons.extend([vm, proxy])
    http_port, node_port = free_ports(2)
    args = ["--node-metrics-url", node.metrics_url, *FAST, "--remote-write-url", f"{vm_url}/api/v1/write",
            "--remote-write-state-file", str(tmp_path / "rw.json"), "--window-interim-scrapes", "2"]

    def start():
        agent = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "rw-kill", *args, http_port=http_port,
                            node_port=node_port)
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(node_id="rw-kill", status="online"), 30, what="agent online")
        return agent

    agent = start()
    wait_for(lambda: self_metric(agent, "fodc_agent_remote_write_samples_sent_total") > 0, 30, what="sending")
    time.sleep(1.3)
    agent.kill9()
    agent = start()
    time.sleep(2)
    truth = window_samples(proxy.url, FAMILY)
    newest = min(max(points) for points in truth.values())
    truth = keep(truth, lambda _, t: t <= newest)
    assert min(map(len, truth.values())) >= 8
    # the receiver may also hold the last scrapes before the kill that the window lost (not yet on disk)
    wait_until_holds(truth, lambda: keep(vm_export(vm_url, f'{{__name__="{FAMILY}"}}', end_ms=newest),
                                         lambda _, t: any(t in p for p in truth.values())),
                     VM_RELATIVE_PRECISION, "every scrape of the window in victoria-metrics")
