"""An agent of the previous release, as far as the wire goes: it speaks FODC's gRPC protocol with that
release's generated code (fodc_pb2*.py beside this file, frozen from main before the command contract became
typed), not with fodc.v1.

It registers (no command_protocol), heartbeats with the old `incidents_total` text in its runtime map,
answers every metrics request with one gauge, and opens its command stream, counting whatever command
arrives (an agent of that release would have answered a typed command "unknown action ''"). What it saw is
written as JSON to the state file after every event. Run: old_agent.py GRPC_ADDR NODE_ID STATE_FILE.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time

import fodc_pb2 as pb  # the previous release's generated code: this directory comes first on sys.path
import fodc_pb2_grpc as pb_grpc
import grpc

VERSION = "0.0.0-previous"


class State:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.seen = {"registered": False, "heartbeats": 0, "metrics_requests": 0, "commands": 0}

    def bump(self, key: str, value: object = None) -> None:
        with self.lock:
            self.seen[key] = value if value is not None else self.seen[key] + 1
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.seen, f)
            os.replace(tmp, self.path)


def outbound(q: queue.Queue):  # noqa: ANN201
    while True:
        yield q.get()


def main(grpc_addr: str, node_id: str, state_path: str) -> None:
    state = State(state_path)
    stub = pb_grpc.FODCServiceStub(grpc.insecure_channel(grpc_addr))
    control: queue.Queue = queue.Queue()
    control.put(pb.AgentMessage(register=pb.Registration(
        node_id=node_id, role="liaison", primary=pb.Address(ip="127.0.0.77", port=17912), agent_version=VERSION,
        hostname="previous-release", agent_started_unix_ms=int(time.time() * 1000))))
    replies = stub.RegisterAgent(outbound(control))
    result = next(replies).registration
    if not result.accepted:
        raise SystemExit(f"refused: {result.error}")
    state.bump("registered", True)

    metrics: queue.Queue = queue.Queue()
    metrics.put(pb.MetricsReply(agent_id=result.agent_id, stream_secret=result.stream_secret))
    commands: queue.Queue = queue.Queue()
    commands.put(pb.CommandReply(agent_id=result.agent_id, stream_secret=result.stream_secret))

    def serve_metrics() -> None:
        for request in stub.StreamMetrics(outbound(metrics)):
            if request.cancel:
                continue
            state.bump("metrics_requests")
            metrics.put(pb.MetricsReply(request_id=request.request_id, done=True, families=[pb.MetricFamily(
                name="previous_release_up", type="gauge", help="1 while the old agent runs",
                series=[pb.Series(timestamps_ms=[int(time.time() * 1000)], values=[1.0])])]))

    def serve_commands() -> None:
        for command in stub.StreamCommands(outbound(commands)):
            state.bump("commands")
            commands.put(pb.CommandReply(command_id=command.command_id, state=pb.CommandReply.REJECTED,
                                         error=f"unknown action {command.start.action!r}"))

    for target in (serve_metrics, serve_commands):
        threading.Thread(target=target, daemon=True).start()
    interval_s = max(0.2, result.heartbeat_interval_ms / 1000)
    while True:
        control.put(pb.AgentMessage(heartbeat=pb.Heartbeat(
            sent_unix_ms=int(time.time() * 1000), runtime={"incidents_total": "node-down=2"})))
        next(replies)
        state.bump("heartbeats")
        time.sleep(interval_s)


if __name__ == "__main__":
    main(*sys.argv[1:4])
