"""`fodc mcp`: an MCP server on stdin/stdout for an AI assistant (Claude Desktop, an IDE, any MCP client),
talking to the proxy with this command's --proxy, token and --ca (fodc.mcp.server)."""

from __future__ import annotations

import argparse
import logging
import sys

from fodc.cli.client import EXIT_OK, ProxyClient


def add_parser(sub: argparse._SubParsersAction) -> None:
    mcp = sub.add_parser("mcp", help="serve the proxy's API to an AI assistant over MCP (stdio)",
                         description="Runs a Model Context Protocol server on stdin/stdout: register this command "
                         "with an MCP client (see the README). Control tools (take_profile, capture_config) need "
                         "an operator token; the proxy audits them with the MCP client's name.")
    mcp.add_argument("--viewer", action="store_true", help="offer only the read tools (no take_profile, "
                     "capture_config), whatever the token may do")
    mcp.set_defaults(func=run)


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    from fodc.mcp.server import build_server  # the SDK is imported only by this command

    # stdout is the protocol: the SDK's and our log lines go to stderr only.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, force=True)
    build_server(client, control=not args.viewer).run("stdio")
    return EXIT_OK
