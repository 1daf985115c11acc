"""`fodc window`: points of the flight-recorder window as CSV (default) or JSON lines."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from fodc.cli.client import EXIT_API_ERROR, EXIT_OK, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import when
from fodc.expfmt import format_labels
from fodc.names import name_arg
from fodc.times import FORMS, now_ms, time_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    window = sub.add_parser("window", help="series points from the agents' windows (CSV or JSON lines)",
                            epilog="Exit status 1 when a node asked for (by --node, --role or all) gave no "
                            "points: unconnected, or did not answer in time (named on stderr).")
    window.add_argument("--node", help="only this node id")
    window.add_argument("--role", help="only this role")
    window.add_argument("--name", type=name_arg, help="which series: names or globs, comma-separated "
                        "(banyandb_*_latency_bucket), or ~REGEX; matched against family and sample names")
    window.add_argument("--since", type=time_arg, default=None, help=f"from: {FORMS} (default 10m)")
    window.add_argument("--until", type=time_arg, default=None, help="to (same forms; default now)")
    window.add_argument("--format", choices=["csv", "jsonl"], default="csv",
                        help="csv: node_id,node_role,name,labels,time,value (time: RFC 3339, or unix ms with "
                        "--epoch-ms); jsonl: one series per line, points as [unix_ms, value]")
    window.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    now = now_ms()
    start = args.since if args.since is not None else now - 600_000
    end = args.until if args.until is not None else now
    if start > end:
        raise CliError("--since is after --until", EXIT_USAGE)
    body = client.get("/metrics-windows", {"node_id": args.node, "role": args.role, "name": args.name,
                                           "start": str(start), "end": str(end)})
    if args.json:
        print(json.dumps(body, indent=2))
        return EXIT_OK
    if args.format == "jsonl":
        for series in body["series"]:
            print(json.dumps(series, separators=(",", ":")))
    else:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["node_id", "node_role", "name", "labels", "unix_ms" if args.epoch_ms else "time", "value"])
        for series in body["series"]:
            labels = format_labels(tuple(sorted((k, v) for k, v in series["labels"].items()
                                                if k not in ("node_id", "node_role"))))
            for ms, value in series["points"]:
                out.writerow([series["node_id"], series["node_role"], series["name"], labels,
                              when(ms, precise=True), value])
    missing = body.get("missing_agents", [])
    for entry in missing:
        print(f"fodc: no points from {entry.get('node_id', '?')} ({entry.get('status', '?')}): "
              f"{entry.get('reason', '')}", file=sys.stderr)
    return EXIT_API_ERROR if missing else EXIT_OK
