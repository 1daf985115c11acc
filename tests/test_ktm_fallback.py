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
from fodc.ktm.bccload import compile_and_attach
from fodc.ktm.loader import BpfSession, LoadError

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
    monkeypatch.setattr(prereq, "bcc_missing", lambda: "")

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(prereq, "check_caps", explode)
    ktm = KernelTelemetry()
    ktm.start()
    assert ktm.status().mode == Mode.DISABLED and "boom" in ktm.status().reason


def test_missing_kernel_headers_is_named_as_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prereq, "bcc_missing", lambda: "")
    monkeypatch.setattr(prereq, "check_caps", lambda *_: "")
    monkeypatch.setattr(prereq, "find_tracefs", lambda: "/sys/kernel/tracing")
    monkeypatch.setattr(prereq, "find_kernel_headers", lambda *_: None)
    ktm = KernelTelemetry()
    ktm.start()
    assert ktm.status().mode == Mode.DISABLED and "kernel headers" in ktm.status().reason


def test_missing_tracefs_is_named_as_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prereq, "bcc_missing", lambda: "")
    monkeypatch.setattr(prereq, "check_caps", lambda *_: "")
    monkeypatch.setattr(prereq, "find_tracefs", lambda: None)
    ktm = KernelTelemetry()
    ktm.start()
    assert "tracefs" in ktm.status().reason


# ------------------------------------------------------------------------------------------------ fake BCC


class FakeBPF:
    """Stands in for bcc.BPF: compiles nothing, fails to attach the tracepoints in `refuse`."""

    refuse: set[str] = set()
    last: FakeBPF | None = None

    def __init__(self, text: bytes, cflags: list[str]) -> None:
        self.text = text.decode()
        self.attached: list[str] = []
        self.detached: list[str] = []
        FakeBPF.last = self

    def attach_tracepoint(self, tp: bytes, fn_name: bytes) -> None:
        tp = tp.decode()
        if tp in self.refuse:
            raise Exception(f"Failed to attach BPF program {fn_name} to tracepoint {tp}")
        self.attached.append(tp)

    def detach_tracepoint(self, tp: bytes) -> None:
        self.detached.append(tp.decode())

    def cleanup(self) -> None:
        pass


def fake_bcc_module(refuse: set[str]) -> types.ModuleType:
    module = types.ModuleType("bcc")
    FakeBPF.refuse = refuse
    module.BPF = FakeBPF
    return module


def test_failed_attach_degrades_only_its_program() -> None:
    loaded = compile_and_attach(fake_bcc_module({"sched:sched_switch"}), list(catalog.PROGRAMS), "")
    states = {p.name: p for p in loaded.states}
    assert "attach failed" in states["runqueue"].reason and not states["runqueue"].attached
    assert all(state.attached for name, state in states.items() if name != "runqueue")


def test_half_attached_program_is_detached() -> None:
    compile_and_attach(fake_bcc_module({"sched:sched_switch"}), list(catalog.PROGRAMS), "")
    assert FakeBPF.last.detached == ["sched:sched_wakeup", "sched:sched_wakeup_new"]


def test_programs_with_a_missing_tracepoint_are_not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def refuse_to_load(programs, _headers):  # stands in for the loader child: records what it was given
        asked.append([p.name for p in programs])
        raise LoadError("no compiler here")

    monkeypatch.setattr(prereq, "bcc_missing", lambda: "")
    monkeypatch.setattr(prereq, "check_caps", lambda *_: "")
    monkeypatch.setattr(prereq, "find_tracefs", lambda: "/sys/kernel/tracing")
    monkeypatch.setattr(prereq, "find_kernel_headers", lambda *_: "")
    monkeypatch.setattr(prereq, "tracepoint_exists", lambda _fs, tp: tp != "block:block_rq_issue")
    monkeypatch.setattr(BpfSession, "open", staticmethod(refuse_to_load))
    ktm = KernelTelemetry()
    ktm.start()
    assert asked and "block_io" not in asked[0] and "read" in asked[0]
    assert ktm.status().mode == Mode.DISABLED and "no compiler here" in ktm.status().reason


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
