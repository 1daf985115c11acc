"""One slice of a synthetic fleet in its own process, steered over stdin/stdout by bench_fleet_load.py.

The fleet runs outside the bench's process so that its CPU, threads and memory are measured apart from the
proxy's and the bench's own, and can be spread over both cores (--drivers). Protocol: the driver builds its
agents (bench/fleet.py, coroutines on one grpc.aio event loop) and prints "ready"; on a "go" line it starts
them and prints "registered <CLOCK_MONOTONIC seconds>" once all of them are (or "unregistered <count> ..."
when some are not within REGISTRATION_TIMEOUT_S); a "count" line answers
"<registered now> <registrations so far>"; at end of input it exits at once (the proxy sees the connections
close, as when hosts go away).

Run: python bench/fleet_driver.py --proxy 127.0.0.1:PORT --agents 500 --first 0 [--series 200] [--scrapes 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import CachedResponder, Fleet, filled_recorder  # noqa: E402

from fodc.config import HostPort  # noqa: E402

REGISTRATION_TIMEOUT_S = 180.0  # the bench stays bounded in time when a proxy refuses or loses agents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxy", required=True, help="the proxy's gRPC address, HOST:PORT")
    parser.add_argument("--agents", type=int, required=True, help="agents this driver runs")
    parser.add_argument("--first", type=int, default=0, help="number of this driver's first agent (node ids)")
    parser.add_argument("--series", type=int, default=200, help="series per agent's page (default 200)")
    parser.add_argument("--scrapes", type=int, default=8, help="scrapes in each agent's window (15 s apart)")
    parser.add_argument("--command-streams", action="store_true", help="also hold each agent's command stream")
    args = parser.parse_args()
    host, _, port = args.proxy.rpartition(":")
    responder = CachedResponder(filled_recorder(args.series, scrapes=args.scrapes))
    fleet = Fleet(HostPort(host, int(port)), args.agents, responder, command_streams=args.command_streams,
                  send_timeout_s=30, first=args.first)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        os._exit(1)
    fleet.start()
    deadline = time.monotonic() + REGISTRATION_TIMEOUT_S
    while fleet.registered() < args.agents and time.monotonic() < deadline:
        time.sleep(0.05)
    if fleet.registered() < args.agents:
        print(f"unregistered {args.agents - fleet.registered()} after {REGISTRATION_TIMEOUT_S:g}s", flush=True)
    else:
        print(f"registered {time.monotonic():.6f}", flush=True)
    for line in sys.stdin:  # until the bench closes our input
        if line.strip() == "count":
            print(f"{fleet.registered()} {fleet.registrations()}", flush=True)
    os._exit(0)  # without goodbyes: a thousand orderly stops would take longer than the run


if __name__ == "__main__":
    main()
