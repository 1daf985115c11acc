"""Request/reply routing by id: concurrent requests never mix, abandoned ones never block the stream."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from fodc.proxy.links import LinkBusy, LinkClosed, ReplyTimeout, RequestLink
from fodc.proxy.loop_thread import LoopThread


def route(link: RequestLink, *args, **kwargs) -> bool:
    """What the stream reader does on the proxy's event loop, here on a loop of its own."""
    return asyncio.run(link.route(*args, **kwargs))


@pytest.fixture
def loop():
    """The proxy's gRPC event loop, in a thread of its own as in the proxy."""
    thread = LoopThread("test-loop")
    thread.start()
    yield thread
    thread.stop(10)
    assert not thread.alive


def test_replies_are_routed_to_their_own_request_by_id():
    link = RequestLink("agent")
    first, second = link.send("r1", "req1"), link.send("r2", "req2")
    route(link, "r2", "b1", 2, done=False)
    route(link, "r1", "a1", 2, done=False)
    route(link, "r2", "b2", 2, done=True)
    route(link, "r1", "a2", 2, done=True)
    assert list(first.chunks(1)) == ["a1", "a2"]
    assert list(second.chunks(1)) == ["b1", "b2"]
    assert link.in_flight == 0


def test_many_concurrent_requests_each_get_exactly_their_reply():
    link = RequestLink("agent", max_queued=200)
    pendings = {f"r{i}": link.send(f"r{i}", i) for i in range(100)}

    def answer():
        for request_id in pendings:
            route(link, request_id, f"{request_id}-x", 1, done=False)
            route(link, request_id, f"{request_id}-y", 1, done=True)

    thread = threading.Thread(target=answer)
    thread.start()
    results = {rid: list(p.chunks(5)) for rid, p in pendings.items()}
    thread.join()
    assert all(chunks == [f"{rid}-x", f"{rid}-y"] for rid, chunks in results.items())


def test_unknown_and_forgotten_ids_are_dropped():
    link = RequestLink("agent")
    pending = link.send("r1", "req")
    link.forget("r1")
    assert route(link, "r1", "late", 4, done=False) is False
    assert route(link, "nope", "x", 1, done=True) is False
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
    route(link, "r1", None, 0, done=True, error="agent busy")
    with pytest.raises(LinkClosed, match="agent busy"):
        list(pending.chunks(1))


def test_outbound_requests_come_out_in_order(loop):
    link = RequestLink("agent", loop=loop.loop)
    link.send("a", "first")
    link.send("b", "second")
    assert [loop.call(link.next_request(), 5), loop.call(link.next_request(), 5)] == ["first", "second"]
    waiting = asyncio.run_coroutine_threadsafe(link.next_request(), loop.loop)
    time.sleep(0.1)
    assert not waiting.done()  # nothing queued: the writer waits


def test_a_request_sent_from_another_thread_wakes_the_waiting_writer(loop):
    """HTTP threads send; the stream writer waits on the event loop without polling and wakes at once."""
    link = RequestLink("agent", loop=loop.loop)
    waiting = asyncio.run_coroutine_threadsafe(link.next_request(), loop.loop)
    time.sleep(0.2)
    assert not waiting.done()
    threading.Thread(target=link.send, args=("r1", "request")).start()
    assert waiting.result(30) == "request"
    assert link.post("cancel") and loop.call(link.next_request(), 30) == "cancel"


def test_the_deadline_is_checked_against_when_a_chunk_arrived_not_when_it_was_read():
    link = RequestLink("agent")
    pending = link.send("r1", "req")
    route(link, "r1", "a", 1, done=False)
    route(link, "r1", "b", 1, done=True)
    arrived = pending._chunks.queue[0].at
    assert list(pending.chunks(1)) == ["a", "b"]
    assert arrived <= pending.arrived_at <= arrived + 1  # the end's arrival, however late it was read


def test_a_reply_dropped_for_a_slow_reader_says_so():
    from fodc.proxy.links import ReaderTooSlow

    link = RequestLink("agent", max_chunks=2)
    pending = link.send("r1", "req")
    pending.put_timeout_s = 0.05
    assert [route(link, "r1", c, 1, done=False) for c in "abc"] == [True, True, False]
    with pytest.raises(ReaderTooSlow, match="read the answer too slowly"):
        list(pending.chunks(0.1))


def test_closing_a_link_wakes_its_waiting_writer_at_once(loop):
    """The proxy's stream writers wait without polling (1,000 agents' writers waking twice a second cost more
    than their heartbeats): close() must end the wait, whichever thread calls it."""
    link = RequestLink("agent", loop=loop.loop)
    waiting = asyncio.run_coroutine_threadsafe(link.next_request(), loop.loop)
    time.sleep(0.2)
    assert not waiting.done()
    link.close("agent gone")
    assert waiting.result(30) is None
    assert loop.call(link.next_request(), 5) is None  # a closed link hands out nothing more


def test_a_slow_reply_reader_holds_back_only_its_own_stream(loop):
    """A reply whose HTTP reader does not keep up waits for room on the event loop without blocking it: another
    agent's reply is routed meanwhile, and the waiting chunk arrives once the reader takes one."""
    slow, fast = RequestLink("slow", max_chunks=1, loop=loop.loop), RequestLink("fast", loop=loop.loop)
    slow_reply, fast_reply = slow.send("s", "req"), fast.send("f", "req")
    assert loop.call(slow.route("s", "s1", 1, done=False), 5)
    waiting = asyncio.run_coroutine_threadsafe(slow.route("s", "s2", 1, done=False), loop.loop)
    time.sleep(0.2)
    assert not waiting.done()  # the slow reply's queue is full
    assert loop.call(fast.route("f", "f1", 1, done=True), 2)
    assert list(fast_reply.chunks(5)) == ["f1"]
    chunks = slow_reply.chunks(10)
    assert next(chunks) == "s1"
    assert waiting.result(10) is True  # room again: the waiting chunk went in
    assert next(chunks) == "s2"
    assert loop.call(slow.route("s", None, 0, done=True), 5)
    assert list(chunks) == []


def test_the_end_of_a_reply_waits_for_a_reader_one_chunk_behind(loop):
    """The last chunk fills the reply's queue; its end must still reach the reader, not be dropped for want of
    room (the reader then waited for its deadline and failed an answered request)."""
    link = RequestLink("agent", max_chunks=1, loop=loop.loop)
    pending = link.send("r1", "req")
    routed = asyncio.run_coroutine_threadsafe(link.route("r1", "last", 1, done=True), loop.loop)
    time.sleep(0.2)
    assert list(pending.chunks(10)) == ["last"]
    assert routed.result(10) is True
