"""The Prometheus page of a simulated BanyanDB node, as a pure function of time.

`NodeModel(role, series, seed).render(now_s)` returns the text a real node's `/metrics` would serve at
wall-clock time `now_s`: the upstream naming (`banyandb_<scope>_<name>`, HELP equal to the name, counters
without a `_total` suffix, shard gauges labelled `group`/`seg`/`shard`, latency histograms with buckets
.005 … 10 s) plus the standard `go_*` and `process_*` families.

Values are closed-form functions of the time elapsed since the (simulated) process start, so counters only
grow (by varying increments), gauges drift slowly, histogram buckets stay cumulative, and two renders 15 s
apart differ while many series stay put. A reset moves the start forward, which restarts every counter from
zero exactly as a node restart would.

This module must never do I/O or read the clock: the caller passes `now_s` in. The series set and every
label string are built once in the constructor; a render only computes numbers and joins strings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

ROLES = ("liaison", "datanode-hot", "datanode-warm", "datanode-cold")
DEFAULT_SERIES = {"liaison": 1500, "datanode-hot": 2500, "datanode-warm": 2500, "datanode-cold": 2500}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GO_VERSION = "go1.24.6"

# Days of segments kept and shards per segment on a data node, by tier (hot keeps few, recent, wide
# segments; cold keeps many narrow ones).
_TIER_LAYOUT = {"hot": (3, 4), "warm": (7, 2), "cold": (30, 1)}
_DAY_S = 86_400.0
# Share of query paths (per group and method/remote node) that see no traffic at all: their counters and
# histograms stay at zero, as on a real node where many label sets are idle.
_IDLE_SHARE = 0.4

# The first groups a SkyWalking OAP creates, then synthetic tenant groups for larger pages.
_KNOWN_GROUPS = (
    ("sw_metricsMinute", "measure"),
    ("sw_records", "stream"),
    ("sw_trace", "trace"),
    ("sw_metricsHour", "measure"),
    ("sw_recordsLog", "stream"),
    ("sw_metricsDay", "measure"),
    ("sw_zipkinTrace", "trace"),
    ("sw_recordsBrowserErrorLog", "stream"),
    ("sw_topNResult", "measure"),
)
_SERVICE_METHODS = {
    "measure": ("banyandb.measure.v1.MeasureService", ("Write", "Query", "TopN")),
    "stream": ("banyandb.stream.v1.StreamService", ("Write", "Query")),
    "trace": ("banyandb.trace.v1.TraceService", ("Write", "Query")),
}
# The data nodes a liaison publishes to: (remote_node, remote_tier).
_REMOTE_NODES = (
    ("data-hot-0:17912", "hot"),
    ("data-hot-1:17912", "hot"),
    ("data-warm-0:17912", "warm"),
    ("data-cold-0:17912", "cold"),
)


# --- value shapes -------------------------------------------------------------------------------------
# Each shape answers `at(t, start)` with t = seconds since start (>= 0) and start = process start time.


class _Counter:
    """Monotonic growth with a wobbling rate: rate * (1 + amp * sin(omega t + phase)), amp < 1."""

    __slots__ = ("rate", "amp", "omega", "phase", "cos_phase", "integer")

    def __init__(self, rate: float, amp: float, omega: float, phase: float, integer: bool) -> None:
        self.rate, self.amp, self.omega, self.phase, self.integer = rate, amp, omega, phase, integer
        self.cos_phase = math.cos(phase)

    def at(self, t: float, start: float) -> float:
        if self.rate == 0.0:
            return 0.0
        wobble = self.amp * (self.cos_phase - math.cos(self.omega * t + self.phase)) / self.omega
        value = self.rate * (t + wobble)
        return float(math.floor(value)) if self.integer else value


class _Plateau:
    """A counter that grows during warm-up and then stays put (stable series, but not all zero)."""

    __slots__ = ("cap", "ramp_s")

    def __init__(self, cap: float, ramp_s: float) -> None:
        self.cap, self.ramp_s = cap, ramp_s

    def at(self, t: float, start: float) -> float:
        return float(math.floor(self.cap * min(1.0, t / self.ramp_s)))


class _Gauge:
    """A slow oscillation around a base value."""

    __slots__ = ("base", "amp", "omega", "phase", "integer")

    def __init__(self, base: float, amp: float, omega: float, phase: float, integer: bool) -> None:
        self.base, self.amp, self.omega, self.phase, self.integer = base, amp, omega, phase, integer

    def at(self, t: float, start: float) -> float:
        value = self.base * (1.0 + self.amp * math.sin(self.omega * t + self.phase))
        return float(round(value)) if self.integer else value


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def at(self, t: float, start: float) -> float:
        return self.value


class _Elapsed:
    """Seconds since start (uptime), optionally as an absolute time (start + t)."""

    __slots__ = ("absolute", "step")

    def __init__(self, absolute: bool, step: float = 1.0) -> None:
        self.absolute, self.step = absolute, step

    def at(self, t: float, start: float) -> float:
        stepped = math.floor(t / self.step) * self.step
        return start + stepped if self.absolute else stepped


class _StartTime:
    __slots__ = ()

    def at(self, t: float, start: float) -> float:
        return float(math.floor(start))


def _fmt(value: float) -> str:
    if value == math.floor(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# --- rows: what one label set renders to ---------------------------------------------------------------


class _SampleRow:
    __slots__ = ("prefix", "shape")

    def __init__(self, prefix: str, shape: object) -> None:
        self.prefix, self.shape = prefix, shape

    def emit(self, out: list[str], t: float, start: float) -> None:
        out.append(f"{self.prefix}{_fmt(self.shape.at(t, start))}\n")  # type: ignore[attr-defined]


class _HistogramRow:
    """Buckets derived from one count: bucket_i = floor(count * cdf(le_i)), so they are cumulative,
    non-decreasing over time, and `+Inf` equals `_count`."""

    __slots__ = ("bucket_prefixes", "fractions", "inf_prefix", "sum_prefix", "count_prefix", "count", "mean")

    def __init__(self, name: str, labels: str, count: _Counter, median_s: float, sigma: float) -> None:
        sep = "," if labels else ""
        self.bucket_prefixes = tuple(f'{name}_bucket{{{labels}{sep}le="{le:g}"}} ' for le in LATENCY_BUCKETS)
        self.fractions = tuple(_lognormal_cdf(le, median_s, sigma) for le in LATENCY_BUCKETS)
        self.inf_prefix = f'{name}_bucket{{{labels}{sep}le="+Inf"}} '
        braces = f"{{{labels}}}" if labels else ""
        self.sum_prefix = f"{name}_sum{braces} "
        self.count_prefix = f"{name}_count{braces} "
        self.count = count
        self.mean = median_s * math.exp(sigma * sigma / 2.0)

    def emit(self, out: list[str], t: float, start: float) -> None:
        count = int(self.count.at(t, start))
        for prefix, fraction in zip(self.bucket_prefixes, self.fractions, strict=True):
            out.append(f"{prefix}{int(count * fraction)}\n")
        out.append(f"{self.inf_prefix}{count}\n")
        out.append(f"{self.sum_prefix}{_fmt(count * self.mean)}\n")
        out.append(f"{self.count_prefix}{count}\n")


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1.0 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2.0))))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: dict[str, str]) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())


# --- families ------------------------------------------------------------------------------------------


class _Family:
    __slots__ = ("name", "kind", "header", "rows")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind = name, kind
        self.header = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
        self.rows: list[_SampleRow | _HistogramRow] = []

    @property
    def series_count(self) -> int:
        per_row = len(LATENCY_BUCKETS) + 3 if self.kind == "histogram" else 1
        return per_row * len(self.rows)


class _PageBuilder:
    """Collects families in first-use order; later groups append rows to families already created."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.families: dict[str, _Family] = {}
        self.series_count = 0

    def _family(self, name: str, kind: str, help_text: str | None) -> _Family:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = _Family(name, kind, help_text or name)
        return family

    def _add(self, name: str, kind: str, labels: dict[str, str], shape: object, help_text: str | None,
             family: str | None = None) -> None:
        text = _label_text(labels)
        prefix = f"{name}{{{text}}} " if text else f"{name} "
        self._family(family or name, kind, help_text).rows.append(_SampleRow(prefix, shape))
        self.series_count += 1

    # Shapes drawn from the seeded generator: every series gets its own rate, phase and period.

    def counter_shape(self, rate: float, *, stable_share: float = 0.0, integer: bool = True) -> object:
        rng = self.rng
        if rng.random() < stable_share:
            return _Plateau(float(rng.choice((0, 0, 0, 1, 2, 3, 7))), rng.uniform(5.0, 60.0))
        return _Counter(
            rate * rng.uniform(0.3, 1.7),
            rng.uniform(0.2, 0.9),
            2.0 * math.pi / rng.uniform(30.0, 600.0),
            rng.uniform(0.0, 2.0 * math.pi),
            integer,
        )

    def gauge_shape(self, base: float, *, swing: float = 0.1, integer: bool = False) -> object:
        rng = self.rng
        return _Gauge(
            base * rng.uniform(0.7, 1.3),
            swing * rng.uniform(0.5, 1.0),
            2.0 * math.pi / rng.uniform(600.0, 7200.0),
            rng.uniform(0.0, 2.0 * math.pi),
            integer,
        )

    def counter(self, name: str, labels: dict[str, str], rate: float, *, stable_share: float = 0.0,
                integer: bool = True, help_text: str | None = None) -> None:
        shape = self.counter_shape(rate, stable_share=stable_share, integer=integer)
        self._add(name, "counter", labels, shape, help_text)

    def gauge(self, name: str, labels: dict[str, str], base: float, *, swing: float = 0.1,
              integer: bool = False, help_text: str | None = None) -> None:
        self._add(name, "gauge", labels, self.gauge_shape(base, swing=swing, integer=integer), help_text)

    def fixed(self, name: str, kind: str, labels: dict[str, str], shape: object,
              help_text: str | None = None, *, family: str | None = None) -> None:
        """A series with an explicit shape; `family` names the family when the sample name differs
        (a summary's `_sum` and `_count`)."""
        self._add(name, kind, labels, shape, help_text, family)

    def histogram(self, name: str, labels: dict[str, str], rate: float, median_s: float,
                  help_text: str | None = None) -> None:
        rng = self.rng
        count = _Counter(
            rate * rng.uniform(0.3, 1.7),
            rng.uniform(0.2, 0.9),
            2.0 * math.pi / rng.uniform(30.0, 600.0),
            rng.uniform(0.0, 2.0 * math.pi),
            True,
        )
        row = _HistogramRow(name, _label_text(labels), count, median_s * rng.uniform(0.5, 2.0),
                            rng.uniform(0.6, 1.4))
        family = self._family(name, "histogram", help_text)
        family.rows.append(row)
        self.series_count += len(LATENCY_BUCKETS) + 3


