"""eBPF map contents as metric families (the upstream `ktm_*` names), plus KTM's own status families.

Pure: a `BpfSnapshot`, the status and `now_ms` in, families out. Histograms become real Prometheus
histograms in seconds: log2-microsecond slots turned into cumulative `_bucket{le}` samples with `_sum` and
`_count`. A program that is not attached contributes no family at all (absent means "not measured";
a zero would claim "measured, nothing happened"); `ktm_program_attached` says which.
"""

from __future__ import annotations

from fodc.expfmt import Family, Sample
from fodc.ktm import programs as catalog
from fodc.ktm.loader import BpfSnapshot
from fodc.ktm.status import KtmStatus

BUCKET_BOUNDS_S = tuple((1 << k) * 1e-6 for k in range(catalog.MAX_SLOT + 1))  # slot k: latency < 2**k µs


def _le(bound: float) -> str:
    return repr(bound)


def histogram(name: str, help_text: str, slots: tuple[int, ...], sum_ns: int, now_ms: int) -> Family:
    """Cumulative buckets from per-slot counts; the overflow slot only reaches +Inf."""
    samples: list[Sample] = []
    running = 0
    for k, bound in enumerate(BUCKET_BOUNDS_S):
        running += slots[k]
        samples.append(Sample(f"{name}_bucket", (("le", _le(bound)),), float(running), now_ms))
    total = sum(slots)
    samples.append(Sample(f"{name}_bucket", (("le", "+Inf"),), float(total), now_ms))
    samples.append(Sample(f"{name}_sum", (), sum_ns / 1e9, now_ms))
    samples.append(Sample(f"{name}_count", (), float(total), now_ms))
    return Family(name, "histogram", help_text, "seconds", samples)


def _counter(name: str, help_text: str, points: list[tuple[tuple[tuple[str, str], ...], int]],
             now_ms: int, unit: str = "") -> Family:
    return Family(name, "counter", help_text, unit, [Sample(name, labels, float(v), now_ms) for labels, v in points])


def status_families(status: KtmStatus, now_ms: int) -> list[Family]:
    return [
        Family("ktm_status", "gauge", "Kernel telemetry mode: 0 disabled, 1 degraded, 2 full.", "",
               [Sample("ktm_status", (), float(int(status.mode)), now_ms)]),
        Family("ktm_program_attached", "gauge", "1 when the eBPF program is attached, else 0.", "",
               [Sample("ktm_program_attached", (("program", p.name),), 1.0 if p.attached else 0.0, now_ms)
                for p in sorted(status.programs, key=lambda p: p.name)]),
    ]


def bpf_families(snap: BpfSnapshot, attached: set[str], now_ms: int) -> list[Family]:
    c = {name: snap.counters[i] for i, name in enumerate(catalog.COUNTERS)}
    h = catalog.HISTOGRAM_INDEX
    out: list[Family] = []

    def hist(key: str, name: str, help_text: str) -> None:
        out.append(histogram(name, help_text, snap.histograms[h[key]], snap.histogram_sums_ns[h[key]], now_ms))

    if "read" in attached:
        hist("read", "ktm_sys_read_latency_seconds", "Latency of read() calls made by the database.")
    if "pread" in attached:
        hist("pread", "ktm_sys_pread_latency_seconds", "Latency of pread64() calls made by the database.")
    syscalls = [(label, c[f"{program}_bytes"], c[f"{program}_errors"])
                for label, program in (("pread64", "pread"), ("read", "read")) if program in attached]
    if syscalls:
        out.append(_counter("ktm_sys_read_bytes_total", "Bytes returned to the database by read()/pread64().",
                            [((("syscall", label),), nbytes) for label, nbytes, _ in syscalls], now_ms, "bytes"))
        out.append(_counter("ktm_sys_read_errors_total", "read()/pread64() calls by the database that failed.",
                            [((("syscall", label),), errors) for label, _, errors in syscalls], now_ms))
    if "fadvise" in attached:
        out.append(_counter("ktm_fadvise_calls_total", "posix_fadvise() calls made by the database.",
                            [((), c["fadvise_calls"])], now_ms))
        out.append(_counter("ktm_fadvise_dontneed_total",
                            "posix_fadvise(POSIX_FADV_DONTNEED) calls made by the database.",
                            [((), c["fadvise_dontneed"])], now_ms))
    for program, key, name, help_text in (
        ("cache_lookup", "cache_lookups", "ktm_cache_lookups_total",
         "Page-cache batch lookups made while the database read files."),
        ("cache_fill", "cache_fills", "ktm_cache_fills_total",
         "Pages added to the page cache by the database's reads (misses and readahead)."),
        ("cache_delete", "cache_deletes", "ktm_cache_deletes_total",
         "Pages removed from the page cache from files the database uses, by any task."),
        ("lru_shrink", "lru_pages_scanned", "ktm_memory_lru_pages_scanned_total",
         "Pages scanned on inactive LRU lists by reclaim, node-wide."),
        ("lru_shrink", "lru_pages_reclaimed", "ktm_memory_lru_pages_reclaimed_total",
         "Pages reclaimed from inactive LRU lists, node-wide."),
        ("lru_shrink", "lru_shrink_events", "ktm_memory_lru_shrink_events_total",
         "Inactive LRU shrink passes, node-wide."),
        ("direct_reclaim", "direct_reclaim_begin", "ktm_memory_direct_reclaim_begin_total",
         "Times a database thread had to reclaim memory itself before allocating (a stall)."),
    ):
        if program in attached:
            out.append(_counter(name, help_text, [((), c[key])], now_ms))
    if "runqueue" in attached:
        hist("runqueue", "ktm_sched_runqueue_latency_seconds",
             "Time the database's threads waited on a run queue between wakeup or preemption and running.")
    if "block_io" in attached:
        hist("block_rq", "ktm_block_rq_latency_seconds",
             "Block request latency from issue to completion, all devices.")
    return out
