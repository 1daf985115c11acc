"""The simulated node as a real process on loopback: endpoints, process name, faults, signals."""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from fodc.sim.faults import BAD_LINES
from fodc.sim.launcher import SimNodeProcess, free_port, start_sim_node

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
REALISTIC_FLAGS = ("--measure-root-path=/tmp/fodc-sim/measure", "--grpc-port=17912",
                   "--observability-listener-addr", ":2121")


@pytest.fixture
def start_node() -> Iterator[Callable[..., SimNodeProcess]]:
    """Starts sim nodes on free ports; every one is stopped by pid after the test."""
    started: list[SimNodeProcess] = []

    def start(role: str = "datanode-hot", **kwargs) -> SimNodeProcess:
        node = start_sim_node(role, free_port(), **kwargs)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def get(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.headers, response.read()


def samples(page: bytes) -> dict[str, float]:
    out = {}
    for line in page.decode().splitlines():
        match = SAMPLE.match(line)
        if match:
            out[match[1] + (match[2] or "")] = float(match[3])
    return out


def banyandb_counter_sum(page: bytes) -> float:
    counters = set(re.findall(r"^# TYPE (banyandb_\S+) counter$", page.decode(), re.M))
    return sum(value for key, value in samples(page).items() if key.split("{")[0] in counters)


def poll(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def refused(url: str) -> bool:
    try:
        get(url, timeout=2.0)
    except urllib.error.URLError as err:
        return isinstance(err.reason, ConnectionRefusedError)
    return False


def serves(url: str) -> bool:
    try:
        return get(url, timeout=2.0)[0] == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def test_metrics_are_served_as_prometheus_text(start_node) -> None:
    node = start_node("datanode-warm", series=3000)
    status, headers, body = get(node.metrics_url)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    series = samples(body)
    assert 2700 <= len(series) <= 3300
    assert any(key.startswith("banyandb_measure_total_file_parts{") for key in series)


def test_ten_thousand_series_are_served(start_node) -> None:
    node = start_node("liaison", series=10_000)
    assert 9000 <= len(samples(get(node.metrics_url)[2])) <= 11_000


def test_healthz_answers_ok(start_node) -> None:
    node = start_node("liaison")
    assert get(f"{node.url}/healthz")[::2] == (200, b"ok\n")


def test_metrics_are_gzipped_when_the_client_asks(start_node) -> None:
    node = start_node("liaison")
    _, headers, body = get(node.metrics_url, headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert b"# TYPE banyandb_liaison_grpc_total_started counter" in gzip.decompress(body)


def test_comm_flag_names_the_process(start_node) -> None:
    node = start_node("liaison", comm="banyand")
    with open(f"/proc/{node.pid}/comm") as comm:
        assert comm.read().strip() == "banyand"


def test_without_comm_flag_the_process_keeps_its_name(start_node) -> None:
    node = start_node("liaison")
    with open(f"/proc/{node.pid}/comm") as comm:
        assert comm.read().strip() != "banyand"


def test_pprof_cmdline_returns_the_argv_nul_separated(start_node) -> None:
    node = start_node("datanode-hot", extra_args=REALISTIC_FLAGS)
    status, headers, body = get(f"{node.url}/debug/pprof/cmdline")
    assert status == 200
    assert body.decode().split("\x00") == list(node.argv)
    assert body.decode().split("\x00")[-4:] == list(REALISTIC_FLAGS)


def test_unknown_paths_answer_404(start_node) -> None:
    node = start_node("liaison")
    with pytest.raises(urllib.error.HTTPError) as err:
        get(f"{node.url}/nope")
    assert err.value.code == 404


def test_pid_file_is_written_and_removed_on_exit(start_node, tmp_path) -> None:
    pid_file = tmp_path / "banyand.pid"
    node = start_node("liaison", extra_args=("--pid-file", str(pid_file)))
    assert pid_file.read_text().strip() == str(node.pid)
    node.stop()
    assert not pid_file.exists()


def test_sigterm_exits_cleanly(start_node) -> None:
    node = start_node("liaison")
    assert node.stop() == 0


def test_down_refuses_connections_then_comes_back(start_node) -> None:
    node = start_node("liaison")
    answer = node.fault("down", duration=1.0)
    assert answer["fault"]["mode"] == "down"
    assert refused(node.metrics_url)
    poll(lambda: serves(node.metrics_url), "the node to listen again")
    assert node.fault_state()["fault"]["mode"] == "ok"


def test_slow_answers_metrics_after_faster_requests(start_node) -> None:
    node = start_node("liaison")
    answer = node.fault("slow", delay=3)
    assert (answer["fault"]["mode"], answer["fault"]["delay_s"]) == ("slow", 3.0)
    finished: list[str] = []
    scrape = threading.Thread(target=lambda: (get(node.metrics_url), finished.append("metrics")))
    scrape.start()
    get(f"{node.url}/healthz")
    finished.append("healthz")
    scrape.join(timeout=30)
    assert finished == ["healthz", "metrics"]


def test_ok_clears_a_fault(start_node) -> None:
    node = start_node("liaison")
    node.fault("garbage")
    assert node.fault("ok")["fault"]["mode"] == "ok"
    assert not set(get(node.metrics_url)[2].decode().splitlines()) & set(BAD_LINES)


def test_garbage_mixes_invalid_lines_into_the_page(start_node) -> None:
    node = start_node("liaison")
    node.fault("garbage")
    lines = get(node.metrics_url)[2].decode().splitlines()
    assert set(lines) & set(BAD_LINES)
    assert any(line.startswith("banyandb_liaison_grpc_total_started{") for line in lines)


def test_total_garbage_has_no_valid_sample(start_node) -> None:
    node = start_node("liaison")
    node.fault("garbage", variant="total")
    body = get(node.metrics_url)[2]
    assert body
    assert samples(body) == {}


def test_huge_serves_an_oversized_page(start_node) -> None:
    node = start_node("liaison")
    node.fault("huge", mb=12)
    assert len(get(node.metrics_url)[2]) >= 12 * 1024 * 1024


def test_fault_with_a_duration_expires(start_node) -> None:
    node = start_node("liaison")
    node.fault("garbage", duration=0.5)
    poll(lambda: node.fault_state()["fault"]["mode"] == "ok", "the fault to expire")
    assert not set(get(node.metrics_url)[2].decode().splitlines()) & set(BAD_LINES)


def test_fault_parameters_may_come_as_query_parameters(start_node) -> None:
    node = start_node("liaison")
    request = urllib.request.Request(f"{node.url}/-/fault?mode=slow&delay=0.25", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert node.fault_state()["fault"]["delay_s"] == 0.25


def test_unknown_fault_mode_is_rejected(start_node) -> None:
    node = start_node("liaison")
    with pytest.raises(urllib.error.HTTPError) as err:
        node.fault("explode")
    assert err.value.code == 400
    assert node.fault_state()["fault"]["mode"] == "ok"


def test_storage_reads_run_in_threads_named_like_the_node(start_node) -> None:
    node = start_node("datanode-hot", comm="banyand", reads_per_s=50)
    poll(lambda: node.fault_state()["storage_reads"] >= 5, "storage reads")
    tasks = os.listdir(f"/proc/{node.pid}/task")
    assert len(tasks) >= 3  # main, http, reader, feeder
    for tid in tasks:
        with open(f"/proc/{node.pid}/task/{tid}/comm") as comm:
            assert comm.read().strip() == "banyand"  # KTM filters per thread


def test_slow_reads_keeps_the_node_reading(start_node) -> None:
    node = start_node("datanode-hot", reads_per_s=50)
    assert node.fault("slow-reads", delay=0.02)["fault"]["mode"] == "slow-reads"
    before = node.fault_state()["storage_reads"]
    poll(lambda: node.fault_state()["storage_reads"] >= before + 3, "slow reads completing")


def test_a_read_held_by_slow_reads_does_not_hold_up_the_exit(start_node) -> None:
    node = start_node("datanode-hot", reads_per_s=50)
    node.fault("slow-reads", delay=600)
    assert node.stop() == 0  # SIGTERM handled, not SIGKILLed after the stop timeout


def test_slow_reads_needs_a_node_that_reads(start_node) -> None:
    node = start_node("liaison")
    with pytest.raises(urllib.error.HTTPError) as err:
        node.fault("slow-reads")
    assert err.value.code == 400 and b"--reads-per-s" in err.value.read()
    assert node.fault_state()["storage_reads"] is None
    assert node.fault_state()["fault"]["mode"] == "ok"


def wait_for_uptime(node: SimNodeProcess, seconds: float) -> bytes:
    """A page taken once the node reports at least `seconds` of uptime (so its counters have grown)."""
    def page_when_old_enough() -> bytes | None:
        body = get(node.metrics_url)[2]
        return body if samples(body)["banyandb_system_up_time"] >= seconds else None

    return poll(page_when_old_enough, f"{seconds}s of uptime")  # type: ignore[return-value]


def test_reset_fault_restarts_counters_lower(start_node) -> None:
    node = start_node("datanode-hot")
    before = wait_for_uptime(node, 2)
    answer = node.fault("reset")
    after = get(node.metrics_url)[2]
    assert answer["restarts"] == 1
    assert banyandb_counter_sum(after) < banyandb_counter_sum(before)
    assert samples(after)["process_start_time_seconds"] > samples(before)["process_start_time_seconds"]


def test_sighup_resets_counters(start_node) -> None:
    node = start_node("datanode-cold")
    before = wait_for_uptime(node, 2)
    node.signal(signal.SIGHUP)
    poll(lambda: node.fault_state()["restarts"] == 1, "the reset")
    after = get(node.metrics_url)[2]
    assert banyandb_counter_sum(after) < banyandb_counter_sum(before)


def test_start_reports_a_node_that_cannot_listen() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="did not start serving"):
            start_sim_node("liaison", taken.getsockname()[1], ready_timeout=10)


def test_free_port_can_be_bound() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
