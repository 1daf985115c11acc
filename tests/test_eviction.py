"""The one eviction policy of the bounded on-disk stores: oldest first until both caps hold."""

from __future__ import annotations

from fodc.eviction import beyond_caps


def size(entry: tuple[str, int]) -> int:
    return entry[1]


ENTRIES = [("a", 10), ("b", 20), ("c", 30), ("d", 40)]


def test_nothing_goes_while_both_caps_hold():
    assert beyond_caps(ENTRIES, size, max_count=4, max_bytes=100) == []
    assert beyond_caps([], size, max_count=0, max_bytes=0) == []


def test_the_count_cap_removes_the_oldest():
    assert beyond_caps(ENTRIES, size, max_count=2) == [("a", 10), ("b", 20)]


def test_the_byte_cap_removes_the_oldest_until_the_rest_fit():
    assert beyond_caps(ENTRIES, size, max_bytes=70) == [("a", 10), ("b", 20)]
    assert beyond_caps(ENTRIES, size, max_bytes=69) == [("a", 10), ("b", 20), ("c", 30)]


def test_the_stricter_cap_decides():
    assert beyond_caps(ENTRIES, size, max_count=3, max_bytes=85) == [("a", 10), ("b", 20)]
    assert beyond_caps(ENTRIES, size, max_count=3, max_bytes=95) == [("a", 10)]


def test_an_entry_that_cannot_go_is_skipped_and_still_counts():
    running = {"a"}
    doomed = beyond_caps(ENTRIES, size, max_count=2, removable=lambda entry: entry[0] not in running)
    assert doomed == [("b", 20), ("c", 30)]
    assert beyond_caps(ENTRIES, size, max_count=0, removable=lambda entry: False) == []
