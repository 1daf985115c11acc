"""Acceptance with real eBPF: helper processes with known comms do known reads, and KTM's counters and
histogram counts match exactly what the target did, and nothing of what the other process did.

Needs root, python3-bpfcc and a kernel header tree (see `bpfready`). Skips with the reason when a
prerequisite is missing; fails when they are all there and KTM still does not load.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from bpfready import require_bpf, skip_or_fail
from promcheck import check_metrics

from fodc.expfmt import Family, render
from fodc.ktm import KernelTelemetry, Mode

REPO = Path(__file__).resolve().parent.parent
NOW = 1_790_000_000_000

READ_SIZE, READS, TAIL_READ = 4096, 12, 1000
PREAD_SIZE, PREADS = 3000, 9
FILE_BYTES = 256 * 1024

# The helper opens the file, renames itself, says "ready" and waits for SIGUSR1 without making a read()
# (sigwait), then runs the plan and says "done" (write() only). Everything it imports is imported first.
HELPER = f"""
import os, signal, sys
from fodc.sim.process_name import set_comm
path, comm = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1}})
set_comm(comm)
os.write(1, b"ready\\n")
signal.sigwait({{signal.SIGUSR1}})
for _ in range({READS}):
    os.read(fd, {READ_SIZE})
os.read(fd, {TAIL_READ})
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
for i in range({PREADS}):
    os.pread(fd, {PREAD_SIZE}, i * 8192)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.write(1, b"done\\n")
