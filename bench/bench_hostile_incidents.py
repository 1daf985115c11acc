"""Proxy worker memory while one agent lists a hostile incident list (issue 22's incident-archive attack).

Run: .venv/bin/python bench/bench_hostile_incidents.py [--mib 60] [--keys 300000] [--rounds 3]
A real fodc-proxy and one rogue-client agent whose IncidentList holds about --mib MiB of incidents, each with
a detail of --keys tiny JSON keys (the costliest shape per byte once parsed). The floor, measured in the same
run, is the same /incidents with the agent listing two small incidents. Prints the worker's peak RSS over its
idle RSS (VmHWM, restarted before each request) for each, the worst of --rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import http_json, memory_kib, reset_peak, start_proxy, wait_for  # noqa: E402
from rogue import RogueAgent, registration, typed_answers  # noqa: E402

from fodc.v1 import fodc_pb2 as pb  # noqa: E402

MIB = 1024 * 1024


def incident(incident_id: str, detail: str = "{}") -> pb.Incident:
    return pb.Incident(id=incident_id, trigger="node-down", at="2026-01-01T00:00:00Z",
                       at_ms=int(time.time() * 1000) - 60_000, state="collecting", detail_json=detail)


def peak_growth(proxy, answers: dict[str, pb.IncidentList], which: str, rounds: int) -> tuple[float, float, int]:
    """(worst peak growth in MiB, worst seconds, incidents listed) of `rounds` /incidents."""
    worker = proxy.worker_pid()
    worst_mib = worst_s = 0.0
    listed = 0
    for _ in range(rounds):
        answers["incident_list"] = answers[which]
        reset_peak(worker)
        idle = memory_kib(worker)["VmRSS"]
        started = time.monotonic()
        status, body = http_json(f"{proxy.url}/incidents", timeout=300)
        worst_s = max(worst_s, time.monotonic() - started)
        worst_mib = max(worst_mib, (memory_kib(worker)["VmHWM"] - idle) / 1024)
        listed = len(body.get("incidents", [])) if status == 200 else -1
    return worst_mib, worst_s, listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=60, help="size of the hostile list (below 64 MiB, the "
                        "default --diagnostics-max-bytes)")
    parser.add_argument("--keys", type=int, default=300_000, help="tiny keys in each hostile incident's detail")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fat = json.dumps({f"k{i}": 0 for i in range(args.keys)}, separators=(",", ":"))
    count = max(1, int(args.mib * MIB) // (len(fat) + 100))
    answers = {"honest": pb.IncidentList(incidents=[incident("a"), incident("b")]),
               "hostile": pb.IncidentList(incidents=[incident(f"fat-{i}", fat) for i in range(count)])}
    answers["incident_list"] = answers["honest"]
    with tempfile.TemporaryDirectory() as tmp:
        proxy = start_proxy(Path(tmp), "--command-timeout", "120s", "--incident-copy-interval", "0")
        rogue = RogueAgent(proxy.grpc_addr)
        try:
            rogue.register(registration("bloater", port=20001))
            rogue.serve_commands(typed_answers(answers))  # reads the dict at each request
            wait_for(lambda: proxy.cluster(node_id="bloater", status="online"), 20, what="the agent online")
            http_json(f"{proxy.url}/incidents", timeout=60)  # first request's imports out of the figures
            floor = peak_growth(proxy, answers, "honest", args.rounds)
            attack = peak_growth(proxy, answers, "hostile", args.rounds)
        finally:
            rogue.close()
            proxy.stop()
    size = answers["hostile"].ByteSize() / MIB
    print(f"hostile list: {count} incidents, {size:.1f} MiB, details of {args.keys} keys ({len(fat) / MIB:.1f} MiB)")
    print("| case | worker peak over idle | /incidents time | incidents listed |")
    print("|---|---|---|---|")
    print(f"| honest agent, 2 incidents (floor) | {floor[0]:.0f} MiB | {floor[1]:.2f} s | {floor[2]} |")
    print(f"| hostile agent | {attack[0]:.0f} MiB ({attack[0] - floor[0]:+.0f} MiB over the floor) | "
          f"{attack[1]:.2f} s | {attack[2]} |")


if __name__ == "__main__":
    main()
