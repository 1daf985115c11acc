"""Scrapes the local BanyanDB node's Prometheus endpoints into the flight recorder, on a fixed cadence.

A scrape that fails, times out or returns garbage is recorded (fodc_agent_scrape_up, last error) and never
touches the window: the recorder only ever sees parsed samples stamped with that scrape's own time.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fodc import expfmt
from fodc.periodic import Periodic
from fodc.window import FlightRecorder, NotAfterNewest

log = logging.getLogger(__name__)

ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=1"


class ScrapeError(Exception):
    pass


class ScrapeTimeout(ScrapeError):
    """The node accepted the connection but did not answer in time: unresponsive, not down."""


class ScrapeUnreachable(ScrapeError):
    """No connection to the node's endpoint (refused, no route, name not found): down, or not there."""


@dataclass
class TargetState:
    url: str
    up: bool = False
    # Set when a scrape completes, never when one starts, so a scrape in flight keeps the previous answer.
    answered: bool = False  # the node sent a page (up may still be False: garbage, or the window refused it)
    completed_mono: float = 0.0  # time.monotonic() when the latest scrape ended (0: none yet)
    answered_mono: float = 0.0  # time.monotonic() when the latest scrape that got a page ended (0: none)
    failing_since_mono: float = 0.0  # time.monotonic() when the first of the current failures started
    last_error: str = ""
    last_success_ms: int = 0
    last_attempt_ms: int = 0
    last_samples: int = 0
    last_duration_s: float = 0.0
    consecutive_failures: int = 0
    failing_since_ms: int = 0  # the first failed scrape of the current run of failures (0 while up)
    timed_out: bool = False  # the last failure was a node too slow to answer, not one refusing or gone


