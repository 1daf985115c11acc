"""Real fodc-agent memory: a full window, KTM on and off, 1 h window reads, against the floor of an idle python.

Run: .venv/bin/python bench/bench_agent_rss.py [--series 6400] [--seconds 30] [--reads 3] [--no-full] [--no-ktm]
     [--no-unit-env] [--env NAME=VALUE]   (as root, so that KTM can load eBPF)

The floor is the agent's interpreter with what fodc-agent imports at start, doing nothing; ratios are against it.
Real agent processes scrape every second, with the environment of the shipped systemd unit
(packaging/systemd/fodc-agent.service, Environment= lines) unless --no-unit-env, plus any --env:
  * baseline:      no node to scrape (its URL refuses connections);
  * fresh:         a simulated node of --series series, window starting empty;
  * full-ktm-off:  the same node, its --window-dir prefilled so the agent starts with a full window;
  * full-ktm-on:   the same, with --ktm-enabled auto (full mode where eBPF works).
Printed: RSS, PSS, anonymous and file-backed memory of each (smaps_rollup), the KTM share, and for each full
agent the peak RSS (VmHWM, restarted before each read) during --reads 1 h /metrics-windows reads through the
proxy, and its memory after them.

Filling a 30 MiB window by scraping takes a day, so the window directory is written the way an agent would have
(tests/windowfill.py): the node's own page stamped every 15 s up to a minute ago, until the budget has been
evicting for a while. Prefilling 6,400 series takes 1-10 minutes depending on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import free_port, http_get, start_agent, start_proxy, wait_for  # noqa: E402
from windowfill import prefill_window  # noqa: E402

from fodc.sim.launcher import start_sim_node  # noqa: E402

MIB = 1024 * 1024
ROLE = "datanode-hot"
UNIT = Path(__file__).resolve().parent.parent / "packaging" / "systemd" / "fodc-agent.service"
BUDGET = 30 * MIB  # the agent's default --window-memory
BLOCK_SCRAPES = 120  # its default --window-block-scrapes
PREFILL_INTERVAL_MS = 15_000
GOAL_STEADY = 80 * MIB  # issue 17: RSS in steady state and after repeated 1 h reads
GOAL_PEAK = 100 * MIB  # issue 17: RSS at the peak of a 1 h read


# The floor: the agent's interpreter with what fodc-agent imports at start (lazy imports aside), doing nothing.
FLOOR_CODE = ("import sys, fodc.agent.main, grpc; sys.stdout.write(f'{len(sys.modules)}\\n'); sys.stdout.flush(); "
              "sys.stdin.read()")


def start_floor(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """A bare interpreter that imported what the agent imports; returns it and its module count once ready."""
    full_env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), **env}
    process = subprocess.Popen([sys.executable, "-c", FLOOR_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=full_env, text=True)
    return process, int(process.stdout.readline())


def unit_environment() -> dict[str, str]:
    """The Environment= settings of the shipped unit, so the bench measures the agent as it is run."""
    env = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            env[name] = value
    return env


def prefill(directory: Path, source: str, series: int) -> tuple[int, float]:
    """Writes a full window of `source` into `directory`; returns the scrapes written and the seconds taken."""
    started = time.monotonic()
    scrapes = prefill_window(directory, source, ROLE, series, budget_bytes=BUDGET, block_scrapes=BLOCK_SCRAPES,
                             interval_ms=PREFILL_INTERVAL_MS)
    return scrapes, time.monotonic() - started


def rss_figures(pid: int) -> dict[str, int]:
    """RSS, PSS, anonymous and file-backed bytes from /proc/<pid>/smaps_rollup, and the peak RSS (VmHWM)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) * 1024
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"rss": fields["Rss"], "pss": fields["Pss"], "anon": fields["Anonymous"],
            "file": fields["Rss"] - fields["Anonymous"] - fields.get("Shmem", 0),
            "peak": int(status["VmHWM"].split()[0]) * 1024}


def reset_peak(pid: int) -> bool:
    """Restarts VmHWM from the current RSS (clear_refs 5, Linux 4.0+; needs the right to write it)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def window_figures(url: str) -> tuple[float, float]:
    """(accounted bytes, budget bytes) of the agent's window, from its own /metrics."""
    _, _, body = http_get(f"{url}/metrics", 5)
    text = body.decode()

    def gauge(name: str) -> float:
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else float("nan")

    return gauge("fodc_agent_window_bytes"), gauge("fodc_agent_window_budget_bytes")


def ktm_mode(url: str) -> str:
    _, _, body = http_get(f"{url}/metrics", 5)
    match = re.search(r"^ktm_status (\S+)$", body.decode(), re.MULTILINE)
    return {0.0: "disabled", 1.0: "degraded", 2.0: "full"}.get(float(match.group(1)), "?") if match else "?"


def read_hour(proxy_url: str, node_id: str) -> tuple[int, int, float]:
    """One 1 h /metrics-windows read of one node through the proxy: (points, bytes, seconds)."""
    started = time.monotonic()
    start = int(time.time()) - 3600
    _, _, body = http_get(f"{proxy_url}/metrics-windows?node_id={node_id}&start={start}", 300)
    document = json.loads(body)
    if document["missing_agents"]:
        raise RuntimeError(f"{node_id} did not answer: {document['missing_agents']}")
    return sum(len(s["points"]) for s in document["series"]), len(body), time.monotonic() - started


