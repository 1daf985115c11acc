"""`fodc cluster`: the registered nodes as a table."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, ProxyClient
from fodc.cli.output import print_json, table


def add_parser(sub: argparse._SubParsersAction) -> None:
    cluster = sub.add_parser("cluster", help="registered nodes: role, status, last heartbeat, KTM mode")
    cluster.add_argument("--role", help="only this role")
    cluster.add_argument("--node", help="only this node id")
    cluster.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    body = client.get("/cluster", {"role": args.role, "node_id": args.node})
    if args.json:
        print_json(body)
        return EXIT_OK
    rows = [[n["node_id"], n["role"], n["status"], n["last_heartbeat"] or "-",
             n["capabilities"].get("ktm_mode", "-"),
             f"{n['primary_address']['ip']}:{n['primary_address']['port']}"] for n in body["nodes"]]
    print(table(rows, ["node", "role", "status", "last heartbeat", "ktm", "address"]))
    summary = body["summary"]
    print(f"\n{summary['online']} online, {summary['unconnected']} unconnected")
    return EXIT_OK
