"""Where sending stands, on disk (fodc/remotewrite/state.py): written whole, read back the same, and a damaged or
hostile file costs only its own contents (sending starts from now, said once), never the agent."""

from __future__ import annotations

import json

import pytest

from fodc.remotewrite.plan import Stream
from fodc.remotewrite.state import MAX_FILE_BYTES, Backfill, StateFile


def test_a_state_written_is_read_back_the_same(tmp_path):
    path = tmp_path / "rw.json"
    state = StateFile(str(path))
    receiver = state.receiver("http://vm/api/v1/write", 1000)
    receiver.regular.cursors["http://node/metrics"] = 1500
    receiver.regular.last["http://node/metrics"] = 1490
    receiver.backfills.append(Backfill("20261204T000000Z-manual", Stream(900, {"ktm": 950}, end_ms=1200)))
    assert state.save()
    again = StateFile(str(path)).receiver("http://vm/api/v1/write", 99999)
    assert again == receiver and not list(tmp_path.glob(".*tmp"))


def test_receivers_no_longer_configured_are_forgotten(tmp_path):
    state = StateFile(str(tmp_path / "rw.json"))
    state.receiver("http://a/w", 1)
    state.receiver("http://b/w", 1)
    state.save(keep={"http://b/w"})
    assert set(StateFile(str(tmp_path / "rw.json")).receivers) == {"http://b/w"}


def test_a_new_receiver_starts_now_not_at_the_window_start(tmp_path):
    assert StateFile(str(tmp_path / "none.json")).receiver("http://a/w", 4242).regular == Stream(4242)


@pytest.mark.parametrize("content", [
    b"", b"{", b"[]", b'{"version": 2, "receivers": {}}', b'{"version": 1, "receivers": []}',
    b'{"version": 1, "receivers": {"u": {"regular": {"origin_ms": "1"}}}}',
    b'{"version": 1, "receivers": {"u": {"regular": {"origin_ms": 1, "cursors": {"s": 1.5}}}}}',
    b'{"version": 1, "receivers": {"u": {"regular": {"origin_ms": 1, "cursors": {"s": true}}}}}',
    b'{"version": 1, "receivers": {"u": {"regular": {"origin_ms": 1}, "backfills": [{"incident": "i", '
    b'"stream": {"origin_ms": 1}}]}}}',  # a backfill without an end would never finish
    b"[" * 100_000,  # nesting deeper than the JSON reader goes
    json.dumps({"version": 1, "receivers": {"u": {"regular": {"origin_ms": 1, "cursors": {
        f"s{i}": i for i in range(2000)}}}}}).encode(),  # more sources than any agent has
])
def test_a_damaged_or_hostile_file_costs_only_itself(tmp_path, content, caplog):
    path = tmp_path / "rw.json"
    path.write_bytes(content)
    state = StateFile(str(path))
    assert state.receivers == {} and state.last_error.startswith(str(path))
    assert "sending starts from now" in caplog.text
    assert state.receiver("u", 7).regular == Stream(7)
    assert state.save() and state.last_error == ""  # and the next write replaces it


def test_an_oversized_file_is_not_read_whole(tmp_path):
    path = tmp_path / "rw.json"
    path.write_bytes(b" " * (MAX_FILE_BYTES + 10))
    assert "larger than" in StateFile(str(path)).last_error


def test_backfills_beyond_the_cap_are_not_read(tmp_path):
    path = tmp_path / "rw.json"
    backfills = [{"incident": f"i{i}", "stream": {"origin_ms": i, "end_ms": i + 1}} for i in range(40)]
    path.write_text(json.dumps({"version": 1, "receivers": {"u": {"regular": {"origin_ms": 1},
                                                                  "backfills": backfills}}}))
    assert len(StateFile(str(path)).receiver("u", 1).backfills) == 16


def test_an_unwritable_state_is_said_and_the_state_in_memory_goes_on(tmp_path):
    blocked = tmp_path / "dir-is-a-file"
    blocked.write_text("x")
    state = StateFile(str(blocked / "rw.json"))
    state.receiver("u", 5)
    assert not state.save() and "cannot write" in state.last_error
    assert state.receiver("u", 9).regular.origin_ms == 5
