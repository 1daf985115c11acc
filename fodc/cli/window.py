"""`fodc window`: points of the flight-recorder window as CSV (default) or JSON lines."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time

from fodc.cli.client import EXIT_OK, ProxyClient
from fodc.config import duration


def add_parser(sub: argparse._SubParsersAction) -> None:
    window = sub.add_parser("window", help="series points from the agents' windows (CSV or JSON lines)")
    window.add_argument("--node", help="only this node id")
    window.add_argument("--role", help="only this role")
    window.add_argument("--name", help="metric family names, comma-separated (or ~regex)")
    window.add_argument("--since", type=duration, default=600.0, help="how far back, e.g. 10m, 2h (default 10m)")
    window.add_argument("--until", type=duration, default=0.0, help="end this long ago (default now)")
    window.add_argument("--format", choices=["csv", "jsonl"], default="csv",
                        help="csv: node,role,name,labels,unix_ms,value; jsonl: one series per line")
    window.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    now = time.time()
    body = client.get("/metrics-windows", {"node_id": args.node, "role": args.role, "name": args.name,
                                           "start": f"{now - args.since:.3f}", "end": f"{now - args.until:.3f}"})
    if args.json:
        print(json.dumps(body, indent=2))
        return EXIT_OK
    if args.format == "jsonl":
        for series in body["series"]:
            print(json.dumps(series, separators=(",", ":")))
    else:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["node_id", "node_role", "name", "labels", "unix_ms", "value"])
        for series in body["series"]:
            labels = ",".join(f"{k}={v}" for k, v in sorted(series["labels"].items())
                              if k not in ("node_id", "node_role"))
            for ms, value in series["points"]:
                out.writerow([series["node_id"], series["node_role"], series["name"], labels, ms, value])
    for missing in body.get("missing_agents", []):
        print(f"fodc: {missing.get('node_id', '?')} did not answer: {missing.get('reason', '')}", file=sys.stderr)
    return EXIT_OK
