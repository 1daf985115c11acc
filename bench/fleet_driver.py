"""One slice of a synthetic fleet in its own process, steered over stdin/stdout by bench_fleet_load.py.

A single Python process cannot drive a thousand metrics streams without becoming the thing measured, so the
bench spreads the fleet over several of these. Protocol: the driver builds its agents and prints "ready"; on a
"go" line it starts them and prints "registered <CLOCK_MONOTONIC seconds>" once all of them are; at end of
input it exits at once (the proxy sees the connections close, as when hosts go away).

grpcio's synchronous client wakes every thread that waits for a response 10 times a second (grpc._common's
0.1 s wait slice, there so that Ctrl+C reaches a main thread blocked in a call). A real agent has three such
threads, 30 wake-ups a second; 250 agents in one process make 7,500, and with a thousand threads fighting for
one GIL that alone starved the 2-core machine until heartbeats were missed. The drivers therefore lengthen the
slice to WAIT_SLICE_S: a response still wakes its reader at once (the condition is notified), nothing on the
wire changes, and the cost left is the agents' own work.

Run: python bench/fleet_driver.py --proxy 127.0.0.1:PORT --agents 250 --first 0 [--series 200] [--scrapes 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import grpc._common

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import CachedResponder, Fleet, filled_recorder  # noqa: E402

from fodc.config import HostPort  # noqa: E402

WAIT_SLICE_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxy", required=True, help="the proxy's gRPC address, HOST:PORT")
    parser.add_argument("--agents", type=int, required=True, help="agents this driver runs")
    parser.add_argument("--first", type=int, default=0, help="number of this driver's first agent (node ids)")
    parser.add_argument("--series", type=int, default=200, help="series per agent's page (default 200)")
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes in each agent's window (15 s apart)")
    parser.add_argument("--command-streams", action="store_true", help="also hold each agent's command stream")
    args = parser.parse_args()
    grpc._common.MAXIMUM_WAIT_TIMEOUT = WAIT_SLICE_S
    host, _, port = args.proxy.rpartition(":")
    responder = CachedResponder(filled_recorder(args.series, scrapes=args.scrapes))
    fleet = Fleet(HostPort(host, int(port)), args.agents, responder, command_streams=args.command_streams,
                  send_timeout_s=30,
                  first=args.first)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        os._exit(1)
    fleet.start()
    while fleet.registered() < args.agents:
        time.sleep(0.05)
    print(f"registered {time.monotonic():.6f}", flush=True)
    sys.stdin.read()  # until the bench closes our input
    os._exit(0)  # without goodbyes: a thousand orderly stops would take longer than the run


if __name__ == "__main__":
    main()
