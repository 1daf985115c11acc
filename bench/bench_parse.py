"""Parse and render throughput on a realistic 10k-series BanyanDB page, against prometheus-client.

Run: .venv/bin/python bench/bench_parse.py [--series 10000] [--rounds 7]

Measures samples/s (CPU time of this process, best of --rounds, so other load on the host does not skew
the ratios) for:
  * prometheus-client's text_string_to_metric_families (the baseline, and the library we would otherwise use),
  * fodc.expfmt.parse() cold (no cache), a Parser's first scrape, and a Parser's later scrapes (warm: the
    agent's steady state, each scrape a fresh page where a share of the values moved),
  * fodc.expfmt.render() against prometheus-client's generate_latest over a collector with the same data.
It also feeds both parsers the corner cases the agent must survive and prints who handles which.
The page generator is below: BanyanDB naming (HELP = name, counters without _total, shard gauges with
group/seg/shard, latency histograms .005..10 s), go_*/process_*, and ~1 % lines with escapes or `}` in values.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from fodc import expfmt

BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")


class BanyanPage:
    """A node's /metrics over successive scrapes: fixed series, values that move between scrapes."""

    def __init__(self, series: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        # family name -> (type, [label texts]); each label text is the inside of {...} (may be "").
        self.families: list[tuple[str, str, list[str]]] = []
        self._go_and_process()
        self._system(rng)
        groups = [f"sw_{kind}{i}" for i in range(64) for kind in ("metricsMinute", "records", "trace")]
        total = sum(len(labels) * (len(BUCKETS) + 2 if kind == "histogram" else 1)
                    for _, kind, labels in self.families)
        gi = 0
        while total < series:
            group = groups[gi % len(groups)]
            gi += 1
            scope = ("measure", "stream", "trace")[gi % 3]
            shards = [f'group="{group}",seg="202608{day:02d}",shard="{shard}"' for day in (19, 20, 21)
                      for shard in range(4)]
            for gauge in ("total_file_parts", "total_file_elements", "total_file_blocks", "total_mem_parts"):
                self._add(f"banyandb_{scope}_{gauge}", "gauge", shards)
            for counter in ("total_written", "total_merged", "total_flushed", "total_merge_loop_started",
                            "total_merge_loop_finished", "series_index_total_updates"):
                self._add(f"banyandb_{scope}_{counter}", "counter", [f'group="{group}"'])
            grpc = [f'group="{group}",method="{m}",service="banyandb.{scope}.v1.Service"' for m in ("Write", "Query")]
            for counter in ("total_started", "total_finished", "total_err", "total_stream_msg_received"):
                self._add(f"banyandb_liaison_grpc_{counter}", "counter", grpc)
            remotes = [f'group="{group}",operation="write",remote_node="data-hot-{n}:17912",remote_role="data",'
                       f'remote_tier="hot"' for n in range(2)]
            self._add("banyandb_queue_pub_total_latency", "histogram", remotes)
            total += len(shards) * 4 + 6 + len(grpc) * 4 + len(remotes) * (len(BUCKETS) + 2)
        # Merge families that were added per group into one contiguous family each (as a Go registry does).
        merged: dict[str, tuple[str, list[str]]] = {}
        for name, kind, labels in self.families:
            merged.setdefault(name, (kind, []))[1].extend(labels)
        self.families = [(name, kind, labels) for name, (kind, labels) in merged.items()]
        self.values: dict[tuple[str, str], float] = {}
        self.rng = rng

    def _add(self, name: str, kind: str, labels: list[str]) -> None:
        self.families.append((name, kind, labels))

    def _go_and_process(self) -> None:
        self._add("go_gc_duration_seconds", "summary", [f'quantile="{q}"' for q in ("0", "0.25", "0.5", "0.75", "1")])
        for name in ("go_goroutines", "go_threads", "go_memstats_alloc_bytes", "go_memstats_heap_inuse_bytes",
                     "go_memstats_sys_bytes", "process_resident_memory_bytes", "process_open_fds"):
            self._add(name, "gauge", [""])
        for name in ("go_memstats_mallocs_total", "process_cpu_seconds_total"):
            self._add(name, "counter", [""])
        self._add("go_info", "gauge", ['version="go1.24.6"'])

    def _system(self, rng: random.Random) -> None:
        self._add("banyandb_system_cpu_state", "gauge", [f'kind="{k}"' for k in ("user", "system", "idle")])
        paths = ["/data/measure", "/data/stream", '/mnt/odd \\"quoted\\" dir', "/mnt/brace}dir,with=signs",
                 "C:\\\\banyan\\\\data", ""]
        self._add("banyandb_system_disk", "gauge", [f'kind="{k}",path="{p}"' for p in paths for k in ("used", "total")])

    def render(self, scrape: int, move_all: bool = False) -> str:
        """The page at scrape number `scrape`; ~40 % of counters and ~20 % of gauges move each scrape
        (every value with move_all)."""
        rng, values, out = self.rng, self.values, []
        for name, kind, label_texts in self.families:
            out.append(f"# HELP {name} {name}\n# TYPE {name} {'untyped' if kind == 'unknown' else kind}\n")
            for labels in label_texts:
                if kind == "histogram":
                    count = values.get((name, labels), 0.0)
                    if scrape == 0 or move_all or rng.random() < 0.4:
                        count += rng.randrange(1, 50)
                        values[(name, labels)] = count
                    sep = "," if labels else ""
                    for i, le in enumerate(BUCKETS):
                        out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {int(count * (i + 1) / len(BUCKETS))}\n')
                    out.append(f"{name}_sum{{{labels}}} {count * 0.0123:.6g}\n{name}_count{{{labels}}} {int(count)}\n")
                    continue
                value = values.get((name, labels), float(rng.randrange(0, 10_000)))
                if move_all or rng.random() < (0.4 if kind == "counter" else 0.2):
                    value = value + rng.randrange(1, 100) if kind == "counter" else rng.random() * 1e6
                values[(name, labels)] = value
                series = f"{name}{{{labels}}}" if labels else name
                out.append(f"{series} {expfmt.format_value(value)}\n")
        return "".join(out)


def best_cpu(fn: Callable[[], object], rounds: int) -> float:
    """Shortest CPU time of `rounds` calls (process time: other load on the host is not counted)."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def client_parse(text: str) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


CORNERS = {
    "`}` and `,` inside a label value": 'm{a="x}y,z"} 1\n',
    "escaped quote and backslash": 'm{a="x\\"y\\\\"} 1\n',
    "empty label value": 'm{a=""} 1\n',
    "sample with a timestamp": "m 1 1700000000000\n",
    "one bad line among good ones": "good 1\nbad{ 1\nalso 2\n",
    "counter without _total keeps its name": "# TYPE c counter\nc 1\n",
}


def corner_report() -> list[tuple[str, str, str]]:
    rows = []
    for case, text in CORNERS.items():
        try:
            client = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]
            client_verdict = f"ok {client}"
        except Exception as exc:  # noqa: BLE001 - the point is to see how the library fails
            client_verdict = f"FAILS: {type(exc).__name__}: {exc}"
        result = expfmt.parse(text)
        ours = [(s.name, dict(s.labels), s.value) for f in result.families for s in f.samples]
        errors = f" + {len(result.errors)} error(s)" if result.errors else ""
        rows.append((case, client_verdict, f"ok {ours}{errors}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    node = BanyanPage(args.series)
    pages = [node.render(i) for i in range(args.rounds + 2)]
    first = expfmt.parse(pages[0])
    samples = first.samples
    assert not first.errors, first.errors[:3]
    moved = sum(a != b for a, b in zip(pages[0].split("\n"), pages[1].split("\n"), strict=True))
    print(f"page: {samples} samples in {len(first.families)} families, {len(pages[0]) / 1e6:.2f} MB; "
          f"{moved / samples:.0%} of the lines change between scrapes")
    assert client_parse(pages[0]) == samples

    baseline = best_cpu(lambda: client_parse(pages[0]), args.rounds)
    cold = best_cpu(lambda: expfmt.parse(pages[0]), args.rounds)
    first_scrape = best_cpu(lambda: expfmt.Parser().parse(pages[0]), args.rounds)
    warm_parser = expfmt.Parser()
    warm_parser.parse(pages[0])
    later = iter(pages[1:])
    warm = best_cpu(lambda: warm_parser.parse(next(later)), args.rounds)
    all_moved = iter([node.render(args.rounds + 2 + i, move_all=True) for i in range(args.rounds)])
    warm_all_moved = best_cpu(lambda: warm_parser.parse(next(all_moved)), args.rounds)

    families = first.families
    ours_render = best_cpu(lambda: expfmt.render(families), args.rounds)

    class Replay:
        """A custom collector serving the same families, as an exporter would."""

        def collect(self):
            for fam in families:
                metric = Metric(fam.name, fam.help, fam.type)
                for s in fam.samples:
                    metric.add_sample(s.name, dict(s.labels), s.value)
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Replay())
    client_render = best_cpu(lambda: generate_latest(registry), args.rounds)

    title = f"parse (CPU time, best of {args.rounds})"
    print(f"\n{title:<48} {'samples/s':>12} {'ms/page':>9} {'vs baseline':>12}")
    for name, seconds in [("prometheus-client text_string_to_metric_families", baseline),
                          ("fodc.expfmt.parse() cold, no cache", cold),
                          ("fodc.expfmt.Parser first scrape (fills cache)", first_scrape),
                          ("fodc.expfmt.Parser warm (2nd+ scrape)", warm),
                          ("fodc.expfmt.Parser warm, every value moved", warm_all_moved)]:
        print(f"{name:<48} {samples / seconds:>12,.0f} {seconds * 1000:>9.1f} {baseline / seconds:>11.1f}x")
    print(f"\n{'render':<48} {'samples/s':>12} {'ms/page':>9} {'vs baseline':>12}")
    for name, seconds in [("prometheus-client generate_latest", client_render), ("fodc.expfmt.render()", ours_render)]:
        print(f"{name:<48} {samples / seconds:>12,.0f} {seconds * 1000:>9.1f} {client_render / seconds:>11.1f}x")

    print("\ncorner cases (prometheus-client | fodc.expfmt):")
    for case, client_verdict, ours in corner_report():
        print(f"  {case}:\n    client: {client_verdict}\n    ours:   {ours}")


if __name__ == "__main__":
    main()
