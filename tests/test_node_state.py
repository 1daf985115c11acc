"""What the agent says about its node: from completed scrapes only. A node that takes 80 % of the interval to
answer is answering (no false node-down); one that stops answering raises node-down at the documented time,
and systemd's STATUS= and /health (503) say so."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from notify import NotifyListener
from procs import free_port, http_json, start_agent, wait_for
from prometheus_client import CollectorRegistry

from fodc.agent.nodestate import node_scrape
from fodc.agent.scrape import Scraper
from fodc.incident.detect import NodeDown
from fodc.sim.launcher import start_sim_node
from fodc.window import FlightRecorder

INTERVAL, DELAY, DOWN_FOR = 1.5, 1.2, 4.0  # the node answers in 80 % of the scrape interval


class GatedNode:
    """A /metrics endpoint that answers at once, or holds its answer until released."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.release = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if gate.hold.is_set():
                    gate.release.wait(10)
                body = b"# TYPE up gauge\nup 1\n"
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
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_scrape_in_flight_keeps_the_previous_answer():
    node = GatedNode()
    try:
        scraper = Scraper([node.url], FlightRecorder(), CollectorRegistry(), interval_s=1, timeout_s=5)
        assert node_scrape(scraper.targets.values(), time.monotonic(), scraper.started_mono).ok is None
        scraper.scrape_once(node.url)
        node.hold.set()
        in_flight = threading.Thread(target=scraper.scrape_once, args=(node.url,))
        in_flight.start()
        time.sleep(0.3)  # the second scrape is waiting for the node
        state = node_scrape(scraper.targets.values(), time.monotonic(), scraper.started_mono)
        assert state.ok is True and state.answering == 1 and state.text().startswith("scraping 1/1 targets, last")
        node.release.set()
        in_flight.join(10)
    finally:
        node.close()


def test_node_down_is_timed_from_the_first_failed_scrape_not_from_the_check_that_saw_it():
    down = NodeDown(for_s=30)
    assert down.observe(False, 100, "refused", failing_for_s=25) is None
    fired = down.observe(False, 105, "refused", failing_for_s=30)
    assert fired == {"failing_for_s": 30, "last_error": "refused"}


@pytest.fixture
def slow_node():
    sim = start_sim_node("datanode-hot", free_port(), series=50, seed=3)
    yield sim
    sim.stop()


def health(agent):
    status, body = http_json(f"{agent.url}/health")
    return status, body


def test_a_node_answering_in_80_percent_of_the_interval_is_up_and_one_that_stops_is_down_on_time(
        tmp_path, daemons, slow_node):
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        slow_node.fault("slow", delay=DELAY)
        args = ["--node-metrics-url", slow_node.metrics_url, "--scrape-interval", f"{INTERVAL}s",
                "--scrape-timeout", f"{INTERVAL}s", "--incident-check-interval", f"{INTERVAL}s",
                "--incident-node-down-for", f"{DOWN_FOR}s", "--incident-after", "60s", "--incident-before", "10s"]
        # Three agents, each checking at its own phase of the scrape cycle.
        agents = [start_agent(tmp_path, f"127.0.0.1:{free_port()}", "datanode-hot", f"hot-{i}", *args,
                              env=listener.env(watchdog_usec=0) if i == 0 else None) for i in range(3)]
        daemons.extend(agents)
        for agent in agents:
            wait_for(lambda a=agent: health(a)[1]["node"]["answering"] == 1, 30, what="first scrape answered")
        until = time.monotonic() + 16 * INTERVAL
        summaries = []
        while time.monotonic() < until:  # many slow scrapes: never a node-down, never a 503
            for agent in agents:
                status, body = health(agent)
                assert status == 200 and body["status"] == "ok", body
                assert body["incidents"]["open"] == [], body["incidents"]
                summaries.append(body["node"]["summary"])
            time.sleep(0.5)
        # A scrape in flight is never "not answering" (a rare timeout on a loaded machine may be).
        answering = sum(summary.startswith("scraping 1/1 targets, last") for summary in summaries)
        assert answering >= 0.9 * len(summaries), summaries
        assert listener.seen("scraping 1/1 targets, last")

        stopped = time.time()
        slow_node.fault("down", duration=30)
        for agent in agents:
            status, body = wait_for(lambda a=agent: (r := health(a))[0] == 503 and r, DOWN_FOR + 20,
                                    what="/health 503 once the node is down")
            assert body["status"] == "node_down" and body["node"]["summary"].startswith("node not answering for")
            opened = wait_for(lambda a=agent: health(a)[1]["incidents"]["open"], 10, what="node-down open")
            assert [i["trigger"] for i in opened] == ["node-down"]
            fired = dt.datetime.fromisoformat(opened[0]["at"]).timestamp()
            # Timed from the last answer (at most one interval before the stop, or the one in flight then),
            # seen at the next check: the documented --incident-node-down-for, give or take those.
            assert DOWN_FOR - INTERVAL - 0.5 <= fired - stopped <= DOWN_FOR + 3 * INTERVAL + 3, fired - stopped
        wait_for(lambda: listener.seen("node not answering for") and listener.seen("1 open incident: node-down"),
                 10, what="STATUS= names the outage and its incident")
    finally:
        listener.close()
