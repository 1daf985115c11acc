"""What reading a node's last words costs: finding and parsing a Go crash report in a log.

Run: .venv/bin/python bench/bench_gocrash.py [--goroutines 4500] [--log-mib 200] [--rounds 5]

Figures (CPU time of this process, best of --rounds, so other load on the host does not skew the ratios):
  * parse: fodc.incident.gocrash.find_report + parse_report over a fatal-error dump of --goroutines
    goroutines (8 frames each, as GOTRACEBACK=all prints them), against a floor measured in the same run:
    splitting the same text into lines and matching each against one compiled regex, the least any
    line-based reader does;
  * find in a big log: fodc.agent.crashes.read_source over a --log-mib MiB log file whose crash report is
    near its end (the agent's path when the node goes down), against reading the whole file (the floor a
    reader that starts at the top would pay), and over the same log with no report at all (the scan stops
    after 16x --node-crash-max-bytes).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fodc.agent.crashes import read_source
from fodc.incident import gocrash

MAX_BYTES = 4 * 1024 * 1024
FRAMES = ("github.com/apache/skywalking-banyandb/banyand/measure.(*tsTable).mergeParts(0xc0003ae000, 0x1e)",
          "github.com/apache/skywalking-banyandb/banyand/measure.(*blockWriter).mustWriteBlock(0xc001c2a008)",
          "github.com/apache/skywalking-banyandb/pkg/encoding.(*BytesBlockEncoder).EncodeBlock({0xc002a48000})",
          "sync.(*Mutex).Lock(...)", "google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams(0x1)",
          "internal/poll.(*pollDesc).wait(0xc000582a00?, 0x72)", "runtime.gopark(0xc000e9de60?, 0x4?)",
          "main.main()")
STATES = ("chan receive, 12 minutes", "select", "IO wait", "semacquire", "sleep")


def dump(goroutines: int) -> str:
    lines = ["runtime: program exceeds 10000-thread limit", "fatal error: thread exhaustion", ""]
    for n in range(1, goroutines + 1):
        lines.append(f"goroutine {n} [{'running' if n == 1 else STATES[n % len(STATES)]}]:")
        for depth, frame in enumerate(FRAMES):
            lines += [frame, f"\t/src/banyand/pkg/file{depth}.go:{n % 700 + depth} +0x{n % 4096:x}"]
        lines += [f"created by main.start in goroutine {n % 50 + 1}", "\t/src/banyand/start.go:20 +0x45", ""]
    return "\n".join(lines) + "\n"


def best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--goroutines", type=int, default=4500)  # ~4 MiB: the most the agent parses
    ap.add_argument("--log-mib", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    text = dump(args.goroutines)
    lines = text.count("\n")
    floor_re = re.compile(r"^goroutine (\d+) \[([^\]]*)\]:$")

    def parse() -> gocrash.CrashReport:
        found = gocrash.find_report(text)
        assert found is not None
        return gocrash.parse_report(found)

    report = parse()
    assert report.goroutines == args.goroutines and report.message == "thread exhaustion"
    t_parse = best(args.rounds, parse)
    t_floor = best(args.rounds, lambda: [floor_re.match(line) for line in text.split("\n")])
    mib = len(text) / 2**20
    print(f"dump: {args.goroutines} goroutines, {lines} lines, {mib:.1f} MiB")
    print(f"  parse (find + parse): {t_parse * 1000:7.1f} ms  {mib / t_parse:6.1f} MiB/s  "
          f"{lines / t_parse / 1e6:5.2f} M lines/s")
    print(f"  floor (split + one regex per line): {t_floor * 1000:7.1f} ms  ratio {t_parse / t_floor:4.1f}x")

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        log = Path(tmp) / "banyand.log"
        quiet = Path(tmp) / "quiet.log"
        line = (b'{"level":"info","module":"MEASURE","time":"2026-12-04T17:58:01Z","message":"flushed part '
                b'000000000000a3f1 rows=120000 bytes=1048576"}\n')
        block = line * (2**20 // len(line))
        with open(log, "wb") as f, open(quiet, "wb") as g:
            for _ in range(args.log_mib):
                f.write(block)
                g.write(block)
            f.write(dump(200).encode())
            f.write(line * 50)  # the restarted node's first lines after the report
        size = os.path.getsize(log)

        def read_all() -> int:
            with open(log, "rb") as f:
                return sum(len(chunk) for chunk in iter(lambda: f.read(2**20), b""))

        found, cut = read_source(str(log), MAX_BYTES)
        assert found.startswith("runtime: program exceeds") and not cut
        t_find = best(args.rounds, lambda: read_source(str(log), MAX_BYTES))
        t_none = best(args.rounds, lambda: read_source(str(quiet), MAX_BYTES))
        t_all = best(args.rounds, read_all)
        print(f"log: {size / 2**20:.0f} MiB, crash report near the end, --node-crash-max-bytes 4MiB")
        print(f"  read_source, report found: {t_find * 1000:7.1f} ms")
        print(f"  read_source, no report (scans 64 MiB back): {t_none * 1000:7.1f} ms")
        print(f"  floor (read the whole file): {t_all * 1000:7.1f} ms  ratio found/floor {t_find / t_all:5.3f}")


if __name__ == "__main__":
    main()
