"""The eBPF programs KTM loads, as C text for BCC, and the layout of the maps they fill.

Rules every program here keeps, because the header tree BCC compiles against may not match the running
kernel (the test machines run kernels newer than any packaged headers):
- tracepoints only, reading only the tracepoint's own `args->` fields (BCC builds that struct from the live
  tracefs `format` file, so offsets are always right) and BPF helpers (pid/tgid, comm, cgroup id, ktime);
  never a kernel struct dereference;
- every counter lives in one array map indexed by the constants below, every histogram in one flat array of
  log2-microsecond slots, so reading is a fixed number of lookups and the Python side shares one layout.

Pure: this module only builds strings and describes programs; loading lives in `loader.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------------------------ map layout

COUNTERS = (
    "read_bytes",            # bytes returned by read() in the target
    "pread_bytes",           # bytes returned by pread64() in the target
    "read_errors",           # read() returning < 0
    "pread_errors",          # pread64() returning < 0
    "fadvise_calls",
    "fadvise_dontneed",
    "cache_lookups",         # filemap_get_pages calls (one per page-cache batch lookup)
    "cache_fills",           # pages added to the page cache
    "cache_deletes",         # pages removed from the page cache (of files the target touched)
    "lru_pages_scanned",
    "lru_pages_reclaimed",
    "lru_shrink_events",
    "direct_reclaim_begin",
)
COUNTER_INDEX = {name: i for i, name in enumerate(COUNTERS)}

HISTOGRAMS = ("read", "pread", "runqueue", "block_rq")
HISTOGRAM_INDEX = {name: i for i, name in enumerate(HISTOGRAMS)}

# Slot k counts latencies whose whole-microsecond value has bit length k, i.e. latency < 2**k µs; so slot
# k's upper bound is 2**k µs (slot 0: under 1 µs). The last slot collects everything beyond MAX_SLOT.
MAX_SLOT = 25  # 2**25 µs ≈ 33.6 s
HIST_SLOTS = MAX_SLOT + 2

# `struct ktm_config` below as Python's struct sees it (comm[16], cgroup_id, use_cgroup; native order), and
# the maps the agent reads or writes once the loader child has handed them over (bpfmaps.py).
CONFIG_FORMAT = "=16sQQ"
AGENT_MAPS = ("ktm_config", "ktm_counters", "ktm_hist", "ktm_hist_sum_ns")

POSIX_FADV_DONTNEED = 4  # Linux value (include/uapi/linux/fadvise.h); s390 differs, not a target here
TASK_REPORT_MASK = 0xFF  # sched_switch prev_state bits meaning "not runnable"; 0 (or only R+) = preempted


@dataclass(frozen=True, slots=True)
class Program:
    """One named unit that attaches (and fails) as a whole: `tracepoints` are `category:event` names, and
    `functions` the matching C function names, in the same order."""

    name: str
    tracepoints: tuple[str, ...]
    functions: tuple[str, ...]
    source: str
    scope: str  # "target" (filtered in the kernel to the database) or "system" (node-wide signal)


def _fn(tracepoint: str) -> str:
    return "ktm_" + tracepoint.replace(":", "__")


def _struct(tracepoint: str) -> str:
    return "struct tracepoint__" + tracepoint.replace(":", "__")


def _program(name: str, scope: str, bodies: dict[str, str]) -> Program:
    tps = tuple(bodies)
    source = "\n".join(f"int {_fn(tp)}({_struct(tp)} *args) {{\n{body.strip()}\n    return 0;\n}}\n"
                       for tp, body in bodies.items())
    return Program(name, tps, tuple(_fn(tp) for tp in tps), source, scope)


_SYSCALL_ENTER = """
    if (!ktm_current_is_target()) return 0;
    u64 id = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    ktm_syscall_start.update(&id, &ts);
"""


def _syscall_exit(hist: str, bytes_counter: str, error_counter: str) -> str:
    return f"""
    u64 id = bpf_get_current_pid_tgid();
    u64 *start = ktm_syscall_start.lookup(&id);
    if (!start) return 0;
    u64 delta = bpf_ktime_get_ns() - *start;
    ktm_syscall_start.delete(&id);
    ktm_observe({HISTOGRAM_INDEX[hist]}, delta);
    long ret = args->ret;
    if (ret >= 0) ktm_add({COUNTER_INDEX[bytes_counter]}, (u64)ret);
    else ktm_add({COUNTER_INDEX[error_counter]}, 1);
