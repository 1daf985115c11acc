"""Background loops survive their own failures: a round that raises is logged and counted (the self-metric
`fodc_*_loop_failures_total{loop}`) and the next round runs. Exercised on the agent's real loops, with the
failure injected into the flight recorder they feed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from procs import http_get, start_agent, start_proxy, wait_for
from prometheus_client import CollectorRegistry, generate_latest

from fodc.agent.scrape import Scraper
from fodc.agent.telemetry import TelemetryFeeder
from fodc.ktm import KernelTelemetry
from fodc.periodic import FAILURES, LoopFailuresCollector
from fodc.window import FlightRecorder


class FlakyRecorder(FlightRecorder):
    """A real flight recorder whose first ingests from `source` raise an error no loop expects."""

    def __init__(self, failing_source: str, failures: int) -> None:
        super().__init__(budget_bytes=4 << 20)
        self.failing_source = failing_source
        self.failures_left = failures
        self.ingested: list[str] = []
        self._flaky_lock = threading.Lock()

    def ingest_families(self, source, timestamp_ms, families) -> None:
        with self._flaky_lock:
            if source == self.failing_source and self.failures_left:
                self.failures_left -= 1
                raise RuntimeError("injected: the disk vanished under the window")
        super().ingest_families(source, timestamp_ms, families)
        self.ingested.append(source)


def _self_metrics() -> str:
    registry = CollectorRegistry()
    registry.register(LoopFailuresCollector("fodc_agent"))
    return generate_latest(registry).decode()


def test_the_kernel_telemetry_loop_survives_an_unexpected_error_and_counts_it():
    before = FAILURES.counts().get("kernel-telemetry", 0)
    recorder = FlakyRecorder("kernel-telemetry", failures=2)
    feeder = TelemetryFeeder(KernelTelemetry(enabled="off"), recorder, interval_s=0.05)
    feeder.start()
    try:
        wait_for(lambda: recorder.ingested, 20, interval=0.05, what="a round after the failing ones")
    finally:
        feeder.stop()
    assert feeder.round_failures == 2
    assert feeder.last_error in ("", "RuntimeError: injected: the disk vanished under the window")
    counted = FAILURES.counts()["kernel-telemetry"]  # process-wide: another test's loop may add to it
    assert counted >= before + 2
    assert f'fodc_agent_loop_failures_total{{loop="kernel-telemetry"}} {counted}.0' in _self_metrics()


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"# TYPE up_{self.server.server_port} gauge\nup_{self.server.server_port} 1\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_scrape_that_fails_unexpectedly_costs_that_target_only():
    nodes = [ThreadingHTTPServer(("127.0.0.1", 0), _Page) for _ in range(2)]
    for node in nodes:
        threading.Thread(target=node.serve_forever, name="node-page", daemon=True).start()
    urls = [f"http://127.0.0.1:{node.server_port}/metrics" for node in nodes]
    before = FAILURES.counts().get("scraper", 0)
    recorder = FlakyRecorder(urls[0], failures=3)
    scraper = Scraper(urls, recorder, CollectorRegistry(), interval_s=0.05, timeout_s=2)
    scraper.start()
    try:
        wait_for(lambda: urls[0] in recorder.ingested, 20, interval=0.05, what="the failing target scraped again")
    finally:
        scraper.stop()
        for node in nodes:
            node.shutdown()
    assert scraper.round_failures == 3 and FAILURES.counts()["scraper"] >= before + 3
    assert recorder.ingested.index(urls[1]) < recorder.ingested.index(urls[0])  # the other target went on


def test_both_daemons_publish_their_loop_failures(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "li-loops")
    daemons.append(agent)

    def agent_loops():
        page = http_get(f"{agent.url}/metrics")[2].decode()
        return {line.split('"')[1] for line in page.splitlines()
                if line.startswith("fodc_agent_loop_failures_total{")} or None
    loops = wait_for(agent_loops, 30, interval=0.3, what="the agent's loop failure counts")
    assert {"scraper", "config-watch", "incident-watch"} <= loops, loops
    page = http_get(f"{proxy.url}/metrics")[2].decode()
    assert 'fodc_proxy_loop_failures_total{loop="registry-health"} 0.0' in page
