"""Request/reply routing by id: concurrent requests never mix, abandoned ones never block the stream."""

from __future__ import annotations

import threading
import time

import pytest

from fodc.proxy.links import LinkBusy, LinkClosed, ReplyTimeout, RequestLink


def test_replies_are_routed_to_their_own_request_by_id():
    link = RequestLink("agent")
    first, second = link.send("r1", "req1"), link.send("r2", "req2")
    link.route("r2", "b1", 2, done=False)
    link.route("r1", "a1", 2, done=False)
    link.route("r2", "b2", 2, done=True)
    link.route("r1", "a2", 2, done=True)
    assert list(first.chunks(1)) == ["a1", "a2"]
    assert list(second.chunks(1)) == ["b1", "b2"]
    assert link.in_flight == 0


def test_many_concurrent_requests_each_get_exactly_their_reply():
    link = RequestLink("agent", max_queued=200)
    pendings = {f"r{i}": link.send(f"r{i}", i) for i in range(100)}

    def answer():
        for request_id in pendings:
            link.route(request_id, f"{request_id}-x", 1, done=False)
            link.route(request_id, f"{request_id}-y", 1, done=True)

    thread = threading.Thread(target=answer)
    thread.start()
    results = {rid: list(p.chunks(5)) for rid, p in pendings.items()}
    thread.join()
    assert all(chunks == [f"{rid}-x", f"{rid}-y"] for rid, chunks in results.items())


def test_unknown_and_forgotten_ids_are_dropped():
    link = RequestLink("agent")
    pending = link.send("r1", "req")
    link.forget("r1")
    assert link.route("r1", "late", 4, done=False) is False
    assert link.route("nope", "x", 1, done=True) is False
    assert pending.abandoned


def test_a_full_outbound_queue_is_reported_not_waited_on():
    link = RequestLink("agent", max_queued=2)
    link.send("a", 1)
    link.send("b", 2)
    with pytest.raises(LinkBusy):
        link.send("c", 3)
    assert link.in_flight == 2


def test_closing_the_link_fails_waiting_requests_with_the_reason():
    link = RequestLink("agent")
    pending = link.send("r1", "req")
    link.close("agent went away")
    with pytest.raises(LinkClosed, match="agent went away"):
        list(pending.chunks(1))
    with pytest.raises(LinkClosed):
        link.send("r2", "req")


def test_a_silent_agent_times_out():
    pending = RequestLink("agent").send("r1", "req")
    with pytest.raises(ReplyTimeout):
        list(pending.chunks(0.05))


def test_agent_error_reply_is_raised_to_the_waiter():
    link = RequestLink("agent")
    pending = link.send("r1", "req")
    link.route("r1", None, 0, done=True, error="agent busy")
    with pytest.raises(LinkClosed, match="agent busy"):
        list(pending.chunks(1))


def test_outbound_requests_come_out_in_order():
    link = RequestLink("agent")
    link.send("a", "first")
    link.send("b", "second")
    assert [link.next_outbound(0.1), link.next_outbound(0.1), link.next_outbound(0.01)] == ["first", "second", None]


def test_the_deadline_is_checked_against_when_a_chunk_arrived_not_when_it_was_read():
    link = RequestLink("agent")
    pending = link.send("r1", "req")
    link.route("r1", "a", 1, done=False)
    link.route("r1", "b", 1, done=True)
    arrived = pending._chunks.queue[0].at
    assert list(pending.chunks(1)) == ["a", "b"]
    assert arrived <= pending.arrived_at <= arrived + 1  # the end's arrival, however late it was read


def test_a_reply_dropped_for_a_slow_reader_says_so():
    from fodc.proxy.links import ReaderTooSlow

    link = RequestLink("agent", max_chunks=2)
    pending = link.send("r1", "req")
    pending.put_timeout_s = 0.05
    assert [link.route("r1", c, 1, done=False) for c in "abc"] == [True, True, False]
    with pytest.raises(ReaderTooSlow, match="read the answer too slowly"):
        list(pending.chunks(0.1))


def test_closing_a_link_wakes_its_waiting_writer_at_once():
    """The proxy's stream writers wait without polling (1,000 agents' writers waking twice a second cost more
    than their heartbeats): close() must end the wait, not the wait's timeout."""
    link = RequestLink("agent")
    got: list[object] = []
    writer = threading.Thread(target=lambda: got.append(link.next_outbound(60)))
    writer.start()
    time.sleep(0.2)
    started = time.monotonic()
    link.close("agent gone")
    writer.join(30)
    assert not writer.is_alive() and got == [None]
    assert time.monotonic() - started < 30  # far below the 60 s wait