"""


PROGRAMS: tuple[Program, ...] = (
    _program("read", "target", {
        "syscalls:sys_enter_read": _SYSCALL_ENTER,
        "syscalls:sys_exit_read": _syscall_exit("read", "read_bytes", "read_errors"),
    }),
    _program("pread", "target", {
        "syscalls:sys_enter_pread64": _SYSCALL_ENTER,
        "syscalls:sys_exit_pread64": _syscall_exit("pread", "pread_bytes", "pread_errors"),
    }),
    _program("fadvise", "target", {
        "syscalls:sys_enter_fadvise64": f"""
    if (!ktm_current_is_target()) return 0;
    ktm_add({COUNTER_INDEX['fadvise_calls']}, 1);
    if (args->advice == {POSIX_FADV_DONTNEED}) ktm_add({COUNTER_INDEX['fadvise_dontneed']}, 1);
""",
    }),
    _program("cache_lookup", "target", {
        "filemap:mm_filemap_get_pages": f"""
    if (!ktm_current_is_target()) return 0;
    ktm_remember_inode(args->s_dev, args->i_ino);
    ktm_add({COUNTER_INDEX['cache_lookups']}, 1);
""",
    }),
    _program("cache_fill", "target", {
        "filemap:mm_filemap_add_to_page_cache": f"""
    if (!ktm_current_is_target()) return 0;
    ktm_remember_inode(args->s_dev, args->i_ino);
    ktm_add({COUNTER_INDEX['cache_fills']}, 1ULL << (args->order & 31));
""",
    }),
    # Evictions mostly run in kswapd or in whoever truncates, so "the target's" deletes are those of files
    # the target looked up or filled (remembered by device+inode, both tracepoint fields) plus any the
    # target performs itself (fadvise DONTNEED, truncation, direct reclaim).
    _program("cache_delete", "target", {
        "filemap:mm_filemap_delete_from_page_cache": f"""
    if (!ktm_inode_known(args->s_dev, args->i_ino) && !ktm_current_is_target()) return 0;
    ktm_add({COUNTER_INDEX['cache_deletes']}, 1ULL << (args->order & 31));
""",
    }),
    # Reclaim is a node-wide event (kswapd does most of it), and it is what evicts the database's cache:
    # counted for every task.
    _program("lru_shrink", "system", {
        "vmscan:mm_vmscan_lru_shrink_inactive": f"""
    ktm_add({COUNTER_INDEX['lru_pages_scanned']}, args->nr_scanned);
    ktm_add({COUNTER_INDEX['lru_pages_reclaimed']}, args->nr_reclaimed);
    ktm_add({COUNTER_INDEX['lru_shrink_events']}, 1);
""",
    }),
    # Direct reclaim stalls the allocating task itself: counted when that task is the database.
    _program("direct_reclaim", "target", {
        "vmscan:mm_vmscan_direct_reclaim_begin": f"""
    if (!ktm_current_is_target()) return 0;
    ktm_add({COUNTER_INDEX['direct_reclaim_begin']}, 1);
""",
    }),
    # Run-queue latency of the database's threads: from wakeup (or preemption) to running, keyed by tid.
    # The woken task is not `current` at wakeup, so only its comm (a tracepoint field) can filter here.
    _program("runqueue", "target", {
        "sched:sched_wakeup": """
    ktm_runq_mark(args->comm, args->pid);
""",
        "sched:sched_wakeup_new": """
    ktm_runq_mark(args->comm, args->pid);
""",
        "sched:sched_switch": f"""
    if ((args->prev_state & {TASK_REPORT_MASK}) == 0) ktm_runq_mark(args->prev_comm, args->prev_pid);
    u32 next = args->next_pid;
    u64 *start = ktm_runq_start.lookup(&next);
    if (!start) return 0;
    u64 delta = bpf_ktime_get_ns() - *start;
    ktm_runq_start.delete(&next);
    ktm_observe({HISTOGRAM_INDEX['runqueue']}, delta);
""",
    }),
    # Block request latency, issue to completion, for every device (the issuer is often a kernel worker).
    _program("block_io", "system", {
        "block:block_rq_issue": """
    struct ktm_rq key = {};
    key.dev = args->dev;
    key.sector = args->sector;
    u64 ts = bpf_ktime_get_ns();
    ktm_block_start.update(&key, &ts);
""",
        "block:block_rq_complete": f"""
    struct ktm_rq key = {{}};
    key.dev = args->dev;
    key.sector = args->sector;
    u64 *start = ktm_block_start.lookup(&key);
    if (!start) return 0;
    u64 delta = bpf_ktime_get_ns() - *start;
    ktm_block_start.delete(&key);
    ktm_observe({HISTOGRAM_INDEX['block_rq']}, delta);
