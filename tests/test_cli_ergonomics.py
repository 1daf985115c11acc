"""The `fodc` CLI as an operator meets it: host:port proxies, timeouts, pipes closed early, unexpected
answers, and tables that fit a terminal — against real processes on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys

from procs import BIN, free_port, start_agent, start_proxy, wait_for

from fodc.cli.output import fit_widths, table


def fodc(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fodc"), *args], capture_output=True, text=True, timeout=timeout)


def test_proxy_as_host_port_and_a_pipe_closed_early(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    daemons.append(start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", "hot-pipe"))
    wait_for(lambda: proxy.cluster(status="online"), what="agent online")
    host_port = proxy.url.removeprefix("http://")
    shown = fodc("--proxy", host_port, "cluster")
    assert shown.returncode == 0 and "hot-pipe" in shown.stdout, shown.stderr
    # The reader is gone before fodc writes a byte: as `fodc ... | head` when head has read enough.
    proc = subprocess.Popen([str(BIN / "fodc"), "--proxy", host_port, "--json", "cluster"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_silent_proxy_is_given_up_on_after_timeout():
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = fodc("--proxy", f"127.0.0.1:{port}", "--timeout", "1s", "cluster")
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0 and "within 1s" in result.stderr, result.stderr


def test_an_unexpected_answer_is_one_line_and_debug_shows_the_trace(tmp_path, daemons):
    (tmp_path / "cluster").write_text("this is not JSON")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, what="http.server")
        plain = fodc("--proxy", f"127.0.0.1:{port}", "cluster")
        assert plain.returncode == 1 and plain.stderr.count("\n") == 1, plain.stderr
        assert plain.stderr.startswith("fodc: unexpected error: JSONDecodeError") and "--debug" in plain.stderr
        debug = fodc("--proxy", f"127.0.0.1:{port}", "--debug", "cluster")
        assert debug.returncode == 1 and "Traceback" in debug.stderr
    finally:
        server.terminate()
        server.wait(10)


def test_a_bad_proxy_address_is_a_usage_error():
    result = fodc("--proxy", "ftp://example.invalid", "cluster")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_tables_fit_100_columns_unless_wide():
    rows = [["node-" + "x" * 40, "datanode-hot", "sha256:" + "f" * 64, "3m ago"]] * 3
    narrow = table(rows, ["node", "role", "hash", "age"])
    assert max(len(line) for line in narrow.splitlines()) <= 100 and "…" in narrow
    assert "datanode-hot" in narrow and "3m ago" in narrow  # short columns are left whole
    wide = table(rows, ["node", "role", "hash", "age"], wide=True)
    assert "f" * 64 in wide


def test_column_widths_give_way_widest_first_and_ids_stay_whole():
    assert fit_widths([10, 80, 30], 100) == [10, 56, 30]
    assert fit_widths([10, 80, 30], 100, whole=frozenset({1})) == [8, 80, 8]
    shown = table([["20261204T191751Z-rule:up", "x" * 120]], ["id", "detail"])
    assert "20261204T191751Z-rule:up" in shown and "…" in shown
    assert fit_widths([10, 10], 100) == [10, 10]
    assert sum(fit_widths([60, 60, 60], 100)) + 4 <= 100
