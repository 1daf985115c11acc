"""`fodc config`, `fodc config drift` and `fodc config history`: what the nodes run with, where they differ,
and how one node's configuration changed."""

from __future__ import annotations

import argparse
import sys

from fodc.cli.client import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import ago, fit_line, print_json, table, when
from fodc.nodeconf.drift import node_changes


def add_parser(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser("config", help="each node's captured configuration (flags, env, files); "
                            "`fodc config drift` shows differences")
    config.add_argument("what", nargs="?", choices=["show", "drift", "history", "capture"], default="show",
                        help="show (default): latest snapshot per node; drift: differences by role and per node; "
                        "history: one node's recorded snapshots (needs --node) and what changed between them; "
                        "capture: take a snapshot now on --node, --role or --all (needs an operator token)")
    config.add_argument("--role", help="only this role")
    config.add_argument("--node", help="only this node id")
    config.add_argument("--all", action="store_true", help="capture: every online node")
    config.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                        help="drift: also ignore settings matching this glob (e.g. 'flag.*-timeout', "
                        "'env.MY_*'); repeat for several. Ports, node ids, data paths and host names are "
                        "ignored already")
    config.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    if args.what == "drift":
        return _drift(args, client)
    if args.what == "history":
        return _history(args, client)
    if args.what == "capture":
        return _capture(args, client)
    if args.all:
        raise CliError("--all is for `fodc config capture`", EXIT_USAGE)
    body = client.get("/cluster/config", {"role": args.role, "node_id": args.node})
    if args.json:
        print_json(body)
        return EXIT_OK
    rows = []
    for node in body["nodes"]:
        snap = node["snapshot"]
        rows.append([node["node_id"], node["role"], (snap.get("process") or {}).get("pid", "-"),
                     ago(snap["captured_at"]), snap["hash"][7:19], len(snap.get("flags") or {}),
                     len(snap.get("env") or {}), ", ".join(sorted(snap.get("errors") or {})) or "-"])
    print(table(rows, ["node", "role", "pid", "captured", "hash", "flags", "env", "unreadable"]))
    if args.node and len(body["nodes"]) == 1:
        flags = body["nodes"][0]["snapshot"].get("flags") or {}
        print("\n" + table([[f"--{k}", v] for k, v in flags.items()], ["flag", "value"]))
    _missing(body["missing"])
    return EXIT_OK


def _drift(args: argparse.Namespace, client: ProxyClient) -> int:
    body = client.get("/cluster/config/drift", {"role": args.role, "node_id": args.node,
                                                "ignore": ",".join(args.ignore) or None})
    if args.json:
        print_json(body)
        return EXIT_OK
    for role, info in body["roles"].items():
        differences, ignored = info["differences"], info.get("ignored", [])
        print(f"{role} ({len(info['nodes'])} nodes): " + (f"{len(differences)} settings differ" if differences
                                                           else "no differences"))
        if differences:
            nodes = info["nodes"]
            rows = [[key, *(_value(values.get(n)) for n in nodes)] for key, values in differences.items()]
            print(table(rows, ["setting", *nodes]))
        for path, by_node in (info.get("file_diffs") or {}).items():
            for node, diff in by_node.items():
                print(f"\n{path} on {node}:")
                print(diff)
        if ignored:
            print(fit_line(f"({len(ignored)} expected per-node differences ignored; --json lists them: "
                       f"{', '.join(ignored)})"))
        print()
    changed = {node: info for node, info in body["nodes"].items() if info["changes"]}
    if changed:
        print("changed since the previous snapshot:")
        rows = [[node, key, f"{_value(change['before'])} → {_value(change['after'])}", when(info.get("to"))]
                for node, info in changed.items() for key, change in info["changes"].items()]
        print(table(rows, ["node", "setting", "change", "since"]))
        for node, info in changed.items():
            for key, change in info["changes"].items():
                if change.get("diff"):
                    print(f"\n{key[len('file.'):]} on {node}:")
                    print(change["diff"])
    _missing(body["missing"])
    return EXIT_OK


def _value(value: str | None) -> str:
    if value is None:
        return "(absent)"
    return f"sha256:{value[:12]}" if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else value


def _history(args: argparse.Namespace, client: ProxyClient) -> int:
    if not args.node:
        raise CliError("config history needs --node (history is kept per node)", EXIT_USAGE)
    body = client.get("/cluster/config/history", {"node_id": args.node})
    if args.json:
        print_json(body)
        return EXIT_OK
    for node in body["nodes"]:
        snapshots = node["snapshots"]
        rows = []
        for i, snap in enumerate(snapshots):
            rows.append([when(snap["captured_at"]), ago(snap.get("confirmed_at")), snap.get("reason", "-"),
                         (snap.get("process") or {}).get("pid", "-"), snap["hash"][7:19],
                         _changed_since_running(snapshots[:i], snap)])
        print(f"{node['node_id']} ({node['role']}): {len(snapshots)} snapshots, oldest first")
        print(table(rows, ["captured", "last confirmed", "reason", "pid", "hash", "changed"]))
    _missing(body["missing"])
    return EXIT_OK


def _changed_since_running(earlier: list[dict], snap: dict) -> str:
    """The settings that differ from the last earlier snapshot of a running node: a capture while the node
    was gone has no argv, and comparing with it would list every flag as removed, then added."""
    if snap.get("argv") is None:
        return "(node gone)"
    previous = next((p for p in reversed(earlier) if p.get("argv") is not None), None)
    if previous is None:
        return "(first)"
    return ", ".join(node_changes(previous, snap)) or "-"


def _capture(args: argparse.Namespace, client: ProxyClient) -> int:
    chosen = [name for name, given in (("--node", args.node), ("--role", args.role), ("--all", args.all)) if given]
    if len(chosen) != 1:
        raise CliError("config capture needs exactly one of --node N, --role R, --all", EXIT_USAGE)
    body = {"scope": "all"} if args.all else {"scope": "node", "node_id": args.node} if args.node else \
        {"scope": "role", "role": args.role}
    answer = client.send("POST", "/cluster/config/capture", body)
    if args.json:
        print_json(answer)
    else:
        rows = [[c["node_id"], c["role"], when(c["captured_at"]), c["hash"][7:19],
                 ", ".join(sorted(c.get("errors") or {})) or "-"] for c in answer["captured"]]
        print(table(rows, ["node", "role", "captured", "hash", "unreadable"]))
    _missing(answer["missing"])
    return EXIT_PARTIAL if answer["missing"] else EXIT_OK


def _missing(missing: list[dict]) -> None:
    for entry in missing:
        print(f"fodc: {entry['node_id']} did not answer: {entry['state']} {entry['reason']}", file=sys.stderr)
