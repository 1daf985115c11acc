"""A node OOM-killed by the kernel: a `node-oom` incident with the kill from the kernel log, the memory series
and the last heap profile before it. The end-to-end test has the real kernel kill a process in a real memory
cgroup (as root, where a memory cgroup can be made)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import test_incidents
from procs import http_get, http_json, start_prometheus, wait_for
from test_incidents import bundle_files, complete, watched_node

from fodc.agent.oomwatch import OomWatch, last_profile, node_cgroup
from fodc.diag.ring import ProfileRing
from fodc.incident.oom import find_kills, kernel_lines, oom_kill_count
from fodc.nodeconf.finder import NodeProcessFinder
from fodc.window import FlightRecorder

cluster = test_incidents.cluster

KMSG = """6,1201,1142220537,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,task=banyand,pid=16535,uid=0
3,1202,1142220575,-;Memory cgroup out of memory: Killed process 16535 (banyand) total-vm:46752kB, anon-rss:35456kB
3,1203,1300000000,-;Out of memory: Killed process 777 (postgres) total-vm:1kB
[ 1400.250000] Out of memory: Killed process 16600 (banyand) total-vm:46752kB
not a kernel line at all
"""


def test_the_oom_kill_counter_of_either_cgroup_version():
    assert oom_kill_count("low 0\nhigh 12\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n") == 2
    assert oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n") == 7
    assert oom_kill_count("max 3\n") is None and oom_kill_count("oom_kill lots\n") is None


def test_kills_of_the_node_are_found_by_comm_or_pid_and_time():
    lines = kernel_lines(KMSG)
    assert lines[1][0] == pytest.approx(1142.220575) and lines[3][0] == pytest.approx(1400.25)
    assert [k.pid for k in find_kills(lines, comm="banyand")] == [16535, 16600]
    assert [k.pid for k in find_kills(lines, comm="banyand", since_uptime_s=1200)] == [16600]
    assert [k.comm for k in find_kills(lines, comm="nobody", pids={777})] == ["postgres"]
    long = kernel_lines("3,1,1,-;Out of memory: Killed process 9 (banyand-server-) total-vm:1kB")
    assert [k.pid for k in find_kills(long, comm="banyand-server-main")] == [9]  # the kernel keeps 15 characters
    assert find_kills(kernel_lines("\x00\xff garbage\n" * 100), comm="banyand") == []


def test_the_last_heap_profile_is_the_newest_before_the_kill(tmp_path):
    for name, mtime in (("20261204T100000-heap-a.pb.gz", 100), ("20261204T100500-heap-b.pb.gz", 200),
                        ("20261204T101000-heap-c.pb.gz", 400), ("20261204T100700-goroutine-b.pb.gz", 250)):
        path = tmp_path / name
        path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))
    assert last_profile(tmp_path, "heap", 300).name == "20261204T100500-heap-b.pb.gz"
    assert last_profile(tmp_path, "heap", 50) is None and last_profile(tmp_path / "none", "heap", 500) is None


def _memory_cgroup() -> Path | None:
    """A fresh memory cgroup this test may limit: v2 under the root (memory enabled for children), or v1
    beside this process's own memory cgroup. None where neither can be made."""
    if os.geteuid() != 0:
        return None
    name = f"fodc-oom-test-{uuid.uuid4().hex[:8]}"
    own = Path("/proc/self/cgroup").read_text()
    candidates = []
    v2 = Path("/sys/fs/cgroup")
    if "memory" in (v2 / "cgroup.subtree_control").read_text() if (v2 / "cgroup.subtree_control").exists() else "":
        candidates.append((v2 / name, "memory.max"))
    v1_line = next((line for line in own.splitlines() if "memory" in line.split(":")[1].split(",")), None)
    if v1_line:
        candidates.append((Path("/sys/fs/cgroup/memory") / v1_line.split(":", 2)[2].lstrip("/") / name,
                           "memory.limit_in_bytes"))
    for path, limit in candidates:
        try:
            path.mkdir()
            (path / limit).write_text(str(48 * 1024 * 1024))
            for swap in ("memory.swap.max", "memory.memsw.limit_in_bytes"):
                if (path / swap).exists():
                    with contextlib.suppress(OSError):  # no swap accounting: the memory limit alone holds
                        (path / swap).write_text("0" if swap.endswith("max") else str(48 * 1024 * 1024))
            return path
        except OSError:
            if path.exists():
                path.rmdir()
    return None


@pytest.fixture
def memory_cgroup():
    path = _memory_cgroup()
    if path is None:
        pytest.skip("needs root and a memory cgroup it can create (v2 with memory delegated, or v1)")
    yield path
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        try:
            path.rmdir()
        except OSError:
            time.sleep(0.2)


