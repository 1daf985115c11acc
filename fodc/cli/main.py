"""`fodc`: the operator's command line, a thin client of the proxy's HTTP API (exit codes: fodc.cli.client)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

import fodc.cli.mcp as mcp_command
import fodc.cli.profiles as profiles_command
import fodc.cli.token as token_command
from fodc import __version__
from fodc.cli import capture, cluster, config, crashes, dump, incidents, jobs, pprof, profile, snapshot, triage, window
from fodc.cli.client import EXIT_API_ERROR, EXIT_OK, CliError, ProxyClient, proxy_url, read_token
from fodc.cli.output import configure as configure_output
from fodc.config import positive_duration


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fodc", description="FODC operator CLI (talks to fodc-proxy's HTTP API).",
        epilog="Exit codes: 0 ok, 1 the proxy refused or failed, 2 bad usage, 3 proxy unreachable, "
        "4 a job finished on some nodes only.")
    parser.add_argument("--version", action="version", version=f"fodc {__version__}")
    parser.add_argument("--proxy", default=os.environ.get("FODC_PROXY_URL", "http://127.0.0.1:17901"),
                        help="the proxy's HTTP API: a URL or host:port (http assumed; https with --ca) "
                        "(env FODC_PROXY_URL; default http://127.0.0.1:17901)")
    parser.add_argument("--ca", help="CA certificate file to verify an https proxy with (implies https)")
    parser.add_argument("--timeout", type=positive_duration, default=30.0,
                        help="how long to wait for each answer of the proxy (default 30s)")
    parser.add_argument("--token-file", help="file whose first line is the API token (env FODC_TOKEN_FILE; "
                        "or the token itself in FODC_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    parser.add_argument("--wide", action="store_true", help="tables as wide as their contents (default: fit "
                        "100 columns, long cells cut with …)")
    parser.add_argument("--local-time", action="store_true", help="times in the local zone (default UTC)")
    parser.add_argument("--epoch-ms", action="store_true", help="times as unix milliseconds")
    parser.add_argument("--debug", action="store_true", help="on an unexpected error, print the traceback")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (cluster, config, window, profile, profiles_command, pprof, jobs, incidents, crashes, capture,
                    triage, snapshot, dump):
        command.add_parser(sub)
    token_command.add_parser(sub)
    mcp_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    configure_output(wide=args.wide, local=args.local_time, epoch_ms=args.epoch_ms)
    try:
        client = ProxyClient(proxy_url(args.proxy, args.ca), read_token(args.token_file), args.timeout, args.ca)
        code = args.func(args, client)
        sys.stdout.flush()
    except CliError as exc:
        print(f"fodc: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # `fodc ... | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except Exception as exc:  # noqa: BLE001 - one line for the operator; the trace on request
        if args.debug:
            traceback.print_exc()
        print(f"fodc: unexpected error: {type(exc).__name__}: {exc}" + ("" if args.debug else " (--debug for "
              "the trace)"), file=sys.stderr)
        sys.exit(EXIT_API_ERROR)
    sys.exit(code)
