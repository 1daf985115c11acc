"""`fodc cluster`: the registered nodes as a table."""

from __future__ import annotations

import argparse

from fodc.cli.client import EXIT_OK, ProxyClient
from fodc.cli.output import ago, fit_line, print_json, table
from fodc.notes import node_notes


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
    rows = [[n["node_id"], n["role"], n["status"], ago(n["last_heartbeat"]),
             n["capabilities"].get("ktm_mode", "-"),
             f"{n['primary_address']['ip']}:{n['primary_address']['port']}",
             notes(n.get("runtime", {}), n.get("incidents_total", {}))]
            for n in body["nodes"]]
    print(table(rows, ["node", "role", "status", "heartbeat", "ktm", "address", "notes"]))
    for (mode, reason), nodes in ktm_reasons(body["nodes"]).items():
        print(fit_line(f"ktm {mode} on {', '.join(nodes)}: {reason}"))
    summary = body["summary"]
    print(f"\n{summary['online']} online, {summary['unconnected']} unconnected")
    return EXIT_OK


def ktm_reasons(nodes: list[dict]) -> dict[tuple[str, str], list[str]]:
    """Why kernel telemetry is not full, once per distinct reason, with the nodes it applies to."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for n in nodes:
        mode, reason = n["capabilities"].get("ktm_mode"), n["capabilities"].get("ktm_reason")
        if mode in ("degraded", "disabled") and reason:
            grouped.setdefault((mode, reason), []).append(n["node_id"])
    return grouped


def notes(runtime: dict[str, str], incidents_total: dict[str, int] | None = None) -> str:
    """What an operator should notice about a node from its agent's heartbeat, or "-"."""
    return "; ".join(node_notes(runtime, incidents_total)) or "-"