VICTIM = """
import os, sys
open(os.path.join(sys.argv[1], "cgroup.procs"), "w").write(str(os.getpid()))
open("/proc/self/comm", "w").write("banyand")
hoard = [bytearray(4 * 1024 * 1024) for _ in range(256)]
print("the limit did not hold", flush=True)
"""


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus as the Go pprof target")
def test_a_node_killed_by_the_kernel_for_memory_is_a_node_oom_incident(cluster, daemons, memory_cgroup):
    proxy, _, tmp_path = cluster
    pprof, pprof_url = start_prometheus(tmp_path, "global:\n  scrape_interval: 1h\n")
    daemons.append(pprof)
    assert node_cgroup(os.getpid()) is not None  # this host's own cgroups are readable the way the agent reads them
    watched_node(cluster, daemons, "hot-oom", "--node-cgroup-path", str(memory_cgroup), "--node-pprof-url",
                 pprof_url, "--incident-cpu-seconds", "0", "--incident-before", "60s",
                 "--profile-every", "0")  # no periodic heap: the job's is the last one before the kill
    wait_for(lambda: proxy.cluster(node_id="hot-oom", status="online"), what="agent online")
    status, job = http_json(f"{proxy.url}/diagnostics", "POST", {"action": "heap",
                                                                 "target": {"node_ids": ["hot-oom"]}})
    assert status == 202, job
    wait_for(lambda: http_json(f"{proxy.url}/diagnostics/{job['job_id']}")[1]["state"] == "done", 60,
             interval=0.3, what="a heap profile taken before the kill")
    heap = http_get(f"{proxy.url}/diagnostics/{job['job_id']}/hot-oom")[2]
    time.sleep(1.1)  # the profile's file time is before the kill's, at the file system's resolution

    victim = subprocess.run([sys.executable, "-c", VICTIM, str(memory_cgroup)], capture_output=True, text=True,
                            timeout=120)
    assert victim.returncode == -9, (victim.returncode, victim.stdout, victim.stderr)  # SIGKILL by the kernel

    incident = complete(proxy, "node-oom", "hot-oom")
    wait_for(lambda: "oom_kill 1" in proxy.cluster(node_id="hot-oom")[0]["runtime"].get("oom_watch", ""), 30,
             interval=0.5, what="the OOM watch's state in the agent's heartbeat")
    detail = incident["detail"]
    assert detail["oom_kills"] == 1 and detail["crash"]["kind"] == "oom-kill"
    assert detail["counter"].endswith(("memory.events", "memory.oom_control"))
    files = bundle_files(proxy, incident)
    assert detail["killed"]["comm"] == "banyand" and f"({detail['killed']['comm']})" in files["oom.txt"].decode()
    assert incident["summary"] == f"oom-kill: Killed process {detail['killed']['pid']} (banyand)"
    assert files["last-heap.pb.gz"] == heap and heap[:2] == b"\x1f\x8b"  # the job's heap profile, gzipped by Go
    assert detail["last_heap"]["taken_s_before"] >= 1
    assert b'"series"' in files["memory.json"]


def test_a_node_found_down_is_explained_only_by_a_kill_of_its_own_process(tmp_path):
    pid_file = tmp_path / "node.pid"
    pid_file.write_text(str(os.getpid()))
    uptime = time.clock_gettime(time.CLOCK_BOOTTIME)
    kmsg = {"text": f"3,1,{int((uptime - 5) * 1e6)},-;Out of memory: Killed process 4 (banyand) total-vm:1kB"}
    watch = OomWatch(None, NodeProcessFinder(pid_file=str(pid_file)), FlightRecorder(budget_bytes=1 << 20),
                     cgroup_path=str(tmp_path / "no-cgroup"), comm="banyand", before_s=60, diagnostics_dir=tmp_path,
                     interval_s=1, kmsg=lambda: kmsg["text"])
    assert watch.check() is None and "no OOM-kill counter" in watch.status  # learns the node's pid
    assert watch.recent(time.time() - 60) is None  # another process named banyand: not this node
    kmsg["text"] += f"\n3,2,{int((uptime - 4) * 1e6)},-;Out of memory: Killed process {os.getpid()} (python3) x"
    found = watch.recent(time.time() - 60)
    assert found.trigger == "node-oom" and found.detail["killed"]["pid"] == os.getpid()
    assert watch.recent(time.time() + 60) is None  # a kill before the incident's window explains nothing


def test_the_last_heap_is_the_rings_when_it_is_newer(tmp_path):
    (tmp_path / "ring").mkdir()
    ring = ProfileRing(tmp_path / "ring", 1 << 20)
    store = tmp_path / "diagnostics"
    store.mkdir()
    own = store / "20261204T100000-heap-job1.pb.gz"
    own.write_bytes(b"\x1f\x8bown")
    t0 = 1_764_900_000  # unix seconds; the ring names its files by unix milliseconds
    os.utime(own, (t0, t0))
    ring.add("heap", (t0 + 500) * 1000, 0, b"\x1f\x8bring-early")
    ring.add("heap", (t0 + 3000) * 1000, 0, b"\x1f\x8bring-late")
    ring.add("cpu", (t0 + 900) * 1000, 10, b"\x1f\x8bcpu")
    watch = OomWatch(None, NodeProcessFinder(pid_file=str(tmp_path / "none.pid")), FlightRecorder(budget_bytes=1 << 20),
                     cgroup_path=None, comm="banyand", before_s=60, diagnostics_dir=store, interval_s=1, ring=ring,
                     kmsg=lambda: "")
    assert watch._last_heap(t0 + 1000)[1].read_bytes() == b"\x1f\x8bring-early"  # the ring's is newer than the job's
    assert watch._last_heap(t0 + 200)[1] == own  # the ring had none yet
    assert watch._last_heap(t0 - 1) is None
    assert watch._last_heap(t0 + 4000)[0] == t0 + 3000
