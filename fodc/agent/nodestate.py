"""What the node is doing, as its agent sees it: read from completed scrapes only.

One summary feeds the node-down trigger, systemd's STATUS= line and the agent's /health, so the three never
disagree. A scrape still in flight says nothing: a node answering in 0.8 s of a 1 s interval is answering,
not down for the 0.8 s its answer takes. Pure: the targets' states and `now` (monotonic) are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fodc.agent.scrape import TargetState


@dataclass(frozen=True, slots=True)
class NodeScrape:
    targets: int
    answering: int  # targets whose latest completed scrape got a page
    completed: bool  # any scrape has completed yet
    last_answer_age_s: float | None  # since the newest completed scrape that got a page; None: never
    silent_for_s: float  # 0 while a target answers; else since the last answer (or since scraping began)
    failing_for_s: float  # 0 while a target answers; else since the first failed scrape of the outage began
    reason: str  # the targets' last errors

    @property
    def ok(self) -> bool | None:
        """None before the first completed scrape; True while any target answers."""
        return None if not self.completed else self.answering > 0

    def down_longer_than(self, threshold_s: float) -> bool:
        return self.completed and self.answering == 0 and self.silent_for_s > threshold_s

    def text(self) -> str:
        """One line for STATUS= and /health: "scraping 1/1 targets, last 0.2 s ago"."""
        if not self.completed:
            return f"waiting for the first scrape of {self.targets} target{'s' if self.targets != 1 else ''}"
        if self.answering:
            return (f"scraping {self.answering}/{self.targets} targets, "
                    f"last {self.last_answer_age_s or 0.0:.1f} s ago")
        return f"node not answering for {self.silent_for_s:.0f} s"


def node_scrape(targets: Iterable[TargetState], now_s: float, scraping_since_s: float) -> NodeScrape:
    """The summary at monotonic `now_s`; `scraping_since_s` is when scraping began (the silence of a node
    that has never answered counts from then)."""
    targets = list(targets)
    done = [t for t in targets if t.completed_mono]
    answers = [t.answered_mono for t in targets if t.answered_mono]
    answering = sum(t.answered for t in done)
    last_answer = max(answers) if answers else None
    silent = 0.0 if answering else max(0.0, now_s - (last_answer if last_answer is not None else scraping_since_s))
    first_failure = min((t.failing_since_mono for t in done if not t.answered and t.failing_since_mono), default=now_s)
    return NodeScrape(
        targets=len(targets), answering=answering, completed=bool(done),
        last_answer_age_s=None if last_answer is None else max(0.0, now_s - last_answer), silent_for_s=silent,
        failing_for_s=0.0 if answering else max(0.0, now_s - first_failure),
        reason="; ".join(t.last_error for t in targets if t.last_error)[:300])