""",
    }),
)

PROGRAM_NAMES = tuple(p.name for p in PROGRAMS)

_COMMON = f"""
#define KTM_COMM_LEN 16
#define KTM_HIST_SLOTS {HIST_SLOTS}
#define KTM_MAX_SLOT {MAX_SLOT}

struct ktm_config {{
    char comm[KTM_COMM_LEN];
    u64 cgroup_id;
    u64 use_cgroup;
}};
struct ktm_inode {{
    u64 ino;
    u64 dev;
}};
struct ktm_rq {{
    u64 dev;
    u64 sector;
}};

BPF_ARRAY(ktm_config, struct ktm_config, 1);
BPF_ARRAY(ktm_counters, u64, {len(COUNTERS)});
BPF_ARRAY(ktm_hist, u64, {len(HISTOGRAMS) * HIST_SLOTS});
BPF_ARRAY(ktm_hist_sum_ns, u64, {len(HISTOGRAMS)});
BPF_HASH(ktm_syscall_start, u64, u64, 16384);
BPF_HASH(ktm_runq_start, u32, u64, 16384);
BPF_HASH(ktm_block_start, struct ktm_rq, u64, 16384);
BPF_TABLE("lru_hash", struct ktm_inode, u8, ktm_inodes, 65536);

static __always_inline void ktm_add(u32 index, u64 amount) {{
    u64 *value = ktm_counters.lookup(&index);
    if (value) __sync_fetch_and_add(value, amount);
}}

static __always_inline int ktm_comm_is(const char *comm, const char *want) {{
#pragma unroll
    for (int i = 0; i < KTM_COMM_LEN; i++) {{
        if (comm[i] != want[i]) return 0;
        if (comm[i] == 0) return 1;
    }}
    return 1;
}}

static __always_inline int ktm_current_is_target(void) {{
    u32 zero = 0;
    struct ktm_config *cfg = ktm_config.lookup(&zero);
    if (!cfg || cfg->comm[0] == 0) return 0;
    if (cfg->use_cgroup && bpf_get_current_cgroup_id() != cfg->cgroup_id) return 0;
    char comm[KTM_COMM_LEN] = {{}};
    bpf_get_current_comm(&comm, sizeof(comm));
    return ktm_comm_is(comm, cfg->comm);
}}

static __always_inline void ktm_observe(u32 hist, u64 delta_ns) {{
    u64 us = delta_ns / 1000;
    u32 slot = us ? bpf_log2l(us) : 0;  /* bit length of us: us < 2**slot */
    if (slot > KTM_MAX_SLOT) slot = KTM_MAX_SLOT + 1;
    u32 index = hist * KTM_HIST_SLOTS + slot;
    u64 *count = ktm_hist.lookup(&index);
    if (count) __sync_fetch_and_add(count, 1);
    u64 *sum = ktm_hist_sum_ns.lookup(&hist);
    if (sum) __sync_fetch_and_add(sum, delta_ns);
}}

static __always_inline void ktm_remember_inode(u64 dev, u64 ino) {{
    struct ktm_inode key = {{}};
    key.ino = ino;
    key.dev = dev;
    u8 one = 1;
    ktm_inodes.update(&key, &one);
}}

static __always_inline int ktm_inode_known(u64 dev, u64 ino) {{
    struct ktm_inode key = {{}};
    key.ino = ino;
    key.dev = dev;
    return ktm_inodes.lookup(&key) != 0;
}}

static __always_inline void ktm_runq_mark(const char *task_comm, u32 pid) {{
    u32 zero = 0;
    struct ktm_config *cfg = ktm_config.lookup(&zero);
    if (!cfg || cfg->comm[0] == 0 || pid == 0) return;
    char comm[KTM_COMM_LEN] = {{}};
    bpf_probe_read_kernel(&comm, sizeof(comm), task_comm);
    if (!ktm_comm_is(comm, cfg->comm)) return;
    u64 ts = bpf_ktime_get_ns();
    ktm_runq_start.update(&pid, &ts);
}}
"""


def source_for(programs: tuple[Program, ...] | list[Program]) -> str:
    """The C text of the shared maps and helpers plus the given programs."""
    return _COMMON + "\n".join(p.source for p in programs)


def program_named(name: str) -> Program:
    for program in PROGRAMS:
        if program.name == name:
            return program
    raise KeyError(name)
