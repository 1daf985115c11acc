"""KernelTelemetry: the one object the agent holds for kernel and OS telemetry.

`start()` does the expensive part once (checks, then the BCC compile and attach in a short-lived child
process, loader.py, so the compiler's ~130 MB never enter the agent) and never raises; whatever blocked it
becomes `status()`'s reason and `ktm_status`. `collect(now_ms)` is cheap: a few bpf(2) map lookups plus the
/proc reads of the OS fallback, which runs whatever the eBPF side did. `start()`
may run in another thread while `collect()` is called: the session is swapped in under a lock when ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fodc.expfmt import Family
from fodc.ktm import bpfmetrics, prereq
from fodc.ktm import programs as catalog
from fodc.ktm.cgroup import resolve_cgroup_id
from fodc.ktm.loader import BpfSession
from fodc.ktm.oscollect import OsTelemetry
from fodc.ktm.status import KtmStatus, Mode, ProgramState, decide, disabled

log = logging.getLogger(__name__)

ENABLED_VALUES = ("auto", "on", "off")


class KernelTelemetry:
    """eBPF counters/histograms for the database process plus always-on OS metrics, as metric families."""

    def __init__(self, *, enabled: str = "auto", target_comm: str = "banyand", cgroup_path: str | None = None,
                 target_pid: Callable[[], int | None] = lambda: None, kernel_source: str | None = None,
                 proc_root: str = "/proc") -> None:
        if enabled not in ENABLED_VALUES:
            raise ValueError(f"enabled must be one of {ENABLED_VALUES}, not {enabled!r}")
        self._enabled = enabled
        self._comm = target_comm
        self._cgroup_path = cgroup_path
        self._target_pid = target_pid
        self._kernel_source = kernel_source
        self._proc_root = proc_root
        self._os = OsTelemetry(target_pid=target_pid, proc_root=proc_root)
        self._lock = threading.Lock()
        self._session: BpfSession | None = None
        self._states: tuple[ProgramState, ...] = ()
        self._cgroup_id: int | None = None
        self._cgroup_pid: int | None = None  # the pid whose cgroup `_cgroup_id` came from
        self._status = disabled("not started", target_comm, catalog.PROGRAM_NAMES)
        self._started = False
        self._closed = False

    # -------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Check prerequisites, compile and attach. Never raises; records why anything did not load."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        try:
            self._start()
        except Exception as exc:  # the contract: a load failure never escapes
            log.exception("KTM start failed unexpectedly")
            self._set_blocked(f"unexpected error: {exc}")

    def _start(self) -> None:
        if self._enabled == "off":
            self._set_blocked("disabled by configuration (ktm enabled=off)")
            return
        missing = prereq.bcc_missing()
        if missing:
            self._set_blocked(missing)
            return
        missing = prereq.check_caps(self._proc_root)
        if missing:
            self._set_blocked(missing)
            return
        tracefs = prereq.find_tracefs()
        if tracefs is None:
            self._set_blocked("tracefs not mounted (mount -t tracefs tracefs /sys/kernel/tracing)")
            return
        headers = prereq.find_kernel_headers(self._kernel_source)
        if headers is None:
            self._set_blocked("no kernel headers for this kernel (install linux-headers-$(uname -r), "
                              "or build a tree with dev/ktm-headers and set BCC_KERNEL_SOURCE)")
            return
        loadable, states = [], []
        for program in catalog.PROGRAMS:
            absent = [tp for tp in program.tracepoints if not prereq.tracepoint_exists(tracefs, tp)]
            if absent:
                states.append(ProgramState(program.name, False, f"missing tracepoint {', '.join(absent)}"))
            else:
                loadable.append(program)
        if not loadable:
            self._finish(None, tuple(states))
            return
        try:
            session = BpfSession.open(loadable, headers)
        except Exception as exc:
            self._set_blocked(f"BPF compile/load failed: {exc}")
            return
        by_name = {s.name: s for s in (*states, *session.states)}
        self._finish(session, tuple(by_name[name] for name in catalog.PROGRAM_NAMES))

    def _finish(self, session: BpfSession | None, states: tuple[ProgramState, ...]) -> None:
        with self._lock:
            if self._closed:
                if session is not None:
                    session.close()
                return
            self._session = session
            self._states = states
            self._refresh_filter_locked(force=True)
            self._status = self._compute_status_locked()
        self._log_status()

    def _set_blocked(self, reason: str) -> None:
        with self._lock:
            self._status = disabled(reason, self._comm, catalog.PROGRAM_NAMES)
        self._log_status()

    def _log_status(self) -> None:
        status = self._status
        level = logging.WARNING if self._enabled == "on" and status.mode != Mode.FULL else logging.INFO
        log.log(level, "KTM %s%s", status.mode.label, f": {status.reason}" if status.reason else "")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            session, self._session = self._session, None
        if session is not None:
            session.close()

    # -------------------------------------------------------------------------------------------- filter

    def _refresh_filter_locked(self, *, force: bool = False) -> None:
        """Find the target's cgroup (from the configured path, or the live pid) and push the filter."""
        if self._session is None:
            return
        changed = force
        if self._cgroup_path is not None:
            if self._cgroup_id is None:
                self._cgroup_id, why = resolve_cgroup_id(cgroup_path=self._cgroup_path, proc_root=self._proc_root)
                changed = True
                if self._cgroup_id is None:
                    log.info("KTM: cgroup filter unavailable: %s", why)
        else:
            try:
                pid = self._target_pid()
            except Exception:
                pid = None
            if pid is not None and pid != self._cgroup_pid:
                cgroup_id, why = resolve_cgroup_id(pid=pid, proc_root=self._proc_root)
                if cgroup_id is not None:
                    self._cgroup_id, self._cgroup_pid, changed = cgroup_id, pid, True
                else:
                    log.info("KTM: cgroup filter unavailable: %s", why)
        if changed:
            try:
                self._session.configure(self._comm, self._cgroup_id)
            except Exception:
                log.exception("KTM: could not configure the in-kernel filter")

    def _compute_status_locked(self) -> KtmStatus:
        mode, reason = decide(self._states, cgroup_filter=self._cgroup_id is not None)
        filter_kind = "comm+cgroup" if self._cgroup_id is not None else "comm"
        return KtmStatus(mode, reason, self._states, filter_kind if self._session else "none", self._comm,
                         self._cgroup_id)

    # -------------------------------------------------------------------------------------------- reading

    def collect(self, now_ms: int) -> list[Family]:
        """eBPF families (when loaded), KTM status families and OS fallback families; never raises."""
        families: list[Family] = []
        with self._lock:
            session = self._session
            if session is not None:
                self._refresh_filter_locked()
                self._status = self._compute_status_locked()
            status = self._status
            if session is not None:
                try:
                    snapshot = session.snapshot()
                    attached = {p.name for p in status.programs if p.attached}
                    families += bpfmetrics.bpf_families(snapshot, attached, now_ms)
                except Exception:
                    log.exception("KTM: reading eBPF maps failed")
        families += bpfmetrics.status_families(status, now_ms)
        try:
            families += self._os.collect(now_ms)
        except Exception:
            log.exception("KTM: OS telemetry failed")
        return families

    def status(self) -> KtmStatus:
        with self._lock:
            return self._status

    def capabilities(self) -> dict[str, str]:
        status = self.status()
        attached = [p.name for p in status.programs if p.attached]
        return {
            "ktm_mode": status.mode.label,
            "ktm_reason": status.reason,
            "ktm_filter": status.filter,
            "ktm_programs": ",".join(attached),
        }
