"""What a simulated BanyanDB node's page holds, by role: the families, their labels and rates.

The upstream naming (`banyandb_<scope>_<name>`, HELP equal to the name, counters without a `_total` suffix,
shard gauges labelled `group`/`seg`/`shard`) plus the standard `go_*` and `process_*` families. Groups
are added until the page reaches about the requested series count. Only builds; `fodc.sim.page` renders.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from fodc.sim.builder import Family, PageBuilder
from fodc.sim.shapes import Const, Elapsed, StartTime

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


def _add_go_runtime(b: PageBuilder) -> None:
    """The go_* families the Go client registers by default (help texts are our own short wording)."""
    summary = "go_gc_duration_seconds"
    for quantile, pause in (("0", 2e-5), ("0.25", 4e-5), ("0.5", 6e-5), ("0.75", 1e-4), ("1", 2e-3)):
        b.fixed(summary, "summary", {"quantile": quantile}, b.gauge_shape(pause, swing=0.2),
                "Pause durations of garbage collection cycles.")
    b.fixed(f"{summary}_sum", "summary", {}, b.counter_shape(1e-4, integer=False), family=summary)
    b.fixed(f"{summary}_count", "summary", {}, b.counter_shape(0.5), family=summary)
    b.gauge("go_goroutines", {}, 420, swing=0.15, integer=True, help_text="Goroutines that currently exist.")
    b.fixed("go_info", "gauge", {"version": GO_VERSION}, Const(1.0), "Go runtime version.")
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
            b.fixed("go_memstats_last_gc_time_seconds", "gauge", {}, Elapsed(absolute=True, step=7.0),
                    "Unix time of the last garbage collection.")
    b.gauge("go_threads", {}, 48, swing=0.05, integer=True, help_text="OS threads created.")


def _add_process(b: PageBuilder) -> None:
    b.counter("process_cpu_seconds_total", {}, 0.35, integer=False,
              help_text="User and system CPU time spent, in seconds.")
    b.fixed("process_max_fds", "gauge", {}, Const(1048576.0), "Maximum number of open file descriptors.")
    b.counter("process_network_receive_bytes_total", {}, 2.5e5, help_text="Bytes received on the network.")
    b.counter("process_network_transmit_bytes_total", {}, 1.8e5, help_text="Bytes sent on the network.")
    b.gauge("process_open_fds", {}, 180, swing=0.2, integer=True, help_text="Open file descriptors.")
    b.gauge("process_resident_memory_bytes", {}, 420e6, swing=0.08, integer=True,
            help_text="Resident memory size in bytes.")
    b.fixed("process_start_time_seconds", "gauge", {}, StartTime(),
            "Start time of the process since the Unix epoch, in seconds.")
    b.gauge("process_virtual_memory_bytes", {}, 2.6e9, swing=0.02, integer=True,
            help_text="Virtual memory size in bytes.")
    b.fixed("process_virtual_memory_max_bytes", "gauge", {}, Const(1.8446744073709552e19),
            "Maximum amount of virtual memory available in bytes.")


def _add_system(b: PageBuilder, disk_paths: Sequence[str]) -> None:
    for kind, share in (("user", 22.0), ("system", 9.0), ("idle", 64.0), ("nice", 0.1), ("iowait", 3.0),
                        ("irq", 0.2), ("softirq", 0.8), ("steal", 0.0)):
        b.gauge("banyandb_system_cpu_state", {"kind": kind}, share, swing=0.2)
    b.fixed("banyandb_system_memory_state", "gauge", {"kind": "total"}, Const(16.0 * 2**30))
    b.gauge("banyandb_system_memory_state", {"kind": "used"}, 6.2 * 2**30, swing=0.05, integer=True)
    b.gauge("banyandb_system_memory_state", {"kind": "used_percent"}, 38.0, swing=0.05)
    for path in disk_paths:
        b.fixed("banyandb_system_disk", "gauge", {"path": path, "kind": "total"}, Const(500.0 * 2**30))
        b.gauge("banyandb_system_disk", {"path": path, "kind": "used"}, 120.0 * 2**30, swing=0.02,
                integer=True)
        b.gauge("banyandb_system_disk", {"path": path, "kind": "used_percent"}, 24.0, swing=0.02)
    for nic, scale in (("eth0", 1.0), ("lo", 0.2)):
        for kind, rate in (("bytes_recv", 2.5e5), ("bytes_sent", 1.8e5), ("packets_recv", 400.0),
                           ("packets_sent", 350.0)):
            b.fixed("banyandb_system_net_state", "gauge", {"name": nic, "kind": kind},
                    b.counter_shape(rate * scale))
    b.fixed("banyandb_system_up_time", "gauge", {}, Elapsed(absolute=False))
    limit = 8.0 * 2**30
    b.fixed("banyandb_memory_protector_cgroup_limit_bytes", "gauge", {}, Const(limit))
    b.fixed("banyandb_memory_protector_limit_bytes", "gauge", {}, Const(limit * 0.75))
    b.gauge("banyandb_memory_protector_usage_bytes", {}, limit * 0.4, swing=0.1, integer=True)
    b.counter("banyandb_memory_protector_total_rejected", {}, 0.0, stable_share=1.0)


def _group_names() -> Iterator[tuple[str, str]]:
    yield from _KNOWN_GROUPS
    tenant = 0
    while True:
        tenant += 1
        yield f"tenant{tenant:03d}_metrics", "measure"
        yield f"tenant{tenant:03d}_records", "stream"
        yield f"tenant{tenant:03d}_traces", "trace"


def _add_queue_path(b: PageBuilder, prefix: str, labels: dict[str, str], operation: str, median_s: float, *,
                    receives: bool = False) -> None:
    """One publish (liaison) or subscribe (data node) path of the internal queue; a query path is idle
    in about `_IDLE_SHARE` of them, as query traffic is on a real cluster."""
    rate = 20.0 if operation == "write" else 1.5
    if operation == "query" and b.rng.random() < _IDLE_SHARE:
        rate = 0.0
    b.counter(f"{prefix}_started", labels, rate)
    b.counter(f"{prefix}_finished", labels, rate)
    b.counter(f"{prefix}_err", labels, 0.01, stable_share=0.85)
    if receives:
        b.counter(f"{prefix}_msg_received", labels, rate * 40)
        b.counter(f"{prefix}_msg_received_err", labels, 0.0, stable_share=1.0)
    b.histogram(f"{prefix}_latency", labels, rate, median_s)


def _add_liaison_group(b: PageBuilder, group: str, scope: str) -> None:
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
            _add_queue_path(b, "banyandb_queue_pub_total", labels, operation,
                            0.003 if operation == "write" else 0.05)


def _add_data_group(b: PageBuilder, group: str, scope: str, segs: Sequence[str], shards: int) -> None:
    for operation in ("write", "query"):
        labels = {"operation": operation, "group": group}
        _add_queue_path(b, "banyandb_queue_sub_total", labels, operation, 0.002 if operation == "write" else 0.04,
                        receives=True)
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


def build_families(role: str, target_series: int, start_s: float, rng: random.Random) -> tuple[list[Family], int]:
    """The families of a `role` node with about `target_series` series, and how many groups that took.

    `start_s` dates the segments a data node keeps; `rng` draws every series' shape.
    """
    b = PageBuilder(rng)
    _add_go_runtime(b)
    _add_process(b)
    if role == "liaison":
        _add_system(b, ("/tmp",))
    else:
        _add_system(b, ("/data/banyandb/measure", "/data/banyandb/stream", "/data/banyandb/trace"))
    tier = role.removeprefix("datanode-")
    segs: tuple[str, ...] = ()
    shards = 0
    if role != "liaison":
        days, shards = _TIER_LAYOUT[tier]
        segs = _segment_names(start_s, days)
    last_group_size = 0
    group_count = 0
    groups = _group_names()
    # Stop at whichever group count lands closest to the target (always at least one group).
    while last_group_size == 0 or b.series_count + last_group_size / 2 < target_series:
        group, scope = next(groups)
        before = b.series_count
        if role == "liaison":
            _add_liaison_group(b, group, scope)
        else:
            _add_data_group(b, group, scope, segs, shards)
        last_group_size = b.series_count - before
        group_count += 1
    return list(b.families.values()), group_count
