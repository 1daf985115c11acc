"""KernelTelemetry without working eBPF: it says why (mode 0 or 1, a reason), never raises, and the OS
fallback metrics still flow. Uses a fake `bcc` module where the kernel is not needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from fodc.ktm import KernelTelemetry, Mode, prereq
from fodc.ktm import programs as catalog
from fodc.ktm.cgroup import resolve_cgroup_id

REPO = Path(__file__).resolve().parent.parent
NOW = 1_790_000_000_000


def names(families) -> set[str]:
    return {f.name for f in families}


def assert_os_fallback_present(families) -> None:
    got = names(families)
    for prefix in ("fodc_os_vmstat_", "fodc_os_meminfo_", "fodc_os_disk_"):
        assert any(n.startswith(prefix) for n in got), prefix


def test_enabled_off_is_disabled_with_reason_and_os_metrics_flow() -> None:
    ktm = KernelTelemetry(enabled="off", target_pid=os.getpid)
    ktm.start()
    families = ktm.collect(NOW)
    assert ktm.status().mode == Mode.DISABLED and "enabled=off" in ktm.status().reason
    status_sample = next(f for f in families if f.name == "ktm_status").samples[0]
    assert status_sample.value == 0
    assert_os_fallback_present(families)
    assert "fodc_node_process_cpu_seconds_total" in names(families)
    ktm.close()


def test_every_program_reports_unattached_when_disabled() -> None:
    ktm = KernelTelemetry(enabled="off")
    ktm.start()
    attached = next(f for f in ktm.collect(NOW) if f.name == "ktm_program_attached")
    assert {dict(s.labels)["program"] for s in attached.samples} == set(catalog.PROGRAM_NAMES)
    assert {s.value for s in attached.samples} == {0.0}


def test_bcc_import_failure_is_disabled_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bcc", None)  # makes `import bcc` raise ImportError
    ktm = KernelTelemetry(enabled="on")
    ktm.start()
    assert ktm.status().mode == Mode.DISABLED
    assert "bcc" in ktm.capabilities()["ktm_reason"]
    assert ktm.capabilities()["ktm_mode"] == "disabled"
    assert_os_fallback_present(ktm.collect(NOW))


def test_collect_before_start_works_and_reports_not_started() -> None:
    ktm = KernelTelemetry()
    families = ktm.collect(NOW)
    assert ktm.status().reason == "not started"
    assert_os_fallback_present(families)


def test_unexpected_error_in_start_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bcc", types.ModuleType("bcc"))

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(prereq, "check_caps", explode)
    ktm = KernelTelemetry()
    ktm.start()
    assert ktm.status().mode == Mode.DISABLED and "boom" in ktm.status().reason


def test_missing_kernel_headers_is_named_as_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bcc", types.ModuleType("bcc"))
    monkeypatch.setattr(prereq, "check_caps", lambda *_: "")
    monkeypatch.setattr(prereq, "find_tracefs", lambda: "/sys/kernel/tracing")
    monkeypatch.setattr(prereq, "find_kernel_headers", lambda *_: None)
    ktm = KernelTelemetry()
    ktm.start()
    assert ktm.status().mode == Mode.DISABLED and "kernel headers" in ktm.status().reason


def test_missing_tracefs_is_named_as_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bcc", types.ModuleType("bcc"))
    monkeypatch.setattr(prereq, "check_caps", lambda *_: "")
    monkeypatch.setattr(prereq, "find_tracefs", lambda: None)
    ktm = KernelTelemetry()
    ktm.start()
    assert "tracefs" in ktm.status().reason


# ------------------------------------------------------------------------------------------------ fake BCC


class FakeTable:
    def __init__(self) -> None:
        self.values: dict[int, object] = {}

    def Leaf(self):  # noqa: N802 - BCC's name
        return types.SimpleNamespace(comm=b"", cgroup_id=0, use_cgroup=0)

    def __setitem__(self, key, value) -> None:
        self.values[key.value] = value

    def items_lookup_batch(self):
        return iter(())


class FakeBPF:
    """Stands in for bcc.BPF: compiles nothing, fails to attach the tracepoints in `refuse`."""

    refuse: set[str] = set()
    last: FakeBPF | None = None

    def __init__(self, text: bytes, cflags: list[str]) -> None:
        self.text = text.decode()
        self.attached: list[str] = []
        self.detached: list[str] = []
        self.tables: dict[str, FakeTable] = {}
        FakeBPF.last = self

    def attach_tracepoint(self, tp: bytes, fn_name: bytes) -> None:
        tp = tp.decode()
        if tp in self.refuse:
            raise Exception(f"Failed to attach BPF program {fn_name} to tracepoint {tp}")
        self.attached.append(tp)

    def detach_tracepoint(self, tp: bytes) -> None:
        self.detached.append(tp.decode())

    def __getitem__(self, name: bytes) -> FakeTable:
        return self.tables.setdefault(name.decode(), FakeTable())

    def cleanup(self) -> None:
        pass


@pytest.fixture
def fake_bcc(monkeypatch: pytest.MonkeyPatch) -> type[FakeBPF]:
    module = types.ModuleType("bcc")
    module.BPF = FakeBPF
    FakeBPF.refuse = set()
    monkeypatch.setitem(sys.modules, "bcc", module)
    monkeypatch.setattr(prereq, "check_caps", lambda *_: "")
    monkeypatch.setattr(prereq, "find_tracefs", lambda: "/sys/kernel/tracing")
    monkeypatch.setattr(prereq, "find_kernel_headers", lambda *_: "")
    monkeypatch.setattr(prereq, "tracepoint_exists", lambda _fs, tp: tp != "block:block_rq_issue")
    return FakeBPF


def test_missing_tracepoint_and_failed_attach_degrade_only_their_programs(fake_bcc) -> None:
    fake_bcc.refuse = {"sched:sched_switch"}
    ktm = KernelTelemetry(target_comm="banyand")
    ktm.start()
    status = ktm.status()
    states = {p.name: p for p in status.programs}
    assert status.mode == Mode.DEGRADED
    assert states["block_io"].reason == "missing tracepoint block:block_rq_issue"
    assert "attach failed" in states["runqueue"].reason and states["read"].attached
    assert "block_rq_issue" not in fake_bcc.last.text  # not compiled at all


def test_half_attached_program_is_detached(fake_bcc) -> None:
    fake_bcc.refuse = {"sched:sched_switch"}
    ktm = KernelTelemetry()
    ktm.start()
    assert fake_bcc.last.detached == ["sched:sched_wakeup", "sched:sched_wakeup_new"]


def test_filter_is_configured_with_target_comm(fake_bcc) -> None:
    ktm = KernelTelemetry(target_comm="banyand-with-long-name")
    ktm.start()
    config = fake_bcc.last.tables["ktm_config"].values[0]
    assert config.comm == b"banyand-with-lo"  # the kernel keeps 15 bytes of comm


def test_families_only_for_attached_programs(fake_bcc) -> None:
    fake_bcc.refuse = {"syscalls:sys_enter_pread64"}
    ktm = KernelTelemetry()
    ktm.start()
    got = names(ktm.collect(NOW))
    assert "ktm_sys_read_latency_seconds" in got and "ktm_sys_pread_latency_seconds" not in got


def test_cgroup_found_from_target_pid_upgrades_filter(fake_bcc) -> None:
    if resolve_cgroup_id(pid=os.getpid())[0] is None:
        pytest.skip("no cgroup v2 hierarchy or membership here")
    pid: list[int | None] = [None]
    ktm = KernelTelemetry(target_pid=lambda: pid[0])
    ktm.start()
    assert ktm.status().filter == "comm" and "comm-only" in ktm.status().reason
    pid[0] = os.getpid()
    ktm.collect(NOW)
    assert ktm.status().filter == "comm+cgroup" and ktm.status().cgroup_id is not None
    assert fake_bcc.last.tables["ktm_config"].values[0].use_cgroup == 1


# ------------------------------------------------------------------------------------------------ unprivileged


UNPRIVILEGED = """
import json, os
from fodc.ktm import KernelTelemetry
ktm = KernelTelemetry(enabled="on", target_pid=os.getpid)
ktm.start()
families = ktm.collect(1)
print(json.dumps({"mode": int(ktm.status().mode), "reason": ktm.status().reason,
                  "names": sorted({f.name for f in families})}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_unprivileged_user_gets_reason_and_os_metrics() -> None:
    result = subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-c", UNPRIVILEGED],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mode"] in (0, 1)
    assert "CAP_BPF" in report["reason"] or "bcc" in report["reason"]
    assert "ktm_status" in report["names"] and "fodc_os_meminfo_available_bytes" in report["names"]
    assert "fodc_node_process_resident_memory_bytes" in report["names"]
