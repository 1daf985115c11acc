"""`fodc`: the operator's command line, a thin client of the proxy's HTTP API.

Exit codes scripts can rely on: 0 success, 1 the proxy answered with an error, 2 bad usage,
3 the proxy could not be reached. `fodc dump` reads a window directory offline; its codes are in cli/dump.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from fodc import __version__
from fodc.cli import dump

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def get_json(proxy: str, path: str, params: dict[str, str] | None = None, timeout: float = 30) -> Any:
    query = "?" + urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v}) if params else ""
    url = proxy.rstrip("/") + path + (query if query != "?" else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("message", "")
        except (ValueError, AttributeError):
            detail = ""
        raise CliError(f"proxy answered {exc.code} for {path}: {detail}", EXIT_API_ERROR) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach the proxy at {proxy}: {getattr(exc, 'reason', exc)}", EXIT_UNREACHABLE) from None


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def cmd_cluster(args: argparse.Namespace) -> int:
    body = get_json(args.proxy, "/cluster", {"role": args.role, "node_id": args.node})
    if args.json:
        print(json.dumps(body, indent=2))
        return EXIT_OK
    rows = [[n["node_id"], n["role"], n["status"], n["last_heartbeat"] or "-",
             n["capabilities"].get("ktm_mode", "-"),
             f"{n['primary_address']['ip']}:{n['primary_address']['port']}"] for n in body["nodes"]]
    print(table(rows, ["node", "role", "status", "last heartbeat", "ktm", "address"]))
    summary = body["summary"]
    print(f"\n{summary['online']} online, {summary['unconnected']} unconnected")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fodc", description="FODC operator CLI (talks to fodc-proxy's HTTP API).")
    parser.add_argument("--version", action="version", version=f"fodc {__version__}")
    parser.add_argument("--proxy", default=os.environ.get("FODC_PROXY_URL", "http://127.0.0.1:17901"),
                        help="the proxy's HTTP API (env FODC_PROXY_URL; default http://127.0.0.1:17901)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    sub = parser.add_subparsers(dest="command", required=True)
    cluster = sub.add_parser("cluster", help="registered nodes: role, status, last heartbeat, KTM mode")
    cluster.add_argument("--role", help="only this role")
    cluster.add_argument("--node", help="only this node id")
    cluster.set_defaults(func=cmd_cluster)
    dump.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except CliError as exc:
        print(f"fodc: {exc}", file=sys.stderr)
        sys.exit(exc.code)
