"""`fodc capture`: freeze a manual incident on nodes now (operator token; the proxy audits it)."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, EXIT_PARTIAL, ProxyClient
from fodc.cli.output import print_json, table


def add_parser(sub: argparse._SubParsersAction) -> None:
    capture = sub.add_parser("capture", help="freeze an incident bundle on nodes now, with a reason (needs an "
                             "operator token; audited)")
    target = capture.add_mutually_exclusive_group(required=True)
    target.add_argument("--node", action="append", help="this node id; repeat for several")
    target.add_argument("--role", help="every online node of this role")
    capture.add_argument("--reason", default="", help="why, kept in the incident and the audit log")
    capture.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    target = {"role": args.role} if args.role else {"node_ids": args.node}
    body = client.send("POST", "/incidents/capture", {"target": target, "reason": args.reason})
    if args.json:
        print_json(body)
    else:
        rows = [[i["node_id"], i["role"], i["id"], i["state"]] for i in body["incidents"]]
        rows += [[m["node_id"], m["role"], "-", f"{m['state']}: {m['reason']}"] for m in body["missing"]]
        rows += [[node, "-", "-", "not online"] for node in body.get("unknown_nodes", [])]
        print(table(rows, ["node", "role", "incident", "state"]))
        if body["incidents"]:
            print("\nbundles are complete after --incident-after; then `fodc incidents --node N --download ID`")
    return EXIT_OK if not body["missing"] and not body.get("unknown_nodes") else EXIT_PARTIAL