# --- the catalog ---------------------------------------------------------------------------------------


def _add_go_runtime(b: _PageBuilder) -> None:
    """The go_* families the Go client registers by default (help texts are our own short wording)."""
    summary = "go_gc_duration_seconds"
    for quantile, pause in (("0", 2e-5), ("0.25", 4e-5), ("0.5", 6e-5), ("0.75", 1e-4), ("1", 2e-3)):
        b.fixed(summary, "summary", {"quantile": quantile}, b.gauge_shape(pause, swing=0.2),
                "Pause durations of garbage collection cycles.")
    b.fixed(f"{summary}_sum", "summary", {}, b.counter_shape(1e-4, integer=False), family=summary)
    b.fixed(f"{summary}_count", "summary", {}, b.counter_shape(0.5), family=summary)
    b.gauge("go_goroutines", {}, 420, swing=0.15, integer=True, help_text="Goroutines that currently exist.")
    b.fixed("go_info", "gauge", {"version": GO_VERSION}, _Const(1.0), "Go runtime version.")
    memstats = (
        ("alloc_bytes", "gauge", 180e6, "Heap bytes allocated and still in use."),
        ("alloc_bytes_total", "counter", 25e6, "Heap bytes allocated, including freed ones."),
        ("buck_hash_sys_bytes", "gauge", 2.1e6, "Bytes used by the profiling bucket hash table."),
        ("frees_total", "counter", 2.4e5, "Heap objects freed."),
        ("gc_sys_bytes", "gauge", 9e6, "Bytes used for garbage collection metadata."),
        ("heap_alloc_bytes", "gauge", 180e6, "Heap bytes allocated and still in use."),
        ("heap_idle_bytes", "gauge", 60e6, "Heap bytes waiting to be used."),
        ("heap_inuse_bytes", "gauge", 200e6, "Heap bytes in use."),
        ("heap_objects", "gauge", 1.3e6, "Allocated heap objects."),
        ("heap_released_bytes", "gauge", 30e6, "Heap bytes released to the OS."),
        ("heap_sys_bytes", "gauge", 260e6, "Heap bytes obtained from the OS."),
        ("lookups_total", "counter", 0.0, "Pointer lookups."),
        ("mallocs_total", "counter", 2.5e5, "Heap objects allocated."),
        ("mcache_inuse_bytes", "gauge", 19200, "Bytes in use by mcache structures."),
        ("mcache_sys_bytes", "gauge", 31200, "Bytes obtained from the OS for mcache structures."),
        ("mspan_inuse_bytes", "gauge", 3.2e6, "Bytes in use by mspan structures."),
        ("mspan_sys_bytes", "gauge", 3.6e6, "Bytes obtained from the OS for mspan structures."),
        ("next_gc_bytes", "gauge", 320e6, "Heap size that triggers the next collection."),
        ("other_sys_bytes", "gauge", 2.8e6, "Bytes used for other system allocations."),
        ("stack_inuse_bytes", "gauge", 4.5e6, "Bytes in use by the stack allocator."),
        ("stack_sys_bytes", "gauge", 4.5e6, "Bytes obtained from the OS for the stack allocator."),
        ("sys_bytes", "gauge", 300e6, "Bytes obtained from the OS."),
    )
    for suffix, kind, base, help_text in memstats:
        name = f"go_memstats_{suffix}"
        if kind == "counter":
            b.counter(name, {}, base, help_text=help_text)
        else:
            b.gauge(name, {}, base, swing=0.15, integer=True, help_text=help_text)
        if suffix == "heap_sys_bytes":
            b.fixed("go_memstats_last_gc_time_seconds", "gauge", {}, _Elapsed(absolute=True, step=7.0),
                    "Unix time of the last garbage collection.")
    b.gauge("go_threads", {}, 48, swing=0.05, integer=True, help_text="OS threads created.")


