"""The proxy's gRPC side on one event loop (grpc.aio): agent streams cost no threads, the loop is watched by the
systemd watchdog, and stopping leaves neither a hang nor the loop's thread behind (issue 22 §2)."""

from __future__ import annotations

import os
import threading
import time

import grpc
import pytest
from notify import RecordingNotifier
from procs import free_port, http_get, start_proxy, wait_for
from rogue import RogueAgent, gauge, metrics_reply, refused, registration

from fodc.proxy.runtime import ProxyRuntime
from fodc.proxy.settings import parse_settings
from fodc.v1 import fodc_pb2 as pb


def worker_threads(proxy) -> int:
    return len(os.listdir(f"/proc/{proxy.worker_pid()}/task"))


def test_agent_streams_cost_the_proxy_no_threads(tmp_path, daemons):
    """grpcio's synchronous server held 5 threads per agent (3 stream handlers, 2 reply readers)."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    for path in ("/metrics", "/cluster"):  # the HTTP side's own threads, started on first use
        assert http_get(f"{proxy.url}{path}", timeout=60)[0] == 200
    before = worker_threads(proxy)
    agents: list[RogueAgent] = []
    try:
        for i in range(20):
            agent = RogueAgent(proxy.grpc_addr)
            agents.append(agent)
            assert agent.register(registration(f"node-{i}", port=32000 + i)).accepted
            agent.heartbeat()
            agent.serve_metrics(lambda request, i=i: [metrics_reply(request, [gauge("streamed", float(i))])])
            agent.serve_commands(lambda command: [])
        wait_for(lambda: len(proxy.cluster(status="online")) == 20, 30, what="20 agents online")
        status, _, page = http_get(f"{proxy.url}/metrics", timeout=60)
        assert status == 200
        assert sum(line.startswith("streamed{") for line in page.decode().splitlines()) == 20
        assert worker_threads(proxy) <= before + 4, "threads grow with the agents' streams"
    finally:
        for agent in agents:
            agent.close()
    assert proxy.terminate() == 0
    assert "proxy stopped" in proxy.log()


@pytest.fixture
def runtime(tmp_path):
    settings = parse_settings([
        "--config", "/dev/null", "--grpc-listen-addr", f"127.0.0.1:{free_port()}",
        "--http-listen-addr", f"127.0.0.1:{free_port()}", "--audit-log", str(tmp_path / "audit.log"),
        "--diagnostics-dir", str(tmp_path / "diagnostics"), "--incident-archive-dir", str(tmp_path / "incidents"),
        "--auth", "off"])
    running = ProxyRuntime(settings, RecordingNotifier())
    running.start()
    yield running
    running.stop(grace_s=1.0)


def loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "grpc-loop"]


def test_a_wedged_event_loop_withholds_the_watchdog_ping(runtime):
    assert runtime.watchdog.stale_beats() == []
    release = threading.Event()
    runtime._loop.loop.call_soon_threadsafe(release.wait, 60)  # test hook: something blocks the loop
    try:
        wait_for(lambda: "grpc-event-loop" in runtime.watchdog.stale_beats(), 30, what="the loop's beat stale")
        assert not runtime.watchdog.check_and_ping()
    finally:
        release.set()
    wait_for(lambda: runtime.watchdog.stale_beats() == [], 30, what="the loop turning again")
    assert runtime.watchdog.check_and_ping()


def test_stopping_the_runtime_ends_the_loop_thread_with_streams_open(runtime):
    assert len(loop_threads()) == 1
    agent = RogueAgent(f"127.0.0.1:{runtime.settings.grpc_listen_addr.port}")
    try:
        assert agent.register().accepted
        metrics = agent.serve_metrics(lambda request: [])
        wait_for(lambda: runtime.servicer.metrics_links.get(agent.agent_id), 10, what="the metrics stream open")
        started = time.monotonic()
        runtime.stop(grace_s=5.0)
        assert time.monotonic() - started < 10
        assert loop_threads() == []
        assert agent.control.wait_ended(10) and metrics.wait_ended(10)
    finally:
        agent.close()


def test_an_unreadable_answer_on_a_request_stream_ends_it_with_the_reason(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = RogueAgent(proxy.grpc_addr)
    try:
        assert agent.register().accepted
        raw = agent.channel.stream_stream("/fodc.v1.FODCService/StreamMetrics", request_serializer=lambda b: b,
                                          response_deserializer=lambda b: b)
        hello = pb.MetricsReply(agent_id=agent.agent_id, stream_secret=agent.secret).SerializeToString()
        with pytest.raises(grpc.RpcError) as caught:
            list(raw(iter([hello, b"\xff\xff\xff\xff not a protobuf"]), timeout=20))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unreadable metrics reply" in caught.value.details()
        assert refused(proxy, "unreadable_reply") == 1
        assert agent.heartbeat().HasField("heartbeat_ack")  # the agent's registration is unharmed
    finally:
        agent.close()
