"""OS telemetry as metric families: parsed /proc data in, `Family` lists out.

Pure: every function takes already-parsed data and the collection time (`now_ms`) and returns families in
base units (seconds, bytes, ratios), so the flight recorder and Prometheus see the same thing. Names follow
Prometheus conventions (`_total` on counters only, base units in the name) so `promtool check metrics`
accepts them. The curated vmstat/meminfo subsets are the ones that explain read latency on a storage node:
page-cache size and churn, reclaim, faults, swap and dirty data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fodc.expfmt import Family, Sample
from fodc.ktm.procfs import DiskStat, PidStat, PsiLine, SchedStat, started_at_s

Labels = tuple[tuple[str, str], ...]


def family(name: str, kind: str, help_text: str, unit: str,
           points: Iterable[tuple[Labels, float]], now_ms: int) -> Family:
    """Build one family; histogram/summary callers pass full sample names through `samples` instead."""
    return Family(name, kind, help_text, unit, [Sample(name, labels, float(v), now_ms) for labels, v in points])


# ------------------------------------------------------------------------------------------------ PSI


def psi_families(pressure: Mapping[str, list[PsiLine]], now_ms: int) -> list[Family]:
    """`pressure` maps resource (cpu, memory, io) to its parsed lines."""
    stall: list[tuple[Labels, float]] = []
    ratio: list[tuple[Labels, float]] = []
    for resource in sorted(pressure):
        for line in pressure[resource]:
            base = (("kind", line.kind), ("resource", resource))
            stall.append((base, line.total_us / 1e6))
            for window, avg in (("10s", line.avg10), ("60s", line.avg60), ("300s", line.avg300)):
                ratio.append(((("kind", line.kind), ("resource", resource), ("window", window)), avg / 100.0))
    if not stall:
        return []
    return [
        family("fodc_os_psi_stall_seconds_total", "counter",
               "Time some (or all, kind=full) non-idle tasks were stalled on the resource (PSI total).",
               "seconds", stall, now_ms),
        family("fodc_os_psi_pressure_ratio", "gauge",
               "PSI running average of the stalled share of time over the window, 0..1.", "ratio", ratio, now_ms),
    ]


# ------------------------------------------------------------------------------------------------ vmstat

# (metric suffix, vmstat keys summed, help). Counters of events since boot.
_VMSTAT_COUNTERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("page_faults_total", ("pgfault",), "Page faults (minor and major)."),
    ("major_page_faults_total", ("pgmajfault",), "Major page faults: the page had to be read from storage."),
    ("paged_in_bytes_total", ("pgpgin",), "Bytes paged in from block devices (vmstat pgpgin, KiB, times 1024)."),
    ("paged_out_bytes_total", ("pgpgout",), "Bytes paged out to block devices (vmstat pgpgout, KiB, times 1024)."),
    ("swap_ins_total", ("pswpin",), "Pages swapped in."),
    ("swap_outs_total", ("pswpout",), "Pages swapped out."),
    ("pages_scanned_kswapd_total", ("pgscan_kswapd",), "Pages scanned by the background reclaimer."),
    ("pages_scanned_direct_total", ("pgscan_direct",), "Pages scanned by direct reclaim (allocating tasks)."),
    ("pages_stolen_kswapd_total", ("pgsteal_kswapd",), "Pages reclaimed by the background reclaimer."),
    ("pages_stolen_direct_total", ("pgsteal_direct",), "Pages reclaimed by direct reclaim."),
    ("allocation_stalls_total", ("allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable",
                                 "allocstall_device", "allocstall"),
     "Allocations that entered direct reclaim (all zones)."),
    ("workingset_refaults_file_total", ("workingset_refault_file", "workingset_refault"),
     "File pages read again soon after eviction: the page cache is too small for the working set."),
    ("workingset_activations_file_total", ("workingset_activate_file", "workingset_activate"),
     "Refaulted file pages promoted straight to the active list."),
    ("pages_activated_total", ("pgactivate",), "Pages moved to the active LRU list."),
    ("pages_deactivated_total", ("pgdeactivate",), "Pages moved to the inactive LRU list."),
    ("oom_kills_total", ("oom_kill",), "Processes killed by the OOM killer."),
    ("compaction_stalls_total", ("compact_stall",), "Allocations that stalled for memory compaction."),
)

# (metric suffix, vmstat key, help). Current page counts, reported in bytes.
_VMSTAT_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("file_pages_bytes", "nr_file_pages", "Page cache size."),
    ("active_file_bytes", "nr_active_file", "Page cache on the active LRU list."),
    ("inactive_file_bytes", "nr_inactive_file", "Page cache on the inactive LRU list (first to be reclaimed)."),
    ("dirty_bytes", "nr_dirty", "Dirty page cache waiting for writeback."),
    ("writeback_bytes", "nr_writeback", "Page cache under writeback now."),
    ("free_bytes", "nr_free_pages", "Free memory."),
    ("mapped_bytes", "nr_mapped", "Page cache mapped into processes."),
)

PAGE_SIZE = 4096


def vmstat_families(vmstat: Mapping[str, int], now_ms: int, page_size: int = PAGE_SIZE) -> list[Family]:
    out: list[Family] = []
    for suffix, keys, help_text in _VMSTAT_COUNTERS:
        present = [vmstat[k] for k in keys if k in vmstat]
        if present:
            scale = 1024 if suffix.startswith("paged_") else 1
            out.append(family(f"fodc_os_vmstat_{suffix}", "counter", help_text, "bytes" if scale > 1 else "",
                              [((), sum(present) * scale)], now_ms))
    for suffix, key, help_text in _VMSTAT_GAUGES:
        if key in vmstat:
            out.append(family(f"fodc_os_vmstat_{suffix}", "gauge", help_text, "bytes",
                              [((), vmstat[key] * page_size)], now_ms))
    return out


# ------------------------------------------------------------------------------------------------ meminfo

_MEMINFO: tuple[tuple[str, str, str], ...] = (
    ("MemTotal", "total", "Usable RAM."),
    ("MemFree", "free", "RAM left unused."),
    ("MemAvailable", "available", "Estimate of memory available for new work without swapping."),
    ("Buffers", "buffers", "Block device buffers."),
    ("Cached", "cached", "Page cache (excluding swap cache)."),
    ("Active(file)", "active_file", "Page cache recently used."),
    ("Inactive(file)", "inactive_file", "Page cache not recently used, first to be reclaimed."),
    ("Dirty", "dirty", "Memory waiting to be written back."),
    ("Writeback", "writeback", "Memory being written back."),
    ("AnonPages", "anon", "Anonymous memory mapped into processes."),
    ("Shmem", "shmem", "Shared memory and tmpfs."),
    ("Mapped", "mapped", "Files mapped into processes."),
    ("SwapTotal", "swap_total", "Swap space."),
    ("SwapFree", "swap_free", "Unused swap space."),
)


def meminfo_families(meminfo: Mapping[str, int], now_ms: int) -> list[Family]:
    return [family(f"fodc_os_meminfo_{name}_bytes", "gauge", help_text, "bytes", [((), meminfo[key])], now_ms)
            for key, name, help_text in _MEMINFO if key in meminfo]


# ------------------------------------------------------------------------------------------------ diskstats

SECTOR_BYTES = 512
_SKIPPED_DEVICE_PREFIXES = ("loop", "ram", "fd")


def _reported(disk: DiskStat) -> bool:
    """Loop and RAM devices are noise; idle devices (never read or written) add series and say nothing."""
    if disk.device.startswith(_SKIPPED_DEVICE_PREFIXES):
        return False
    return bool(disk.reads_completed or disk.writes_completed or disk.ios_in_progress)


def disk_families(disks: Iterable[DiskStat], now_ms: int) -> list[Family]:
    rows = [d for d in disks if _reported(d)]
    if not rows:
        return []

    def points(value) -> list[tuple[Labels, float]]:
        return [((("device", d.device),), value(d)) for d in rows]

    out = [
        family("fodc_os_disk_reads_completed_total", "counter", "Reads completed.", "",
               points(lambda d: d.reads_completed), now_ms),
        family("fodc_os_disk_reads_merged_total", "counter", "Adjacent reads merged before issue.", "",
               points(lambda d: d.reads_merged), now_ms),
        family("fodc_os_disk_read_bytes_total", "counter", "Bytes read.", "bytes",
               points(lambda d: d.sectors_read * SECTOR_BYTES), now_ms),
        family("fodc_os_disk_read_time_seconds_total", "counter",
               "Time spent on reads, summed over requests (divide by reads for the mean latency).", "seconds",
               points(lambda d: d.read_time_ms / 1000.0), now_ms),
        family("fodc_os_disk_writes_completed_total", "counter", "Writes completed.", "",
               points(lambda d: d.writes_completed), now_ms),
        family("fodc_os_disk_writes_merged_total", "counter", "Adjacent writes merged before issue.", "",
               points(lambda d: d.writes_merged), now_ms),
        family("fodc_os_disk_written_bytes_total", "counter", "Bytes written.", "bytes",
               points(lambda d: d.sectors_written * SECTOR_BYTES), now_ms),
        family("fodc_os_disk_write_time_seconds_total", "counter",
               "Time spent on writes, summed over requests.", "seconds",
               points(lambda d: d.write_time_ms / 1000.0), now_ms),
        family("fodc_os_disk_io_in_progress", "gauge", "Requests issued to the device and not yet completed.", "",
               points(lambda d: d.ios_in_progress), now_ms),
        family("fodc_os_disk_io_time_seconds_total", "counter",
               "Time the device had at least one request in flight (rate = utilisation).", "seconds",
               points(lambda d: d.io_time_ms / 1000.0), now_ms),
        family("fodc_os_disk_io_time_weighted_seconds_total", "counter",
               "Request time weighted by requests in flight (rate = average queue depth).", "seconds",
               points(lambda d: d.weighted_io_time_ms / 1000.0), now_ms),
    ]
    flushing = [d for d in rows if d.flushes_completed is not None]
    if flushing:
        out.append(family("fodc_os_disk_flushes_completed_total", "counter", "Cache flushes completed.", "",
                          [((("device", d.device),), d.flushes_completed or 0) for d in flushing], now_ms))
    return out


# ------------------------------------------------------------------------------------------------ the node process


def process_families(stat: PidStat | None, io: Mapping[str, int] | None, status: Mapping[str, int] | None,
                     sched: SchedStat | None, now_ms: int, *, clock_ticks: int, page_size: int = PAGE_SIZE,
                     boot_time_s: float | None = None) -> list[Family]:
    """The database process as the kernel sees it. Any part may be missing (process gone, /proc/<pid>/io
    unreadable without ptrace rights); what is there is reported. `sched` is summed over the threads."""
    out: list[Family] = []
    p = "fodc_node_process_"
    if stat is not None:
        out += [
            family(p + "cpu_seconds_total", "counter", "CPU time of the process by mode.", "seconds",
                   [((("mode", "system"),), stat.stime_ticks / clock_ticks),
                    ((("mode", "user"),), stat.utime_ticks / clock_ticks)], now_ms),
            family(p + "minor_page_faults_total", "counter", "Page faults served without I/O.", "",
                   [((), stat.minor_faults)], now_ms),
            family(p + "major_page_faults_total", "counter", "Page faults that read from storage.", "",
                   [((), stat.major_faults)], now_ms),
            family(p + "threads", "gauge", "Threads in the process.", "", [((), stat.num_threads)], now_ms),
            family(p + "virtual_memory_bytes", "gauge", "Virtual memory size.", "bytes",
                   [((), stat.vsize_bytes)], now_ms),
        ]
        if boot_time_s is not None:
            out.append(family(p + "start_time_seconds", "gauge", "Process start time, Unix seconds.", "seconds",
                              [((), started_at_s(stat, boot_time_s, clock_ticks))], now_ms))
        if status is None or "VmRSS" not in status:
            out.append(family(p + "resident_memory_bytes", "gauge", "Resident set size.", "bytes",
                              [((), stat.rss_pages * page_size)], now_ms))
    if status is not None:
        if "VmRSS" in status:
            out.append(family(p + "resident_memory_bytes", "gauge", "Resident set size.", "bytes",
                              [((), status["VmRSS"])], now_ms))
        rss_parts = [(k, status[k]) for k in ("RssAnon", "RssFile", "RssShmem") if k in status]
        if rss_parts:
            out.append(family(p + "resident_memory_by_kind_bytes", "gauge",
                              "Resident set split into anonymous, file-backed and shared memory.", "bytes",
                              [((("kind", k[3:].lower()),), v) for k, v in rss_parts], now_ms))
        if "VmSwap" in status:
            out.append(family(p + "swap_bytes", "gauge", "Process memory swapped out.", "bytes",
                              [((), status["VmSwap"])], now_ms))
    if io:
        for key, name, help_text in (
            ("rchar", "io_logical_read_bytes_total", "Bytes returned by read-like syscalls, cache hits included."),
            ("wchar", "io_logical_written_bytes_total", "Bytes passed to write-like syscalls."),
            ("syscr", "io_read_syscalls_total", "Read-like syscalls."),
            ("syscw", "io_write_syscalls_total", "Write-like syscalls."),
            ("read_bytes", "io_storage_read_bytes_total", "Bytes the process caused to be read from storage."),
            ("write_bytes", "io_storage_written_bytes_total", "Bytes the process caused to be written to storage."),
        ):
            if key in io:
                unit = "" if "syscalls" in name else "bytes"
                out.append(family(p + name, "counter", help_text, unit, [((), io[key])], now_ms))
    if sched is not None:
        out += [
            family(p + "cpu_run_seconds_total", "counter", "Time on CPU per the scheduler, all threads.",
                   "seconds", [((), sched.run_ns / 1e9)], now_ms),
            family(p + "run_delay_seconds_total", "counter",
                   "Time runnable threads waited on a run queue for a CPU, all threads (CPU starvation).",
                   "seconds", [((), sched.run_delay_ns / 1e9)], now_ms),
            family(p + "timeslices_total", "counter", "Scheduler timeslices run, all threads.", "",
                   [((), sched.timeslices)], now_ms),
        ]
    return out