def _add_process(b: _PageBuilder) -> None:
    b.counter("process_cpu_seconds_total", {}, 0.35, integer=False,
              help_text="User and system CPU time spent, in seconds.")
    b.fixed("process_max_fds", "gauge", {}, _Const(1048576.0), "Maximum number of open file descriptors.")
    b.counter("process_network_receive_bytes_total", {}, 2.5e5, help_text="Bytes received on the network.")
    b.counter("process_network_transmit_bytes_total", {}, 1.8e5, help_text="Bytes sent on the network.")
    b.gauge("process_open_fds", {}, 180, swing=0.2, integer=True, help_text="Open file descriptors.")
    b.gauge("process_resident_memory_bytes", {}, 420e6, swing=0.08, integer=True,
            help_text="Resident memory size in bytes.")
    b.fixed("process_start_time_seconds", "gauge", {}, _StartTime(),
            "Start time of the process since the Unix epoch, in seconds.")
    b.gauge("process_virtual_memory_bytes", {}, 2.6e9, swing=0.02, integer=True,
            help_text="Virtual memory size in bytes.")
    b.fixed("process_virtual_memory_max_bytes", "gauge", {}, _Const(1.8446744073709552e19),
            "Maximum amount of virtual memory available in bytes.")


def _add_system(b: _PageBuilder, disk_paths: Sequence[str]) -> None:
    for kind, share in (("user", 22.0), ("system", 9.0), ("idle", 64.0), ("nice", 0.1), ("iowait", 3.0),
                        ("irq", 0.2), ("softirq", 0.8), ("steal", 0.0)):
        b.gauge("banyandb_system_cpu_state", {"kind": kind}, share, swing=0.2)
    b.fixed("banyandb_system_memory_state", "gauge", {"kind": "total"}, _Const(16.0 * 2**30))
    b.gauge("banyandb_system_memory_state", {"kind": "used"}, 6.2 * 2**30, swing=0.05, integer=True)
    b.gauge("banyandb_system_memory_state", {"kind": "used_percent"}, 38.0, swing=0.05)
    for path in disk_paths:
        b.fixed("banyandb_system_disk", "gauge", {"path": path, "kind": "total"}, _Const(500.0 * 2**30))
        b.gauge("banyandb_system_disk", {"path": path, "kind": "used"}, 120.0 * 2**30, swing=0.02,
                integer=True)
        b.gauge("banyandb_system_disk", {"path": path, "kind": "used_percent"}, 24.0, swing=0.02)
    for nic, scale in (("eth0", 1.0), ("lo", 0.2)):
        for kind, rate in (("bytes_recv", 2.5e5), ("bytes_sent", 1.8e5), ("packets_recv", 400.0),
                           ("packets_sent", 350.0)):
            b.fixed("banyandb_system_net_state", "gauge", {"name": nic, "kind": kind},
                    b.counter_shape(rate * scale))
    b.fixed("banyandb_system_up_time", "gauge", {}, _Elapsed(absolute=False))
    limit = 8.0 * 2**30
    b.fixed("banyandb_memory_protector_cgroup_limit_bytes", "gauge", {}, _Const(limit))
    b.fixed("banyandb_memory_protector_limit_bytes", "gauge", {}, _Const(limit * 0.75))
    b.gauge("banyandb_memory_protector_usage_bytes", {}, limit * 0.4, swing=0.1, integer=True)
    b.counter("banyandb_memory_protector_total_rejected", {}, 0.0, stable_share=1.0)


