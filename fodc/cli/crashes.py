"""`fodc crashes`: every node's crashes, the same crash on many nodes as one line ("3 nodes")."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, ProxyClient
from fodc.cli.output import ago, print_json, table, when
from fodc.times import FORMS, time_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    crashes = sub.add_parser("crashes", help="the nodes' crashes (Go panics, fatal errors, crash artifacts), "
                             "grouped by signature across nodes")
    crashes.add_argument("--node", help="only this node id")
    crashes.add_argument("--role", help="only this role")
    crashes.add_argument("--since", type=time_arg, help=f"only crashes at or after this time: {FORMS}")
    crashes.add_argument("--each", action="store_true", help="one line per crash instead of per signature")
    crashes.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    body = client.get("/crashes", {"node_id": args.node, "role": args.role,
                                   "since": None if args.since is None else str(args.since)})
    if args.json:
        print_json(body)
    elif args.each:
        rows = [[when(c["at"]), c["node_id"], c["kind"], c["message"], _frame(c["top_frames"]), c["incident"]]
                for c in body["crashes"]]
        print(table(rows, ["at", "node", "kind", "message", "top frame", "incident"]))
    else:
        rows = [[f"{g['node_count']} node{'s' if g['node_count'] != 1 else ''}", g["count"], g["kind"], g["message"],
                 _frame(g["top_frames"]), ago(g["last_at_ms"])] for g in body["groups"]]
        print(table(rows, ["nodes", "crashes", "kind", "message", "top frame", "last"]))
    for missing in body.get("missing", []):
        print(f"not answering: {missing['node_id']} ({missing['state']}: {missing['reason']})")
    return EXIT_OK


def _frame(frames: list[str]) -> str:
    """The top frame without its module path: the function and file are what an operator recognises."""
    return frames[0].rsplit("/", 1)[-1] if frames else "-"
