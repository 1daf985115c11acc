"""Scrape failures are told apart by exception type, not by their message text: a node page whose only line
reads "cannot reach ..." is garbage (invalid), not a node that cannot be reached, and a scrape the window
refuses (its clock went back) is "rejected"."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from procs import free_port
from prometheus_client import CollectorRegistry

from fodc.agent.scrape import Scraper
from fodc.window import FlightRecorder, NotAfterNewest


class Page:
    """A real /metrics endpoint answering a fixed body."""

    def __init__(self, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def failures(registry: CollectorRegistry, url: str) -> dict[str, float]:
    return {reason: value for reason in ("unreachable", "invalid", "timeout", "rejected")
            if (value := registry.get_sample_value("fodc_agent_scrape_failures_total",
                                                   {"target": url, "reason": reason}))}


@pytest.fixture
def pages():
    opened: list[Page] = []
    yield lambda body: opened.append(Page(body)) or opened[-1]
    for page in opened:
        page.close()


def test_a_page_saying_cannot_reach_is_invalid_and_a_closed_port_is_unreachable(pages):
    liar = pages(b"cannot reach the moon {\n")
    closed = f"http://127.0.0.1:{free_port()}/metrics"
    registry = CollectorRegistry()
    scraper = Scraper([liar.url, closed], FlightRecorder(), registry, interval_s=1, timeout_s=5)
    assert "cannot reach" in scraper.scrape_once(liar.url).last_error
    scraper.scrape_once(closed)
    assert failures(registry, liar.url) == {"invalid": 1}
    assert failures(registry, closed) == {"unreachable": 1}


def test_a_scrape_the_window_refuses_is_rejected_by_type(pages):
    page = pages(b"# TYPE up gauge\nup 1\n")
    registry = CollectorRegistry()
    scraper = Scraper([page.url], FlightRecorder(), registry, interval_s=1, timeout_s=5, clock=lambda: 1_900_000_000.0)
    scraper.scrape_once(page.url)
    state = scraper.scrape_once(page.url)  # the same instant again: not after the source's newest
    assert failures(registry, page.url) == {"rejected": 1}
    assert state.last_error.startswith("window refused the scrape: timestamp")
    with pytest.raises(NotAfterNewest):
        scraper.recorder.ingest(page.url, 1_900_000_000_000, [])
