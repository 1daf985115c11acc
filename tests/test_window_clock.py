"""The window clock: a host clock stepping back costs no points, and stamps follow the host again once it has
caught up."""

from __future__ import annotations

from fodc.agent.windowclock import WindowClock


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def tick(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def _clock(clocks: Clocks) -> WindowClock:
    return WindowClock(wall=lambda: clocks.wall, monotonic=lambda: clocks.mono)


def test_stamps_are_the_wall_clock_while_it_moves_forward():
    clocks = Clocks()
    clock = _clock(clocks)
    stamps = []
    for _ in range(3):
        stamps.append(clock.now())
        clocks.tick(15)
    assert stamps == [1_000_000.0, 1_000_015.0, 1_000_030.0]
    assert clock.summary() == {} and clock.behind_s == 0


def test_a_step_back_carries_on_at_the_monotonic_pace_until_the_host_catches_up():
    clocks = Clocks()
    clock = _clock(clocks)
    first = clock.now()
    clocks.tick(15)
    clocks.wall -= 3600  # NTP steps the host clock back an hour
    second = clock.now()
    assert second == first + 15  # the window's timeline, not the host's
    assert clock.summary() == {"clock_steps_back": "1", "clock_behind_s": "3600.0"}
    clocks.tick(15)
    assert clock.now() == first + 30 and clock.steps_back == 1  # still one step, not one per scrape
    clocks.wall += 7200  # the host clock leaps past the timeline: followed again, a gap and no loss
    assert clock.now() == clocks.wall and clock.behind_s == 0


def test_two_calls_in_the_same_instant_still_get_increasing_stamps_and_no_step_is_reported():
    clocks = Clocks()
    clock = _clock(clocks)
    a, b = clock.now(), clock.now()
    assert b > a and int(b * 1000) > int(a * 1000) and clock.steps_back == 0


def test_a_recovered_window_newer_than_the_host_clock_is_continued_not_refused():
    clocks = Clocks()
    clock = _clock(clocks)
    clock.resume_after(clocks.wall + 600)  # the host clock went back 10 minutes while the agent was down
    clocks.tick(2)
    assert clock.now() == clocks.wall - 2 + 600 + 2 and clock.steps_back == 1
    older = _clock(clocks)
    older.resume_after(clocks.wall - 60)  # the usual case: the window ends before now
    assert older.now() == clocks.wall and older.steps_back == 0
