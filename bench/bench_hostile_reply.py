"""Proxy worker memory while one agent answers /metrics with chunks that never end (issue 16, item 10).

Run: .venv/bin/python bench/bench_hostile_reply.py [--chunks 200] [--chunk-mib 1]
A real fodc-proxy, one honest rogue-client agent and one that sends `--chunks` chunks of about `--chunk-mib`
MiB without `done`. The floor, measured in the same run, is the same request with the honest agent alone; the
comparison is the same attack against a proxy whose reply cap is lifted (1000 GiB, 10^9 series), i.e. how it
behaved before the cap. Prints the worker's peak RSS during one /metrics in each case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import http_get, start_proxy  # noqa: E402
from rogue import RogueAgent, gauge, metrics_reply, registration  # noqa: E402

from fodc.v1 import fodc_pb2 as pb  # noqa: E402


def peak_rss_during(pid: int, action) -> tuple[int, object]:  # noqa: ANN001 (a callable)
    process = psutil.Process(pid)
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return peak[0], result


def run(tmp: Path, name: str, proxy_args: list[str], chunks: int, chunk_mib: float) -> tuple[int, int, float]:
    proxy = start_proxy(tmp, "--metrics-timeout", "60s", *proxy_args, name=name)
    agents = []
    try:
        honest = RogueAgent(proxy.grpc_addr)
        agents.append(honest)
        honest.register(registration("honest", port=1))
        honest.serve_metrics(lambda request: [metrics_reply(request, [gauge("honest_gauge", 1.0)])])
        if chunks:
            per_chunk = int(chunk_mib * 1024 * 1024 / 1030)
            filler = [pb.MetricFamily(name="filler", type="gauge", series=[pb.Series(
                labels=[pb.Label(name="i", value=f"{i:07d}" + "x" * 1000)], values=[1.0], timestamps_ms=[1])
                for i in range(per_chunk)])]
            endless = RogueAgent(proxy.grpc_addr)
            agents.append(endless)
            endless.register(registration("endless", port=2))
            endless.serve_metrics(lambda request: (metrics_reply(request, filler, done=False, seq=seq)
                                                   for seq in range(chunks)))
        time.sleep(1.0)
        started = time.perf_counter()
        peak, (status, _, body) = peak_rss_during(proxy.worker_pid(), lambda: http_get(f"{proxy.url}/metrics", 120))
        assert status == 200
        return peak, len(body), time.perf_counter() - started
    finally:
        for agent in agents:
            agent.close()
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--chunk-mib", type=float, default=1.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fodc-bench-hostile-"))
    floor = run(tmp, "floor", [], 0, args.chunk_mib)
    capped = run(tmp, "capped", [], args.chunks, args.chunk_mib)
    small = run(tmp, "capped-16m", ["--max-reply-bytes", "16MiB"], args.chunks, args.chunk_mib)
    uncapped = run(tmp, "uncapped", ["--max-reply-bytes", "1000GiB", "--max-request-bytes", "1000GiB",
                                                     "--max-reply-series", "1000000000"], args.chunks,
                   args.chunk_mib)
    for label, (peak, size, seconds) in (("honest agent only (floor)", floor),
                                         ("+ endless agent, default caps", capped),
                                         ("+ endless agent, --max-reply-bytes 16MiB", small),
                                         ("+ endless agent, caps lifted (as before)", uncapped)):
        print(f"{label:42} worker peak RSS {peak / 2**20:7.0f} MiB (x{peak / floor[0]:.1f} the floor), "
              f"page {size / 2**20:7.1f} MiB, {seconds:.1f} s")


if __name__ == "__main__":
    main()
