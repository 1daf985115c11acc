"""systemd supervision, tested against a real SOCK_DGRAM socket passed as NOTIFY_SOCKET."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable

import pytest
from notify import NotifyListener, RecordingNotifier
from procs import http_get, start_agent, start_proxy, wait_for

from fodc.systemd import Notifier, ProgressWatchdog


@pytest.fixture
def listener(tmp_path):
    lst = NotifyListener(tmp_path / "notify.sock")
    yield lst
    lst.close()


def _watchdog_stops_after_stall(listener: NotifyListener, stall_pid: int, log: Callable[[], str],
                                stall_signal: int = signal.SIGUSR2) -> None:
    wait_for(lambda: listener.count("WATCHDOG=1") >= 3, what="periodic WATCHDOG pings")
    os.kill(stall_pid, stall_signal)  # test hook: wedge the main loop
    wait_for(lambda: "withholding the systemd watchdog ping" in log(), timeout=20, what="stall detected")
    before = listener.count("WATCHDOG=1")
    time.sleep(2.5)  # more than two watchdog periods (WATCHDOG_USEC=1s -> a ping every 0.5 s)
    assert listener.count("WATCHDOG=1") == before, "watchdog kept pinging although the main loop is stalled"


def test_agent_announces_ready_pings_watchdog_and_says_stopping(tmp_path, daemons, listener):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "sd", env=listener.env())
    daemons.append(agent)

    wait_for(lambda: listener.seen("READY=1"), what="READY=1")
    ready = next(m for m in listener.messages if "READY=1" in m)
    assert "STATUS=" in ready
    # READY only once serving: the agent's HTTP endpoint answers by then.
    assert http_get(f"{agent.url}/health")[0] == 200
    wait_for(lambda: listener.count("WATCHDOG=1") >= 2, what="periodic WATCHDOG=1")
    wait_for(lambda: listener.seen("STATUS=registered with proxy"), what="STATUS line after registration")

    assert agent.terminate() == 0
    assert listener.seen("STOPPING=1")


def test_agent_withholds_watchdog_when_its_main_loop_stalls(tmp_path, daemons, listener):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "stall", env=listener.env())
    daemons.append(agent)
    _watchdog_stops_after_stall(listener, agent.pid, agent.log, signal.SIGUSR1)  # the agent's SIGUSR2 captures


def test_proxy_worker_announces_ready_only_when_serving_and_pings_watchdog(tmp_path, daemons, listener):
    proxy = start_proxy(tmp_path, env=listener.env(), wait=False)
    daemons.append(proxy)
    wait_for(lambda: listener.seen("READY=1"), what="READY=1 from the proxy")
    # Exactly one READY (from the worker, not also from gunicorn's master) and it comes with our STATUS.
    assert listener.count("READY=1") == 1
    assert any("READY=1" in m and "agents online" in m for m in listener.messages)
    assert http_get(f"{proxy.url}/health")[0] == 200
    wait_for(lambda: listener.count("WATCHDOG=1") >= 2, what="periodic WATCHDOG=1")
    assert proxy.terminate() == 0
    assert listener.seen("STOPPING=1")


def test_proxy_withholds_watchdog_when_its_main_loop_stalls(tmp_path, daemons, listener):
    proxy = start_proxy(tmp_path, env=listener.env())
    daemons.append(proxy)
    _watchdog_stops_after_stall(listener, proxy.worker_pid(), proxy.log)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_pings_only_while_every_beat_is_fresh():
    clock, notifier = FakeClock(), RecordingNotifier()
    wd = ProgressWatchdog(notifier, clock)
    fast = wd.register("scrape", 5.0)
    wd.register("session", 5.0)
    clock.now = 4.0
    assert wd.check_and_ping() is True
    clock.now = 6.0
    fast.tick()
    assert wd.check_and_ping() is False  # "session" has been silent for 6 s
    assert wd.stale_beats() == ["session"]
    assert notifier.sent == ["WATCHDOG=1"]


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert ProgressWatchdog(RecordingNotifier()).interval == 1.0


def test_notifier_never_blocks_when_nobody_reads_the_socket(tmp_path, monkeypatch):
    unread = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unread.bind(str(tmp_path / "unread.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "unread.sock"))
    notifier = Notifier()
    for _ in range(200):  # far beyond the kernel's datagram queue (10 by default)
        notifier.watchdog()
    unread.settimeout(0.5)
    assert unread.recv(100) == b"WATCHDOG=1"  # the first ones arrived; the rest were dropped, not blocked on
    unread.close()
