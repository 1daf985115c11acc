"""Typed command results against the JSON answers of the previous release: bytes on the wire and CPU time of
the whole path (agent encodes, proxy decodes and checks every record) for an agent's incident list and its
configuration history.

Run: .venv/bin/python bench/bench_wire_results.py [--incidents 2000] [--snapshots 100] [--rounds 5]

The floor is the previous release's path measured in the same run: json.dumps of the dicts, json.loads and
the same record checks on the decoded dicts (fodc.proxy.agent_answers.check_incident / the snapshot check).
Times are process CPU time, best of --rounds, so other load on the host does not skew the ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from fodc.proxy.agent_answers import _snapshot, check_incident, check_result
from fodc.v1 import fodc_pb2 as pb
from fodc.wire_results import incident_to_pb, snapshot_to_pb

NOW_MS = 1_800_000_000_000


def incidents(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        at_ms = NOW_MS - (count - i) * 60_000
        out.append({"id": f"20270115T0800{i:06d}Z-node-down", "node_id": "hot-1", "role": "datanode-hot",
                    "trigger": "node-down", "summary": "no target answered for 30 s",
                    "detail": {"failing_for_s": 31.5, "reason": "connection refused", "targets": 1, "pid": 4242},
                    "at": "2027-01-15T08:00:00Z", "at_ms": at_ms, "onset": "2027-01-15T07:59:29Z",
                    "onset_ms": at_ms - 31_000, "complete_by_ms": at_ms + 120_000, "state": "complete",
                    "errors": {"profile.cpu": "node down"}, "file": f"{i}.tar.gz", "size": 81_234,
                    "files": {name: {"size": 1000 + n, "sha256": "ab" * 32}
                              for n, name in enumerate(("manifest.json", "window.json", "config.json", "node.log"))},
                    "ring_profiles": ["1799999000000-cpu-10s.pb.gz"]})
    return out


def snapshots(count: int) -> list[dict[str, Any]]:
    flags = {f"--flag-{n}": f"value-{n}" for n in range(60)}
    files = {f"/etc/banyandb/file-{n}.yaml": {"sha256": "cd" * 32, "size": 2048, "content": "key: value\n" * 40}
             for n in range(4)}
    return [{"hash": f"h{i}", "captured_at": "2027-01-15T08:00:00Z", "confirmed_at": "2027-01-15T09:00:00Z",
             "captured_at_ms": NOW_MS, "confirmed_at_ms": NOW_MS, "captures": 3, "reason": "periodic",
             "node_id": "hot-1", "role": "datanode-hot", "process": {"pid": 4242, "start_time": 123.5},
             "argv": ["banyand", "data", *flags], "flags": flags, "positional": ["data"],
             "env": {"GOMAXPROCS": "8", "TZ": "UTC"}, "env_left_out": 12, "files": files,
             "agent": {"scrape_interval": "10s"}, "binary": {"path": "/usr/bin/banyand"}, "version": "0.8.0",
             "errors": {}} for i in range(count)]


def cpu_best(rounds: int, work: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def compare(name: str, rounds: int, json_bytes: bytes, json_path: Callable[[], Any], typed_bytes: bytes,
            typed_path: Callable[[], Any]) -> None:
    floor, typed = cpu_best(rounds, json_path), cpu_best(rounds, typed_path)
    print(f"{name:<28} {len(json_bytes):>12,} {len(typed_bytes):>12,} {len(typed_bytes) / len(json_bytes):>6.2f}x"
          f" {floor * 1000:>10.1f} {typed * 1000:>10.1f} {typed / floor:>6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'answer':<28} {'JSON bytes':>12} {'typed bytes':>12} {'ratio':>7} {'JSON ms':>10} {'typed ms':>10}"
          f" {'ratio':>7}")

    listing = incidents(args.incidents)
    as_json = json.dumps(listing).encode()
    typed = pb.IncidentList(incidents=[incident_to_pb(i) for i in listing]).SerializeToString()
    assert len(check_result("incident_list", typed, NOW_MS)[0]) == args.incidents
    compare(f"incident list ({args.incidents})", args.rounds, as_json,
            lambda: [check_incident(i, NOW_MS) for i in json.loads(json.dumps(listing).encode())],
            typed, lambda: check_result("incident_list", pb.IncidentList(
                incidents=[incident_to_pb(i) for i in listing]).SerializeToString(), NOW_MS))

    history = snapshots(args.snapshots)
    as_json = json.dumps(history).encode()
    typed = pb.ConfigHistory(snapshots=[snapshot_to_pb(s) for s in history]).SerializeToString()
    assert len(check_result("config_history", typed, NOW_MS)[0]) == args.snapshots
    compare(f"config history ({args.snapshots})", args.rounds, as_json,
            lambda: [_snapshot(s) for s in json.loads(json.dumps(history).encode())],
            typed, lambda: check_result("config_history", pb.ConfigHistory(
                snapshots=[snapshot_to_pb(s) for s in history]).SerializeToString(), NOW_MS))


if __name__ == "__main__":
    main()
