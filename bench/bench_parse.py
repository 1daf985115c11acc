"""Parse + render throughput on a realistic 10k-series BanyanDB page, against prometheus-client.

Run: .venv/bin/python bench/bench_parse.py [--series 10000] [--rounds 5]
Prints samples/s for prometheus-client's parser (the baseline), our cold parse, our warm Parser (the
agent's case: the same endpoint every scrape), our render and prometheus-client's exposition, with ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from fodc import expfmt
from fodc.sim.page import NodeModel


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    model = NodeModel("datanode-hot", args.series, seed=7, start_s=1_787_300_000)
    pages = [model.render(1_787_300_000 + 15 * i) for i in range(args.rounds + 1)]
    samples = expfmt.parse(pages[0]).samples
    print(f"page: {samples} samples, {len(pages[0]) / 1e6:.2f} MB")

    baseline = best(lambda: sum(len(f.samples) for f in text_string_to_metric_families(pages[0])), args.rounds)
    cold = best(lambda: expfmt.parse(pages[0]), args.rounds)
    warm_parser = expfmt.Parser()
    warm_parser.parse(pages[0])
    it = iter(pages[1:] * 3)
    warm = best(lambda: warm_parser.parse(next(it)), args.rounds)

    families = expfmt.parse(pages[0]).families
    render_ours = best(lambda: expfmt.render(families), args.rounds)

    class Replay:
        def collect(self):
            for fam in families:
                metric = Metric(fam.name, fam.help, fam.type if fam.type != "untyped" else "unknown")
                for s in fam.samples:
                    metric.add_sample(s.name, dict(s.labels), s.value)
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Replay())
    render_lib = best(lambda: generate_latest(registry), args.rounds)

    rows = [
        ("prometheus-client parser (baseline)", samples / baseline, 1.0),
        ("fodc.expfmt.parse, cold", samples / cold, baseline / cold),
        ("fodc.expfmt.Parser, warm (per scrape)", samples / warm, baseline / warm),
        ("prometheus-client generate_latest (baseline)", samples / render_lib, 1.0),
        ("fodc.expfmt.render", samples / render_ours, render_lib / render_ours),
    ]
    for name, rate, ratio in rows:
        print(f"{name:<46} {rate:>12,.0f} samples/s   x{ratio:.2f}")
    print(f"median page parse (warm): {statistics.median([warm]) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
