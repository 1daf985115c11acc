"""Notes on a node from its heartbeat figures: one list for /cluster, `fodc cluster` and the console."""

from __future__ import annotations

from fodc.notes import node_notes


def test_notes_say_what_needs_attention_most_urgent_first():
    runtime = {"scrape_targets_up": "0/1", "window_disk_last_error": "ENOSPC", "clock_behind_s": "12.5"}
    assert node_notes(runtime, {"node-down": 1}) == [
        "node not answering", "incidents node-down=1", "window disk failing", "host clock 12.5s behind"]


def test_a_healthy_node_has_no_notes_and_a_bad_figure_is_not_one():
    assert node_notes({"scrape_targets_up": "1/1", "clock_behind_s": "0"}) == []
    assert node_notes({"clock_behind_s": "soon"}) == []
    assert node_notes({"scrape_targets_up": "0/0"}) == []  # no target configured: nothing to answer
