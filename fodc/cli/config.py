"""`fodc config` and `fodc config drift`: what the nodes run with, and where they differ."""

from __future__ import annotations

import argparse
import sys

from fodc.cli.client import EXIT_OK, ProxyClient
from fodc.cli.output import print_json, table


def add_parser(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser("config", help="each node's captured configuration (flags, env, files); "
                            "`fodc config drift` shows differences")
    config.add_argument("what", nargs="?", choices=["show", "drift"], default="show",
                        help="show (default): latest snapshot per node; drift: differences by role and per node")
    config.add_argument("--role", help="only this role")
    config.add_argument("--node", help="only this node id")
    config.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    if args.what == "drift":
        return _drift(args, client)
    body = client.get("/cluster/config", {"role": args.role, "node_id": args.node})
    if args.json:
        print_json(body)
        return EXIT_OK
    rows = []
    for node in body["nodes"]:
        snap = node["snapshot"]
        rows.append([node["node_id"], node["role"], (snap.get("process") or {}).get("pid", "-"),
                     snap["captured_at"], snap["hash"][7:19], len(snap.get("flags") or {}),
                     len(snap.get("env") or {}), ", ".join(sorted(snap.get("errors") or {})) or "-"])
    print(table(rows, ["node", "role", "pid", "captured", "hash", "flags", "env", "unreadable"]))
    if args.node and len(body["nodes"]) == 1:
        flags = body["nodes"][0]["snapshot"].get("flags") or {}
        print("\n" + table([[f"--{k}", v] for k, v in flags.items()], ["flag", "value"]))
    _missing(body["missing"])
    return EXIT_OK


def _drift(args: argparse.Namespace, client: ProxyClient) -> int:
    body = client.get("/cluster/config/drift", {"role": args.role, "node_id": args.node})
    if args.json:
        print_json(body)
        return EXIT_OK
    for role, info in body["roles"].items():
        differences = info["differences"]
        print(f"{role} ({len(info['nodes'])} nodes): " + (f"{len(differences)} settings differ" if differences
                                                           else "no differences"))
        if differences:
            nodes = info["nodes"]
            rows = [[key, *(values.get(n) if values.get(n) is not None else "(absent)" for n in nodes)]
                    for key, values in differences.items()]
            print(table(rows, ["setting", *nodes]))
        print()
    changed = {node: info for node, info in body["nodes"].items() if info["changes"]}
    if changed:
        print("changed since the previous snapshot:")
        rows = [[node, key, change["before"] if change["before"] is not None else "(absent)",
                 change["after"] if change["after"] is not None else "(absent)", info.get("to", "")]
                for node, info in changed.items() for key, change in info["changes"].items()]
        print(table(rows, ["node", "setting", "before", "after", "since"]))
    _missing(body["missing"])
    return EXIT_OK


def _missing(missing: list[dict]) -> None:
    for entry in missing:
        print(f"fodc: {entry['node_id']} did not answer: {entry['state']} {entry['reason']}", file=sys.stderr)