signal.sigwait({{signal.SIGUSR1}})
"""


@pytest.fixture(scope="module")
def bpf_ready() -> None:
    require_bpf()


class Helper:
    def __init__(self, path: Path, comm: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HELPER, str(path), comm], cwd=REPO,
                                     stdout=subprocess.PIPE)
        self.expect(b"ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, word: bytes) -> None:
        line = self.proc.stdout.readline()
        assert line.strip() == word, f"helper said {line!r}, expected {word!r}"

    def go(self) -> None:
        os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "segment.bin"
    with open(path, "wb") as out:
        out.write(os.urandom(FILE_BYTES))
        out.flush()
        os.fsync(out.fileno())  # clean pages: DONTNEED can then evict every one of them
    return path


@pytest.fixture
def helpers() -> Iterator[list[Helper]]:
    started: list[Helper] = []
    yield started
    for helper in started:
        helper.stop()


def unique_comm(tag: str) -> str:
    return f"ktm{tag}{os.getpid() % 100000}"


def run_plan(targets: list[Helper]) -> None:
    for helper in targets:
        helper.go()
    for helper in targets:
        helper.expect(b"done")


def values(families: list[Family]) -> dict[tuple[str, tuple], float]:
    return {(s.name, s.labels): s.value for f in families for s in f.samples}


def test_counters_match_the_target_exactly_and_ignore_the_other_process(bpf_ready, data_file, helpers) -> None:
    target_comm = unique_comm("t")
    ktm = KernelTelemetry(enabled="on", target_comm=target_comm, target_pid=lambda: helpers[0].pid)
    try:
        helpers.append(Helper(data_file, target_comm))
        helpers.append(Helper(data_file, unique_comm("o")))  # same plan, other comm, same time
        ktm.start()
        assert ktm.status().mode != Mode.DISABLED, ktm.status().reason
        run_plan(helpers)
        v = values(ktm.collect(NOW))
    finally:
        ktm.close()
    assert v[("ktm_sys_read_latency_seconds_count", ())] == READS + 1
    assert v[("ktm_sys_read_bytes_total", (("syscall", "read"),))] == READS * READ_SIZE + TAIL_READ
    assert v[("ktm_sys_pread_latency_seconds_count", ())] == PREADS
    assert v[("ktm_sys_read_bytes_total", (("syscall", "pread64"),))] == PREADS * PREAD_SIZE
    assert v[("ktm_fadvise_calls_total", ())] == 3
    assert v[("ktm_fadvise_dontneed_total", ())] == 2
    assert v[("ktm_sys_read_errors_total", (("syscall", "read"),))] == 0


def test_histogram_buckets_add_up_to_the_count(bpf_ready, data_file, helpers) -> None:
    comm = unique_comm("h")
    ktm = KernelTelemetry(target_comm=comm)
    try:
        helpers.append(Helper(data_file, comm))
        ktm.start()
        run_plan(helpers)
        family = next(f for f in ktm.collect(NOW) if f.name == "ktm_sys_pread_latency_seconds")
    finally:
        ktm.close()
    buckets = [s.value for s in family.samples if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == PREADS
    total = next(s.value for s in family.samples if s.name.endswith("_sum"))
    assert total > 0


def run_one_target(data_file: Path, helpers: list[Helper], comm: str, **options) -> dict[tuple[str, tuple], float]:
    """KTM aimed at `comm`, one helper of that comm running the plan; the values collected after it."""
    ktm = KernelTelemetry(target_comm=comm, **options)
    try:
        helpers.append(Helper(data_file, comm))
        ktm.start()
        run_plan(helpers)
        return values(ktm.collect(NOW))
    finally:
        ktm.close()


def test_page_cache_churn_and_run_queue_are_seen(bpf_ready, data_file, helpers) -> None:
    v = run_one_target(data_file, helpers, unique_comm("c"), target_pid=lambda: helpers[0].pid)
    pages = FILE_BYTES // os.sysconf("SC_PAGE_SIZE")
    assert v[("ktm_cache_deletes_total", ())] >= pages  # the first DONTNEED drops the whole clean file
    assert v[("ktm_cache_fills_total", ())] >= 1  # preads after it read from storage again
    assert v[("ktm_cache_lookups_total", ())] >= READS + 1 + PREADS
    assert v[("ktm_sched_runqueue_latency_seconds_count", ())] >= 1  # woken from sigwait, then ran


def test_full_mode_with_cgroup_filter_when_target_pid_known(bpf_ready, data_file, helpers) -> None:
    comm = unique_comm("f")
    helpers.append(Helper(data_file, comm))
    ktm = KernelTelemetry(target_comm=comm, target_pid=lambda: helpers[0].pid)
    try:
        ktm.start()
        status = ktm.status()
    finally:
        ktm.close()
    missing = [p for p in status.programs if not p.attached]
    assert status.filter == "comm+cgroup"
    assert status.mode == (Mode.FULL if not missing else Mode.DEGRADED), status.reason
    assert all("missing tracepoint" in p.reason for p in missing)


CGROUP_PARENT = "/sys/fs/cgroup/unified" if os.path.isfile("/sys/fs/cgroup/unified/cgroup.procs") else "/sys/fs/cgroup"


def test_cgroup_filter_excludes_same_comm_outside_the_cgroup(bpf_ready, data_file, helpers) -> None:
    group = Path(CGROUP_PARENT) / f"fodc-ktm-test-{os.getpid()}"
    try:
        group.mkdir()
    except OSError as exc:
        skip_or_fail(f"cannot create a cgroup v2 group here: {exc}")
    comm = unique_comm("g")
    ktm = KernelTelemetry(target_comm=comm, cgroup_path=str(group))
    try:
        inside, outside = Helper(data_file, comm), Helper(data_file, comm)
        helpers += [inside, outside]
        (group / "cgroup.procs").write_text(str(inside.pid))
        ktm.start()
        assert ktm.status().filter == "comm+cgroup", ktm.status().reason
        run_plan(helpers)
        v = values(ktm.collect(NOW))
    finally:
        ktm.close()
        for helper in helpers:
            helper.stop()
        for _ in range(50):  # the cgroup can be removed once its last process is reaped
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    assert v[("ktm_sys_pread_latency_seconds_count", ())] == PREADS
    assert v[("ktm_fadvise_calls_total", ())] == 3


def test_a_comm_longer_than_the_kernel_keeps_is_still_matched(bpf_ready, data_file, helpers) -> None:
    # the kernel keeps 15 bytes of a comm; the filter must compare the same 15
    v = run_one_target(data_file, helpers, unique_comm("long-name-for-the-kernel"))
    assert v[("ktm_sys_pread_latency_seconds_count", ())] == PREADS


def test_cgroup_found_later_from_the_target_pid_upgrades_the_filter(bpf_ready, data_file, helpers) -> None:
    comm = unique_comm("u")
    pid: list[int | None] = [None]
    ktm = KernelTelemetry(target_comm=comm, target_pid=lambda: pid[0])
    try:
        helpers.append(Helper(data_file, comm))
        ktm.start()
        assert ktm.status().filter == "comm", ktm.status().reason
        pid[0] = helpers[0].pid
        ktm.collect(NOW)
        assert ktm.status().filter == "comm+cgroup" and ktm.status().cgroup_id is not None
        run_plan(helpers)
        v = values(ktm.collect(NOW))
    finally:
        ktm.close()
    assert v[("ktm_sys_pread_latency_seconds_count", ())] == PREADS


def perf_event_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += "perf_event" in os.readlink(f"/proc/self/fd/{fd}")
    return count


def test_the_compiler_stays_out_of_the_process_and_close_detaches(bpf_ready, data_file, helpers) -> None:
    comm = unique_comm("x")
    before = perf_event_fds()
    ktm = KernelTelemetry(target_comm=comm)
    try:
        helpers.append(Helper(data_file, comm))
        ktm.start()
        assert ktm.status().mode != Mode.DISABLED, ktm.status().reason
        maps = Path("/proc/self/maps").read_text()
        assert "libbcc" not in maps and "libLLVM" not in maps and "bcc" not in sys.modules
        assert not [c for c in psutil.Process().children() if "fodc.ktm.bccload" in c.cmdline()]  # reaped
        assert perf_event_fds() > before  # the attachments are held here, by fd
    finally:
        ktm.close()
    assert perf_event_fds() == before


def test_collect_output_passes_promtool(bpf_ready, data_file, helpers) -> None:
    if shutil.which("promtool") is None:
        skip_or_fail("promtool (Debian package prometheus) not installed")
    comm = unique_comm("p")
    ktm = KernelTelemetry(target_comm=comm, target_pid=os.getpid)
    try:
        helpers.append(Helper(data_file, comm))
        ktm.start()
        run_plan(helpers)
        page = render(ktm.collect(NOW))
    finally:
        ktm.close()
    assert "ktm_sys_read_latency_seconds_bucket" in page and "fodc_os_psi_" in page
    code, findings = check_metrics(page)
    assert code == 0, findings