def line(name: str, fig: dict[str, int], base: int) -> str:
    return (f"{name:16s} RSS {fig['rss'] / MIB:6.1f} MiB (x{fig['rss'] / base:.2f})  PSS {fig['pss'] / MIB:6.1f}  "
            f"anon {fig['anon'] / MIB:5.1f}  file {fig['file'] / MIB:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=6400)
    parser.add_argument("--seconds", type=float, default=30, help="how long the agents scrape before measuring")
    parser.add_argument("--reads", type=int, default=3, help="1 h /metrics-windows reads of each full agent")
    parser.add_argument("--no-full", action="store_true", help="skip the prefilled (full window) agents")
    parser.add_argument("--no-ktm", action="store_true", help="no agent with KTM on (it needs root for eBPF)")
    parser.add_argument("--no-unit-env", action="store_true", help="run without the unit's Environment=")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="one more environment variable for the agents (to try a setting), repeatable")
    args = parser.parse_args()
    env = {} if args.no_unit_env else unit_environment()
    for setting in args.env:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, not {setting!r}")
        env[name] = value
    tmp = Path(tempfile.mkdtemp(prefix="fodc-bench-rss-", dir="/var/tmp"))
    proxy = start_proxy(tmp, "--metrics-timeout", "120s")
    node = start_sim_node(ROLE, free_port(), series=args.series, comm="banyand")
    agents = {}
    floor = None
    try:
        full = [] if args.no_full else ["full-ktm-off"] + ([] if args.no_ktm else ["full-ktm-on"])
        if full:
            scrapes, seconds = prefill(tmp / "window-prefill", node.metrics_url, args.series)
            print(f"prefilled a full window: {scrapes} scrapes of {args.series} series in {seconds:.0f} s")
        scraping = ("--scrape-interval", "1s", "--scrape-timeout", "1s")
        agents["baseline"] = start_agent(tmp, proxy.grpc_addr, "liaison", "baseline", "--node-metrics-url",
                                         f"http://127.0.0.1:{free_port()}/metrics", *scraping, env=env)
        agents["fresh"] = start_agent(tmp, proxy.grpc_addr, ROLE, "fresh", "--node-metrics-url", node.metrics_url,
                                      *scraping, env=env)
        for name in full:
            shutil.copytree(tmp / "window-prefill", tmp / f"window-{name}")
            agents[name] = start_agent(tmp, proxy.grpc_addr, ROLE, name, "--node-metrics-url", node.metrics_url,
                                       "--ktm-enabled", "auto" if name.endswith("on") else "off", *scraping,
                                       env=env)
        wait_for(lambda: len(proxy.cluster(status="online")) == len(agents), 300, what="agents online")
        floor, modules = start_floor(env)
        time.sleep(args.seconds)
        floor_figures = rss_figures(floor.pid)
        steady = {name: rss_figures(agent.pid) for name, agent in agents.items()}
        base = floor_figures["rss"]
        print(f"environment: {env or 'none'}; {args.seconds:g} s of 1 s scrapes; {args.series} series")
        print("steady state (x: RSS against the floor):")
        print(f"  {line('floor', floor_figures, base)}  (python with the agent's {modules} modules imported, idle)")
        for name, fig in steady.items():
            used, budget = window_figures(agents[name].url)
            print(f"  {line(name, fig, base)}  window {used / MIB:4.1f}/{budget / MIB:.0f} MiB  "
                  f"KTM {ktm_mode(agents[name].url)}")
        if "full-ktm-on" in steady:
            share = steady["full-ktm-on"]["rss"] - steady["full-ktm-off"]["rss"]
            print(f"  KTM share (full-ktm-on - full-ktm-off): {share / MIB:+.1f} MiB RSS, "
                  f"{(steady['full-ktm-on']['anon'] - steady['full-ktm-off']['anon']) / MIB:+.1f} MiB anonymous")
        verdicts = []
        for name in full:
            peaks = []
            for i in range(args.reads):
                reset_peak(agents[name].pid)
                points, size, seconds = read_hour(proxy.url, name)
                peaks.append(rss_figures(agents[name].pid)["peak"])
                print(f"  {name} 1 h read {i + 1}: {points:,} points, {size / MIB:.0f} MB JSON, {seconds:.1f} s, "
                      f"agent peak RSS during it {peaks[-1] / MIB:.1f} MiB")
            time.sleep(5)
            after = rss_figures(agents[name].pid)
            print(f"  after {args.reads} reads: {line(name, after, base)}; highest peak {max(peaks) / MIB:.1f} MiB")
            verdicts += [(f"{name} steady", steady[name]["rss"], GOAL_STEADY),
                         (f"{name} peak during a read", max(peaks) if peaks else 0, GOAL_PEAK),
                         (f"{name} after {args.reads} reads", after["rss"], GOAL_STEADY)]
        if verdicts:
            print("goal (issue 17): " + "; ".join(f"{what} {got / MIB:.1f} <= {goal / MIB:.0f} MiB "
                                                  f"{'met' if got <= goal else 'NOT met'}"
                                                  for what, got, goal in verdicts))
    finally:
        if floor is not None:
            floor.kill()
            floor.wait()
        for daemon in (*agents.values(), proxy):
            daemon.stop()
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
