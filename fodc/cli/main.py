"""`fodc`: the operator's command line, a thin client of the proxy's HTTP API (exit codes: fodc.cli.client)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fodc import __version__
from fodc.cli import cluster, config, dump, incidents, jobs, pprof, profile, snapshot, triage, window
from fodc.cli.client import CliError, ProxyClient, read_token


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fodc", description="FODC operator CLI (talks to fodc-proxy's HTTP API).",
        epilog="Exit codes: 0 ok, 1 the proxy refused or failed, 2 bad usage, 3 proxy unreachable, "
        "4 a job finished on some nodes only.")
    parser.add_argument("--version", action="version", version=f"fodc {__version__}")
    parser.add_argument("--proxy", default=os.environ.get("FODC_PROXY_URL", "http://127.0.0.1:17901"),
                        help="the proxy's HTTP API (env FODC_PROXY_URL; default http://127.0.0.1:17901)")
    parser.add_argument("--token-file", help="file whose first line is the API token (env FODC_TOKEN_FILE; "
                        "or the token itself in FODC_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (cluster, config, window, profile, pprof, jobs, incidents, triage, snapshot, dump):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        client = ProxyClient(args.proxy, read_token(args.token_file))
        sys.exit(args.func(args, client))
    except CliError as exc:
        print(f"fodc: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        sys.exit(130)
