"""The agent's request streams when the session's channel closes under them (fodc.agent.streams)."""

from __future__ import annotations

import threading
import time

import grpc

from fodc.agent.session import Connected
from fodc.agent.streams import CommandStream, MetricsStream


def test_a_stream_whose_channel_the_session_closes_ends_quietly(monkeypatch):
    """A session that re-registers closes its channel while its stream threads may still be opening on it:
    the stub made there crashed the process (grpcio SIGSEGV on a closed channel) or the open raised ValueError
    ('Channel closed!') and the thread died with a traceback (seen 1,000 times in the fleet bench)."""
    failures: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    for _ in range(3):  # the close lands before or after the threads open their calls
        channel = grpc.insecure_channel("127.0.0.1:1")
        streams = [MetricsStream(lambda request, limit: iter(())), CommandStream({})]
        before = set(threading.enumerate())
        try:
            for stream in streams:
                stream.connect(Connected("agent-1", channel, 4 << 20, "secret"))
            channel.close()
            deadline = time.monotonic() + 20
            for thread in set(threading.enumerate()) - before:  # may hold one still starting (not joinable yet)
                while thread.ident is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                thread.join(max(0.0, deadline - time.monotonic()))
                assert not thread.is_alive()
        finally:
            for stream in streams:
                stream.stop()
    assert failures == []
