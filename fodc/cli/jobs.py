"""`fodc jobs`: the proxy's diagnostics jobs after the fact: list them, look at one, cancel, download."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import ago, human_size, print_json, print_task_warnings, table, when


def add_parser(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="diagnostics jobs on the proxy: list, show, cancel, download")
    jobs.add_argument("what", nargs="?", choices=["list", "show", "cancel", "download"], default="list",
                      help="list (default): recent jobs; show ID: per-node states; cancel ID: stop a running job "
                      "(needs an operator token; a finished job is deleted); download ID: the job's bundle")
    jobs.add_argument("job_id", nargs="?", metavar="ID", help="the job id (for show, cancel and download)")
    jobs.add_argument("--limit", type=int, default=20, help="how many recent jobs to list (default 20)")
    jobs.add_argument("-o", "--output", help="bundle file for download (default fodc-<job>-<action>.tar.gz)")
    jobs.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    if args.what == "list":
        if args.job_id:
            raise CliError("jobs list takes no job id (did you mean `fodc jobs show ID`?)", EXIT_USAGE)
        return _list(args, client)
    if not args.job_id:
        raise CliError(f"jobs {args.what} needs a job id (see `fodc jobs`)", EXIT_USAGE)
    if args.what == "cancel":
        answer = client.send("DELETE", f"/diagnostics/{args.job_id}")
        if args.json:
            print_json(answer)
        else:
            print(f"job {args.job_id}: " + ("deleted" if answer.get("deleted") else
                                             f"cancelling on {answer.get('cancelling', 0)} node(s)"))
        return EXIT_OK
    job = client.get(f"/diagnostics/{args.job_id}")
    if args.what == "download":
        output = args.output or f"fodc-{job['job_id']}-{job['action']}.tar.gz"
        size = client.download(f"/diagnostics/{job['job_id']}/bundle", output)
        print(f"{output} ({size} bytes)")
        return EXIT_OK if job["state"] == "done" else EXIT_PARTIAL
    if args.json:
        print_json(job)
        return EXIT_OK
    print(f"job {job['job_id']}: {job['action']} {job['state']}, by {job['requested_by']}, "
          f"created {when(job['created'])}")
    rows = [[t["node_id"], t["role"], t["state"], human_size(t["size"]), ago(t["started"]), t["reason"] or "-"]
            for t in job["tasks"]]
    print(table(rows, ["node", "role", "state", "size", "started", "reason"]))
    print_task_warnings(job["tasks"])
    return EXIT_OK


def _list(args: argparse.Namespace, client: ProxyClient) -> int:
    body = client.get("/diagnostics", {"limit": str(args.limit), "automatic": "false"})
    if args.json:
        print_json(body)
        return EXIT_OK
    rows = [[j["job_id"], j["action"], j["state"], when(j["created"]), j["requested_by"],
             " ".join(f"{state}={count}" for state, count in sorted(j["nodes"].items())) or "-"]
            for j in body["jobs"]]
    print(table(rows, ["job", "action", "state", "created", "by", "nodes"]))
    return EXIT_OK