def _group_names() -> Iterable[tuple[str, str]]:
    yield from _KNOWN_GROUPS
    tenant = 0
    while True:
        tenant += 1
        yield f"tenant{tenant:03d}_metrics", "measure"
        yield f"tenant{tenant:03d}_records", "stream"
        yield f"tenant{tenant:03d}_traces", "trace"


def _add_liaison_group(b: _PageBuilder, group: str, scope: str) -> None:
    service, methods = _SERVICE_METHODS[scope]
    for method in methods:
        labels = {"group": group, "service": service, "method": method}
        is_write = method == "Write"
        rate = 40.0 if is_write else 3.0
        if not is_write and b.rng.random() < _IDLE_SHARE:
            rate = 0.0  # nobody has queried this group since the start
        b.counter("banyandb_liaison_grpc_total_started", labels, rate)
        b.counter("banyandb_liaison_grpc_total_finished", labels, rate)
        b.counter("banyandb_liaison_grpc_total_err", labels, 0.02, stable_share=0.8)
        b.counter("banyandb_liaison_grpc_total_stream_msg_received", labels, rate * 50 if is_write else 0.0)
        b.counter("banyandb_liaison_grpc_total_stream_msg_sent", labels, rate * 50 if is_write else rate)
        b.histogram("banyandb_liaison_grpc_total_latency", labels, rate, 0.004 if is_write else 0.06)
    for remote_node, tier in _REMOTE_NODES:
        for operation in ("write", "query"):
            if operation == "write" and tier != "hot":
                continue
            labels = {"operation": operation, "group": group, "remote_node": remote_node,
                      "remote_role": "data", "remote_tier": tier}
            rate = 20.0 if operation == "write" else 1.5
            if operation == "query" and b.rng.random() < _IDLE_SHARE:
                rate = 0.0
            b.counter("banyandb_queue_pub_total_started", labels, rate)
            b.counter("banyandb_queue_pub_total_finished", labels, rate)
            b.counter("banyandb_queue_pub_total_err", labels, 0.01, stable_share=0.85)
            b.histogram("banyandb_queue_pub_total_latency", labels, rate, 0.003 if operation == "write" else 0.05)


