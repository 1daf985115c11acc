"""Timestamps for the window that never run backwards, whatever the host clock does.

The window keeps each source's points in time order and refuses a point older than the newest one. Stamping
scrapes with the raw wall clock would make a backward step of the host clock (an NTP step, a VM resumed with a
stale clock, an operator's `date -s`) cost every scrape until the clock passes the newest point again: an hour
step, an hour of evidence lost, exactly when the host is misbehaving. So while the wall clock is behind the
last stamp given out, stamps carry on from that stamp at the pace of the monotonic clock; once the wall clock
catches up they follow it again. A forward step is simply taken (a gap, no loss). How far the host clock is
behind the window's timeline is reported, so nobody is misled about why points look ahead of the host.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

STEP_S = 1.0  # a host clock this far behind the last stamp has stepped back; less is jitter


class WindowClock:
    def __init__(self, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None  # (stamp given out, monotonic time then)
        self.behind_s = 0.0  # how far the host clock is behind the stamps now (0 while it leads them)
        self.steps_back = 0  # backward steps of the host clock seen

    def now(self) -> float:
        """A timestamp (seconds) after any this clock gave out."""
        wall, mono = self.wall(), self._monotonic()
        with self._lock:
            if self._last is None or wall > self._last[0]:
                if self.behind_s >= STEP_S:
                    log.info("host clock caught up with the window's timeline; stamping with it again")
                stamp = wall
            else:
                stamp = self._last[0] + max(mono - self._last[1], 0.001)
                if stamp - wall >= STEP_S > self.behind_s:
                    self.steps_back += 1
                    log.warning("host clock went back; window timestamps carry on from the monotonic clock until "
                                "it catches up", extra={"fields": {"behind_s": round(stamp - wall, 3)}})
            self.behind_s = max(0.0, stamp - wall)
            self._last = (stamp, mono)
            return stamp

    def resume_after(self, stamp_s: float) -> None:
        """Continues after the newest point a recovered window holds: a host clock that went back while the
        agent was down is then a step back like any other, not a refusal of every scrape."""
        with self._lock:
            if self._last is None or stamp_s > self._last[0]:
                self._last = (stamp_s, self._monotonic())

    def summary(self) -> dict[str, str]:
        """For the heartbeat's runtime info, only while there is something to say."""
        if not self.steps_back:
            return {}
        return {"clock_steps_back": str(self.steps_back), "clock_behind_s": f"{self.behind_s:.1f}"}
