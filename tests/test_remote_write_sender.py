"""One receiver's rounds (fodc/remotewrite/sender.py) over a real window, against a receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from receivers import ScriptedReceiver

from fodc.remotewrite.encode import decode
from fodc.remotewrite.sender import Receiver, SenderOptions
from fodc.remotewrite.state import StateFile
from fodc.window import FlightRecorder

T0 = 1_800_000_000_000


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    with ScriptedReceiver() as server:
        yield server


def scrape(window: FlightRecorder, t: int) -> None:
    window.ingest("node", t, [("up", (("kind", "a"),), float(t % 1000)), ("up", (("kind", "b"),), 1.0)])


def sent_times(server: ScriptedReceiver) -> list[int]:
    return sorted({t for _, body in server.seen for s in decode(body) for t in s.timestamps_ms})


def test_the_regular_push_goes_on_while_a_backfill_waits_for_the_end_of_its_window(receiver):
    window = FlightRecorder()
    now = [T0 / 1000]
    sender = Receiver(receiver.url, window, StateFile(None), SenderOptions(interval_ms=1000, lateness_ms=5000),
                      added=(), clock=lambda: now[0])
    for i in range(5):
        scrape(window, T0 + 200 * (i + 1))
    sender.backfill("incident", T0, T0 + 60_000)  # its window ends a minute from now
    while sender.run_round():
        pass
    for i in range(5, 12):  # more scrapes, two of them the first of their second: the regular push's
        scrape(window, T0 + 200 * (i + 1))
    while sender.run_round():
        pass
    assert sender.pending_backfills() == 1
    assert sender.state.regular.cursors["node"] == T0 + 2400  # the regular push is not held up by it
    assert sent_times(receiver) == [T0 + 200 * (i + 1) for i in range(12)]  # grid from the push, rest backfilled
    now[0] = (T0 + 66_000) / 1000
    while sender.run_round():
        pass
    assert sender.pending_backfills() == 0 and sender.counters.backfills_done == 1


def test_reads_narrowed_to_the_round_budget_cross_gaps_in_the_window(receiver):
    """A round reads at most round_samples points; narrowing the range to fit may land in a gap (the agent
    was down for an hour): the cursors still move, and every scrape is sent, in order, once."""
    window = FlightRecorder()
    stamps = [T0 + 1000 * i for i in range(1, 6)] + [T0 + 3_600_000 + 1000 * i for i in range(1, 6)]
    for t in stamps:
        scrape(window, t)
    sender = Receiver(receiver.url, window, StateFile(None), SenderOptions(round_samples=4, max_samples=2),
                      added=(), clock=lambda: T0 / 1000)
    rounds = 0
    while sender.run_round():
        rounds += 1
        assert rounds < 100
    times = [t for _, body in receiver.seen for s in decode(body) if dict(s.labels)["kind"] == "a"
             for t in s.timestamps_ms]
    assert times == stamps and sender.counters.sent == 2 * len(stamps)


def test_a_receiver_that_refuses_everything_costs_one_log_line_a_minute(receiver, caplog):
    window = FlightRecorder()
    for i in range(10):
        scrape(window, T0 + 1000 * (i + 1))
    receiver.script = (400, b"out of bounds", {})
    sender = Receiver(receiver.url, window, StateFile(None), SenderOptions(max_samples=2), added=(),
                      clock=lambda: T0 / 1000)
    while sender.run_round():
        pass
    assert len(receiver.seen) == 10 and sender.counters.dropped == {"http_400": 20}
    assert caplog.text.count("refused a request") == 1 and sender.lag_seconds() == 0
