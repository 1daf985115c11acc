"""Node memory against its limit: explicit limit, cgroup memory.max, host MemTotal."""

from __future__ import annotations

import pytest

from fodc.diag.memory import read_memory


@pytest.fixture
def roots(tmp_path):
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "status").write_text("Name:\tbanyand\nVmRSS:\t  204800 kB\nThreads:\t12\n")
    (proc / "42" / "cgroup").write_text("0::/system.slice/banyand.service\n")
    (proc / "meminfo").write_text("MemTotal:       8388608 kB\nMemFree: 1 kB\n")
    (cgroup / "system.slice" / "banyand.service").mkdir(parents=True)
    return proc, cgroup


def test_cgroup_limit_is_used_when_set(roots):
    proc, cgroup = roots
    (cgroup / "system.slice/banyand.service/memory.max").write_text("419430400\n")
    reading = read_memory(42, proc_root=str(proc), cgroup_root=str(cgroup))
    assert (reading.rss_bytes, reading.limit_bytes) == (200 * 1024 * 1024, 400 * 1024 * 1024)
    assert reading.percent == 50.0 and reading.limit_source.startswith("cgroup ")


def test_unlimited_cgroup_falls_back_to_host_memory(roots):
    proc, cgroup = roots
    (cgroup / "system.slice/banyand.service/memory.max").write_text("max\n")
    reading = read_memory(42, proc_root=str(proc), cgroup_root=str(cgroup))
    assert reading.limit_bytes == 8 * 1024 ** 3 and reading.limit_source == "host MemTotal"


def test_explicit_limit_wins(roots):
    proc, cgroup = roots
    reading = read_memory(42, explicit_limit=1024 ** 3, proc_root=str(proc), cgroup_root=str(cgroup))
    assert reading.limit_source == "--memory-limit" and reading.percent == pytest.approx(19.53, abs=0.01)


def test_a_gone_process_raises_oserror(roots):
    proc, cgroup = roots
    with pytest.raises(OSError):
        read_memory(7, proc_root=str(proc), cgroup_root=str(cgroup))
