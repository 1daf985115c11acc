"""`fodc incidents`: the cluster's first-occurrence incidents; `--download ID` fetches one bundle."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import print_json, table, when
from fodc.times import FORMS, time_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    incidents = sub.add_parser("incidents", help="incidents recorded by the agents (newest first)")
    incidents.add_argument("--node", help="only this node id")
    incidents.add_argument("--role", help="only this role")
    incidents.add_argument("--trigger", help="only this trigger, e.g. node-down, node-restart, rule:<name>")
    incidents.add_argument("--since", type=time_arg, help=f"only incidents at or after this time: {FORMS}")
    incidents.add_argument("--until", type=time_arg, help="only incidents at or before this time (same forms)")
    incidents.add_argument("--download", metavar="ID", help="download this incident's bundle (needs --node)")
    incidents.add_argument("-o", "--output", help="bundle file (default fodc-incident-<node>-<id>.tar.gz)")
    incidents.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    if args.download:
        if not args.node:
            raise CliError("--download needs --node (incident ids are per node)", EXIT_USAGE)
        output = args.output or f"fodc-incident-{args.node}-{args.download}.tar.gz"
        size = client.download(f"/incidents/{args.node}/{args.download}/bundle", output)
        print(f"{output} ({size} bytes)")
        return EXIT_OK
    body = client.get("/incidents", {"node_id": args.node, "role": args.role, "trigger": args.trigger,
                                     "since": _ms(args.since), "until": _ms(args.until)})
    if args.json:
        print_json(body)
        return EXIT_OK
    # "copy": the agent is unreachable and the proxy's copy answers; "both": the proxy holds a copy too.
    kept = {("agent", False): "agent", ("agent", True): "both", ("proxy", True): "copy"}
    rows = [[when(i["at"]), _onset(i), i["node_id"], i["role"], i["trigger"], i["state"], i["id"],
             kept.get((i.get("source", "agent"), bool(i.get("archived"))), "agent")] for i in body["incidents"]]
    print(table(rows, ["at", "onset", "node", "role", "trigger", "state", "id", "kept"]))
    return EXIT_OK


def _ms(value: int | None) -> str | None:
    return None if value is None else str(value)


def _onset(incident: dict) -> str:
    """How long before the trigger the trouble began ("-" when the agent did not say, or at the trigger)."""
    at, onset = incident.get("at_ms"), incident.get("onset_ms")
    if not isinstance(at, int) or not isinstance(onset, int) or onset >= at:
        return "-"
    return f"{(at - onset) / 1000:g}s before"