def _add_data_group(b: _PageBuilder, group: str, scope: str, segs: Sequence[str], shards: int) -> None:
    for operation in ("write", "query"):
        labels = {"operation": operation, "group": group}
        rate = 20.0 if operation == "write" else 1.5
        if operation == "query" and b.rng.random() < _IDLE_SHARE:
            rate = 0.0
        b.counter("banyandb_queue_sub_total_started", labels, rate)
        b.counter("banyandb_queue_sub_total_finished", labels, rate)
        b.counter("banyandb_queue_sub_total_err", labels, 0.01, stable_share=0.85)
        b.counter("banyandb_queue_sub_total_msg_received", labels, rate * 40)
        b.counter("banyandb_queue_sub_total_msg_received_err", labels, 0.0, stable_share=1.0)
        b.histogram("banyandb_queue_sub_total_latency", labels, rate, 0.002 if operation == "write" else 0.04)
    p = f"banyandb_{scope}"
    g = {"group": group}
    b.counter(f"{p}_total_written", g, 800.0)
    b.counter(f"{p}_total_batch", g, 20.0)
    b.counter(f"{p}_total_merge_loop_started", g, 0.2)
    b.counter(f"{p}_total_merge_loop_finished", g, 0.2)
    b.counter(f"{p}_total_merge_loop_err", g, 0.0, stable_share=1.0)
    b.counter(f"{p}_total_merged", g, 0.15)
    b.counter(f"{p}_total_merged_parts", g, 0.6)
    b.counter(f"{p}_total_flush_loop_started", g, 1.0)
    b.counter(f"{p}_total_flush_loop_finished", g, 1.0)
    b.counter(f"{p}_total_flush_loop_err", g, 0.0, stable_share=1.0)
    b.counter(f"{p}_total_flushed_mem_parts", g, 1.0)
    b.counter(f"{p}_total_introduction_loop_started", g, 2.0)
    query_rate = 0.0 if b.rng.random() < _IDLE_SHARE else 1.5
    b.counter(f"{p}_total_query", g, query_rate)
    b.counter(f"{p}_total_query_err", g, 0.01 if query_rate else 0.0, stable_share=0.9)
    b.histogram(f"{p}_merge_latency", g, 0.15, 0.8)
    b.histogram(f"{p}_flush_latency", g, 1.0, 0.05)
    b.histogram(f"{p}_query_latency", g, query_rate, 0.03)
    for seg in segs:
        gs = {"group": group, "seg": seg}
        b.counter(f"{p}_series_index_total_updates", gs, 30.0 if seg == segs[-1] else 0.0)
        b.gauge(f"{p}_series_index_total_docs", gs, 2e5, swing=0.01, integer=True)
        for shard in range(shards):
            labels = {"group": group, "seg": seg, "shard": str(shard)}
            b.gauge(f"{p}_total_file_parts", labels, 8, swing=0.5, integer=True)
            b.gauge(f"{p}_total_file_elements", labels, 4e6, swing=0.05, integer=True)
            b.gauge(f"{p}_total_file_blocks", labels, 3e4, swing=0.05, integer=True)
            b.gauge(f"{p}_total_file_part_bytes", labels, 300e6, swing=0.05, integer=True)
            b.gauge(f"{p}_total_mem_parts", labels, 2, swing=0.9, integer=True)
            b.gauge(f"{p}_total_mem_elements", labels, 5e4, swing=0.6, integer=True)


