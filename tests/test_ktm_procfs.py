"""The /proc parsers, against captured fixtures (tests/fixtures/proc), hand-made corner cases and the live
machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fodc.ktm import procfs

FIXTURES = Path(__file__).parent / "fixtures" / "proc"


def fixture(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text()


def test_psi_parses_some_and_full_lines_from_fixture() -> None:
    lines = procfs.parse_psi(fixture("pressure", "io"))
    assert [line.kind for line in lines] == ["some", "full"]
    assert lines[0] == procfs.PsiLine("some", 0.01, 0.26, 0.62, 13307061)


def test_psi_accepts_cpu_file_without_full_line() -> None:
    lines = procfs.parse_psi("some avg10=1.50 avg60=0.00 avg300=0.00 total=42\n")
    assert lines == [procfs.PsiLine("some", 1.5, 0.0, 0.0, 42)]


def test_psi_skips_malformed_line_and_keeps_good_one() -> None:
    lines = procfs.parse_psi("some avg10=x total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n")
    assert lines == [procfs.PsiLine("full", 0.0, 0.0, 0.0, 7)]


def test_vmstat_reads_every_pair_from_fixture() -> None:
    vmstat = procfs.parse_vmstat(fixture("vmstat"))
    assert len(vmstat) == len(fixture("vmstat").splitlines())
    assert vmstat["pgmajfault"] >= 0 and "nr_file_pages" in vmstat


def test_meminfo_converts_kib_to_bytes_and_keeps_counts() -> None:
    meminfo = procfs.parse_meminfo("MemTotal:       1000 kB\nHugePages_Total:       3\n")
    assert meminfo == {"MemTotal": 1024000, "HugePages_Total": 3}


def test_meminfo_fixture_has_parenthesised_keys() -> None:
    meminfo = procfs.parse_meminfo(fixture("meminfo"))
    assert "Active(file)" in meminfo and meminfo["MemTotal"] > meminfo["MemFree"] > 0


def test_diskstats_reads_modern_twenty_field_rows() -> None:
    disks = {d.device: d for d in procfs.parse_diskstats(fixture("diskstats"))}
    vda = disks["vda"]
    assert (vda.major, vda.minor, vda.reads_completed, vda.sectors_read, vda.read_time_ms) == (254, 0, 174225,
                                                                                                7782554, 53414)
    assert vda.flushes_completed == 31137 and vda.flush_time_ms == 5561


def test_diskstats_accepts_pre_4_18_rows_without_discard_fields() -> None:
    (disk,) = procfs.parse_diskstats("   8       0 sda 10 1 80 5 20 2 160 9 0 12 14\n")
    assert disk.writes_completed == 20 and disk.weighted_io_time_ms == 14
    assert disk.discards_completed is None and disk.flushes_completed is None


def test_diskstats_skips_short_rows() -> None:
    assert procfs.parse_diskstats("8 0 sda 1 2 3\n") == []


def test_pid_stat_reads_fixture_fields() -> None:
    stat = procfs.parse_pid_stat(fixture("4242", "stat"))
    assert (stat.pid, stat.comm, stat.num_threads) == (4242, "banyand", 1)
    assert stat.minor_faults == 2842 and stat.major_faults == 4 and stat.utime_ticks == 3


def test_pid_stat_handles_comm_with_spaces_and_parentheses() -> None:
    line = "77 (a) b (c)) S 1 77 77 0 -1 0 5 0 6 0 7 8 0 0 20 0 3 0 99 4096 10 0\n"
    stat = procfs.parse_pid_stat(line)
    assert (stat.comm, stat.state, stat.minor_faults, stat.major_faults) == ("a) b (c)", "S", 5, 6)
    assert (stat.utime_ticks, stat.stime_ticks, stat.num_threads, stat.vsize_bytes, stat.rss_pages) == (
        7, 8, 3, 4096, 10)


def test_pid_stat_rejects_text_without_comm() -> None:
    with pytest.raises(ValueError):
        procfs.parse_pid_stat("garbage")


def test_pid_io_reads_fixture() -> None:
    io = procfs.parse_pid_io(fixture("4242", "io"))
    assert set(io) >= {"rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes"}


def test_pid_status_converts_kib_and_skips_text_fields() -> None:
    status = procfs.parse_pid_status(fixture("4242", "status"))
    assert status["VmRSS"] % 1024 == 0 and status["VmRSS"] > 0
    assert status["Threads"] == 1 and "Name" not in status


def test_schedstat_reads_three_numbers() -> None:
    assert procfs.parse_schedstat("10 20 3\n") == procfs.SchedStat(10, 20, 3)
    assert procfs.parse_schedstat("10 20\n") is None


@pytest.mark.parametrize("name", ["vmstat", "diskstats", "meminfo"])
def test_live_system_files_parse(name: str) -> None:
    text = Path("/proc", name).read_text()
    parsed = {"vmstat": procfs.parse_vmstat, "diskstats": procfs.parse_diskstats,
              "meminfo": procfs.parse_meminfo}[name](text)
    assert parsed


def test_live_psi_parses_when_kernel_has_it() -> None:
    if not Path("/proc/pressure/io").exists():
        pytest.skip("kernel without PSI (/proc/pressure)")
    assert {line.kind for line in procfs.parse_psi(Path("/proc/pressure/io").read_text())} >= {"some"}


def test_live_own_process_files_parse() -> None:
    me = Path("/proc/self")
    assert procfs.parse_pid_stat((me / "stat").read_text()).pid == os.getpid()
    assert procfs.parse_pid_io((me / "io").read_text())["rchar"] > 0
    assert procfs.parse_pid_status((me / "status").read_text())["VmRSS"] > 0
    assert procfs.parse_schedstat((me / "schedstat").read_text()).run_ns > 0


def test_boot_time_comes_from_the_btime_line() -> None:
    assert procfs.parse_boot_time("cpu  1 2 3\nbtime 1764800000\nprocesses 9\n") == 1_764_800_000
    assert procfs.parse_boot_time("cpu  1 2 3\n") is None


def test_own_start_time_agrees_with_psutil() -> None:
    psutil = pytest.importorskip("psutil")
    from fodc.nodeconf.procread import process_start_ms

    started = process_start_ms(os.getpid())
    assert abs(started - psutil.Process().create_time() * 1000) < 1000
    stat = procfs.parse_pid_stat(Path("/proc/self/stat").read_text())
    boot = procfs.parse_boot_time(Path("/proc/stat").read_text())
    assert boot is not None and int(procfs.started_at_s(stat, boot, os.sysconf("SC_CLK_TCK")) * 1000) == started
