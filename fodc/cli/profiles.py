"""`fodc profiles`: the agents' profile rings (periodic CPU and heap profiles of each node); `get` downloads
one, ready for `fodc pprof top`."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import human_size, print_json, table, when
from fodc.times import FORMS, time_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    profiles = sub.add_parser("profiles", help="the agents' periodic profiles (the profile ring): list, get")
    profiles.add_argument("what", nargs="?", choices=["list", "get"], default="list",
                          help="list (default): newest first; get NAME: download one (needs --node)")
    profiles.add_argument("name", nargs="?", metavar="NAME", help="the profile's name, as listed (for get)")
    profiles.add_argument("--node", help="only this node id (required for get)")
    profiles.add_argument("--role", help="only this role")
    profiles.add_argument("--since", type=time_arg, help=f"only profiles taken at or after this time: {FORMS}")
    profiles.add_argument("-o", "--output", help="file for get (default <node>-<name>)")
    profiles.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    if args.what == "get":
        if not args.name or not args.node:
            raise CliError("profiles get needs NAME and --node (see `fodc profiles --node N`)", EXIT_USAGE)
        output = args.output or f"{args.node}-{args.name}"
        size = client.download(f"/profiles/{args.node}/{args.name}", output)
        print(f"{output} ({size} bytes); read it with `fodc pprof top {output}`")
        return EXIT_OK
    if args.name:
        raise CliError("profiles list takes no NAME (did you mean `fodc profiles get NAME --node N`?)", EXIT_USAGE)
    body = client.get("/profiles", {"node_id": args.node, "role": args.role,
                                    "since": None if args.since is None else str(args.since)})
    if args.json:
        print_json(body)
        return EXIT_OK
    rows = [[when(p["taken"]), p["node_id"], p["kind"], f"{p['seconds']}s" if p["seconds"] else "-",
             human_size(p["size"]), p["name"]] for p in body["profiles"]]
    print(table(rows, ["taken", "node", "kind", "length", "size", "name"]))
    for miss in body["missing"]:
        print(f"{miss['node_id']}: no answer: {miss['reason']}")
    return EXIT_OK