def _segment_names(start_s: float, days: int) -> tuple[str, ...]:
    """Daily segments ending on the start day, named like upstream's `20260821`."""
    first_day = math.floor(start_s / _DAY_S) - (days - 1)
    return tuple(
        datetime.fromtimestamp((first_day + i) * _DAY_S, tz=UTC).strftime("%Y%m%d") for i in range(days)
    )


class NodeModel:
    """One simulated node: a fixed series set built from (role, series, seed), values from time.

    `start_s` is the wall-clock second the simulated process started (it also dates the segments);
    `reset(now_s)` simulates a restart.
    """

    def __init__(self, role: str, series: int | None = None, seed: int = 0, start_s: float = 0.0) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        self.role = role
        self.target_series = series if series is not None else DEFAULT_SERIES[role]
        self.seed = seed
        self.start_s = start_s
        self.restarts = 0
        self._families, self.group_count = self._build(random.Random(f"{role}/{seed}"))

    def _build(self, rng: random.Random) -> tuple[list[_Family], int]:
        b = _PageBuilder(rng)
        _add_go_runtime(b)
        _add_process(b)
        if self.role == "liaison":
            _add_system(b, ("/tmp",))
        else:
            _add_system(b, ("/data/banyandb/measure", "/data/banyandb/stream", "/data/banyandb/trace"))
        tier = self.role.removeprefix("datanode-")
        segs: tuple[str, ...] = ()
        shards = 0
        if self.role != "liaison":
            days, shards = _TIER_LAYOUT[tier]
            segs = _segment_names(self.start_s, days)
        last_group_size = 0
        group_count = 0
        groups = _group_names()
        # Stop at whichever group count lands closest to the target (always at least one group).
        while last_group_size == 0 or b.series_count + last_group_size / 2 < self.target_series:
            group, scope = next(groups)
            before = b.series_count
            if self.role == "liaison":
                _add_liaison_group(b, group, scope)
            else:
                _add_data_group(b, group, scope, segs, shards)
            last_group_size = b.series_count - before
            group_count += 1
        return list(b.families.values()), group_count

    @property
    def series_count(self) -> int:
        return sum(family.series_count for family in self._families)

    def family_types(self) -> dict[str, str]:
        """Family name -> Prometheus type, in page order."""
        return {family.name: family.kind for family in self._families}

    def reset(self, now_s: float) -> None:
        """Simulate a restart at `now_s`: counters start again from zero, the start time moves."""
        self.start_s = now_s
        self.restarts += 1

    def render(self, now_s: float) -> str:
        """The page at wall-clock `now_s` (text format 0.0.4)."""
        start = self.start_s
        t = max(0.0, now_s - start)
        out: list[str] = []
        for family in self._families:
            out.append(family.header)
            for row in family.rows:
                row.emit(out, t, start)
        return "".join(out)