class ScrapeMetrics:
    """The agent's own metrics about scraping (served on the agent's /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge("fodc_agent_scrape_up", "1 if the last scrape of the node endpoint succeeded",
                        ["target"], registry=registry)
        self.duration = Histogram("fodc_agent_scrape_duration_seconds", "time to fetch and parse one node page",
                                  ["target"], registry=registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.failures = Counter("fodc_agent_scrape_failures_total", "scrapes that failed (down, timeout, garbage)",
                                ["target", "reason"], registry=registry)
        self.samples = Gauge("fodc_agent_scrape_samples", "samples accepted from the last scrape",
                             ["target"], registry=registry)
        self.parse_errors = Counter("fodc_agent_scrape_parse_errors_total",
                                    "lines rejected by the parser (each costs only that line)", ["target"],
                                    registry=registry)
        self.page_bytes = Gauge("fodc_agent_scrape_page_bytes", "size of the last page fetched", ["target"],
                                registry=registry)


def fetch(url: str, timeout_s: float, max_bytes: int) -> tuple[str, str]:
    """GETs a metrics page; returns (text, content type). Raises ScrapeError with a one-line reason."""
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "fodc-agent"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(max_bytes + 1)
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise ScrapeError(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise ScrapeTimeout(f"{url} did not answer within {timeout_s:g}s") from None
        raise ScrapeUnreachable(f"cannot reach {url}: {reason}") from None
    if len(body) > max_bytes:
        raise ScrapeError(f"page from {url} exceeds {max_bytes} bytes")
    return body.decode("utf-8", errors="replace"), content_type


class Scraper(Periodic):
    """Scrapes every node URL each interval, on a fixed schedule (a slow round skips slots, never bursts)."""

    thread_name = "scraper"
    fixed_rate = True

    def __init__(self, urls: Sequence[str], recorder: FlightRecorder, registry: CollectorRegistry, *,
                 interval_s: float, timeout_s: float, max_page_bytes: int = 64 * 1024 * 1024,
                 on_progress: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(interval_s, on_progress)
        self.urls = tuple(urls)
        self.recorder = recorder
        self.timeout_s = timeout_s
        self.max_page_bytes = max_page_bytes
        self.metrics = ScrapeMetrics(registry)
        self.targets = {url: TargetState(url) for url in self.urls}
        self._parsers = {url: expfmt.Parser() for url in self.urls}
        self._clock = clock
        self.started_mono = time.monotonic()  # a node that never answers is silent since then

    def start(self) -> None:
        self.started_mono = time.monotonic()
        super().start()

    def first_delay_s(self) -> float:
        return 0.0

    def run_round(self) -> None:
        for url in self.urls:
            try:
                self.scrape_once(url)
            except Exception:  # a bug in one target's scrape costs that scrape, not the others or the loop
                self.note_failure("scrape failed", {"target": url})

    def scrape_once(self, url: str) -> TargetState:
        state = self.targets[url]
        started = time.monotonic()
        timestamp_ms = int(self._clock() * 1000)
        state.last_attempt_ms = timestamp_ms
        answered = False
        try:
            text, content_type = fetch(url, self.timeout_s, self.max_page_bytes)
            answered = True
            self.metrics.page_bytes.labels(url).set(len(text))
            result = self._parsers[url].parse(text, openmetrics=expfmt.is_openmetrics(content_type) or None)
            if result.errors:
                self.metrics.parse_errors.labels(url).inc(len(result.errors))
                first = result.errors[0]
                log.warning("node page had malformed lines; they were skipped", extra={"fields": {
                    "target": url, "bad_lines": len(result.errors), "first": str(first)}})
            if not result.samples and result.errors:
                raise ScrapeError(f"no valid samples in page from {url} ({len(result.errors)} bad lines; "
                                  f"first: {result.errors[0]})")
            self.recorder.ingest_families(url, timestamp_ms, result.families)
        except ScrapeTimeout as exc:
            self._failed(state, str(exc), "timeout")
        except ScrapeUnreachable as exc:
            self._failed(state, str(exc), "unreachable")
        except ScrapeError as exc:
            self._failed(state, str(exc), "invalid")
        except NotAfterNewest as exc:  # the recorder refused (a guard: the window clock never goes back)
            self._failed(state, f"window refused the scrape: {exc}", "rejected")
        else:
            duration = time.monotonic() - started
            if not state.up and state.consecutive_failures:
                log.info("node endpoint is back", extra={"fields": {"target": url}})
            state.up, state.last_error, state.consecutive_failures = True, "", 0
            state.failing_since_ms, state.timed_out = 0, False
            state.last_success_ms, state.last_samples, state.last_duration_s = timestamp_ms, result.samples, duration
            self.metrics.up.labels(url).set(1)
            self.metrics.samples.labels(url).set(result.samples)
            self.metrics.duration.labels(url).observe(duration)
        finally:
            state.completed_mono = time.monotonic()
            state.answered = answered
            if answered:
                state.answered_mono = state.completed_mono
            if state.consecutive_failures == 1:
                state.failing_since_mono = started
        return state

    def _failed(self, state: TargetState, reason: str, kind: str) -> None:
        if state.up or state.consecutive_failures == 0:
            log.warning("scrape failed", extra={"fields": {"target": state.url, "reason": reason}})
        state.up = False
        state.last_error = reason
        if state.consecutive_failures == 0:
            state.failing_since_ms = state.last_attempt_ms
        state.consecutive_failures += 1
        state.timed_out = kind == "timeout"
        self.metrics.up.labels(state.url).set(0)
        self.metrics.failures.labels(state.url, kind).inc()

    def summary(self) -> dict[str, str]:
        """Key runtime indicators for the proxy's /cluster view."""
        up = sum(t.up for t in self.targets.values())
        info = {"scrape_targets_up": f"{up}/{len(self.targets)}"}
        errors = [f"{t.url}: {t.last_error}" for t in self.targets.values() if t.last_error]
        if errors:
            info["scrape_last_error"] = "; ".join(errors)[:500]
        last = max((t.last_success_ms for t in self.targets.values()), default=0)
        if last:
            info["scrape_last_success_ms"] = str(last)
        return info
