"""Pure pieces of KTM: OS families from fixtures, eBPF snapshot → families, status rules, cgroup parsing,
the thread-sum accumulator and the generated BPF source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from promcheck import check_metrics

from fodc.expfmt import Family, render
from fodc.ktm import bpfmetrics, cgroup, osmetrics, prereq, procfs
from fodc.ktm import programs as catalog
from fodc.ktm.loader import BpfSnapshot
from fodc.ktm.oscollect import OsTelemetry
from fodc.ktm.status import KtmStatus, Mode, ProgramState, decide
from fodc.ktm.threadsum import ThreadSum

FIXTURES = Path(__file__).parent / "fixtures" / "proc"
NOW = 1_790_000_000_123


def by_name(families: list[Family]) -> dict[str, Family]:
    return {f.name: f for f in families}


def fixture_os_families() -> list[Family]:
    return OsTelemetry(target_pid=lambda: 4242, proc_root=str(FIXTURES)).collect(NOW)


# ------------------------------------------------------------------------------------------------ OS families


def test_fixture_tree_yields_every_os_group() -> None:
    names = {f.name for f in fixture_os_families()}
    for prefix in ("fodc_os_psi_", "fodc_os_vmstat_", "fodc_os_disk_", "fodc_os_meminfo_", "fodc_node_process_"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_psi_total_becomes_seconds_and_average_a_ratio() -> None:
    families = by_name(osmetrics.psi_families({"io": procfs.parse_psi((FIXTURES / "pressure/io").read_text())}, NOW))
    stall = {s.labels: s.value for s in families["fodc_os_psi_stall_seconds_total"].samples}
    assert stall[(("kind", "some"), ("resource", "io"))] == pytest.approx(13.307061)
    ratio = {s.labels: s.value for s in families["fodc_os_psi_pressure_ratio"].samples}
    assert ratio[(("kind", "some"), ("resource", "io"), ("window", "300s"))] == pytest.approx(0.0062)


def test_vmstat_gauges_are_bytes_and_allocstall_sums_zones() -> None:
    vmstat = {"nr_dirty": 3, "allocstall_normal": 2, "allocstall_movable": 5, "pgpgin": 10}
    families = by_name(osmetrics.vmstat_families(vmstat, NOW, page_size=4096))
    assert families["fodc_os_vmstat_dirty_bytes"].samples[0].value == 3 * 4096
    assert families["fodc_os_vmstat_allocation_stalls_total"].samples[0].value == 7
    assert families["fodc_os_vmstat_paged_in_bytes_total"].samples[0].value == 10 * 1024
    assert families["fodc_os_vmstat_allocation_stalls_total"].type == "counter"


def test_disk_families_skip_loop_and_idle_devices() -> None:
    disks = procfs.parse_diskstats((FIXTURES / "diskstats").read_text())
    families = by_name(osmetrics.disk_families(disks, NOW))
    devices = {s.labels for s in families["fodc_os_disk_reads_completed_total"].samples}
    assert devices == {(("device", "vda"),)}


def test_disk_bytes_and_seconds_use_base_units() -> None:
    (disk,) = procfs.parse_diskstats("8 0 sda 10 1 80 5 20 2 160 9 0 12 14\n")
    families = by_name(osmetrics.disk_families([disk], NOW))
    assert families["fodc_os_disk_read_bytes_total"].samples[0].value == 80 * 512
    assert families["fodc_os_disk_read_time_seconds_total"].samples[0].value == pytest.approx(0.005)
    assert "fodc_os_disk_flushes_completed_total" not in families


def test_process_families_from_fixture_carry_cpu_rss_io_and_run_delay() -> None:
    families = by_name(fixture_os_families())
    cpu = {s.labels: s.value for s in families["fodc_node_process_cpu_seconds_total"].samples}
    assert set(cpu) == {(("mode", "system"),), (("mode", "user"),)}
    status = procfs.parse_pid_status((FIXTURES / "4242/status").read_text())
    assert families["fodc_node_process_resident_memory_bytes"].samples[0].value == status["VmRSS"]
    sched = procfs.parse_schedstat((FIXTURES / "4242/schedstat").read_text())
    assert families["fodc_node_process_run_delay_seconds_total"].samples[0].value == pytest.approx(
        sched.run_delay_ns / 1e9)
    assert "fodc_node_process_io_storage_read_bytes_total" in families


def test_process_families_absent_when_pid_unknown_or_gone() -> None:
    unknown = OsTelemetry(target_pid=lambda: None, proc_root=str(FIXTURES)).collect(NOW)
    gone = OsTelemetry(target_pid=lambda: 999999, proc_root=str(FIXTURES)).collect(NOW)
    assert not any(f.name.startswith("fodc_node_process_") for f in unknown + gone)


def test_every_os_sample_carries_the_collection_time() -> None:
    assert {s.timestamp_ms for f in fixture_os_families() for s in f.samples} == {NOW}


def test_live_machine_yields_os_families() -> None:
    import os

    names = {f.name for f in OsTelemetry(target_pid=os.getpid).collect(NOW)}
    assert "fodc_os_meminfo_available_bytes" in names and "fodc_node_process_cpu_seconds_total" in names
    assert "fodc_node_process_run_delay_seconds_total" in names


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_os_families_pass_promtool_lint() -> None:
    page = render(fixture_os_families())
    code, findings = check_metrics(page)
    assert code == 0, findings


# ------------------------------------------------------------------------------------------------ thread sums


def test_thread_sum_keeps_what_exited_threads_reached() -> None:
    acc = ThreadSum(1)
    assert acc.update({1: (10,), 2: (5,)}) == (15,)
    assert acc.update({1: (12,)}) == (17,)  # thread 2 exited at 5: kept
    assert acc.update({1: (12,), 3: (1,)}) == (18,)


def test_thread_sum_reset_forgets_previous_process() -> None:
    acc = ThreadSum(1)
    acc.update({1: (10,)})
    acc.reset()
    assert acc.update({7: (2,)}) == (2,)


# ------------------------------------------------------------------------------------------------ eBPF families


def snapshot(**counters: int) -> BpfSnapshot:
    values = tuple(counters.get(name, 0) for name in catalog.COUNTERS)
    hists = tuple(tuple(0 for _ in range(catalog.HIST_SLOTS)) for _ in catalog.HISTOGRAMS)
    return BpfSnapshot(values, hists, tuple(0 for _ in catalog.HISTOGRAMS))


def test_histogram_buckets_are_cumulative_log2_microseconds_in_seconds() -> None:
    slots = [0] * catalog.HIST_SLOTS
    slots[0], slots[3], slots[catalog.HIST_SLOTS - 1] = 2, 5, 1  # <1 µs, 4..7 µs, overflow
    family = bpfmetrics.histogram("ktm_x_seconds", "x", tuple(slots), 3_000_000_000, NOW)
    buckets = {dict(s.labels)["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["1e-06"] == 2 and buckets["4e-06"] == 2 and buckets["8e-06"] == 7
    assert buckets[repr(2 ** catalog.MAX_SLOT * 1e-6)] == 7 and buckets["+Inf"] == 8
    tail = {s.name: s.value for s in family.samples if not s.name.endswith("_bucket")}
    assert tail == {"ktm_x_seconds_sum": 3.0, "ktm_x_seconds_count": 8}


def test_bpf_families_use_upstream_names_for_attached_programs() -> None:
    families = by_name(bpfmetrics.bpf_families(snapshot(read_bytes=100, pread_bytes=7, fadvise_dontneed=2),
                                               set(catalog.PROGRAM_NAMES), NOW))
    for name in ("ktm_sys_read_latency_seconds", "ktm_sys_pread_latency_seconds", "ktm_sys_read_bytes_total",
                 "ktm_fadvise_calls_total", "ktm_fadvise_dontneed_total", "ktm_cache_lookups_total",
                 "ktm_cache_fills_total", "ktm_cache_deletes_total", "ktm_memory_lru_pages_scanned_total",
                 "ktm_memory_lru_pages_reclaimed_total", "ktm_memory_lru_shrink_events_total",
                 "ktm_memory_direct_reclaim_begin_total"):
        assert name in families, name
    read_bytes = {s.labels: s.value for s in families["ktm_sys_read_bytes_total"].samples}
    assert read_bytes == {(("syscall", "pread64"),): 7, (("syscall", "read"),): 100}
    assert families["ktm_sys_read_latency_seconds"].type == "histogram"


def test_bpf_families_omit_programs_not_attached() -> None:
    names = {f.name for f in bpfmetrics.bpf_families(snapshot(), {"read"}, NOW)}
    assert "ktm_sys_read_latency_seconds" in names
    assert "ktm_fadvise_calls_total" not in names and "ktm_sys_pread_latency_seconds" not in names


def test_status_families_report_mode_and_each_program() -> None:
    status = KtmStatus(Mode.DEGRADED, "x", (ProgramState("read", True), ProgramState("fadvise", False, "gone")),
                       "comm", "banyand")
    families = by_name(bpfmetrics.status_families(status, NOW))
    assert families["ktm_status"].samples[0].value == 1
    attached = {dict(s.labels)["program"]: s.value for s in families["ktm_program_attached"].samples}
    assert attached == {"read": 1, "fadvise": 0}


# ------------------------------------------------------------------------------------------------ status rules


def test_full_needs_every_program_and_the_cgroup_filter() -> None:
    programs = (ProgramState("read", True), ProgramState("pread", True))
    assert decide(programs, cgroup_filter=True) == (Mode.FULL, "")
    mode, reason = decide(programs, cgroup_filter=False)
    assert mode == Mode.DEGRADED and "comm-only" in reason


def test_some_programs_missing_is_degraded_with_their_reasons() -> None:
    mode, reason = decide((ProgramState("read", True), ProgramState("block_io", False, "missing tracepoint b")),
                          cgroup_filter=True)
    assert mode == Mode.DEGRADED and "block_io: missing tracepoint b" in reason


def test_nothing_attached_is_disabled() -> None:
    mode, reason = decide((ProgramState("read", False, "attach failed: x"),), cgroup_filter=True)
    assert (mode, reason) == (Mode.DISABLED, "attach failed: x")


def test_blocker_wins_over_program_states() -> None:
    assert decide((ProgramState("read", True),), cgroup_filter=True, blocker="no bcc") == (Mode.DISABLED, "no bcc")


# ------------------------------------------------------------------------------------------------ prerequisites


def test_capabilities_accept_bpf_plus_perfmon_or_sys_admin() -> None:
    assert prereq.missing_caps(1 << prereq.CAP_SYS_ADMIN) == ""
    assert prereq.missing_caps(1 << prereq.CAP_BPF | 1 << prereq.CAP_PERFMON) == ""
    assert "CAP_BPF" in prereq.missing_caps(1 << prereq.CAP_BPF)
    assert prereq.effective_caps("Name:\tx\nCapEff:\t000001ffffffffff\n") == 0x1FFFFFFFFFF


# ------------------------------------------------------------------------------------------------ cgroup


MOUNTINFO = ("25 1 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
             "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")


def test_cgroup2_mount_found_in_hybrid_layout() -> None:
    assert cgroup.cgroup2_mount(MOUNTINFO) == "/sys/fs/cgroup/unified"
    assert cgroup.cgroup2_mount("25 1 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n") is None


def test_cgroup2_path_is_the_unified_line() -> None:
    text = (FIXTURES / "4242" / "cgroup").read_text()
    assert cgroup.cgroup2_path(text) == "/"
    assert cgroup.cgroup2_path("0::/system.slice/banyandb.service\n") == "/system.slice/banyandb.service"
    assert cgroup.cgroup2_path("4:memory:/x\n") is None


def test_own_cgroup_id_resolves_on_live_machine() -> None:
    import os

    cgroup_id, where = cgroup.resolve_cgroup_id(pid=os.getpid())
    if cgroup_id is None and "no cgroup v2" in where:
        pytest.skip("no cgroup v2 hierarchy here")
    assert cgroup_id == os.stat(where).st_ino


# ------------------------------------------------------------------------------------------------ BPF source


def test_every_program_uses_only_tracepoints_and_helpers() -> None:
    source = catalog.source_for(catalog.PROGRAMS)
    for forbidden in ("kprobe", "bpf_probe_read(", "task_struct", "->mm", "bpf_get_current_task"):
        assert forbidden not in source, forbidden
    for program in catalog.PROGRAMS:
        assert len(program.tracepoints) == len(program.functions)
        for function in program.functions:
            assert f"int {function}(struct tracepoint__" in source
