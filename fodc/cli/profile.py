"""`fodc profile <kind>`: run a diagnostics job, show progress while it runs, download the bundle."""

from __future__ import annotations

import argparse
import sys
import time

from fodc.cli.client import EXIT_OK, EXIT_PARTIAL, CliError, ProxyClient
from fodc.cli.output import human_size, print_json, print_task_warnings, table

KINDS = ("cpu", "heap", "allocs", "goroutine", "block", "mutex", "config")
# A node's final states (for progress); whether the job as a whole is finished is the proxy's word (its state).
FINAL = {"done", "failed", "cancelled", "rejected", "interrupted", "timed_out", "unreachable", "unsupported"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    profile = sub.add_parser("profile", help="take profiles on nodes (needs an operator token) and download "
                             "them as one bundle")
    profile.add_argument("kind", choices=KINDS, help="cpu needs --seconds; config takes a fresh config snapshot")
    target = profile.add_mutually_exclusive_group()
    target.add_argument("--role", help="every online node of this role")
    target.add_argument("--node", action="append", help="this node id; repeat for several")
    profile.add_argument("--seconds", type=int, default=30, help="CPU profile length (default 30)")
    profile.add_argument("-o", "--output", help="bundle file (default fodc-<job>-<kind>.tar.gz)")
    profile.add_argument("--wait", type=float, default=None,
                         help="give up waiting after this many seconds (default: seconds + 120)")
    profile.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    target: object = {"role": args.role} if args.role else {"node_ids": args.node} if args.node else "all"
    body: dict[str, object] = {"action": args.kind, "target": target}
    if args.kind == "cpu":
        body["params"] = {"seconds": args.seconds}
    job = client.send("POST", "/diagnostics", body)
    job_id = job["job_id"]
    deadline = time.monotonic() + (args.wait if args.wait is not None else (args.seconds if args.kind == "cpu"
                                                                             else 0) + 120)
    tty = sys.stderr.isatty()
    try:
        while job["state"] == "running":
            _progress(job, tty)
            if time.monotonic() > deadline:
                raise CliError(f"job {job_id} still running; follow it with `fodc jobs show {job_id}`",
                               EXIT_PARTIAL)
            time.sleep(0.5)
            job = client.get(f"/diagnostics/{job_id}")
    except KeyboardInterrupt:  # the job is the proxy's, not this terminal's: say how to reach it
        print(f"\njob {job_id} goes on at the proxy: `fodc jobs show {job_id}`, `fodc jobs download {job_id}`, "
              f"or stop it with `fodc jobs cancel {job_id}`", file=sys.stderr)
        raise
    _progress(job, tty, final=True)
    output = args.output or f"fodc-{job_id}-{args.kind}.tar.gz"
    size = client.download(f"/diagnostics/{job_id}/bundle", output)
    if args.json:
        print_json({**job, "bundle": output, "bundle_bytes": size})
    else:
        rows = [[t["node_id"], t["role"], t["state"], human_size(t["size"]), t["reason"] or "-"] for t in job["tasks"]]
        print(table(rows, ["node", "role", "state", "size", "reason"]))
        print_task_warnings(job["tasks"])
        print(f"\nbundle: {output} ({human_size(size)})")
    return EXIT_OK if job["state"] == "done" else EXIT_PARTIAL


def _progress(job: dict, tty: bool, final: bool = False) -> None:
    tasks = job["tasks"]
    done = sum(t["state"] in FINAL for t in tasks)
    running = sum(t["state"] == "running" for t in tasks)
    queued = len(tasks) - done - running
    line = f"job {job['job_id']}: {done}/{len(tasks)} nodes finished, {running} running, {queued} queued"
    if tty:
        print(f"\r{line}", end="\n" if final else "", file=sys.stderr, flush=True)
    elif final or getattr(_progress, "said", None) != line:
        print(line, file=sys.stderr, flush=True)
        _progress.said = line  # type: ignore[attr-defined]
